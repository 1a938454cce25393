"""``snapshot_options``: the full option chain of the session, one Parquet file per symbol.

``data/lake/options_snapshots/symbol=SYM/date=YYYY-MM-DD/chain.parquet`` (under the data root)
holds ``stages.analytics.SNAPSHOT_SCHEMA`` rows: the provider's chain with implied volatility
inverted from the mid where the source gives none, greeks, spot and session. The spot is the
session's stored close (``candles_daily``) when there is one, else the provider's. The file is
staged (temp, fsync) here and published by the runner after the transaction commits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from ledger.errors import MalformedResponseError, StageError
from stages import datastore
from stages.jobs import _files
from stages.jobs.base import JobContext, PartitionResult

LAKE_DIR = "lake/options_snapshots"


def relpath(symbol: str, day: Any) -> str:
    return f"{LAKE_DIR}/symbol={symbol}/date={day.isoformat()}/chain.parquet"


def gather(ctx: JobContext) -> dict[str, float]:
    return ctx.read(lambda con: datastore.closes(con, ctx.symbols, ctx.as_of))


def compute(ctx: JobContext, closes: dict[str, float], symbol: str) -> PartitionResult:
    from stages.analytics.snapshot import enrich_chain

    provider = ctx.require_provider()
    snap = provider.option_chain(symbol, ctx.as_of)
    table = getattr(snap, "table", None)
    if not isinstance(table, pa.Table):
        raise MalformedResponseError(f"the provider's chain for {symbol} on {ctx.as_of} has no table")
    if snap.as_of != ctx.as_of:
        raise MalformedResponseError(f"asked for the {symbol} chain of {ctx.as_of}, the provider returned {snap.as_of}")
    if table.num_rows == 0:
        raise StageError(f"the provider returned an empty option chain for {symbol} on {ctx.as_of}; nothing to snapshot")
    if symbol in closes:
        spot, spot_source = closes[symbol], "candles_daily"
    else:
        spot, spot_source = snap.spot, "provider"
    rows = enrich_chain(table, spot, ctx.as_of, ctx.settings.risk_free_rate)
    staged = _files.stage_parquet(ctx.data_root, relpath(symbol, ctx.as_of), rows, ctx.run_id)
    record = pa.table({
        "symbol": [symbol], "date": pa.array([ctx.as_of], pa.date32()), "path": [staged.relpath],
        "bytes": pa.array([staged.bytes], pa.int64()), "sha256": [staged.sha256],
        "contracts": pa.array([rows.num_rows], pa.int64()), "spot": [float(spot)], "provider": [provider.name],
    })
    sources = rows["iv_source"].value_counts().to_pylist()
    return PartitionResult(
        scope_key=symbol,
        writes=(datastore.TableWrite(table=datastore.SNAPSHOT_FILES.name, rows=record,
                                     partition={"symbol": symbol, "date": ctx.as_of}),),
        files=(staged,),
        check_input=rows,
        rows=rows.num_rows,
        min_data_time=ctx.as_of,
        max_data_time=ctx.as_of,
        extra={"spot": float(spot), "spot_source": spot_source, "provider": provider.name,
               "synthetic": bool(getattr(provider, "is_synthetic", False)),
               "iv_sources": {s["values"]: int(s["counts"]) for s in sources}},
    )


def read_snapshot(data_root: Path, row: dict[str, Any]) -> pa.Table:
    """The snapshot rows recorded by an ``options_snapshot_files`` row."""
    import pyarrow.parquet as pq

    path = _files.resolve(data_root, row["path"], run_id=row["run_id"], size=int(row["bytes"]))
    # One small file (a few thousand rows): Arrow's thread pool costs more than it saves (a third
    # of the CPU time here), and the runner already runs symbols in parallel.
    return pq.ParquetFile(path).read(use_threads=False)


__all__ = ["LAKE_DIR", "compute", "gather", "read_snapshot", "relpath"]
