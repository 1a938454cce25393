"""Backfills: execute a gap plan through the runner, upstream first, and resume one that stopped.

``backfill`` plans (``stages.planning.plan``), records the target cells in the ledger as one
``BackfillPlanned`` event with a fresh backfill id, then runs one job per (session, asset) in
session order and graph order within a session, with ``triggered_by="backfill"`` and that id on
every run. A cell whose upstream cell failed in this backfill is not attempted (``blocked``).

``backfill_resume`` re-reads the recorded cells and runs those not finished since the backfill was
planned (a cell is finished when it was materialized or skipped after the ``BackfillPlanned``
event), so a killed backfill picks up where it stopped and never runs a finished cell again.
``backfill_status`` counts done / failed / pending cells and the backfill's runs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ledger.calendar import TradingCalendar
from ledger.config import Settings
from ledger.errors import UsageError
from ledger.planner import ALL_SCOPE, GapPlan, PlannerAsset
from stages import registry
from stages.planning import plan, planner_graph

if TYPE_CHECKING:
    from ledger.api import Ledger
    from stages.providers.base import MarketDataProvider

Progress = Callable[[str, int, int], None]
JobRunner = Callable[..., Any]  # the signature of stages.runner.run_job
Cell = tuple[str, dt.date, str]


@attrs.frozen(kw_only=True)
class BackfillResult:
    """What a backfill did. ``status``: planned (dry run), nothing_to_do, success or failed."""

    backfill_id: str | None
    status: str
    dry_run: bool = False
    resumed: bool = False
    plan: GapPlan | None = None
    cells_total: int = 0
    cells_done: int = 0
    cells_failed: int = 0
    cells_blocked: int = 0
    cells_skipped_before: int = 0  # already finished when a resume started
    jobs: tuple[dict[str, Any], ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "nothing_to_do", "success")

    def to_dict(self) -> dict[str, Any]:
        return {
            "backfill_id": self.backfill_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "cells_total": self.cells_total,
            "cells_done": self.cells_done,
            "cells_failed": self.cells_failed,
            "cells_blocked": self.cells_blocked,
            "cells_skipped_before": self.cells_skipped_before,
            "seconds": round(self.seconds, 3),
            "jobs": list(self.jobs),
            "plan": self.plan.to_dict() if self.plan is not None else None,
        }


def _open(settings: Settings, *, create: bool = False) -> Ledger:
    import ledger

    return ledger.open(settings.duckdb_path, create=create, lock_timeout_seconds=settings.lock_timeout_seconds,
                       lease_seconds=settings.lease_seconds)


def backfill(
    settings: Settings,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    assets: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    provider: MarketDataProvider | None = None,
    job_runner: JobRunner | None = None,
) -> BackfillResult:
    """Plan the gaps of [start, end] and fill them (see ``stages.plan`` for the defaults).

    ``progress(message, cells_done, cells_total)`` is called as jobs finish. ``job_runner``
    replaces ``stages.runner.run_job`` (tests); ``provider`` is shared by every job.
    """
    started = time.perf_counter()
    capabilities = provider.capabilities if provider is not None else None
    the_plan = plan(settings, start=start, end=end, assets=assets, symbols=symbols, now=now, capabilities=capabilities)
    cells = the_plan.cells()
    if dry_run:
        return BackfillResult(backfill_id=None, status="planned", dry_run=True, plan=the_plan,
                              cells_total=len(cells), seconds=time.perf_counter() - started)
    if not cells:
        return BackfillResult(backfill_id=None, status="nothing_to_do", plan=the_plan,
                              seconds=time.perf_counter() - started)
    from ledger.events import BackfillPlanned
    from ledger.ids import new_uuid7

    backfill_id = new_uuid7()
    args = {
        "start": the_plan.start.isoformat(), "end": the_plan.end.isoformat(), "assets": list(the_plan.assets),
        "symbols": list(the_plan.symbols), "explicit_symbols": bool(symbols),
        "reasons": dict(the_plan.reasons), "steps": len(the_plan.steps),
    }
    led = _open(settings)
    led.append([BackfillPlanned(backfill_id=backfill_id, args=args,
                                cells=[(a, d.isoformat(), s) for a, d, s in cells])])
    result = _execute(settings, led, backfill_id, cells, list(the_plan.symbols), progress=progress,
                      provider=provider, job_runner=job_runner, now=now)
    return attrs.evolve(result, plan=the_plan, seconds=time.perf_counter() - started)


def backfill_resume(
    settings: Settings,
    backfill_id: str,
    progress: Progress | None = None,
    *,
    now: dt.datetime | None = None,
    provider: MarketDataProvider | None = None,
    job_runner: JobRunner | None = None,
) -> BackfillResult:
    """Run the cells of ``backfill_id`` that have not finished since it was planned."""
    started = time.perf_counter()
    led = _open(settings)
    led.reap()  # a killed run of this backfill is abandoned before we look
    from ledger import planner

    with led.reader() as con:
        planned = planner.backfill_planned(con, backfill_id)
        if planned is None:
            raise _unknown(backfill_id, settings)
        states = planner.backfill_cell_states(con, backfill_id, planned["seq"])
    pending = [(a, dt.date.fromisoformat(p), s) for a, p, s, state in states if state != "done"]
    done_before = len(states) - len(pending)
    if not pending:
        return BackfillResult(backfill_id=backfill_id, status="success", resumed=True, cells_total=len(states),
                              cells_done=len(states), cells_skipped_before=done_before,
                              seconds=time.perf_counter() - started)
    from stages.inputs import universe as default_universe

    universe = list(planned["args"].get("symbols") or default_universe(settings))
    result = _execute(settings, led, backfill_id, pending, universe, progress=progress, provider=provider,
                      job_runner=job_runner, now=now)
    return attrs.evolve(result, resumed=True, cells_total=len(states), cells_done=result.cells_done + done_before,
                        cells_skipped_before=done_before, seconds=time.perf_counter() - started)


def backfill_status(settings: Settings, backfill_id: str) -> dict[str, Any]:
    """Progress of a backfill: its cells done / failed / pending (overall and per asset), its runs."""
    from ledger import planner

    led = _open(settings)
    with led.reader() as con:
        planned = planner.backfill_planned(con, backfill_id)
        if planned is None:
            raise _unknown(backfill_id, settings)
        states = planner.backfill_cell_states(con, backfill_id, planned["seq"])
        runs = planner.backfill_runs(con, backfill_id)
        finished = planner.backfill_finished(con, backfill_id)
    counts = {"done": 0, "failed": 0, "pending": 0}
    by_asset: dict[str, dict[str, int]] = {}
    for a, _p, _s, state in states:
        counts[state] += 1
        by_asset.setdefault(a, {"done": 0, "failed": 0, "pending": 0})[state] += 1
    run_counts: dict[str, int] = defaultdict(int)
    for r in runs:
        run_counts[r["status"]] += 1
    if counts["pending"] == 0 and counts["failed"] == 0:
        status = "finished"
    elif run_counts.get("started"):
        status = "running"
    elif finished is not None:
        status = "failed" if finished["status"] == "failed" or counts["failed"] else "finished"
    else:
        status = "interrupted"
    return {
        "backfill_id": backfill_id,
        "status": status,
        "planned_at": planned["recorded_at"],
        "args": planned["args"],
        "cells_total": len(states),
        "cells_done": counts["done"],
        "cells_failed": counts["failed"],
        "cells_pending": counts["pending"],
        "by_asset": {k: by_asset[k] for k in registry.ASSET_KEYS if k in by_asset},
        "runs": dict(run_counts),
        "runs_total": len(runs),
        "finished": finished,
        "resume_command": None if status == "finished" else f"options-helper backfill resume {backfill_id}",
    }


def _unknown(backfill_id: str, settings: Settings) -> UsageError:
    return UsageError(f"no backfill {backfill_id!r} in {settings.duckdb_path}; "
                      "the id is printed by `options-helper backfill` (see also `options-helper runs`)")


# -- execution -----------------------------------------------------------------------------------
def _execute(
    settings: Settings,
    led: Ledger,
    backfill_id: str,
    cells: Sequence[Cell],
    universe: Sequence[str],
    *,
    progress: Progress | None,
    provider: MarketDataProvider | None,
    job_runner: JobRunner | None,
    now: dt.datetime | None,
) -> BackfillResult:
    from ledger.events import BackfillFinished

    graph = {a.key: a for a in planner_graph()}
    rank = {k: i for i, k in enumerate(registry.ASSET_KEYS)}
    groups: dict[tuple[dt.date, str], list[str]] = defaultdict(list)
    for a, d, s in cells:
        groups[(d, a)].append(s)
    order = sorted(groups, key=lambda g: (g[0], rank[g[1]]))
    total = len(cells)
    run = job_runner or _default_runner()
    if provider is None and job_runner is None and any(registry.asset(a).needs_provider for _, a in order):
        from stages.providers import build_provider

        provider = build_provider(settings)
    calendar = TradingCalendar.xnys()

    failed: set[Cell] = set()
    done = blocked = 0
    jobs: list[dict[str, Any]] = []
    for session, asset_key in order:
        spec = graph[asset_key]
        scopes = sorted(set(groups[(session, asset_key)]))
        runnable = [s for s in scopes if not _blocked(spec, graph, session, s, failed, calendar)]
        for s in scopes:
            if s not in runnable:
                failed.add((asset_key, session, s))
                blocked += 1
        if not runnable:
            continue
        message = f"{session} {asset_key}"
        base = done + len(failed)
        if progress:
            progress(message, base, total)

        def inner(msg: str, i: int, n: int, _base: int = base, _label: str = message) -> None:
            if progress:
                progress(f"{_label}: {msg}", _base, total)

        symbols = list(universe) if not spec.per_symbol else runnable
        result = run(spec.job, as_of=session, symbols=symbols, settings=settings, provider=provider,
                     triggered_by="backfill", backfill_id=backfill_id, progress=inner, now=now)
        statuses = {o.scope_key: o.status for o in result.outcomes}
        for s in runnable:
            status = statuses.get(s, "failed" if result.status == "failed" else "success")
            if status == "failed":
                failed.add((asset_key, session, s))
            else:
                done += 1
        jobs.append({"run_id": result.run_id, "job": spec.job, "as_of": session.isoformat(), "status": result.status,
                     "scopes": len(runnable), "failed": sum(1 for s in runnable if (asset_key, session, s) in failed),
                     "error": result.error})
        if progress:
            progress(message, done + len(failed), total)
    status = "success" if not failed else "failed"
    led.append([BackfillFinished(backfill_id=backfill_id, status=status,
                                 message=f"{done} cells done, {len(failed) - blocked} failed, {blocked} blocked")])
    return BackfillResult(backfill_id=backfill_id, status=status, cells_total=total, cells_done=done,
                          cells_failed=len(failed) - blocked, cells_blocked=blocked, jobs=tuple(jobs))


def _blocked(spec: PlannerAsset, graph: dict[str, PlannerAsset], session: dt.date, scope: str,
             failed: set[Cell], calendar: TradingCalendar) -> bool:
    """Whether an upstream cell this cell needs failed (or was blocked) in this backfill."""
    if not failed:
        return False
    for up, lag in spec.upstream:
        day = calendar.previous_session(session) if lag else session
        if graph[up].per_symbol and not spec.per_symbol:
            if any(c[0] == up and c[1] == day for c in failed):
                return True
        elif (up, day, scope if graph[up].per_symbol else ALL_SCOPE) in failed:
            return True
    return False


def _default_runner() -> JobRunner:
    from stages.runner import run_job

    return run_job


__all__ = ["BackfillResult", "backfill", "backfill_resume", "backfill_status"]
