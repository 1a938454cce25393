"""``compute_flow``: open-interest and volume flow from the latest earlier snapshot to this session's.

Every grouping (contract, strike, expiry, expiry-strike, total) over a one-session window; the
partition (symbol, to_date = the session, window_size 1) is replaced as a whole. The earlier
snapshot is the previous session's, or after a missed session (a live-only provider cannot
take it later) the latest one within ``settings.flow_max_gap_sessions`` sessions: the rows record
its ``from_date`` and ``gap_sessions``. A symbol with no snapshot within that limit is skipped
(``no_previous_snapshot``, with the limit and the sessions looked at): flow needs two.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.errors import StageError
from stages import datastore
from stages.jobs.base import JobContext, PartitionResult, skipped
from stages.jobs.snapshot import read_snapshot

WINDOW = 1
NO_PREVIOUS_SNAPSHOT = "no_previous_snapshot"


def earlier_sessions(ctx: JobContext) -> list[dt.date]:
    """The sessions flow may compare with, latest first: the ``flow_max_gap_sessions`` before the session."""
    days = ctx.calendar.last_sessions(ctx.settings.flow_max_gap_sessions + 1, ctx.as_of)
    return [d for d in reversed(days) if d < ctx.as_of]


def gather(ctx: JobContext) -> dict[tuple[str, Any], dict[str, Any]]:
    days = [ctx.as_of, *earlier_sessions(ctx)]
    rows = ctx.read(lambda con: datastore.snapshot_files(con, ctx.symbols, days))
    return {(r["symbol"], r["date"]): r for r in rows}


def compute(ctx: JobContext, files: dict[tuple[str, Any], dict[str, Any]], symbol: str) -> PartitionResult:
    from stages.analytics.flow import compute_flow

    current = files.get((symbol, ctx.as_of))
    if current is None:
        raise StageError(f"no options snapshot of {symbol} for {ctx.as_of}; "
                         f"run `options-helper snapshot-options --as-of {ctx.as_of} --symbols {symbol}` first")
    earlier = earlier_sessions(ctx)
    gap, previous = next(((i + 1, files[(symbol, d)]) for i, d in enumerate(earlier) if (symbol, d) in files),
                         (0, None))
    if previous is None:
        return skipped(symbol, NO_PREVIOUS_SNAPSHOT, previous_session=ctx.previous_session.isoformat(),
                       max_gap_sessions=ctx.settings.flow_max_gap_sessions,
                       looked_back_to=earlier[-1].isoformat() if earlier else None)
    from_date: dt.date = previous["date"]
    rows = compute_flow(read_snapshot(ctx.data_root, current), read_snapshot(ctx.data_root, previous),
                        symbol=symbol, gap_sessions=gap)
    return PartitionResult(
        scope_key=symbol,
        writes=(datastore.TableWrite(table=datastore.FLOW.name, rows=rows,
                                     partition={"symbol": symbol, "to_date": ctx.as_of, "window_size": WINDOW}),),
        check_input=rows,
        rows=rows.num_rows,
        min_data_time=from_date,
        max_data_time=ctx.as_of,
        extra={"from_date": from_date.isoformat(), "gap_sessions": gap, "window_size": WINDOW,
               "inputs": [previous["path"], current["path"]]},
    )


__all__ = ["NO_PREVIOUS_SNAPSHOT", "WINDOW", "compute", "earlier_sessions", "gather"]
