"""Benchmark: the ledger's write path, rebuild, and the original tool's pattern, on this machine.

Run with ``python -m tests.bench.bench_ledger`` (``--quick`` for a smoke run, ``--only rebuild`` for
one section). Prints a table and returns the figures from ``run()``. Targets (docs/performance.md):
batched append with every projection maintained >= 20,000 events/s; rebuild of 1,000,000 events
< 5 s.

(a) batches of ~500 realistic events (runs of started, 5 materializations, 5 checks, succeeded)
    into a file, holding one connection (``session()``) and opening the file per batch;
(b) one run as the CLI records it (``Ledger.run``: a commit to start, one to complete with
    materializations, checks and success), opening the file per commit: p50/p99 per run;
(c) ``rebuild()`` of every projection from 1,000,000 events (the file is built with big batches);
(d) the original's pattern on the same events: a new ``duckdb.connect`` and one transaction per
    ledger write, INSERT/UPDATE on four plain tables shaped like the original's;
(e) ``options-helper --help``, median of 10.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

import ledger
from ledger.duckdb_store import DuckDBEventStore
from ledger.events import AssetMaterialized, CheckEvaluated, Event, RunStarted, RunSucceeded
from tests.ledger.helpers import FixedClock, realistic_run

ROOT = Path(__file__).resolve().parents[2]


def _batches(n_events: int, per_batch: int = 500, prefix: str = "r") -> list[list[Event]]:
    runs_per_batch = max(1, per_batch // 12)
    batches, n = [], 0
    while n < n_events:
        batch: list[Event] = []
        for _ in range(runs_per_batch):
            i = n // 12
            batch += realistic_run(f"{prefix}{i}", partition_key=("2025-03-03", "2025-03-04", "2025-03-05")[i % 3])
            n += 12
        batches.append(batch)
    return batches


def _size(batches: list[list[Event]]) -> int:
    return sum(len(b) for b in batches)


# -- (a) batched append -------------------------------------------------------------------------
def bench_batched(tmp: Path, n_events: int) -> dict[str, float]:
    out = {}
    for mode in ("session", "open_per_batch"):
        path = tmp / f"batched_{mode}.duckdb"
        store = DuckDBEventStore(path, clock=FixedClock())
        batches = _batches(n_events, prefix=f"{mode}-")
        t = time.perf_counter()
        if mode == "session":
            with store.session():
                for b in batches:
                    store.append(b)
        else:
            for b in batches:
                store.append(b)
        out[mode] = _size(batches) / (time.perf_counter() - t)
    out["batch_size"] = len(_batches(500)[0])
    return out


# -- (b) one run per CLI invocation -------------------------------------------------------------
def bench_run_latency(tmp: Path, n_runs: int) -> dict[str, float]:
    led = ledger.open(tmp / "latency.duckdb")
    times = []
    for _i in range(n_runs):
        t = time.perf_counter()
        with led.run("ingest_candles", triggered_by="cli", scope_keys=["AAPL"]) as run:
            body = realistic_run(run.run_id)[1:-1]  # the materializations and checks, bound to this run
            run.complete(body)
        times.append(time.perf_counter() - t)
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times), "p99_ms": 1000 * times[min(len(times) - 1, int(0.99 * len(times)))],
            "runs": n_runs, "events_per_s": 12 * n_runs / sum(times)}


# -- (c) rebuild --------------------------------------------------------------------------------
def bench_rebuild(tmp: Path, n_events: int) -> dict[str, float]:
    path = tmp / "rebuild.duckdb"
    clock = FixedClock()
    store = DuckDBEventStore(path, clock=clock, auto_reap=False)
    t = time.perf_counter()
    with store.session():
        for b in _batches(n_events, per_batch=60_000):
            store.append(b)
            clock.advance(1)
    build = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    n = store.rebuild()
    return {"events": n, "rebuild_s": time.perf_counter() - t, "rebuild_cpu_s": time.process_time() - cpu,
            "build_s": build}


# -- (d) the original's pattern -----------------------------------------------------------------
ORIGINAL_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.ingestion_runs (run_id VARCHAR PRIMARY KEY, parent_run_id VARCHAR,
  job_name VARCHAR NOT NULL, triggered_by VARCHAR NOT NULL, status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL,
  ended_at TIMESTAMP, duration_ms BIGINT, provider VARCHAR, storage_backend VARCHAR, args_json JSON, git_sha VARCHAR,
  app_version VARCHAR, error_type VARCHAR, error_message VARCHAR, error_stack_hash VARCHAR);
CREATE TABLE IF NOT EXISTS meta.ingestion_run_assets (run_id VARCHAR, asset_key VARCHAR, asset_kind VARCHAR,
  partition_key VARCHAR DEFAULT 'ALL', status VARCHAR, rows_inserted BIGINT, rows_updated BIGINT, rows_deleted BIGINT,
  bytes_written BIGINT, min_event_ts TIMESTAMP, max_event_ts TIMESTAMP, extra_json JSON, started_at TIMESTAMP,
  ended_at TIMESTAMP, duration_ms BIGINT, PRIMARY KEY (run_id, asset_key, partition_key));
CREATE TABLE IF NOT EXISTS meta.asset_watermarks (asset_key VARCHAR, scope_key VARCHAR, watermark_ts TIMESTAMP,
  updated_at TIMESTAMP, last_run_id VARCHAR, PRIMARY KEY (asset_key, scope_key));
CREATE TABLE IF NOT EXISTS meta.asset_checks (check_id VARCHAR PRIMARY KEY, asset_key VARCHAR NOT NULL,
  partition_key VARCHAR, check_name VARCHAR NOT NULL, severity VARCHAR NOT NULL, status VARCHAR NOT NULL,
  checked_at TIMESTAMP NOT NULL, metrics_json JSON, message VARCHAR, run_id VARCHAR);
"""


def _original_writes(e: Event, now: dt.datetime) -> list[tuple[str, list[Any]]]:
    """The statements the original issues for one ledger write (each in its own connection)."""
    if isinstance(e, RunStarted):
        return [("INSERT INTO meta.ingestion_runs (run_id, job_name, triggered_by, status, started_at, args_json) "
                 "VALUES (?, ?, ?, 'started', ?, ?)", [e.run_id, e.job_name, e.triggered_by, now, json.dumps(e.args)])]
    if isinstance(e, AssetMaterialized):
        return [
            ("INSERT INTO meta.ingestion_run_assets (run_id, asset_key, asset_kind, partition_key, status, rows_inserted, "
             "bytes_written, max_event_ts, extra_json) VALUES (?, ?, ?, ?, 'success', ?, ?, ?, ?) "
             "ON CONFLICT (run_id, asset_key, partition_key) DO UPDATE SET status = excluded.status, "
             "rows_inserted = excluded.rows_inserted, bytes_written = excluded.bytes_written, "
             "max_event_ts = excluded.max_event_ts, extra_json = excluded.extra_json",
             [e.run_id, e.asset_key, e.asset_kind, e.scope_key, e.rows, e.bytes, e.max_data_time[:10],
              json.dumps(e.extra)]),
            ("INSERT INTO meta.asset_watermarks VALUES (?, ?, ?, ?, ?) ON CONFLICT (asset_key, scope_key) DO UPDATE SET "
             "watermark_ts = greatest(watermark_ts, excluded.watermark_ts), updated_at = excluded.updated_at, "
             "last_run_id = excluded.last_run_id",
             [e.asset_key, e.scope_key, e.max_data_time[:10], now, e.run_id]),
        ]
    if isinstance(e, CheckEvaluated):
        return [("INSERT INTO meta.asset_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [e.event_id, e.asset_key, e.scope_key, e.check_name, e.severity, e.status, now,
                  json.dumps(e.metrics), e.message, e.run_id])]
    if isinstance(e, RunSucceeded):
        return [("UPDATE meta.ingestion_runs SET status = 'success', ended_at = ?, "
                 "duration_ms = date_diff('millisecond', started_at, ?) WHERE run_id = ?", [now, now, e.run_id])]
    return []


def bench_original(tmp: Path, n_events: int) -> dict[str, float]:
    path = str(tmp / "original.duckdb")
    con = duckdb.connect(path)
    con.execute(ORIGINAL_SCHEMA)
    con.close()
    events = [e for b in _batches(n_events, per_batch=12, prefix="orig-") for e in b]
    now = dt.datetime(2025, 3, 6, 21, 0)
    connects = 0
    t = time.perf_counter()
    for e in events:
        for sql, params in _original_writes(e, now):
            con = duckdb.connect(path)  # the original opens a connection per call
            con.execute("BEGIN TRANSACTION")
            con.execute(sql, params)
            con.execute("COMMIT")
            con.close()
            connects += 1
    elapsed = time.perf_counter() - t
    return {"events_per_s": len(events) / elapsed, "events": len(events), "connections": connects}


# -- (e) CLI start-up ---------------------------------------------------------------------------
def bench_help(repeats: int = 10) -> dict[str, Any]:
    exe = ROOT / ".venv" / "bin" / "options-helper"
    if not exe.exists():
        return {"skipped": f"{exe} does not exist yet"}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([str(exe), "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return {"median_ms": 1000 * statistics.median(times)}


SECTIONS = ("batched", "run_latency", "rebuild", "original", "help")


def run(quick: bool = False, only: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    sizes = (dict(batched=5_000, runs=10, rebuild=50_000, original=120) if quick
             else dict(batched=50_000, runs=100, rebuild=1_000_000, original=600))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    benches = {
        "batched": lambda: bench_batched(tmp, sizes["batched"]),
        "run_latency": lambda: bench_run_latency(tmp, sizes["runs"]),
        "rebuild": lambda: bench_rebuild(tmp, sizes["rebuild"]),
        "original": lambda: bench_original(tmp, sizes["original"]),
        "help": bench_help,
    }
    try:
        results: dict[str, Any] = {"quick": quick, "duckdb": duckdb.__version__}
        for name in SECTIONS:
            if name in only:
                results[name] = benches[name]()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "batched" in results and "original" in results:
        results["ratio_batched_vs_original"] = results["batched"]["open_per_batch"] / results["original"]["events_per_s"]
    if "run_latency" in results and "original" in results:
        results["ratio_cli_runs_vs_original"] = results["run_latency"]["events_per_s"] / results["original"]["events_per_s"]
    _print(results)
    return results


def _print(r: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str]] = []
    if "batched" in r:
        b = r["batched"]
        rows += [("(a) batched append, session()", f"{b['session']:,.0f} events/s", ">= 20,000"),
                 ("(a) batched append, open per batch", f"{b['open_per_batch']:,.0f} events/s", ">= 20,000")]
    if "run_latency" in r:
        lat = r["run_latency"]
        rows += [("(b) one CLI run (2 commits, 12 events) p50", f"{lat['p50_ms']:.1f} ms", ""),
                 ("(b) one CLI run p99", f"{lat['p99_ms']:.1f} ms", "")]
    if "rebuild" in r:
        reb = r["rebuild"]
        rows += [(f"(c) rebuild of {reb['events']:,} events", f"{reb['rebuild_s']:.2f} s",
                  "< 5 s" if reb["events"] >= 1e6 else ""),
                 ("(c) rebuild, CPU time of this process", f"{reb['rebuild_cpu_s']:.2f} s", ""),
                 ("(c) building that file (session, 60k batches)", f"{reb['build_s']:.1f} s", "")]
    if "original" in r:
        rows.append(("(d) original pattern (connect per write)", f"{r['original']['events_per_s']:,.1f} events/s", ""))
    if "ratio_batched_vs_original" in r:
        rows.append(("(d) ours/original, batched (open per batch)", f"{r['ratio_batched_vs_original']:,.0f}x", ""))
    if "ratio_cli_runs_vs_original" in r:
        rows.append(("(d) ours/original, one CLI run at a time", f"{r['ratio_cli_runs_vs_original']:,.1f}x", ""))
    if "help" in r:
        hlp = r["help"]
        rows.append(("(e) options-helper --help, median of 10",
                     f"{hlp['median_ms']:.0f} ms" if "median_ms" in hlp else f"skipped: {hlp['skipped']}", ""))
    width = max((len(name) for name, _, _ in rows), default=0)
    print(f"ledger benchmark (DuckDB {r['duckdb']}{', quick' if r['quick'] else ''})")
    print(f"{'figure':<{width}}  {'measured':>18}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>18}  {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run, of {','.join(SECTIONS)} (e.g. --only rebuild)")
    args = parser.parse_args()
    chosen = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    run(quick=args.quick, only=chosen)
    sys.exit(0)
