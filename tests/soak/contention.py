"""Contention: three writers and two readers on one file for a fixed time; zero failed operations.

Writers: a ``daily``, a ``backfill`` (the real pipeline once it lands, else the ledger-driven
stand-in) and a Python script appending small runs. Readers: ``health --json`` polling every
second, and the portal's queries (when the portal is installed). Every connection's lock wait is
recorded in the children (``on_wait``) and pooled here.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from tests.soak.common import Child, HarnessResult, parse_lines, pct


def run(*, seconds: float = 120.0, workdir: Path, use_pipeline: bool | None = None) -> HarnessResult:
    from tests.soak.children.pipeline_child import available

    res = HarnessResult("contention")
    t_start = time.monotonic()
    if use_pipeline is None:
        use_pipeline = available()
    db = workdir / "contention.duckdb"
    data_root = workdir / "contention-data"
    import ledger

    ledger.open(db)  # create and migrate before the race
    dur = ["--duration", str(seconds)]
    common = ["--db", str(db), "--data-root", str(data_root)]
    if use_pipeline:
        writers = {
            "daily": Child("tests.soak.children.pipeline_child", [*common, "--mode", "daily", *dur]),
            "backfill": Child("tests.soak.children.pipeline_child", [*common, "--mode", "backfill", *dur]),
        }
    else:
        writers = {
            "daily": Child("tests.soak.children.sim_writer", [*common, "--mode", "daily", "--symbols", "4", *dur]),
            "backfill": Child("tests.soak.children.sim_writer", [*common, "--mode", "backfill", "--symbols", "4",
                                                                 "--seed", "5", *dur]),
        }
    writers["python appender"] = Child("tests.soak.children.sim_writer",
                                       [*common, "--mode", "appender", "--pace", "0.3", "--seed", "9", *dur])
    readers = {"health poller": Child("tests.soak.children.reader", ["--db", str(db), "--mode", "health", *dur])}
    portal = importlib.util.find_spec("streamlit") is not None and importlib.util.find_spec("frontends.portal.queries")
    if portal:
        readers["portal queries"] = Child("tests.soak.children.reader", ["--db", str(db), "--mode", "portal", *dur])
    else:
        res.notes.append("portal not installed: its reader was not started")
    res.notes.append("writers: " + ("the real pipeline" if use_pipeline else
                                    "ledger-driven stand-ins for daily/backfill (pipeline not landed)"))
    all_waits: list[float] = []
    writer_waits: list[float] = []
    reader_waits: list[float] = []
    failed = 0
    rows = {}
    for name, child in {**writers, **readers}.items():
        try:
            rc = child.wait(timeout=seconds + 180)
        except Exception:
            child.kill()
            rc = child.wait()
            res.violations.append(f"{name}: did not finish within {seconds + 180:.0f} s")
        lines = parse_lines(child.drain())
        stats = next((b for t, b in lines if t == "STATS"), None)
        errs = [b for t, b in lines if t == "ERR"]
        if stats is None:
            res.violations.append(f"{name}: exited {rc} without stats: " + " | ".join(child.stderr_tail[-3:]))
            continue
        failed += int(stats.get("failed", 0))
        for e in errs[:3]:
            res.violations.append(f"{name}: failed operation: {e}")
        waits = stats["waits"]
        all_waits += waits
        (reader_waits if name in readers else writer_waits).extend(waits)
        ops = stats.get("commits") if name in writers else stats.get("ops")
        rows[name] = (f"{ops} {'commits' if name in writers else 'polls'}, {stats.get('failed', 0)} failed, "
                      f"lock wait p50 {pct(waits, 50) * 1000:.0f} ms / p99 {pct(waits, 99) * 1000:.0f} ms / "
                      f"max {max(waits or [0]) * 1000:.0f} ms")
    if failed:
        res.violations.append(f"{failed} failed operation(s)")
    from ledger.verify import verify_file

    report = verify_file(str(db))
    if not report.ok:
        res.violations += [f"db verify: {p}" for p in report.problems]
    res.figures = {
        "duration": f"{seconds:.0f} s, {len(writers)} writers + {len(readers)} readers",
        **rows,
        "failed operations": failed,
        "lock wait, writers": f"p50 {pct(writer_waits, 50) * 1000:.0f} ms, p99 {pct(writer_waits, 99) * 1000:.0f} ms (n={len(writer_waits)})",
        "lock wait, readers": f"p50 {pct(reader_waits, 50) * 1000:.0f} ms, p99 {pct(reader_waits, 99) * 1000:.0f} ms (n={len(reader_waits)})",
        "lock wait, all": f"p50 {pct(all_waits, 50) * 1000:.0f} ms, p99 {pct(all_waits, 99) * 1000:.0f} ms",
        "events committed": report.last_seq,
        "db verify": "ok" if report.ok else "FAILED",
    }
    res.seconds = time.monotonic() - t_start
    return res
