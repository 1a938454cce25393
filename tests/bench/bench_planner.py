"""Benchmark: the set-based gap planner (``ledger.planner.plan_gaps``) on a big ledger, against a
straightforward Python implementation of the same rules (``tests/planner/reference.py``).

Run with ``python -m tests.bench.bench_planner`` (``--quick`` for a small run). The scratch
database is built by inserting rows straight into ``meta.partition_status`` with one SQL
statement: that table is a projection, normally folded from events, but for a benchmark of the
planner (which reads only projections) the events themselves do not matter. The output says so.

Shape: 700 symbols x 7 assets x 5 years of XNYS sessions (4.39 million cells); the per-symbol
assets have one cell per (symbol, session), the two ALL-scoped ones (briefing, dashboard) one per
session, and 1 % of the cells are removed at random (deterministically). The issue's "500 symbols
x 7 assets x 5 years, about 4.4 million cells" counts all seven assets per symbol; the registry
has five per-symbol assets, so 500 symbols give 3.14 million cells and 700 symbols give the
issue's cell count. ``--symbols N`` sets the universe (``--symbols 500`` for the issue's symbols). Materialization seqs follow the daily order, so
nothing is stale and the plan is the holes plus their dependents.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from typing import Any

import duckdb

from ledger import migrate
from ledger.calendar import TradingCalendar
from ledger.planner import plan_gaps
from stages import registry
from stages.planning import planner_graph

HOLE_RATE = 0.01


def _build(con: duckdb.DuckDBPyConnection, days: list[dt.date], symbols: list[str]) -> int:
    import pyarrow as pa

    migrate.migrate(con)
    con.register("_days", pa.table({"idx": list(range(len(days))), "pk": [d.isoformat() for d in days]}))
    con.register("_syms", pa.table({"sid": list(range(len(symbols))), "scope_key": symbols}))
    assets = [(i, a.key, a.per_symbol) for i, a in enumerate(registry.ASSETS)]
    con.register("_assets", pa.table({"rank": [i for i, _, _ in assets], "asset_key": [k for _, k, _ in assets],
                                      "per_symbol": [p for _, _, p in assets]}))
    versions = registry.code_versions()
    con.register("_versions", pa.table({"asset_key": list(versions), "code_version": list(versions.values())}))
    con.execute(f"""
        INSERT INTO meta.partition_status
        WITH cells AS (
            SELECT a.asset_key, a.rank, d.idx, d.pk, s.sid, s.scope_key FROM _assets a, _days d, _syms s
            WHERE a.per_symbol
            UNION ALL
            SELECT a.asset_key, a.rank, d.idx, d.pk, 0, 'ALL' FROM _assets a, _days d WHERE NOT a.per_symbol
        )
        SELECT c.asset_key, c.pk, c.scope_key, 'materialized', 'bench-run',
               (c.idx * 8 + c.rank) * 1024 + c.sid AS seq, TIMESTAMPTZ '2026-01-01 00:00:00+00',
               (c.idx * 8 + c.rank) * 1024 + c.sid, TIMESTAMPTZ '2026-01-01 00:00:00+00', 'bench-run',
               v.code_version, NULL, 1, NULL, NULL, NULL
        FROM cells c JOIN _versions v USING (asset_key)
        WHERE (hash(c.asset_key, c.idx, c.scope_key) % 1000000) >= {int(HOLE_RATE * 1_000_000)}
    """)
    for name in ("_days", "_syms", "_assets", "_versions"):
        con.unregister(name)
    return int(con.execute("SELECT count(*) FROM meta.partition_status").fetchall()[0][0])


def _measure(fn: Any, repeat: int) -> tuple[dict[str, float], Any]:
    """Median wall and CPU seconds of ``fn()`` over ``repeat`` calls. CPU is the process's
    (``time.process_time``): it includes DuckDB's worker threads, and unlike wall time it does not
    grow when other processes compete for the cores (it does grow with cache and hyper-thread
    contention, a little)."""
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall": round(statistics.median(walls), 4), "cpu": round(statistics.median(cpus), 4),
            "wall_min": round(min(walls), 4), "cpu_min": round(min(cpus), 4)}, out


def _plan_cells(plan: Any) -> dict[tuple[str, int, str], str]:
    index = {d: i for i, d in enumerate(plan.session_days)}
    return {(r.asset_key, index[r.start] + k, r.scope_key): r.reason for r in plan.ranges for k in range(r.sessions)}


FULL_SYMBOLS = 700  # 700 x 5 per-symbol assets x 1,255 sessions + 2 ALL assets: 4.39M cells


def run(quick: bool = False, symbols: int | None = None) -> dict[str, Any]:
    import os
    import tempfile

    from tests.planner.reference import reference_plan

    cal = TradingCalendar.xnys()
    n_symbols, years = (50, 1) if quick else (FULL_SYMBOLS, 5)
    n_symbols = symbols or n_symbols
    end = dt.date(2026, 11, 25)
    start = cal.next_session(dt.date(end.year - years, end.month, end.day))
    window = cal.sessions_in_range(start, end)
    days = [cal.previous_session(window[0]), *window]
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    graph = planner_graph()
    versions = registry.code_versions()
    repeat_full, repeat_one = (1, 3) if quick else (5, 9)
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="bench_planner_") as tmp:
        # The ledger is a DuckDB file (compressed on checkpoint); the same table is also copied
        # into an in-memory database (uncompressed strings: the slower case for the scan).
        path = f"{tmp}/ledger.duckdb"
        t0 = time.perf_counter()
        with duckdb.connect(path) as w:
            w.execute("SET TimeZone = 'UTC'")
            rows = _build(w, days, symbols)
            w.execute("CHECKPOINT")
        build_s = time.perf_counter() - t0
        backends: dict[str, duckdb.DuckDBPyConnection] = {"file": duckdb.connect(path, read_only=True)}
        mem = duckdb.connect(":memory:")
        migrate.migrate(mem)
        mem.execute(f"ATTACH '{path}' AS src (READ_ONLY)")
        mem.execute("INSERT INTO meta.partition_status SELECT * FROM src.meta.partition_status")
        mem.execute("DETACH src")
        backends["memory"] = mem
        expected = sum(len(window) * (n_symbols if a.per_symbol else 1) for a in registry.ASSETS)

        results: dict[str, Any] = {}
        plan = None
        for name, con in backends.items():
            con.execute("SET TimeZone = 'UTC'")

            def full(con: duckdb.DuckDBPyConnection = con) -> Any:
                return plan_gaps(con, graph=graph, symbols=symbols, start=start, end=end, calendar=cal,
                                 code_versions=versions)

            full()  # warm-up: first-use costs (imports, catalog) are not the planner's
            full_t, plan = _measure(full, repeat_full)
            one = {}
            for key in ("candles_daily", "derived_metrics"):
                t, p1 = _measure(lambda k=key, c=con: plan_gaps(c, graph=graph, symbols=symbols[:1], start=start,
                                                                 end=end, calendar=cal, code_versions=versions,
                                                                 assets=[k]), repeat_one)
                one[key] = {**t, "cells_missing": p1.cells_missing}
            results[name] = {"plan": full_t, "one_asset_one_symbol": one}

        # The cell-by-cell Python reference, on the same file, in the same run (once: it is slow).
        con = backends["file"]
        ref_t, ref = _measure(lambda: reference_plan(con, graph=graph, symbols=symbols, days=days, has_lookback=True,
                                                     code_versions=versions, cutoffs={}), 1)
        for c in backends.values():
            c.close()
    assert plan is not None
    agree = ref == _plan_cells(plan)
    load_after = os.getloadavg()[0]
    for r in results.values():
        r["speedup_vs_python"] = {"wall": round(ref_t["wall"] / r["plan"]["wall"], 1),
                                  "cpu": round(ref_t["cpu"] / r["plan"]["cpu"], 1)}
    return {
        "benchmark": "gap planner",
        "note": "meta.partition_status filled directly with SQL (a projection; no events) for speed; "
                "seconds are medians (wall, and CPU of the process including DuckDB's threads)",
        "symbols": n_symbols,
        "assets": len(registry.ASSETS),
        "sessions": len(window),
        "cells_expected": plan.cells_expected,
        "cells_expected_check": expected,
        "partition_rows": rows,
        "hole_rate": HOLE_RATE,
        "cells_in_plan": plan.cells_missing,
        "reasons": dict(plan.reasons),
        "ranges": len(plan.ranges),
        "steps": len(plan.steps),
        "build_seconds": round(build_s, 3),
        "file": results["file"],
        "memory": results["memory"],
        "python_reference": ref_t,
        "reference_agrees": agree,
        "load_average": {"before": round(load_before, 2), "after": round(load_after, 2), "cpus": os.cpu_count()},
        "targets": {"plan_seconds": 1.0, "one_asset_one_symbol_seconds": 0.05},
    }


def _summary(r: dict[str, Any]) -> str:
    load = r["load_average"]
    lines = [f"gap planner: {r['symbols']} symbols x {r['assets']} assets x {r['sessions']} sessions, "
             f"{r['cells_expected']:,} cells, {r['cells_in_plan']:,} in the plan "
             f"(load average {load['before']} -> {load['after']} on {load['cpus']} CPUs)",
             "  medians wall / CPU (min wall / CPU), CPU = time.process_time() including DuckDB's threads"]
    ref = r["python_reference"]
    for name in ("file", "memory"):
        b = r[name]
        one = ", ".join(f"{k} {v['wall'] * 1000:.0f} / {v['cpu'] * 1000:.0f} ms "
                        f"({v['wall_min'] * 1000:.0f} / {v['cpu_min'] * 1000:.0f})"
                        for k, v in b["one_asset_one_symbol"].items())
        p = b["plan"]
        lines.append(f"  {name:6}  plan {p['wall']:.3f} / {p['cpu']:.3f} s ({p['wall_min']:.3f} / {p['cpu_min']:.3f}) "
                     f"(target 1 s); one asset, one symbol: {one} (target 50 ms)")
        lines.append(f"          vs Python reference ({ref['wall']:.1f} s wall / {ref['cpu']:.1f} s CPU): "
                     f"x{b['speedup_vs_python']['wall']} wall, x{b['speedup_vs_python']['cpu']} CPU")
    lines.append(f"  reference agrees cell by cell: {r['reference_agrees']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import json

    args = sys.argv[1:] if argv is None else argv
    n = int(args[args.index("--symbols") + 1]) if "--symbols" in args else None
    result = run(quick="--quick" in args, symbols=n)
    print(_summary(result), file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
