"""``compute_flow``: open-interest and volume flow from the previous session's snapshot to this one's.

Every grouping (contract, strike, expiry, expiry-strike) over a one-session window; the
partition (symbol, to_date = the session, window_size 1) is replaced as a whole. A symbol with
no snapshot for the previous session is skipped (``no_previous_snapshot``): flow needs two.
"""

from __future__ import annotations

from typing import Any

from ledger.errors import StageError
from stages import datastore
from stages.jobs.base import JobContext, PartitionResult, skipped
from stages.jobs.snapshot import read_snapshot

WINDOW = 1


def gather(ctx: JobContext) -> dict[tuple[str, Any], dict[str, Any]]:
    days = [ctx.previous_session, ctx.as_of]
    rows = ctx.read(lambda con: datastore.snapshot_files(con, ctx.symbols, days))
    return {(r["symbol"], r["date"]): r for r in rows}


def compute(ctx: JobContext, files: dict[tuple[str, Any], dict[str, Any]], symbol: str) -> PartitionResult:
    from stages.analytics.flow import compute_flow

    current = files.get((symbol, ctx.as_of))
    if current is None:
        raise StageError(f"no options snapshot of {symbol} for {ctx.as_of}; "
                         f"run `options-helper snapshot-options --as-of {ctx.as_of} --symbols {symbol}` first")
    previous = files.get((symbol, ctx.previous_session))
    if previous is None:
        return skipped(symbol, "no_previous_snapshot", previous_session=ctx.previous_session.isoformat())
    rows = compute_flow(read_snapshot(ctx.data_root, current), read_snapshot(ctx.data_root, previous), symbol=symbol)
    return PartitionResult(
        scope_key=symbol,
        writes=(datastore.TableWrite(table=datastore.FLOW.name, rows=rows,
                                     partition={"symbol": symbol, "to_date": ctx.as_of, "window_size": WINDOW}),),
        check_input=rows,
        rows=rows.num_rows,
        min_data_time=ctx.previous_session,
        max_data_time=ctx.as_of,
        extra={"from_date": ctx.previous_session.isoformat(), "window_size": WINDOW,
               "inputs": [previous["path"], current["path"]]},
    )


__all__ = ["WINDOW", "compute", "gather"]
