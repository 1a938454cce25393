"""Benchmark: the set-based gap planner (``ledger.planner.plan_gaps``) on a big ledger, against a
straightforward Python implementation of the same rules (``tests/planner/reference.py``).

Run with ``python -m tests.bench.bench_planner`` (``--quick`` for a small run). The scratch
database is built by inserting rows straight into ``meta.partition_status`` with one SQL
statement: that table is a projection, normally folded from events, but for a benchmark of the
planner (which reads only projections) the events themselves do not matter. The output says so.

Shape: 500 symbols x 7 assets x 5 years of XNYS sessions; the per-symbol assets have one cell per
(symbol, session), the two ALL-scoped ones (briefing, dashboard) one per session, and 1 % of the
cells are removed at random (deterministically). Materialization seqs follow the daily order, so
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


def _time(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run(quick: bool = False) -> dict[str, Any]:
    from tests.planner.reference import reference_plan

    cal = TradingCalendar.xnys()
    n_symbols, years = (50, 1) if quick else (500, 5)
    end = dt.date(2026, 11, 25)
    start = cal.next_session(dt.date(end.year - years, end.month, end.day))
    window = cal.sessions_in_range(start, end)
    days = [cal.previous_session(window[0]), *window]
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    graph = planner_graph()
    versions = registry.code_versions()

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    rows = _build(con, days, symbols)
    build_s = time.perf_counter() - t0
    expected = sum(len(window) * (n_symbols if a.per_symbol else 1) for a in registry.ASSETS)

    def full() -> Any:
        return plan_gaps(con, graph=graph, symbols=symbols, start=start, end=end, calendar=cal, code_versions=versions)

    full_s, plan = _time(full, 1 if quick else 3)
    one_asset = {}
    for key in ("candles_daily", "derived_metrics"):
        s, p1 = _time(lambda k=key: plan_gaps(con, graph=graph, symbols=symbols[:1], start=start, end=end,
                                               calendar=cal, code_versions=versions, assets=[k]), 5)
        one_asset[key] = {"seconds": round(s, 4), "cells_missing": p1.cells_missing}

    t0 = time.perf_counter()
    ref = reference_plan(con, graph=graph, symbols=symbols, days=days, has_lookback=True,
                         code_versions=versions, cutoffs={})
    ref_s = time.perf_counter() - t0
    got = {(r.asset_key, r.scope_key, r.start, r.sessions, r.reason) for r in plan.ranges}
    ref_cells = len(ref)
    agree = ref_cells == plan.cells_missing + plan.cells_unrecoverable and sum(r[3] for r in got) == ref_cells
    return {
        "benchmark": "gap planner",
        "note": "meta.partition_status filled directly with SQL (a projection; no events) for speed",
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
        "plan_seconds": round(full_s, 4),
        "one_asset_one_symbol": one_asset,
        "python_reference_seconds": round(ref_s, 3),
        "speedup_vs_python": round(ref_s / full_s, 1) if full_s else None,
        "reference_agrees": agree,
        "targets": {"plan_seconds": 1.0, "one_asset_one_symbol_seconds": 0.05},
    }


def main(argv: list[str] | None = None) -> None:
    import json

    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(run(quick="--quick" in args), indent=2))


if __name__ == "__main__":
    main()
