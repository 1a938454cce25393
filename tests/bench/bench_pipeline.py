"""Benchmark: ``daily`` for 50 symbols on the synthetic provider (full chains), into a fresh
DuckDB file and data root.

Run with ``python -m tests.bench.bench_pipeline [--quick] [--profile]``. Two consecutive sessions
are run: the first backfills 90 sessions of candles per symbol and has no flow (no previous
snapshot); the second is the steady state a scheduled daily run sees. Reported per stage: wall
seconds, seconds inside ledger commits (run start, heartbeats and the final transaction, which
includes writing the data rows) and, of those, seconds writing data rows.

The ledger share of the steady state is measured against a baseline run in the same process: the
file as it stood before the steady-state daily is copied aside, every data writer the daily's
commits ran is replayed on a copy of it (three times, on fresh copies; the median per commit), each
in a transaction of its own (attach, BEGIN, the data rows,
COMMIT, detach: what storing the same rows costs with no ledger), and

    ledger share = (seconds in ledger commits - seconds of that data-only baseline) / daily seconds

i.e. the cost of recording (events, projections, run bookkeeping), not of storing the data. Also
reported: the share that counts everything but the data statements as ledger (the data's share of
COMMIT and of the checkpoint included: an upper bound) and the share with the data rows too.
Targets: the steady-state daily under 6 s on a 2-core machine (both cores: ``Settings.workers``);
ledger share under 5 %. ``--symbols 500``: see ``bench_scale``.

What any implementation must pay is reported beside it, the storage floor: the same commits
replayed the same way with the ledger's rows too (the events each appended and the final
projection rows of the keys they touch, read beforehand), written with the cheapest statements
(per table, one INSERT of the new rows and one UPDATE of the stored ones; no folding, no Python
per event):

    storage floor share = (seconds of that replay - seconds of the data-only baseline) / daily seconds

The steady state also reports its DuckDB connections and each ledger commit split into parts
(attaching the file, the statements, of which the data rows, COMMIT, detaching the file), with
the baseline's seconds for the same commit; with ``--profile`` a cProfile listing.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# 50 liquid optionable names: the default watchlist first.
SYMBOLS = (
    "SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL",
    "GOOG", "AMD", "NFLX", "AVGO", "JPM", "BAC", "XOM", "CVX", "WMT", "COST",
    "DIA", "XLF", "XLE", "XLK", "GLD", "SLV", "TLT", "HYG", "EEM", "EFA",
    "BA", "DIS", "INTC", "CSCO", "ORCL", "CRM", "ADBE", "PYPL", "UBER", "SHOP",
    "PFE", "MRK", "JNJ", "UNH", "KO", "PEP", "NKE", "MCD", "V", "MA",
)
SESSIONS = (dt.date(2026, 11, 19), dt.date(2026, 11, 20))


def universe(n: int) -> tuple[str, ...]:
    """``n`` tickers: the 50 above, then made-up three-letter ones (the synthetic market lists any)."""
    import itertools
    import string

    made_up = ("".join(t) for t in itertools.product(string.ascii_uppercase, repeat=3))
    return (*SYMBOLS, *(t for t in made_up if t not in SYMBOLS))[:n]


NOW = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
TARGET_SECONDS = 6.0
TARGET_LEDGER_SHARE = 0.05


def _stage_rows(day: Any) -> list[dict[str, Any]]:
    return [{
        "job": r.job,
        "status": r.status,
        "seconds": round(r.seconds, 3),
        "cpu_seconds": round(r.cpu_seconds, 3),
        "ledger_commit_seconds": round(r.ledger_seconds, 3),
        "data_write_seconds": round(r.data_write_seconds, 3),
        "ledger_cpu_seconds": round(r.ledger_cpu_seconds, 3),
        "data_write_cpu_seconds": round(r.data_write_cpu_seconds, 3),
        "rows": sum(o.rows for o in r.outcomes),
    } for r in day.results]


def _summary(day: Any) -> dict[str, Any]:
    total = day.seconds
    commit = sum(r.ledger_seconds for r in day.results)
    data = sum(r.data_write_seconds for r in day.results)
    cpu = sum(r.cpu_seconds for r in day.results)
    ledger_cpu = sum(r.ledger_cpu_seconds for r in day.results)
    data_cpu = sum(r.data_write_cpu_seconds for r in day.results)
    return {
        "as_of": day.as_of.isoformat(),
        "status": day.status,
        "seconds": round(total, 3),
        "cpu_seconds": round(cpu, 3),
        "ledger_cpu_seconds": round(ledger_cpu, 3),
        "data_write_cpu_seconds": round(data_cpu, 3),
        "ledger_cpu_share": round((ledger_cpu - data_cpu) / cpu, 4) if cpu else None,
        "ledger_commit_seconds": round(commit, 3),
        "data_write_seconds": round(data, 3),
        "ledger_share_upper_bound": round((commit - data) / total, 4) if total else None,
        "ledger_share_incl_data_rows": round(commit / total, 4) if total else None,
        "stages": _stage_rows(day),
    }


@contextlib.contextmanager
def _counting_connections(seen: list[bool]) -> Iterator[None]:
    """Record each opening of the file (True: read-only) while the block runs."""
    from ledger import connection

    def observe(what: str, read_only: bool, _seconds: float) -> None:
        if what == "attach":
            seen.append(read_only)

    connection.OBSERVERS.append(observe)
    try:
        yield
    finally:
        connection.OBSERVERS.remove(observe)


@contextlib.contextmanager
def _commit_parts(parts: list[dict[str, float]], writers: list[Any], spool: Path, kept: Path) -> Iterator[None]:
    """Split each ledger append (one read-write commit) into: opening the file, the statements
    (events, projections; ``data``: of which the stage's data rows), COMMIT (the residual: the
    WAL write, and DuckDB's automatic checkpoint when the WAL grew past its threshold) and
    closing the file (DuckDB checkpoints a written file when it is detached). The spooled rows a
    commit reads (``spool``, removed after it) are linked into ``kept`` first, for the replay."""
    from ledger import connection
    from ledger.duckdb_store import DuckDBEventStore

    real_append, real_in = DuckDBEventStore.append, DuckDBEventStore._append_in
    current: list[dict[str, float]] = []

    def observe(what: str, read_only: bool, seconds: float) -> None:
        if current and not read_only:
            key = "open" if what == "attach" else "close"
            current[-1][key] = current[-1].get(key, 0.0) + seconds

    def append(self: Any, *args: Any, **kwargs: Any) -> Any:
        part: dict[str, Any] = {}
        current.append(part)
        writers.append(kwargs.get("data_writer"))  # replayed for the data-only baseline
        if spool.is_dir():  # hard links: ~20 us a file, inside the runner's commit clock
            shutil.copytree(spool, kept, copy_function=os.link, dirs_exist_ok=True)
        t0 = time.perf_counter()
        stored: list[Any] = []
        try:
            stored = real_append(self, *args, **kwargs)
            return stored
        finally:
            current.pop()
            part["seqs"] = (stored[0].seq, stored[-1].seq) if stored else (0, -1)
            part["total"] = time.perf_counter() - t0
            part["commit"] = part["total"] - sum(part.get(k, 0.0) for k in ("open", "statements", "close"))
            parts.append(part)

    def append_in(self: Any, con: Any, batch: Any, expected: Any, data_writer: Any, **kwargs: Any) -> Any:
        part = current[-1] if current else {}
        writer = data_writer
        if data_writer is not None:
            def writer(c: Any) -> None:
                t1 = time.perf_counter()
                try:
                    data_writer(c)
                finally:
                    part["data"] = part.get("data", 0.0) + time.perf_counter() - t1
        t0 = time.perf_counter()
        try:
            return real_in(self, con, batch, expected, writer, **kwargs)
        finally:
            part["statements"] = part.get("statements", 0.0) + time.perf_counter() - t0

    DuckDBEventStore.append, DuckDBEventStore._append_in = append, append_in  # type: ignore[method-assign,assignment]
    connection.OBSERVERS.append(observe)
    try:
        yield
    finally:
        connection.OBSERVERS.remove(observe)
        DuckDBEventStore.append, DuckDBEventStore._append_in = real_append, real_in  # type: ignore[method-assign]


_PARTS = ("open", "statements", "data", "commit", "close")


BASELINE_REPEATS = 3


def _data_only_baseline(before: Path, writers: list[Any]) -> list[float]:
    """Seconds to store each commit's data rows with no ledger, the median of BASELINE_REPEATS
    replays, each on a fresh copy of ``before`` (the file as it stood before the daily): the same
    data writers in order, each in a transaction of its own, committed and detached like a ledger
    commit. Commits that wrote no data rows cost 0 here. The copies lack the ledger rows the daily
    added, so their checkpoints are, if anything, cheaper: the share errs high."""
    runs = []
    for i in range(BASELINE_REPEATS):
        copy = before.with_name(f"{before.stem}-{i}.duckdb")
        shutil.copyfile(before, copy)
        runs.append(_replay_data_writers(copy, writers))
        copy.unlink()
    return [statistics.median(r[k] for r in runs) for k in range(len(writers))]


def _warm(path: Path) -> None:
    """Open a fresh copy once and commit a change that changes nothing: its first opening and its
    first checkpoint cost more than later ones (~25 ms), which the daily, on a file in use, never pays."""
    from ledger.connection import connect

    with connect(path, read_only=False) as con:
        con.execute("UPDATE meta.ledger_checkpoint SET last_seq = last_seq")


def _replay_data_writers(path: Path, writers: list[Any]) -> list[float]:
    from ledger.connection import connect

    _warm(path)
    seconds = []
    for writer in writers:
        if writer is None:
            seconds.append(0.0)
            continue
        t0 = time.perf_counter()
        with connect(path, read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            writer(con)
            con.execute("COMMIT")
        seconds.append(time.perf_counter() - t0)
    return seconds


def _storage_floor(before: Path, after: Path, writers: list[Any], parts: list[dict[str, Any]]) -> list[float]:
    """Seconds of each commit replayed with the cheapest writes of the very rows it stored: the
    median of BASELINE_REPEATS replays on fresh copies of ``before``, each commit attach, BEGIN, its
    data writer, then the events it appended and the final projection rows of every key its events
    touch (read from ``after``, the file after the daily, into memory beforehand): a plain
    ``INSERT`` of the rows whose key is not stored yet and an ``UPDATE`` in place of the others,
    per table; COMMIT, detach. No payload parsing, no fold, no hashing, no Python per event: what
    DuckDB itself costs to store the ledger's rows. (The keys touched are a superset: a
    projection's own filter, such as a watermark's data time, is not applied.)"""
    rows = _split_by_presence(before, [_ledger_rows(after, part["seqs"]) for part in parts])
    runs = []
    for i in range(BASELINE_REPEATS):
        copy = before.with_name(f"{before.stem}-floor-{i}.duckdb")
        shutil.copyfile(before, copy)
        runs.append(_replay_floor(copy, writers, rows))
        copy.unlink()
    return [statistics.median(r[k] for r in runs) for k in range(len(writers))]


def _ledger_rows(path: Path, seqs: tuple[int, int]) -> dict[str, Any]:
    """The ledger's rows of the commit that appended the seqs ``seqs``, as Arrow tables by table:
    its events, the checkpoint row, and each projection's final rows for the keys its events touch."""
    from ledger.connection import connect
    from ledger.projections import FAMILIES, PROJECTIONS, Key

    first, last = seqs
    out: dict[str, Any] = {}
    with connect(path, read_only=True) as con:
        out["events"] = con.sql("SELECT * FROM meta.events WHERE seq BETWEEN ? AND ?",
                                params=[first, last]).to_arrow_table()
        out["ledger_checkpoint"] = con.sql("SELECT * FROM meta.ledger_checkpoint").to_arrow_table()
        for proj in PROJECTIONS:
            types = ("asset_materialized",) if proj.table == "asset_watermarks" else FAMILIES[proj.family]
            on = " AND ".join(f"t.{name} = e.{rule.expr}" for name, rule in proj.columns if isinstance(rule, Key))
            keys = ", ".join(rule.expr for _, rule in proj.columns if isinstance(rule, Key))
            listed = ", ".join(f"'{t}'" for t in types)
            out[proj.table] = con.sql(
                f"SELECT t.* FROM meta.{proj.table} t SEMI JOIN (SELECT DISTINCT {keys} FROM meta.events "
                f"WHERE seq BETWEEN ? AND ? AND event_type IN ({listed})) e ON {on}", params=[first, last],
            ).to_arrow_table()
    return out


def _split_by_presence(before: Path, commits: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
    """Each commit's writes as (statement, rows): an ``INSERT`` of the rows whose key is in neither
    ``before`` nor an earlier commit, an ``UPDATE`` of every other column of the others."""
    import pyarrow as pa

    from ledger.connection import connect
    from ledger.projections import PROJECTION_KEYS

    keys = {**PROJECTION_KEYS, "events": ("seq",), "ledger_checkpoint": ("name",)}
    with connect(before, read_only=True) as con:
        present = {table: set(con.execute(f"SELECT {', '.join(k)} FROM meta.{table}").fetchall())
                   for table, k in keys.items()}
    out = []
    for tables in commits:
        steps = []
        for table, arrow in tables.items():
            columns = [arrow.column(k).to_pylist() for k in keys[table]]
            stored = [tuple(values) in present[table] for values in zip(*columns, strict=True)]
            present[table].update(zip(*columns, strict=True))
            on = " AND ".join(f"t.{k} = r.{k}" for k in keys[table])
            update = ", ".join(f"{c} = r.{c}" for c in arrow.column_names if c not in keys[table])
            for sql, mask in ((f"INSERT INTO meta.{table} SELECT * FROM _floor_rows", [not s for s in stored]),
                              (f"UPDATE meta.{table} AS t SET {update} FROM _floor_rows r WHERE {on}", stored)):
                part = arrow.filter(pa.array(mask, pa.bool_()))
                if part.num_rows:
                    steps.append((sql, part))
        out.append(steps)
    return out


def _replay_floor(path: Path, writers: list[Any], rows: list[list[tuple[str, Any]]]) -> list[float]:
    from ledger.connection import connect

    _warm(path)
    seconds = []
    for writer, steps in zip(writers, rows, strict=True):
        t0 = time.perf_counter()
        with connect(path, read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            if writer is not None:
                writer(con)
            for sql, arrow in steps:
                con.register("_floor_rows", arrow)
                con.execute(sql)
                con.unregister("_floor_rows")
            con.execute("COMMIT")
        seconds.append(time.perf_counter() - t0)
    return seconds


def _parts_summary(parts: list[dict[str, float]]) -> dict[str, Any]:
    columns = ("total", *_PARTS, "baseline", "floor")
    total = {k: round(sum(p.get(k, 0.0) for p in parts), 3) for k in columns}
    return {"commits": len(parts), "seconds": total,
            "per_commit": [{k: round(p.get(k, 0.0), 4) for k in columns} for p in parts]}


def run(quick: bool = False, profile: bool = False, root: Path | None = None, symbols: int | None = None,
        workers: int = 0, probe_memory: bool = False) -> dict[str, Any]:
    """Run the benchmark and return its figures (``quick``: 8 symbols; ``symbols``: that many;
    ``workers``: Settings.workers, 0 = one per CPU; ``probe_memory``: also re-run the steady-state
    session in fresh processes, pooled and serial, for their peak memory)."""
    import stages
    from ledger.config import Settings
    from stages.providers.synthetic import SyntheticProvider

    names = universe(symbols) if symbols else SYMBOLS[:8] if quick else SYMBOLS
    base = Path(root) if root else Path(tempfile.mkdtemp(prefix="bench_pipeline_"))
    settings = Settings(duckdb_path=base / "warehouse" / "options.duckdb", data_root=base / "data",
                        watchlists={"default": names}, workers=workers)
    provider = SyntheticProvider(seed=settings.synthetic_seed, risk_free_rate=settings.risk_free_rate)
    days = []
    profiler = cProfile.Profile() if profile else None
    connections: list[bool] = []
    parts: list[dict[str, float]] = []
    writers: list[Any] = []
    baseline_path = base / "baseline.duckdb"
    from stages.jobs._files import SPOOL_DIR

    spool, kept = settings.data_root / SPOOL_DIR, base / "spool-kept"
    for i, session in enumerate(SESSIONS):
        last = i == len(SESSIONS) - 1
        if last:
            # Every use detaches (checkpoints) the file: it is whole, with no WAL beside it.
            assert not Path(f"{settings.duckdb_path}.wal").exists()
            shutil.copyfile(settings.duckdb_path, baseline_path)
        if profiler and last:
            profiler.enable()
        with _counting_connections(connections if last else []), \
                (_commit_parts(parts, writers, spool, kept) if last else contextlib.nullcontext()):
            days.append(stages.run_daily(as_of=session, settings=settings, provider=provider, now=NOW))
        if profiler and last:
            profiler.disable()
    if kept.is_dir():  # the spooled rows the daily's data writers read, back where they read them
        shutil.copytree(kept, spool, dirs_exist_ok=True)
    baseline = _data_only_baseline(baseline_path, writers)
    floor = _storage_floor(baseline_path, settings.duckdb_path, writers, parts)
    shutil.rmtree(spool, ignore_errors=True)
    shutil.rmtree(kept, ignore_errors=True)
    for part, seconds, floor_seconds in zip(parts, baseline, floor, strict=True):
        part["baseline"], part["floor"] = seconds, floor_seconds
    steady = _summary(days[-1])
    steady["duckdb_connections"] = {"read_write": connections.count(False), "read_only": connections.count(True)}
    steady["commit_parts"] = _parts_summary(parts)
    recording = sum(p["total"] for p in parts) - sum(baseline)
    steady["data_only_baseline_seconds"] = round(sum(baseline), 3)
    steady["ledger_recording_seconds"] = round(recording, 3)
    steady["ledger_share"] = round(recording / steady["seconds"], 4)
    storing = sum(floor) - sum(baseline)  # the ledger's rows alone, written the cheapest way
    steady["ledger_storage_floor_seconds"] = round(storing, 3)
    steady["ledger_storage_floor_share"] = round(storing / steady["seconds"], 4)
    out: dict[str, Any] = {
        "benchmark": "pipeline_daily",
        "symbols": len(names),
        "workers": workers or os.cpu_count(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "database": str(settings.duckdb_path),
        "first_session": _summary(days[0]),
        "steady_state": steady,
        "targets": {"seconds": TARGET_SECONDS, "ledger_share": TARGET_LEDGER_SHARE},
        "meets_targets": {"seconds": steady["seconds"] < TARGET_SECONDS,
                          "ledger_share": (steady["ledger_share"] or 0) < TARGET_LEDGER_SHARE},
    }
    if probe_memory:
        out["memory_probe"] = {f"workers_{w}": probe(base, SESSIONS[-1], len(names), w) for w in (workers, 1)}
    if profiler:
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(30)
        out["profile"] = buf.getvalue()
    return out


def probe(base: Path, session: dt.date, symbols: int, workers: int) -> dict[str, Any]:
    """Re-run the steady-state ``session`` (it replaces its own partitions) in a fresh process with
    ``workers``: wall and CPU seconds, peak resident memory of the runner and of its largest
    worker (getrusage; a worker's peak counts the pages it shares with the runner it forked from,
    so their sum is an upper bound of what both held at once), and the sampled peak of their PSS
    summed (what they held at once, shared pages counted once)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "tests.bench.bench_pipeline", "--probe", str(base), session.isoformat(),
           str(symbols), str(workers)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _probe_main(base: str, session: str, symbols: int, workers: int) -> int:
    import resource

    import stages
    from ledger.config import Settings

    settings = Settings(duckdb_path=Path(base) / "warehouse" / "options.duckdb", data_root=Path(base) / "data",
                        watchlists={"default": universe(symbols)}, workers=workers)
    sampler = _TreeMemory(os.getpid())
    sampler.start()
    t0, c0 = time.perf_counter(), os.times()
    day = stages.run_daily(as_of=dt.date.fromisoformat(session), settings=settings, now=NOW)
    c1 = os.times()
    sampler.stop()
    mib = 1024.0  # ru_maxrss and VmHWM are in KiB on Linux
    print(json.dumps({
        "status": day.status, "workers": workers or os.cpu_count(), "seconds": round(time.perf_counter() - t0, 3),
        "cpu_seconds": round(sum(c1[:4]) - sum(c0[:4]), 3),
        "runner_peak_rss_mib": round(_own_peak_rss_kib() / mib, 1),
        "worker_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / mib, 1),
        "tree_peak_pss_mib": round(sampler.peak_kib / mib, 1),
        "stage_seconds": {r.job: round(r.seconds, 2) for r in day.results},
    }))
    return 0


def _own_peak_rss_kib() -> int:
    """This process's peak RSS since it started: VmHWM, the high-water mark of its own address space.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: the probe is started with subprocess (vfork, then
    exec), and Linux carries the parent's high-water mark into the child's ``ru_maxrss`` at exec,
    so the probe reported the bench process's own peak (1,335 MiB in a make bench run, pooled and
    serial alike) instead of the daily's. ``ru_maxrss`` where /proc is absent."""
    import resource

    return _proc_kib("/proc/self/status", "VmHWM") or int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


class _TreeMemory:
    """Samples, every 0.2 s, the proportional set size (PSS: shared pages split among the
    processes sharing them) of a process and its children, and keeps the largest sum: the
    memory the daily and its workers held at once (Linux ``/proc``; 0 elsewhere)."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid, self.peak_kib = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self.peak_kib = max(self.peak_kib, sum(_pss_kib(p) for p in (self.pid, *_children(self.pid))))


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
            out += [int(c) for c in fh.read().split()]
    return out


def _pss_kib(pid: int) -> int:
    return _proc_kib(f"/proc/{pid}/smaps_rollup", "Pss")


def _proc_kib(path: str, field: str) -> int:
    """The kiB of ``field`` in a /proc file (``Name:   123 kB`` lines); 0 if absent or unreadable."""
    with contextlib.suppress(OSError), open(path) as fh:
        for line in fh:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _print(doc: dict[str, Any]) -> None:
    print(f"pipeline daily: {doc['symbols']} symbols, {doc['cpus']} CPUs, load {doc['load_average_1m']}")
    for key in ("first_session", "steady_state"):
        s = doc[key]
        print(f"\n{key} {s['as_of']}: {s['status']} in {s['seconds']:.1f} s ({s['cpu_seconds']:.1f} s CPU); ledger commits {s['ledger_commit_seconds']:.2f} s "
              f"(data statements {s['data_write_seconds']:.2f} s)")
        if "ledger_share" in s:
            print(f"  ledger share {s['ledger_share']:.1%}: commits {s['ledger_commit_seconds']:.2f} s - data-only baseline "
                  f"{s['data_only_baseline_seconds']:.2f} s = {s['ledger_recording_seconds']:.2f} s recording")
        if "ledger_storage_floor_share" in s:
            print(f"  storage floor {s['ledger_storage_floor_share']:.1%}: the same ledger rows written with the cheapest "
                  f"statements cost {s['ledger_storage_floor_seconds']:.2f} s over the data-only baseline")
        print(f"  upper bound (all but the data statements counted as ledger) {s['ledger_share_upper_bound']:.1%}; "
              f"with the data statements {s['ledger_share_incl_data_rows']:.1%}; by CPU time {s['ledger_cpu_share']:.1%}")
        if "duckdb_connections" in s:
            c = s["duckdb_connections"]
            print(f"  DuckDB connections: {c['read_write']} read-write, {c['read_only']} read-only")
        if "commit_parts" in s:
            cp = s["commit_parts"]
            print(f"  ledger commits: {cp['commits']}, seconds by part (statements include the data rows; "
                  "baseline: the same data rows stored with no ledger; floor: the data rows and the ledger's rows "
                  "stored with the cheapest statements):")
            columns = ("total", *_PARTS, "baseline", "floor")
            print("  " + "".join(f"{k:>12}" for k in columns))
            print("  " + "".join(f"{cp['seconds'][k]:>12.3f}" for k in columns))
            for p in cp["per_commit"]:
                print("  " + "".join(f"{p[k]:>12.3f}" for k in columns))
        print(f"  {'stage':<22}{'seconds':>9}{'cpu s':>8}{'commit s':>10}{'data s':>8}{'rows':>10}")
        for r in s["stages"]:
            print(f"  {r['job']:<22}{r['seconds']:>9.2f}{r['cpu_seconds']:>8.2f}{r['ledger_commit_seconds']:>10.2f}"
                  f"{r['data_write_seconds']:>8.2f}{r['rows']:>10}")
    for m in doc.get("memory_probe", {}).values():
        print(f"fresh process, {m['workers']} worker(s): {m['seconds']:.1f} s wall, {m['cpu_seconds']:.1f} s CPU, "
              f"peak RSS runner {m['runner_peak_rss_mib']:.0f} MiB, largest worker {m['worker_peak_rss_mib']:.0f} MiB, "
              f"peak PSS of runner and workers together {m['tree_peak_pss_mib']:.0f} MiB")
    print(f"\nmeets targets: {doc['meets_targets']}")
    if "profile" in doc:
        print(doc["profile"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.bench_pipeline", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="8 symbols instead of 50")
    p.add_argument("--profile", action="store_true", help="cProfile the steady-state session")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--symbols", type=int, default=None, help="this many symbols (default 50; 8 with --quick)")
    p.add_argument("--workers", type=int, default=0, help="worker processes (0: one per CPU; 1: serial)")
    p.add_argument("--memory", action="store_true", help="also re-run the steady state in fresh processes for peak RSS")
    p.add_argument("--probe", nargs=4, metavar=("ROOT", "SESSION", "SYMBOLS", "WORKERS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        root, session, n, workers = args.probe
        return _probe_main(root, session, int(n), int(workers))
    doc = run(quick=args.quick, profile=args.profile, symbols=args.symbols, workers=args.workers,
              probe_memory=args.memory)
    if args.json:
        print(json.dumps({k: v for k, v in doc.items() if k != "profile"}, indent=2))
    else:
        _print(doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
