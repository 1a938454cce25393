"""The Dagster ledger mirror's tick: one sensor evaluation over 5,000 new events (target < 1 s) and
an idle evaluation with nothing new (target < 50 ms of ledger work).

Workload: a ledger file with ``history`` events already mirrored, then 5,000 new ones: runs of
``ingest_candles`` for consecutive sessions, each one commit of a start, 100 materializations
with one check each, and its success (202 events); every fifth run is Dagster-triggered (read
and skipped). The cursor sits at the end of the history.

Figures (wall and CPU, median of ``repeats``):
- ``tick_5000``: ``ledger_mirror`` evaluated with ``build_sensor_context`` (read the page, type the
  events, build the asset events) from the cursor: everything a daemon tick spends in the sensor;
- ``tick_5000_ledger``: the ledger part alone (``ledger.follow.read_page`` of 5,000 events);
- ``idle_ledger_ms``: ``read_page`` with nothing after the cursor (the page query and the head);
- ``idle_sensor_ms``: the whole idle evaluation (settings, resource, ledger, result);
- baseline: the same 5,000 rows fetched raw with one DuckDB query (no typing), in this process.

    python -m tests.bench.bench_mirror [--quick]
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TICK = 5000


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0, value


def seed(path: Path, runs: int, *, first_session: int = 0, scopes: int = 100) -> int:
    from ledger.calendar import TradingCalendar
    from ledger.duckdb_store import DuckDBEventStore
    from ledger.events import AssetMaterialized, ChecksEvaluated, RunStarted, RunSucceeded
    from ledger.ids import new_uuid7
    from stages import registry

    # Past sessions inside the Dagster partitions (2025-01-02 on): the mirror reports nothing else.
    sessions = TradingCalendar.xnys().sessions_in_range(dt.date(2025, 1, 2), dt.date(2026, 11, 25))
    store = DuckDBEventStore(path, auto_reap=False)
    for i in range(runs):
        run_id, session = new_uuid7(), sessions[(first_session + i) % len(sessions)].isoformat()
        batch: list[Any] = [RunStarted(run_id=run_id, job_name=registry.INGEST_CANDLES, partition_key=session,
                                       triggered_by="dagster" if i % 5 == 4 else "cli")]
        for s in range(scopes):
            mat = AssetMaterialized(run_id=run_id, asset_key=registry.CANDLES_DAILY, partition_key=session,
                                    scope_key=f"S{s:03d}", rows=250, bytes=None, code_version="1")
            batch += [mat, ChecksEvaluated(run_id=run_id, asset_key=registry.CANDLES_DAILY, partition_key=session,
                                           scope_key=mat.scope_key, materialization_id=mat.event_id, checks=[
                                               {"check_name": "candles_unique_symbol_date", "severity": "error",
                                                "status": "pass", "metrics": {"rows_checked": 250}}])]
        store.append([*batch, RunSucceeded(run_id=run_id)])
    return store.last_seq()


def run(quick: bool = False) -> dict[str, Any]:
    import dagster as dg
    import duckdb

    from frontends.dagster.defs.resources import LedgerResource
    from frontends.dagster.defs.sensors import ledger_mirror
    from ledger.follow import open_follower, read_page

    repeats = 3 if quick else 7
    history_runs = 50 if quick else 500  # 10,100 / 101,000 events already mirrored
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mirror.duckdb"
        t_seed, _, cursor = _timed(lambda: seed(path, history_runs))
        new_runs = -(-TICK // 202)  # 25 runs: 5,050 new events; the tick takes the first 5,000 (whole commits)
        head = seed(path, new_runs, first_session=history_runs)
        resource = LedgerResource(duckdb_path=str(path), data_root=tmp)
        source = open_follower(path)

        def sensor_tick(at: int) -> Any:
            return ledger_mirror(dg.build_sensor_context(cursor=str(at), resources={"ledger": resource}))

        sensor_tick(cursor)  # warm: imports, settings, partitions definition
        tick_wall, tick_cpu, ledger_wall, raw_wall = [], [], [], []
        result = None
        for _ in range(repeats):
            w, c, result = _timed(lambda: sensor_tick(cursor))
            tick_wall.append(w)
            tick_cpu.append(c)
            ledger_wall.append(_timed(lambda: read_page(source, cursor, TICK))[0])
            with duckdb.connect(str(path), read_only=True) as con:
                raw_wall.append(_timed(lambda: con.execute(
                    "SELECT * FROM meta.events WHERE seq > ? ORDER BY seq LIMIT ?", [cursor, TICK]).fetchall())[0])
        assert result is not None and result.asset_events, "the tick mirrored nothing: check the seeded sessions"
        mats = [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]
        checks = [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]
        idle_ledger, idle_ledger_cpu, idle_sensor = [], [], []
        for _ in range(repeats * 3):
            w, c, _ = _timed(lambda: read_page(source, head, TICK))
            idle_ledger.append(w)
            idle_ledger_cpu.append(c)
            w, _, idle = _timed(lambda: sensor_tick(head))
            idle_sensor.append(w)
            assert idle.asset_events == []

    med = statistics.median
    figures = {
        "history_events": cursor,
        "new_events": head - cursor,
        "seed_seconds": round(t_seed, 2),
        "tick_5000": {"wall_s": round(med(tick_wall), 4), "cpu_s": round(med(tick_cpu), 4),
                      "events_handled": int(result.cursor) - cursor, "materializations": len(mats),
                      "check_evaluations": len(checks)},
        "tick_5000_ledger_read_s": round(med(ledger_wall), 4),
        "baseline_raw_fetch_s": round(med(raw_wall), 4),
        "ratio_tick_over_raw_fetch": round(med(tick_wall) / med(raw_wall), 2),
        "idle_ledger_ms": round(med(idle_ledger) * 1000, 2),
        "idle_ledger_cpu_ms": round(med(idle_ledger_cpu) * 1000, 2),
        "idle_sensor_ms": round(med(idle_sensor) * 1000, 2),
        "targets": {"tick_5000_under_1s": med(tick_wall) < 1.0, "idle_ledger_under_50ms": med(idle_ledger) < 0.050},
    }
    print(f"mirror: history {cursor:,} events, {head - cursor:,} new")
    print(f"  tick over {figures['tick_5000']['events_handled']:,} new events: {med(tick_wall) * 1000:,.1f} ms wall, "
          f"{med(tick_cpu) * 1000:,.1f} ms CPU ({len(mats)} materializations, {len(checks)} check evaluations); "
          f"ledger read {med(ledger_wall) * 1000:,.1f} ms; raw fetch baseline {med(raw_wall) * 1000:,.1f} ms")
    print(f"  idle tick: ledger {med(idle_ledger) * 1000:,.2f} ms wall ({med(idle_ledger_cpu) * 1000:,.2f} ms CPU), "
          f"whole sensor {med(idle_sensor) * 1000:,.2f} ms")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
