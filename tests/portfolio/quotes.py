"""Hand-built snapshot rows for the valuation and stress tests (underlying XYZ, spot 100)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from stages.portfolio.model import Portfolio

SESSION = dt.date(2025, 1, 3)  # Friday
EARLIER = dt.date(2025, 1, 2)
E0 = dt.date(2025, 1, 2)  # expired the session before
E1 = dt.date(2025, 2, 21)  # 49 calendar days after SESSION
SPOT = 100.0


def row(kind: str, strike: float, *, bid: float | None = None, ask: float | None = None, last: float | None = None,
        iv: float | None = 0.25, expiry: dt.date = E1, as_of: dt.date = SESSION, **greeks: float) -> dict[str, Any]:
    return {"contract_symbol": f"XYZ{expiry:%y%m%d}{kind[0].upper()}{round(strike * 1000):08d}", "underlying": "XYZ",
            "expiry": expiry, "option_type": kind, "strike": float(strike), "bid": bid, "ask": ask, "last": last,
            "implied_volatility": iv, "delta": greeks.get("delta"), "gamma": greeks.get("gamma"),
            "theta": greeks.get("theta"), "vega": greeks.get("vega"), "spot": SPOT, "as_of": as_of}


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def portfolio(*positions: dict[str, Any]) -> Portfolio:
    return Portfolio.from_dict({"positions": list(positions)})


def single(ident: str, kind: str, strike: float, contracts: int, cost_basis: float, *, expiry: dt.date = E1,
           side: str | None = None) -> dict[str, Any]:
    out = {"id": ident, "symbol": "XYZ", "option_type": kind, "expiry": expiry.isoformat(), "strike": strike,
           "contracts": contracts, "cost_basis": cost_basis}
    if side:
        out["side"] = side
    return out


def multi(ident: str, net_debit: float | None, *legs: tuple[str, str, float, int]) -> dict[str, Any]:
    return {"id": ident, "symbol": "XYZ", "net_debit": net_debit,
            "legs": [{"side": s, "option_type": k, "expiry": E1.isoformat(), "strike": x, "contracts": n}
                     for s, k, x, n in legs]}
