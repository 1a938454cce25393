"""Shared helpers of the planner tests: a small universe, a fixed clock, and a way to write
partition events straight through the ledger API (no stages involved)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import ledger
from ledger.calendar import TradingCalendar
from ledger.planner import PlannerAsset
from stages import registry
from stages.planning import planner_graph

CAL = TradingCalendar.xnys()
SYMBOLS = ("AAPL", "MSFT", "SPY")


def graph(live_only_chain: bool = False) -> list[PlannerAsset]:
    from stages.providers.base import DATASETS, OPTION_CHAIN, ProviderCapabilities

    hist = frozenset(DATASETS) - ({OPTION_CHAIN} if live_only_chain else set())
    return planner_graph(ProviderCapabilities(historical=hist, live=frozenset(DATASETS)))


def code_version(asset_key: str) -> str:
    return registry.job_for_asset(asset_key).code_version


def materialize(led: ledger.Ledger, asset_key: str, session: dt.date, scopes: Sequence[str], *,
                status: str = "materialized", code: str | None = None, run_status: str = "success",
                backfill_id: str | None = None, error_check: bool = False) -> str:
    """One run of ``asset_key``'s job for ``session`` writing one event per scope."""
    job = registry.job_for_asset(asset_key)
    pk = session.isoformat()
    run = led.run(job.name, partition_key=pk, scope_keys=list(scopes), code_version=code or job.code_version,
                  backfill_id=backfill_id, triggered_by="backfill" if backfill_id else "python")
    with run:
        events = []
        for s in scopes:
            if status == "materialized":
                ev = run.materialized(asset_key, pk, s, rows=1, code_version=code or job.code_version)
                events.append(ev)
                if error_check:
                    events.append(run.check(asset_key=asset_key, partition_key=pk, scope_key=s, check_name="dup",
                                            severity="error", status="fail", materialization_id=ev.event_id))
            elif status == "failed":
                events.append(run.asset_failed(asset_key, pk, s, error_message="boom"))
            elif status == "skipped":
                events.append(run.skipped(asset_key, pk, s, reason="nothing"))
        if run_status == "success":
            run.complete(events)
        elif run_status == "failed":
            run.fail(RuntimeError("boom"), events)
        else:  # leave it started (a crash); abandoned by a reap later
            run.commit(events)
            run.finished = True
    return run.run_id


def fill(led: ledger.Ledger, sessions: Iterable[dt.date], symbols: Sequence[str] = SYMBOLS,
         holes: Iterable[tuple[str, dt.date, str]] = frozenset(), assets: Sequence[str] | None = None) -> None:
    """Materialize every cell of ``sessions`` in daily order, except ``holes``: one successful run
    per (session, asset), all appended in one batch (fast)."""
    from ledger.events import AssetMaterialized, RunStarted, RunSucceeded
    from ledger.ids import new_uuid7

    holes = set(holes)
    keys = assets or registry.ASSET_KEYS
    events: list = []
    for day in sessions:
        pk = day.isoformat()
        for key in keys:
            scopes = list(symbols) if registry.asset(key).per_symbol else [registry.ALL_SCOPE]
            scopes = [s for s in scopes if (key, day, s) not in holes]
            if not scopes:
                continue
            job = registry.job_for_asset(key)
            run_id = new_uuid7()
            events.append(RunStarted(run_id=run_id, job_name=job.name, partition_key=pk, scope_keys=scopes,
                                     code_version=job.code_version))
            events.extend(AssetMaterialized(run_id=run_id, asset_key=key, partition_key=pk, scope_key=s, rows=1,
                                            code_version=job.code_version) for s in scopes)
            events.append(RunSucceeded(run_id=run_id))
    if events:
        led.append(events)


def memory_ledger() -> ledger.Ledger:
    return ledger.open(":memory:")
