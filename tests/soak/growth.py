"""Growth: years of daily runs, then the same backfill range repeated, driven through the ledger.

The ledger is driven directly with the events the runner records (running the real pipeline for
five years x 100 symbols would take hours on two cores): per session, five per-symbol jobs
(candles, option bars, snapshots, flow, derived: ``RunStarted``, one ``AssetMaterialized`` and one
``ChecksEvaluated`` per symbol, ``RunSucceeded``) and two ``ALL`` jobs (briefing, dashboard). One
append carries a week of sessions. Then ``repeats`` backfills of the same range, each recorded as
``BackfillPlanned`` + the runs (``triggered_by='backfill'``) + ``BackfillFinished``.

Checks: the state projections (``partition_status``, ``asset_watermarks``) keep their row counts
under the repetition; events and run-history rows grow by the same amount per repetition (linear).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

from tests.soak.common import HarnessResult, projection_counts

SYMBOL_JOBS = (("ingest_candles", "candles_daily", "ohlc_consistent"),
               ("ingest_options_bars", "options_bars", "bars_not_negative"),
               ("snapshot_options", "options_snapshot_file", "chain_not_empty"),
               ("compute_flow", "options_flow", "flow_pairs_present"),
               ("compute_derived", "derived_metrics", "iv_in_range"))
ALL_JOBS = (("build_briefing", "briefing_markdown", "briefing_sections"),
            ("build_dashboard", "dashboard_views", "dashboard_renders"))


def session_events(day: dt.date, symbols: list[str], *, backfill_id: str | None = None) -> list[Any]:
    from ledger.events import AssetMaterialized, ChecksEvaluated, RunStarted, RunSucceeded
    from ledger.ids import new_uuid7

    d = day.isoformat()
    ts = dt.datetime.combine(day, dt.time(20, 0), tzinfo=dt.UTC).isoformat()
    trigger = "backfill" if backfill_id else "cli"
    out: list[Any] = []
    for job, asset, check, scopes in ([(*j, symbols) for j in SYMBOL_JOBS] + [(*j, ["ALL"]) for j in ALL_JOBS]):
        run_id = new_uuid7()
        out.append(RunStarted(run_id=run_id, job_name=job, triggered_by=trigger, partition_key=d,
                              scope_keys=scopes, provider="synthetic", backfill_id=backfill_id,
                              args={"as_of": d, "symbols": len(scopes)}, code_version="1", app_version="0.1.0"))
        for s in scopes:
            path = f"lake/options_snapshots/symbol={s}/date={d}/chain.parquet" if asset == "options_snapshot_file" else None
            m = AssetMaterialized(run_id=run_id, asset_key=asset, partition_key=d, scope_key=s,
                                  asset_kind="file" if path else "table", rows=420, bytes=48_000 if path else None,
                                  min_data_time=ts, max_data_time=ts, code_version="1",
                                  data_version=uuid.uuid4().hex[:16], path=path,
                                  sha256=uuid.uuid4().hex + uuid.uuid4().hex if path else None)
            out += [m, ChecksEvaluated(run_id=run_id, asset_key=asset, partition_key=d, scope_key=s,
                                       checks=[{"check_name": check, "severity": "error", "status": "pass",
                                                "metrics": {"rows": 420}}], materialization_id=m.event_id)]
        out.append(RunSucceeded(run_id=run_id))
    return out


def _counts(db: Path) -> dict[str, int]:
    from ledger.connection import connect

    with connect(db, read_only=True) as con:
        return projection_counts(con)


def _checkpointed_bytes(db: Path) -> int:
    from ledger.connection import connect

    with connect(db, read_only=False) as con:
        con.execute("CHECKPOINT")
    return db.stat().st_size


def run(*, years: float = 5, symbols: int = 100, repeats: int = 20, backfill_sessions: int = 20,
        workdir: Path) -> HarnessResult:
    from ledger.calendar import TradingCalendar
    from ledger.duckdb_store import DuckDBEventStore
    from ledger.events import BackfillFinished, BackfillPlanned

    res = HarnessResult("growth")
    t_start = time.monotonic()
    res.notes.append("driven through the ledger API with the runner's events (DuckDBEventStore.append, one "
                     "append per week of sessions, one per backfill session), not the real pipeline")
    db = workdir / "growth.duckdb"
    cal = TradingCalendar.xnys()
    end = dt.date(2026, 6, 30)
    sessions = cal.sessions_in_range(end - dt.timedelta(days=int(365.25 * years)), end)
    syms = [f"S{i:03d}" for i in range(symbols)]
    store = DuckDBEventStore(db, auto_reap=False)
    t0 = time.perf_counter()
    appended = 0
    week: list[Any] = []
    for i, day in enumerate(sessions):
        week += session_events(day, syms)
        if day.weekday() == 4 or i == len(sessions) - 1:
            store.append(week)  # the file opened per append
            appended += len(week)
            week = []
        if (i + 1) % 252 == 0:
            print(f"[growth] {i + 1}/{len(sessions)} sessions, {appended:,} events", flush=True)
    load_s = time.perf_counter() - t0
    base_bytes = _checkpointed_bytes(db)
    base = _counts(db)
    res.figures["sessions x symbols"] = f"{len(sessions)} x {symbols}"
    res.figures["events after the daily runs"] = f"{base['events']:,}"
    res.figures["load rate"] = f"{appended / load_s:,.0f} events/s ({load_s:,.0f} s)"
    res.figures["file after CHECKPOINT"] = f"{base_bytes / 2**20:,.1f} MiB"
    res.figures["bytes per event"] = f"{base_bytes / base['events']:,.0f}"
    res.figures["MiB per simulated year"] = f"{base_bytes / 2**20 / years:,.1f}"
    # Repeat one backfill range.
    rng_days = sessions[-backfill_sessions:]
    cells = [(a, d.isoformat(), s) for d in rng_days for _, a, _ in SYMBOL_JOBS for s in syms]
    history = [base]
    sizes = [base_bytes]
    for r in range(repeats):
        bf = str(uuid.uuid4())
        store.append([BackfillPlanned(backfill_id=bf, cells=cells, args={"repeat": r})])
        for day in rng_days:
            store.append(session_events(day, syms, backfill_id=bf))
        store.append([BackfillFinished(backfill_id=bf)])
        history.append(_counts(db))
        sizes.append(_checkpointed_bytes(db) if r in (0, repeats - 1) else 0)
    deltas = [{k: history[i + 1][k] - history[i][k] for k in base} for i in range(repeats)]
    for table in ("partition_status", "asset_watermarks"):
        changed = [i for i, d in enumerate(deltas) if d[table] != 0]
        if changed:
            res.violations.append(f"{table} row count changed under repeated backfills (repeats {changed[:5]})")
    for key in ("events", "ingestion_runs", "ingestion_run_assets", "asset_checks"):
        if len({d[key] for d in deltas}) != 1:
            res.violations.append(f"{key} did not grow linearly: deltas {sorted({d[key] for d in deltas})}")
    first, last = history[1], history[-1]
    res.figures["backfill repeats x range"] = f"{repeats} x {backfill_sessions} sessions x {symbols} symbols"
    res.figures["events per repeat"] = " / ".join(sorted({f"{d['events']:,}" for d in deltas}))
    res.figures["partition_status rows (before / after repeats)"] = f"{base['partition_status']:,} / {last['partition_status']:,}"
    res.figures["asset_watermarks rows (before / after)"] = f"{base['asset_watermarks']:,} / {last['asset_watermarks']:,}"
    res.figures["ingestion_runs per repeat"] = " / ".join(sorted({f"{d['ingestion_runs']:,}" for d in deltas}))
    res.figures["events total after repeats"] = f"{last['events']:,}"
    if sizes[-1] and sizes[1]:
        per = (sizes[-1] - sizes[1]) / max(1, last["events"] - first["events"])
        res.figures["bytes per event added by repeats"] = f"{per:,.0f}"
        res.figures["file after repeats"] = f"{sizes[-1] / 2**20:,.1f} MiB"
    from ledger.verify import verify_file

    t1 = time.perf_counter()
    report = verify_file(str(db))
    res.figures["db verify (chain + rebuild compare)"] = f"{'ok' if report.ok else 'FAILED'} in {time.perf_counter() - t1:,.1f} s"
    if not report.ok:
        res.violations += [f"db verify: {p}" for p in report.problems]
    res.seconds = time.monotonic() - t_start
    return res
