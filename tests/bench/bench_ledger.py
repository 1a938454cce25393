"""Benchmark: the ledger's write path, rebuild, and the original tool's pattern, on this machine.

Run with ``python -m tests.bench.bench_ledger`` (``--quick`` for a smoke run, ``--only rebuild`` for
one section). Prints a table and returns the figures from ``run()``. Targets (docs/performance.md):
one CLI run's commits no slower than 1.25x the baseline commit's (p50 and p99); rebuild of
1,000,000 events < 5 s. Batched append is reported.

(a) batches of ~500 realistic events (runs of started, 5 materializations, their 5 checks, succeeded)
    into a file opened per batch (the only way the ledger appends);
(b) one run as the CLI records it (``Ledger.run``: a commit to start, one to complete with
    materializations, checks and success), opening the file per commit: p50/p99 per run. In the
    same run, side by side: the baseline commit (``BASELINE``, checked out with ``git worktree``
    into a temporary directory, the same loop in a subprocess, rounds interleaved with this
    code's), and the bare DuckDB floor: the very statements this code issued for each run (recorded),
    replayed on an identical copy of the file, opened per commit the same way, without the
    ledger's Python;
(c) ``rebuild()`` of every projection from 1,000,000 events (the file is built with big batches,
    opened per batch);
(d) the original's pattern on the same events: a new ``duckdb.connect`` and one transaction per
    ledger write, INSERT/UPDATE on four plain tables shaped like the original's;
(e) ``options-helper --help``, median of 10;
(f) a 500-symbol stage's final commit (``run.complete`` with 500 materializations and their 3,000 checks),
    file opened per commit: CPU time per commit and events per CPU second (issue 17's ledger share).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

import ledger
from ledger.duckdb_store import DuckDBEventStore
from ledger.events import (
    AssetMaterialized,
    CheckEvaluated,
    ChecksEvaluated,
    Event,
    RunStarted,
    RunSucceeded,
    check_evaluations,
)
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
    path = tmp / "batched.duckdb"
    store = DuckDBEventStore(path, clock=FixedClock())
    batches = _batches(n_events, prefix="batched-")
    t = time.perf_counter()
    for b in batches:
        store.append(b)
    return {"open_per_batch": _size(batches) / (time.perf_counter() - t), "batch_size": len(batches[0])}


# -- (b) one run per CLI invocation -------------------------------------------------------------
BASELINE = "0068a23"  # main before the ledger became one SQL definition (issue 13)

# The loop both codes run, in a subprocess each: prints the seconds of each run as JSON.
_LATENCY_LOOP = """
import json, sys, time
from pathlib import Path
import ledger
from tests.ledger.helpers import realistic_run
led = ledger.open(Path(sys.argv[1]))
times = []
cpu = time.process_time()
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    with led.run("ingest_candles", triggered_by="cli", scope_keys=["AAPL"]) as run:
        run.complete(realistic_run(run.run_id)[1:-1])  # the materializations and checks, bound to this run
    times.append(time.perf_counter() - t)
print(json.dumps([times, time.process_time() - cpu]))
"""


def _latency_subprocess(code_root: Path, path: Path, n_runs: int) -> tuple[list[float], float]:
    """Each run's wall seconds, and the CPU seconds of them all (steadier on a loaded machine)."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    out = subprocess.run([sys.executable, "-c", _LATENCY_LOOP, str(path), str(n_runs)], cwd=code_root, env=env,
                         check=True, capture_output=True, text=True)
    times, cpu = json.loads(out.stdout.strip().splitlines()[-1])
    return list(times), float(cpu)


def _percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {"p50_ms": 1000 * statistics.median(times),
            "p99_ms": 1000 * times[min(len(times) - 1, int(0.99 * len(times)))], "runs": len(times),
            "events_per_s": 12 * len(times) / sum(times)}


class _Recorder:
    """A connection that records what it is asked to run (statements with their parameters, Arrow
    inserts), commit by commit, for the floor to replay."""

    def __init__(self, con: duckdb.DuckDBPyConnection, ops: list[tuple[Any, ...]]) -> None:
        self._con, self._ops = con, ops

    def execute(self, sql: str, params: Any = None) -> Any:
        self._ops.append(("sql", sql, params))
        return self._con.execute(sql, params) if params is not None else self._con.execute(sql)

    def from_arrow(self, table: Any) -> Any:
        recorder = self

        class _Relation:
            def insert_into(self, name: str) -> None:
                recorder._ops.append(("arrow", table, name))
                recorder._con.from_arrow(table).insert_into(name)

        return _Relation()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _replay(path: Path, commits: list[list[tuple[Any, ...]]]) -> float:
    """Seconds to run the recorded commits on ``path``, each in a connection of its own."""
    from ledger.connection import connect

    t = time.perf_counter()
    for ops in commits:
        with connect(path, read_only=False) as con:
            for op in ops:
                if op[0] == "arrow":
                    con.from_arrow(op[1]).insert_into(op[2])
                elif op[2] is None:
                    con.execute(op[1])
                else:
                    con.execute(op[1], op[2])
    return time.perf_counter() - t


def bench_floor(tmp: Path, n_runs: int) -> dict[str, float]:
    """This code's CLI runs, recorded, and the same statements replayed on a twin file."""
    import ledger.duckdb_store as store_module
    from ledger.connection import connect

    path, twin = tmp / "floor-ledger.duckdb", tmp / "floor-twin.duckdb"
    led = ledger.open(path)
    shutil.copyfile(path, twin)  # the twins stay identical: the same statements on the same file
    commits: list[list[tuple[Any, ...]]] = []

    @contextlib.contextmanager
    def recording(*args: Any, **kwargs: Any) -> Iterator[Any]:
        with connect(*args, **kwargs) as con:
            commits.append([])
            yield _Recorder(con, commits[-1])

    ours, floor = [], []
    saved = store_module.connect
    try:
        for _ in range(n_runs):
            commits.clear()
            store_module.connect = recording  # type: ignore[assignment]
            t = time.perf_counter()
            with led.run("ingest_candles", triggered_by="cli", scope_keys=["AAPL"]) as run:
                run.complete(realistic_run(run.run_id)[1:-1])
            ours.append(time.perf_counter() - t)
            store_module.connect = saved  # type: ignore[assignment]
            floor.append(_replay(twin, [ops for ops in commits if any(op[0] == "arrow" for op in ops)]))
    finally:
        store_module.connect = saved  # type: ignore[assignment]
    return {"ledger": _percentiles(ours), "floor": _percentiles(floor)}


def bench_run_latency(tmp: Path, n_runs: int, rounds: int = 4) -> dict[str, Any]:
    """This code's and the baseline's CLI runs, in interleaved rounds, and the bare DuckDB floor."""
    per_round = max(1, n_runs // rounds)
    new_times: list[float] = []
    old_times: list[float] = []
    cpu = {"new": 0.0, "old": 0.0}
    old_root = tmp / "baseline-src"
    have_old = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old_root), BASELINE],
                              capture_output=True).returncode == 0
    try:
        for _ in range(rounds):
            times, seconds = _latency_subprocess(ROOT, tmp / "latency-new.duckdb", per_round)
            new_times, cpu["new"] = new_times + times, cpu["new"] + seconds
            if have_old:
                times, seconds = _latency_subprocess(old_root, tmp / "latency-old.duckdb", per_round)
                old_times, cpu["old"] = old_times + times, cpu["old"] + seconds
    finally:
        if have_old:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_root)],
                           capture_output=True)
    out: dict[str, Any] = {**_percentiles(new_times), "baseline_commit": BASELINE,
                           "cpu_ms_per_run": 1000 * cpu["new"] / len(new_times)}
    if old_times:
        old = {**_percentiles(old_times), "cpu_ms_per_run": 1000 * cpu["old"] / len(old_times)}
        out["baseline"] = old
        out["ratio_cpu"] = out["cpu_ms_per_run"] / old["cpu_ms_per_run"]
        out["ratio_p50"] = out["p50_ms"] / old["p50_ms"]
        out["ratio_p99"] = out["p99_ms"] / old["p99_ms"]
    out["floor"] = bench_floor(tmp, n_runs)
    return out


# -- (c) rebuild --------------------------------------------------------------------------------
def bench_rebuild(tmp: Path, n_events: int) -> dict[str, float]:
    path = tmp / "rebuild.duckdb"
    clock = FixedClock()
    store = DuckDBEventStore(path, clock=clock, auto_reap=False)
    t = time.perf_counter()
    for b in _batches(n_events, per_batch=60_000):
        store.append(b)  # the file opened per batch
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
    if isinstance(e, CheckEvaluated | ChecksEvaluated):  # a row per check
        return [("INSERT INTO meta.asset_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [c.event_id, c.asset_key, c.scope_key, c.check_name, c.severity, c.status, now,
                  json.dumps(c.metrics), c.message, c.run_id]) for c in check_evaluations(e)]
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


# -- (f) a 500-symbol stage's final commit ----------------------------------------------------------
def bench_stage_commit(tmp: Path, symbols: int, repeats: int) -> dict[str, Any]:
    """What the daily's ledger costs per stage at S&P-500 scale (issue 17): ``run.complete`` with a
    materialization and its six checks (one event) per symbol (``symbols * 2 + 1`` events), the file opened for the
    commit as always. CPU time (process time, all threads) is the figure: it does not count the time
    other processes of a shared machine take."""
    led = ledger.open(tmp / "stage_commit.duckdb")
    cpu, wall = [], []
    for i in range(repeats + 1):  # the first warms the process up
        day = (dt.date(2026, 1, 5) + dt.timedelta(days=i)).isoformat()
        run = led.run("compute_flow", partition_key=day, scope_keys=[f"S{k}" for k in range(symbols)])
        run.__enter__()
        events: list[Event] = []
        for k in range(symbols):
            m = run.materialized("options_flow", day, f"S{k}", rows=6000, code_version="1",
                                 max_data_time=f"{day}T21:00:00+00:00", extra={"from_date": day, "gap_sessions": 1})
            events.append(m)
            events.append(run.checks("options_flow", day, f"S{k}", [
                {"check_name": f"c{c}", "severity": "warn", "status": "pass",
                 "metrics": {"rows_checked": 6000, "sample": [1, 2]}, "message": "fine"} for c in range(6)],
                materialization_id=m.event_id))
        c0, w0 = time.process_time(), time.perf_counter()
        run.complete(events)
        if i:
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    n = len(events) + 1  # and the run's success
    return {"events": n, "repeats": repeats, "cpu_ms_median": 1000 * statistics.median(cpu),
            "cpu_ms_min": 1000 * min(cpu), "events_per_cpu_s": n / statistics.median(cpu),
            "wall_ms_median": 1000 * statistics.median(wall)}


SECTIONS = ("batched", "run_latency", "rebuild", "original", "help", "stage_commit")


def run(quick: bool = False, only: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    sizes = (dict(batched=5_000, runs=10, rebuild=50_000, original=120, symbols=50, stage_commits=2) if quick
             else dict(batched=50_000, runs=100, rebuild=1_000_000, original=600, symbols=500, stage_commits=9))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    benches = {
        "batched": lambda: bench_batched(tmp, sizes["batched"]),
        "run_latency": lambda: bench_run_latency(tmp, sizes["runs"]),
        "rebuild": lambda: bench_rebuild(tmp, sizes["rebuild"]),
        "original": lambda: bench_original(tmp, sizes["original"]),
        "help": bench_help,
        "stage_commit": lambda: bench_stage_commit(tmp, sizes["symbols"], sizes["stage_commits"]),
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
        rows += [("(a) batched append, open per batch", f"{b['open_per_batch']:,.0f} events/s", "reported")]
    if "run_latency" in r:
        lat = r["run_latency"]
        base = lat.get("baseline")
        floor = lat["floor"]
        for q in ("p50", "p99"):
            rows.append((f"(b) one CLI run (2 commits, 12 events) {q}", f"{lat[f'{q}_ms']:.1f} ms",
                         f"<= 1.25x baseline ({lat[f'ratio_{q}']:.2f}x)" if base else "baseline not run"))
            if base:
                rows.append((f"(b) baseline {lat['baseline_commit']} {q}", f"{base[f'{q}_ms']:.1f} ms", ""))
            rows += [(f"(b) recorded run, ledger {q}", f"{floor['ledger'][f'{q}_ms']:.1f} ms", ""),
                     (f"(b) bare DuckDB floor, same statements {q}", f"{floor['floor'][f'{q}_ms']:.1f} ms", "")]
        rows.append(("(b) CPU per run (process time)", f"{lat['cpu_ms_per_run']:.1f} ms",
                     f"baseline {base['cpu_ms_per_run']:.1f} ms ({lat['ratio_cpu']:.2f}x)" if base else ""))
    if "rebuild" in r:
        reb = r["rebuild"]
        rows += [(f"(c) rebuild of {reb['events']:,} events", f"{reb['rebuild_s']:.2f} s",
                  "< 5 s" if reb["events"] >= 1e6 else ""),
                 ("(c) rebuild, CPU time of this process", f"{reb['rebuild_cpu_s']:.2f} s", ""),
                 ("(c) building that file (60k batches, opened per batch)", f"{reb['build_s']:.1f} s", "")]
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
    if "stage_commit" in r:
        sc = r["stage_commit"]
        rows.append((f"(f) a stage's final commit ({sc['events']:,} events), CPU median of {sc['repeats']}",
                     f"{sc['cpu_ms_median']:.0f} ms", f"{sc['events_per_cpu_s']:,.0f} events/CPU-s, "
                     f"wall {sc['wall_ms_median']:.0f} ms"))
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
