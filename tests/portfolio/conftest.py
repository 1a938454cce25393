"""Fixtures for the portfolio tests: a real pipeline's stored snapshots (synthetic provider) and a
portfolio file whose contracts are picked from them.

``market`` runs candles and snapshots for SPY and AAPL over three sessions: 2026-11-19 (Thu),
2026-11-20 (Fri, the November monthly expiry) and 2026-11-23 (Mon), once per test session.
Its portfolio holds a November call (expired by 2026-11-23), a December call, an AAPL put debit
vertical and a call whose strike no snapshot has (a missing leg).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import attrs
import pytest

from ledger.config import Settings

SYMBOLS = ("SPY", "AAPL")
SESSIONS = (dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 23))
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
NOV, DEC = dt.date(2026, 11, 20), dt.date(2026, 12, 18)
MISSING_STRIKE = 1234.5


def make_settings(root: Path, **overrides: Any) -> Settings:
    return Settings(duckdb_path=root / "warehouse" / "options.duckdb", data_root=root / "data",
                    watchlists={"default": ("SPY",)}, **overrides)


def snapshot_rows(root: Path, symbol: str, day: dt.date) -> list[dict[str, Any]]:
    """The stored snapshot rows of ``symbol`` on ``day`` (read straight from the Parquet file)."""
    import duckdb
    import pyarrow.parquet as pq

    with duckdb.connect(str(root / "warehouse" / "options.duckdb"), read_only=True) as con:
        (path,) = con.execute("SELECT path FROM options_snapshot_files WHERE symbol = ? AND date = ?",
                              [symbol, day]).fetchone()
    return pq.read_table(root / "data" / path).to_pylist()


def atm(rows: list[dict[str, Any]], expiry: dt.date, offset: int = 0) -> float:
    """The strike of ``expiry`` nearest the spot (``offset`` strikes away)."""
    strikes = sorted({r["strike"] for r in rows if r["expiry"] == expiry})
    spot = rows[0]["spot"]
    i = min(range(len(strikes)), key=lambda k: abs(strikes[k] - spot))
    return strikes[i + offset]


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A root with stored snapshots and a portfolio file ``portfolio.json`` (copy before writing)."""
    import stages
    from stages.providers.synthetic import SyntheticProvider

    root = tmp_path_factory.mktemp("portfolio_market")
    s = make_settings(root)
    provider = SyntheticProvider(seed=7, risk_free_rate=0.04)
    for day in SESSIONS:
        result = stages.run_daily(as_of=day, symbols=SYMBOLS, settings=s, provider=provider, now=NOW,
                                  jobs=["ingest_candles", "snapshot_options"])
        assert result.ok, result.to_dict()
    spy = snapshot_rows(root, "SPY", SESSIONS[1])
    aapl = snapshot_rows(root, "AAPL", SESSIONS[1])
    doc = {
        "base_currency": "USD",
        "cash": 1000.0,
        "positions": [
            {"id": "nov-call", "symbol": "SPY", "option_type": "call", "expiry": NOV.isoformat(),
             "strike": atm(spy, NOV), "contracts": 1, "cost_basis": 1.0},
            {"id": "dec-call", "symbol": "SPY", "option_type": "call", "expiry": DEC.isoformat(),
             "strike": atm(spy, DEC), "contracts": 2, "cost_basis": 5.0},
            {"id": "aapl-put-spread", "symbol": "AAPL", "net_debit": 150.0, "legs": [
                {"side": "long", "option_type": "put", "expiry": DEC.isoformat(), "strike": atm(aapl, DEC),
                 "contracts": 1},
                {"side": "short", "option_type": "put", "expiry": DEC.isoformat(), "strike": atm(aapl, DEC, -3),
                 "contracts": 1}]},
            {"id": "ghost", "symbol": "SPY", "option_type": "call", "expiry": DEC.isoformat(),
             "strike": MISSING_STRIKE, "contracts": 1, "cost_basis": 2.0},
        ],
    }
    (root / "portfolio.json").write_text(json.dumps(doc, indent=2) + "\n")
    return {"root": root, "portfolio": root / "portfolio.json", "doc": doc}


@pytest.fixture()
def state(market: dict[str, Any], tmp_path: Path) -> Settings:
    """A private copy of ``market`` with its portfolio configured."""
    root = tmp_path / "state"
    shutil.copytree(market["root"], root)
    return make_settings(root, portfolio=root / "portfolio.json")


def evolve(s: Settings, **changes: Any) -> Settings:
    return attrs.evolve(s, **changes)
