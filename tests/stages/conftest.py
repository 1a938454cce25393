"""Small hand-built chains for the analytics tests.

Every number here is chosen so the expected flow and derived figures can be worked out by hand
in the tests (see the comments there). Symbols are real OCC symbols of the made-up root XYZ.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from stages.analytics.snapshot import SNAPSHOT_SCHEMA

PREV_DAY = dt.date(2025, 1, 2)  # Thursday
SESSION = dt.date(2025, 1, 3)  # Friday
E0 = dt.date(2025, 1, 2)  # expired at the previous close
E0_SAME_DAY = dt.date(2025, 1, 3)  # expires at this session's close (DTE 0)
E1 = dt.date(2025, 1, 17)
E2 = dt.date(2025, 2, 21)


def occ(expiry: dt.date, kind: str, strike: float) -> str:
    return f"XYZ{expiry:%y%m%d}{'C' if kind == 'call' else 'P'}{round(strike * 1000):08d}"


def snapshot(rows: list[dict], *, spot: float, as_of: dt.date) -> pa.Table:
    """A snapshot table in SNAPSHOT_SCHEMA from partial rows (missing fields are null)."""
    full = []
    for r in rows:
        row = {f.name: None for f in SNAPSHOT_SCHEMA}
        row.update(underlying="XYZ", iv_source="provider", spot=spot, as_of=as_of)
        row.update(r)
        row["contract_symbol"] = row.get("contract_symbol") or occ(row["expiry"], row["option_type"], row["strike"])
        full.append(row)
    return pa.Table.from_pylist(full, schema=SNAPSHOT_SCHEMA)


def _c(expiry, kind, strike, bid, ask, last, volume, oi, delta, **extra):
    return dict(expiry=expiry, option_type=kind, strike=float(strike), bid=bid, ask=ask, last=last,
                volume=volume, open_interest=oi, delta=delta, **extra)


@pytest.fixture
def flow_sessions() -> tuple[pa.Table, pa.Table]:
    """(previous, current): 7 contracts on 2025-01-02, 7 on 2025-01-03, 8 distinct."""
    previous = snapshot(
        [
            _c(E1, "call", 100, 2.00, 2.20, 2.10, 40, 1000, 0.50),
            _c(E1, "put", 100, 1.80, 2.00, 1.90, 10, 500, -0.45),
            _c(E1, "call", 105, 0.50, 0.60, 0.55, 0, 200, 0.25),
            _c(E1, "put", 95, 0.40, 0.50, 0.45, 5, 300, -0.20),
            _c(E0, "call", 100, 0.0, 0.0, 0.05, 12, 80, 0.10),  # expires: gone tomorrow
            _c(E1, "put", 90, 0.10, 0.20, 0.15, 0, 50, -0.05),
            _c(E2, "put", 100, 2.90, 3.10, 3.00, 0, 10, -0.40),
        ],
        spot=99.0, as_of=PREV_DAY,
    )
    current = snapshot(
        [
            _c(E1, "call", 100, 2.40, 2.60, 2.45, 300, 1150, 0.52),
            _c(E1, "put", 100, 1.50, 1.70, 1.65, 400, 480, -0.48),
            _c(E1, "call", 105, 0.0, 0.70, 0.0, 20, 150, 0.30),  # one-sided: mark = ask
            _c(E1, "put", 95, 0.30, 0.0, 0.35, 30, 305, -0.18),  # one-sided: mark = last
            _c(E1, "put", 90, 0.10, 0.20, 0.15, 0, None, -0.05),  # open interest not reported
            _c(E1, "call", 110, 0.20, 0.30, 0.25, 70, 60, 0.10),  # new listing
            _c(E2, "put", 100, 3.00, 0.0, 0.0, 0, 10, -0.40),  # bid only: mark = bid
        ],
        spot=100.0, as_of=SESSION,
    )
    return previous, current


@pytest.fixture
def derived_snapshot() -> pa.Table:
    """One session, spot 100: a same-day expiry (must not be "near"), E1 (near) and E2."""
    def row(expiry, kind, strike, mark, iv, delta, gamma, oi, volume):
        return dict(expiry=expiry, option_type=kind, strike=float(strike), bid=mark - 0.05 if mark else None,
                    ask=mark + 0.05 if mark else None, last=mark, volume=volume, open_interest=oi,
                    implied_volatility=iv, delta=delta, gamma=gamma)

    return snapshot(
        [
            row(E0_SAME_DAY, "call", 100, 0.50, 0.90, None, None, 10, 5),
            row(E0_SAME_DAY, "put", 100, 0.50, 0.90, None, None, 10, 5),
            row(E1, "call", 95, 6.00, 0.22, 0.80, 0.02, 100, 10),
            row(E1, "call", 100, 2.50, 0.20, 0.52, 0.05, 400, 200),
            row(E1, "call", 105, 0.80, 0.19, 0.26, 0.04, 900, 100),
            row(E1, "put", 95, 0.90, 0.25, -0.24, 0.04, 700, 150),
            row(E1, "put", 100, 2.30, 0.22, -0.47, 0.05, 300, 100),
            row(E1, "put", 105, 5.50, 0.21, -0.75, 0.02, 50, 0),
            row(E2, "call", 100, 4.00, 0.23, 0.53, 0.03, 100, 0),
            row(E2, "put", 100, 3.80, 0.25, -0.46, 0.03, 100, 0),
        ],
        spot=100.0, as_of=SESSION,
    )


@pytest.fixture
def candles() -> pa.Table:
    """41 closes to SESSION whose log returns alternate +0.01 / -0.01, plus a later row to ignore."""
    days = pd.bdate_range(end=pd.Timestamp(SESSION), periods=41).date
    closes = 100.0 * np.exp(0.01 * (np.arange(41) % 2))  # 100, 100e^0.01, 100, ...
    frame = pd.DataFrame({"symbol": "XYZ", "date": days, "close": closes})
    later = pd.DataFrame({"symbol": ["XYZ"], "date": [dt.date(2025, 1, 6)], "close": [500.0]})
    return pa.Table.from_pandas(pd.concat([frame, later], ignore_index=True), preserve_index=False)
