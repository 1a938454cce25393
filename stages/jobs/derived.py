"""``compute_derived``: one ``derived_metrics`` row per symbol and session.

Inputs: the session's snapshot file, the symbol's stored candles (realized volatility) and its
stored derived history (IV percentile and 252-session IV rank).
"""

from __future__ import annotations

from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import StageError
from stages import datastore
from stages.jobs.base import JobContext, PartitionResult
from stages.jobs.snapshot import read_snapshot

CANDLE_SESSIONS = 80
HISTORY_SESSIONS = 260


@attrs.frozen(kw_only=True)
class Inputs:
    files: dict[str, dict[str, Any]]
    candles: pa.Table
    history: pa.Table


def gather(ctx: JobContext) -> Inputs:
    candle_start = ctx.calendar.last_sessions(CANDLE_SESSIONS, ctx.as_of)[0]
    history_start = ctx.calendar.last_sessions(HISTORY_SESSIONS, ctx.as_of)[0]
    before = ctx.previous_session

    def read(con: Any) -> Inputs:
        files = {r["symbol"]: r for r in datastore.snapshot_files(con, ctx.symbols, [ctx.as_of])}
        return Inputs(files=files, candles=datastore.candles(con, ctx.symbols, candle_start, ctx.as_of),
                      history=datastore.derived(con, ctx.symbols, history_start, before))

    return ctx.read(read)


def _of(table: pa.Table, symbol: str) -> pa.Table:
    return table.filter(pc.equal(table["symbol"], symbol)) if table.num_rows else table


def compute(ctx: JobContext, inputs: Inputs, symbol: str) -> PartitionResult:
    from stages.analytics.derived import compute_derived

    row = inputs.files.get(symbol)
    if row is None:
        raise StageError(f"no options snapshot of {symbol} for {ctx.as_of}; "
                         f"run `options-helper snapshot-options --as-of {ctx.as_of} --symbols {symbol}` first")
    candles, history = _of(inputs.candles, symbol), _of(inputs.history, symbol)
    out = compute_derived(read_snapshot(ctx.data_root, row), candles, history, symbol=symbol, as_of=ctx.as_of)
    return PartitionResult(
        scope_key=symbol,
        writes=(datastore.TableWrite(table=datastore.DERIVED.name, rows=out,
                                     partition={"symbol": symbol, "date": ctx.as_of}),),
        check_input=out,
        rows=out.num_rows,
        min_data_time=ctx.as_of,
        max_data_time=ctx.as_of,
        extra={"candles": candles.num_rows, "history_rows": history.num_rows,
               "snapshot": row["path"]},
    )


__all__ = ["CANDLE_SESSIONS", "HISTORY_SESSIONS", "Inputs", "compute", "gather"]
