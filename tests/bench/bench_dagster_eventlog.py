"""The ledger's append and read-back against Dagster's own event log storage and the original
tool's write pattern, on the same machine in the same process.

Workload: ``n`` materializations of one partitioned asset (one per symbol x session), each with
one check evaluation linked to it.

- **ledger**: ``DuckDBEventStore.append([AssetMaterialized, ChecksEvaluated])`` per materialization
  (event + every projection + the check link in one transaction, file opened read-write for the
  commit only: the CLI's pattern, the only way the ledger appends); and the bare DuckDB floor for
  the same statements (what each append ran, recorded, replayed on an identical copy of the file
  opened per commit the same way, without the ledger's Python).
- **dagster**: a ``DagsterInstance`` on a temporary ``DAGSTER_HOME`` (SQLite event log, telemetry
  off): ``report_runless_asset_event(AssetMaterialization(...))`` then
  ``report_runless_asset_event(AssetCheckEvaluation(...))`` per materialization.
- **original**: a new DuckDB connection and one transaction per ledger write (upsert the run-asset
  row; insert the check row), as the original options-helper does.

Read-back: the latest materialization of one (asset, partition, scope) cell. Ledger: a read-only
connection per query on ``meta.partition_status``; Dagster: ``fetch_materializations(
AssetRecordsFilter(asset_key, asset_partitions=[p]), limit=1)`` and
``get_latest_materialization_event``; original: a new connection per query on its table.
Each figure is a median (ms); ratios are other / ledger (above 1: the ledger is faster).
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SESSIONS = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]


def _cells(n: int) -> list[tuple[str, str]]:
    symbols = [f"S{i:03d}" for i in range(max(1, n // len(SESSIONS) + 1))]
    return [(SESSIONS[i % len(SESSIONS)], symbols[i // len(SESSIONS)]) for i in range(n)]


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


# -- the ledger -----------------------------------------------------------------------------------
def bench_ledger(tmp: Path, cells: list[tuple[str, str]], reads: int) -> dict[str, float]:
    import shutil

    import ledger.duckdb_store as store_module
    from ledger.connection import connect
    from ledger.duckdb_store import DuckDBEventStore
    from ledger.events import AssetMaterialized, ChecksEvaluated, RunStarted
    from ledger.ids import new_uuid7
    from tests.bench.bench_ledger import _Recorder, _replay

    path, twin = tmp / "ledger-percommit.duckdb", tmp / "ledger-twin.duckdb"
    store = DuckDBEventStore(path, auto_reap=False)
    run_id = new_uuid7()
    store.append([RunStarted(run_id=run_id, job_name="bench", triggered_by="python")])
    shutil.copyfile(path, twin)  # the twins stay identical: the same statements on the same file
    times: list[float] = []
    floor: list[float] = []
    ops: list[tuple[Any, ...]] = []

    @contextlib.contextmanager
    def recording(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with connect(*args, **kwargs) as con:
            yield _Recorder(con, ops)

    saved = store_module.connect
    try:
        for day, sym in cells:
            m = AssetMaterialized(run_id=run_id, asset_key="candles_daily", partition_key=day, scope_key=sym, rows=1,
                                  min_data_time=f"{day}T20:00:00+00:00", max_data_time=f"{day}T20:00:00+00:00")
            c = ChecksEvaluated(run_id=run_id, asset_key="candles_daily", partition_key=day, scope_key=sym,
                                checks=[{"check_name": "ohlc_consistent", "severity": "error", "status": "pass"}],
                                materialization_id=m.event_id)
            ops.clear()
            store_module.connect = recording  # type: ignore[assignment]
            times.append(_timed(lambda m=m, c=c: store.append([m, c])))
            store_module.connect = saved  # type: ignore[assignment]
            floor.append(1000 * _replay(twin, [list(ops)]))
    finally:
        store_module.connect = saved  # type: ignore[assignment]
    rng = random.Random(1)
    read_times = []
    for _ in range(reads):
        day, sym = rng.choice(cells)

        def q(day: str = day, sym: str = sym) -> None:
            with store.reader() as con:
                row = con.execute("SELECT materialized_seq, rows FROM meta.partition_status WHERE asset_key = ? "
                                  "AND partition_key = ? AND scope_key = ?", ["candles_daily", day, sym]).fetchone()
                assert row is not None

        read_times.append(_timed(q))
    return {"append_ms": _median(times), "append_p99_ms": _p99(times), "floor_append_ms": _median(floor),
            "floor_append_p99_ms": _p99(floor), "read_latest_ms": _median(read_times)}


def _p99(values: list[float]) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(0.99 * len(values)))], 3) if values else float("nan")


# -- Dagster --------------------------------------------------------------------------------------
def bench_dagster(tmp: Path, cells: list[tuple[str, str]], reads: int) -> dict[str, float]:
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nnux:\n  enabled: false\n")
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_DISABLE_TELEMETRY")}
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"
    try:
        import dagster as dg
        from dagster import DagsterInstance

        key = dg.AssetKey("candles_daily")
        times: list[float] = []
        with DagsterInstance.get() as instance:
            for day, sym in cells:
                partition = f"{day}|{sym}"

                def one(partition: str = partition) -> None:
                    instance.report_runless_asset_event(dg.AssetMaterialization(
                        asset_key=key, partition=partition, metadata={"rows": 1}))
                    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                        asset_key=key, check_name="ohlc_consistent", passed=True, partition=partition))

                times.append(_timed(one))
            rng = random.Random(1)
            part_reads, latest_reads = [], []
            for _ in range(reads):
                day, sym = rng.choice(cells)

                def q(p: str = f"{day}|{sym}") -> None:
                    res = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[p]),
                                                          limit=1)
                    assert res.records

                part_reads.append(_timed(q))
                latest_reads.append(_timed(lambda: instance.get_latest_materialization_event(key)))
        return {"append_ms": _median(times), "read_latest_ms": _median(part_reads),
                "read_latest_any_partition_ms": _median(latest_reads)}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- the original's pattern -----------------------------------------------------------------------
ORIGINAL_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.ingestion_run_assets (run_id VARCHAR, asset_key VARCHAR, partition_key VARCHAR,
    scope_key VARCHAR, status VARCHAR, rows_inserted BIGINT, updated_at TIMESTAMPTZ,
    PRIMARY KEY (run_id, asset_key, partition_key, scope_key));
CREATE TABLE IF NOT EXISTS meta.asset_checks (check_id VARCHAR PRIMARY KEY, asset_key VARCHAR, partition_key VARCHAR,
    scope_key VARCHAR, check_name VARCHAR, status VARCHAR, checked_at TIMESTAMPTZ);
"""


def bench_original(tmp: Path, cells: list[tuple[str, str]], reads: int) -> dict[str, float]:
    import uuid

    import duckdb

    path = str(tmp / "original.duckdb")
    con = duckdb.connect(path)
    con.execute(ORIGINAL_DDL)
    con.close()

    def write(sql: str, params: list[Any]) -> None:  # one ledger write = connect, one transaction, close
        c = duckdb.connect(path)
        try:
            c.execute("BEGIN TRANSACTION")
            c.execute(sql, params)
            c.execute("COMMIT")
        finally:
            c.close()

    run_id = str(uuid.uuid4())
    times: list[float] = []
    for day, sym in cells:
        def one(day: str = day, sym: str = sym) -> None:
            write("INSERT INTO meta.ingestion_run_assets VALUES (?, 'candles_daily', ?, ?, 'success', 1, now()) "
                  "ON CONFLICT DO UPDATE SET status = excluded.status, rows_inserted = excluded.rows_inserted, "
                  "updated_at = excluded.updated_at", [run_id, day, sym])
            write("INSERT INTO meta.asset_checks VALUES (?, 'candles_daily', ?, ?, 'ohlc_consistent', 'pass', now())",
                  [str(uuid.uuid4()), day, sym])

        times.append(_timed(one))
    rng = random.Random(1)
    read_times = []
    for _ in range(reads):
        day, sym = rng.choice(cells)

        def q(day: str = day, sym: str = sym) -> None:
            c = duckdb.connect(path, read_only=True)
            try:
                assert c.execute("SELECT * FROM meta.ingestion_run_assets WHERE asset_key = 'candles_daily' AND "
                                 "partition_key = ? AND scope_key = ? ORDER BY updated_at DESC LIMIT 1",
                                 [day, sym]).fetchone()
            finally:
                c.close()

        read_times.append(_timed(q))
    return {"append_ms": _median(times), "read_latest_ms": _median(read_times)}


def run(quick: bool = False) -> dict:
    n = 60 if quick else 400
    reads = 30 if quick else 200
    cells = _cells(n)
    out: dict[str, Any] = {"materializations": n, "each_with_one_check": True, "reads": reads}
    with tempfile.TemporaryDirectory(prefix="bench-dagster-") as d:
        tmp = Path(d)
        led = bench_ledger(tmp, cells, reads)
        try:
            dag = bench_dagster(tmp, cells, reads)
        except ImportError:
            dag = {"skipped": 'dagster is not installed: pip install "options-helper[orchestrator]"'}
        orig = bench_original(tmp, cells, reads)
    out["ledger_per_commit"] = led
    out["duckdb_floor_same_statements"] = {"append_ms": led["floor_append_ms"], "append_p99_ms": led["floor_append_p99_ms"]}
    out["dagster_sqlite"] = dag
    out["original_pattern"] = orig

    def ratio(other: Any, base: float) -> Any:
        return round(other / base, 2) if isinstance(other, int | float) and base else None

    out["ratios_other_over_ledger"] = {
        "append_dagster": ratio(dag.get("append_ms"), led["append_ms"]),
        "append_original": ratio(orig["append_ms"], led["append_ms"]),
        "append_floor": ratio(led["floor_append_ms"], led["append_ms"]),
        "read_dagster": ratio(dag.get("read_latest_ms"), led["read_latest_ms"]),
        "read_original": ratio(orig["read_latest_ms"], led["read_latest_ms"]),
    }
    print(f"{'':28}{'append (ms, median)':>22}{'read latest (ms, median)':>28}")
    for name, fig in (("ledger (open per commit)", led), ("duckdb floor (same stmts)", out["duckdb_floor_same_statements"]),
                      ("dagster sqlite event log", dag), ("original (conn per write)", orig)):
        print(f"{name:28}{fig.get('append_ms', '-')!s:>22}{fig.get('read_latest_ms', '-')!s:>28}")
    print("ratios (other / ledger):", out["ratios_other_over_ledger"])
    return out


if __name__ == "__main__":
    run(quick=True)
