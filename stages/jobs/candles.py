"""``ingest_candles``: daily OHLCV with vwap and trade count into ``candles_daily``.

The partition is the session; the stage always re-fetches that session's bar (so a re-run
replaces it) and backfills only the sessions still missing from the lookback window that
derived metrics need (60-day realized volatility, with a margin). Nothing else is fetched.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import MalformedResponseError, StageError
from stages import datastore
from stages.jobs.base import JobContext, PartitionResult
from stages.providers.base import prefetch

LOOKBACK_SESSIONS = 90
_NEEDED = ("symbol", "date", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count")


def window(ctx: JobContext) -> list[dt.date]:
    return ctx.calendar.last_sessions(LOOKBACK_SESSIONS, ctx.as_of)


def gather(ctx: JobContext) -> dict[str, set[dt.date]]:
    sessions = window(ctx)
    stored = ctx.read(lambda con: datastore.candle_dates(con, ctx.symbols, sessions[0], ctx.as_of))
    # One multi-symbol request per distinct range instead of one per symbol (for a provider
    # that batches; steady state: every symbol wants the session only).
    starts: dict[dt.date, list[str]] = {}
    for symbol in ctx.symbols:
        starts.setdefault(_start(sessions, stored.get(symbol, set()), ctx.as_of), []).append(symbol)
    for start, symbols in sorted(starts.items()):
        prefetch(ctx.provider, "stock_bars", symbols, start, ctx.as_of)
    return stored


def _start(sessions: list[dt.date], have: set[dt.date], as_of: dt.date) -> dt.date:
    return min({d for d in sessions if d not in have} | {as_of})


def validate_bars(table: Any, symbol: str, wanted: set[dt.date], what: str) -> pa.Table:
    """The provider's bars for ``symbol`` restricted to ``wanted`` sessions; raises on malformed data."""
    if not isinstance(table, pa.Table):
        raise MalformedResponseError(f"the provider returned {type(table).__name__} for {what}, not a table")
    missing = [c for c in _NEEDED if c not in table.column_names]
    if missing:
        raise MalformedResponseError(f"the provider's {what} lack column(s) {', '.join(missing)}")
    table = table.filter(pc.equal(table["symbol"], symbol)) if table.num_rows else table
    days = table["date"].to_pylist()
    if any(d is None for d in days):
        raise MalformedResponseError(f"the provider's {what} have rows without a date")
    if len(set(days)) != len(days):
        raise MalformedResponseError(f"the provider returned duplicate sessions in {what}")
    keep = pa.array([d in wanted for d in days], pa.bool_())
    return table.filter(keep).select(list(_NEEDED))


def compute(ctx: JobContext, stored: dict[str, set[dt.date]], symbol: str) -> PartitionResult:
    sessions = window(ctx)
    have = stored.get(symbol, set())
    # The session itself is always fetched again; older sessions only when missing.
    wanted = {d for d in sessions if d not in have} | {ctx.as_of}
    start = min(wanted)
    what = f"candles of {symbol} for {start}..{ctx.as_of}"
    raw = ctx.require_provider().stock_bars([symbol], start, ctx.as_of)
    rows = validate_bars(raw, symbol, wanted, what)
    days = set(rows["date"].to_pylist())
    if ctx.as_of not in days:
        raise StageError(f"the provider returned no candle for {symbol} on {ctx.as_of}; "
                         "check the symbol, or retry once the provider has the session")
    rows = rows.sort_by([("date", "ascending")])
    return PartitionResult(
        scope_key=symbol,
        writes=(datastore.TableWrite(table=datastore.CANDLES.name, rows=rows,
                                     partition={"symbol": symbol, "date": sorted(days)}),),
        check_input=rows,
        rows=rows.num_rows,
        min_data_time=min(days),
        max_data_time=ctx.as_of,
        extra={"sessions_fetched": len(days), "backfilled": len(days) - 1},
    )


__all__ = ["LOOKBACK_SESSIONS", "compute", "gather", "validate_bars"]
