"""A realistic market for the fake Alpaca server, taken from the synthetic provider.

``seed_market(fake, symbols, live)`` fills a :class:`FakeAlpaca` with Alpaca JSON for each
symbol: daily stock bars for the ``history`` sessions up to ``live``, the contracts listed on
``live`` (with open interest and close price dated ``live``), the live session's option bars of
every contract that traded, and a chain snapshot per contract (quotes, last trade, implied
volatility, greeks; the server adds each contract's ``dailyBar`` from its option bars). Chains
have the synthetic market's 1,500 - 3,500 contracts, so request counts over it are those of a
real watchlist. Used by the request-count tests and ``tests/bench/bench_requests.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.providers.fake_alpaca import FakeAlpaca, bar_time

HISTORY_SESSIONS = 100


def _rfc3339(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bar(row: dict[str, Any]) -> dict[str, Any]:
    return {"t": bar_time(row["date"]), "o": row["open"], "h": row["high"], "l": row["low"], "c": row["close"],
            "v": row["volume"], "n": row["trade_count"], "vw": row["vwap"]}


def seed_market(fake: FakeAlpaca, symbols: list[str] | tuple[str, ...], live: dt.date, *,
                history: int = HISTORY_SESSIONS, seed: int = 7) -> dict[str, int]:
    """Fill ``fake`` for ``symbols``; returns the number of listed contracts per symbol."""
    from ledger.calendar import TradingCalendar
    from stages.providers.synthetic import SyntheticProvider

    synthetic = SyntheticProvider(seed=seed, risk_free_rate=0.04)
    sessions = TradingCalendar.xnys().last_sessions(history, live)
    bars = synthetic.stock_bars(list(symbols), sessions[0], live).to_pylist()
    for row in bars:
        fake.add_stock_bars(row["symbol"], [_bar(row)])
    sizes: dict[str, int] = {}
    for symbol in symbols:
        contracts = synthetic.option_contracts(symbol, live).to_pylist()
        sizes[symbol] = len(contracts)
        fake.add_contracts(*[{
            "id": f"fake-{c['contract_symbol']}", "symbol": c["contract_symbol"], "name": c["contract_symbol"],
            "status": "active", "tradable": True, "expiration_date": c["expiry"].isoformat(),
            "root_symbol": symbol.replace(".", ""), "underlying_symbol": symbol, "type": c["option_type"],
            "style": "american", "strike_price": f"{c['strike']:g}", "size": str(c["multiplier"]),
            "open_interest": None if c["open_interest"] is None else str(c["open_interest"]),
            "open_interest_date": c["open_interest_date"].isoformat() if c["open_interest_date"] else None,
            "close_price": None if c["close_price"] is None else str(c["close_price"]),
            "close_price_date": c["close_price_date"].isoformat() if c["close_price_date"] else None,
        } for c in contracts])
        names = [c["contract_symbol"] for c in contracts]
        for row in synthetic.option_bars(names, live, live).to_pylist():
            fake.add_option_bars(row["contract_symbol"], [_bar(row)])
        snaps: dict[str, dict[str, Any]] = {}
        for q in synthetic.option_chain(symbol, live).table.to_pylist():
            t = _rfc3339(q["quote_time"])
            snap: dict[str, Any] = {"latestQuote": {"t": t, "ax": "C", "ap": q["ask"], "as": 10, "bx": "C",
                                                    "bp": q["bid"], "bs": 10, "c": "A"}}
            if q["last"] is not None:
                snap["latestTrade"] = {"t": t, "x": "C", "p": q["last"], "s": 1, "c": "I"}
            if q["implied_volatility"] is not None:
                snap["impliedVolatility"] = q["implied_volatility"]
                snap["greeks"] = {g: q[g] for g in ("delta", "gamma", "theta", "vega")}
            snaps[q["contract_symbol"]] = snap
        fake.add_snapshots(symbol, snaps)
    return sizes


__all__ = ["HISTORY_SESSIONS", "seed_market"]
