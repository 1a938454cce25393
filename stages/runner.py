"""The runner: one job, one session, a set of symbols, recorded in the ledger (what it returns is in
``stages.results``; how the session and symbols are validated, in ``stages.inputs``).

``run_job`` validates the session and symbols, starts a run, gathers the stage's inputs with
short read-only reads, computes every scope without holding the database (heartbeating and
reporting progress as it goes), runs the asset's quality checks on what is about to be
written, and then commits the data rows, the asset and check events and the run's end in
**one** ledger transaction (``RunContext.complete(events, data_writer=...)``). File assets are
staged before that transaction and published after it commits.

Per scope the outcome is ``success`` (materialized), ``failed`` (a provider, stage or usage
error: recorded, nothing written for that partition) or ``skipped`` (with a reason). The run
fails when an error-severity check fails (the data is still committed: a failing check never
hides it) or when every attempted scope fails; a check that raises, a bug, or a failed commit
fails the run with nothing written. ``run_daily`` runs every stage in the seed's order and skips
a symbol's downstream stages once one of its upstream assets failed.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ledger.errors import UsageError
from stages import registry
from stages.inputs import check_session, default_session, resolve_symbols
from stages.jobs._files import discard_spool, spool_folder, sweep_spools
from stages.jobs.base import FAILED, SKIPPED, SUCCESS, JobContext, PartitionResult
from stages.results import DailyResult, JobResult, SymbolOutcome, dumps, raise_for_status
from stages.results import json_safe as _json_safe

if TYPE_CHECKING:
    from ledger.api import Ledger, RunContext
    from ledger.calendar import TradingCalendar
    from ledger.config import Settings
    from stages.analytics.checks import CheckResult
    from stages.providers.base import MarketDataProvider

Progress = Callable[[str, int, int], None]
# Given a job's outcomes, the next job's run (not yet started) to start in that job's final commit.
StartNext = Callable[[Sequence[SymbolOutcome]], "RunContext | None"]

ALREADY_MATERIALIZED = "already_materialized"
UPSTREAM_FAILED = "upstream_failed"


# -- the runner -----------------------------------------------------------------------------------
def _cpu_time() -> float:
    """CPU seconds of this process and of its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@attrs.define
class _Clock:
    ledger: float = 0.0
    ledger_cpu: float = 0.0
    data: float = 0.0
    data_cpu: float = 0.0

    def timed(self, fn: Callable[[], Any]) -> Any:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return fn()
        finally:
            self.ledger += time.perf_counter() - t0
            self.ledger_cpu += time.process_time() - c0

    def stamp(self, result: JobResult, started: float, cpu: float) -> JobResult:
        return attrs.evolve(result, seconds=time.perf_counter() - started, cpu_seconds=_cpu_time() - cpu,
                            ledger_seconds=self.ledger, data_write_seconds=self.data,
                            ledger_cpu_seconds=self.ledger_cpu, data_write_cpu_seconds=self.data_cpu)


def _open_ledger(settings: Settings) -> Ledger:
    import ledger

    return ledger.Ledger.from_settings(settings)


def run_job(
    job: str,
    *,
    as_of: dt.date,
    symbols: Sequence[str] | None = None,
    settings: Settings,
    provider: MarketDataProvider | None = None,
    triggered_by: str = "python",
    parent_run_id: str | None = None,
    backfill_id: str | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    skip: Mapping[str, str] | None = None,
    resume: bool = False,
    ledger_handle: Ledger | None = None,
    skip_failed_upstream: bool = False,
    generated_at: dt.datetime | None = None,
) -> JobResult:
    """Run ``job`` for the session ``as_of`` over ``symbols`` (None: the default watchlist).

    ``skip`` maps scopes to a reason to record them skipped without running (``run_daily`` uses
    it for symbols whose upstream failed); ``resume=True`` leaves out scopes already
    materialized for the session by the current code version, and records no run at all when
    nothing is left. ``skip_failed_upstream=True`` also skips (reason ``upstream_failed:<asset>``)
    the symbols whose same-session upstream asset failed or was itself skipped for that reason,
    as the ledger records it: the skip list ``run_daily`` builds, for callers that run one job at
    a time (Dagster). ``generated_at`` stamps the reports (default: the session's close).
    ``ledger_handle`` reuses an open ``Ledger`` for ``settings.duckdb_path``.
    Raises ``UsageError`` for an unknown job, a date that is not a completed
    session, or a malformed symbol; every other problem is reported in the result.
    """
    from ledger.calendar import TradingCalendar

    started, cpu = time.perf_counter(), _cpu_time()
    registry.asset(registry.job(job).asset_key)
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise UsageError("now must be timezone-aware")
    calendar = TradingCalendar.xnys()
    check_session(as_of, settings, now, calendar)
    names = resolve_symbols(symbols, settings)
    clock = _Clock()
    led = ledger_handle if ledger_handle is not None else clock.timed(lambda: _open_ledger(settings))
    plan = _Plan.make(job, as_of=as_of, names=names, settings=settings, provider=provider, skip=skip or {},
                      resume=resume, skip_failed_upstream=skip_failed_upstream, led=led)
    if plan.idle:
        return plan.idle_result(started, cpu)
    run = plan.new_run(led, triggered_by=triggered_by, parent_run_id=parent_run_id, backfill_id=backfill_id)
    return _perform(plan, run, led=led, settings=settings, now=now, calendar=calendar, progress=progress,
                    generated_at=generated_at, clock=clock, started=started, cpu=cpu)


@attrs.define(kw_only=True)
class _Plan:
    """A job's scopes for one session, decided before its run starts: to compute, skip or leave."""

    job: str
    spec: registry.JobSpec
    asset: registry.AssetSpec
    as_of: dt.date
    names: tuple[str, ...]
    scopes: tuple[str, ...]
    skip: dict[str, str]
    done: set[str]
    resume: bool
    provider: MarketDataProvider | None
    portfolio: Mapping[str, Any] | None = None  # the portfolio file's lineage (path, sha256), if any

    @classmethod
    def make(cls, job: str, *, as_of: dt.date, names: tuple[str, ...], settings: Settings,
             provider: MarketDataProvider | None, skip: Mapping[str, str], resume: bool,
             skip_failed_upstream: bool, led: Ledger) -> _Plan:
        spec = registry.job(job)
        asset = registry.asset(spec.asset_key)
        scopes = names if asset.per_symbol else (registry.ALL_SCOPE,)
        partition = as_of.isoformat()
        wanted = {k: v for k, v in skip.items() if k in scopes}
        if skip_failed_upstream and asset.per_symbol:
            with led.reader() as con:
                wanted = {**_upstream_skips(con, asset, partition, scopes), **wanted}
        done: set[str] = set()
        if resume:
            from stages.datastore import materialized_scopes

            with led.reader() as con:
                done = materialized_scopes(con, asset.key, partition, spec.code_version) & set(scopes)
        from stages.portfolio import from_settings

        loaded = from_settings(settings)
        plan = cls(job=job, spec=spec, asset=asset, as_of=as_of, names=names, scopes=scopes, skip=wanted, done=done,
                   resume=resume, provider=provider, portfolio=loaded.lineage() if loaded else None)
        if not plan.idle and asset.needs_provider and provider is None:
            from stages.providers import build_provider

            plan.provider = build_provider(settings)
        return plan

    @property
    def pending(self) -> list[str]:
        return [s for s in self.scopes if s not in self.skip and s not in self.done]

    @property
    def preset(self) -> list[SymbolOutcome]:
        return [SymbolOutcome(scope_key=s, status=SKIPPED, reason=ALREADY_MATERIALIZED)
                for s in self.scopes if s in self.done]

    @property
    def idle(self) -> bool:
        """``resume`` left nothing to run or record."""
        return self.resume and not self.pending and not self.skip

    def idle_result(self, started: float, cpu: float) -> JobResult:
        return JobResult(run_id=None, job=self.job, asset_key=self.asset.key, as_of=self.as_of, status=SUCCESS,
                         outcomes=tuple(self.preset), seconds=time.perf_counter() - started,
                         cpu_seconds=_cpu_time() - cpu)

    def new_run(self, led: Ledger, *, triggered_by: str, parent_run_id: str | None,
                backfill_id: str | None) -> RunContext:
        """The run (not yet started: ``_perform`` enters it)."""
        partition = self.as_of.isoformat()
        args = {"as_of": partition, "symbols": list(self.names), "resume": self.resume, "skip": dict(self.skip)}
        if self.portfolio is not None:
            args["portfolio"] = dict(self.portfolio)
        return led.run(self.job, triggered_by=triggered_by, parent_run_id=parent_run_id,
                       provider=self.provider.name if self.provider is not None else None, args=args,
                       partition_key=partition, scope_keys=self.scopes, code_version=self.spec.code_version,
                       backfill_id=backfill_id)


def _perform(
    plan: _Plan,
    run: RunContext,
    *,
    led: Ledger,
    settings: Settings,
    now: dt.datetime,
    calendar: TradingCalendar,
    progress: Progress | None,
    generated_at: dt.datetime | None,
    clock: _Clock,
    started: float,
    cpu: float,
    start_next: StartNext | None = None,
) -> JobResult:
    """Start ``run`` (unless its predecessor's commit did), compute, commit its end."""
    clock.timed(run.__enter__)

    def reader(fn: Callable[[Any], Any]) -> Any:
        with led.reader() as con:
            return fn(con)

    asset, skip, pending, preset = plan.asset, plan.skip, plan.pending, plan.preset
    ctx = JobContext(job=plan.job, asset_key=asset.key, as_of=plan.as_of, symbols=plan.names, settings=settings,
                     run_id=run.run_id, now=now, calendar=calendar, provider=plan.provider, reader=reader,
                     generated_at=generated_at)
    partials: list[PartitionResult] = []
    sweep_spools(ctx.data_root)
    try:
        result = _execute(ctx, run, asset, plan.spec, pending, skip, preset, partials, clock, progress, start_next)
    except BaseException as exc:
        for p in partials:
            for f in p.files:
                _discard(f)
        _discard_run_files(settings, run.run_id)  # staged by a worker that died with its batch
        if not run.finished:
            clock.timed(functools.partial(run.fail, exc))
        if not isinstance(exc, Exception):
            raise
        error = f"{type(exc).__name__}: {exc}"
        outcomes = [SymbolOutcome(scope_key=s, status=FAILED, error=error) for s in pending]
        outcomes += [SymbolOutcome(scope_key=s, status=SKIPPED, reason=r) for s, r in skip.items()]
        failed = JobResult(run_id=run.run_id, job=plan.job, asset_key=asset.key, as_of=plan.as_of, status=FAILED,
                           outcomes=tuple(_in_order(plan.scopes, [*preset, *outcomes])), error=error)
        return clock.stamp(failed, started, cpu)
    finally:
        discard_spool(ctx.data_root, run.run_id)
    return clock.stamp(result, started, cpu)


def _upstream_skips(con: Any, asset: registry.AssetSpec, partition: str, scopes: Sequence[str]) -> dict[str, str]:
    """``run_daily``'s skip list for ``asset``, from the ledger's view of the session."""
    from stages.datastore import broken_scopes

    same_session = [up.asset_key for up in asset.upstream if up.lag == 0]
    broken = broken_scopes(con, same_session, partition, scopes, UPSTREAM_FAILED)
    return _skips_for(asset, broken)


def _skips_for(asset: registry.AssetSpec, broken: Mapping[str, set[str]]) -> dict[str, str]:
    skip: dict[str, str] = {}
    if asset.per_symbol:
        for up in asset.upstream:
            if up.lag == 0:
                for s in sorted(broken.get(up.asset_key, set())):
                    skip.setdefault(s, f"{UPSTREAM_FAILED}:{up.asset_key}")
    return skip


def _in_order(scopes: Sequence[str], outcomes: Sequence[SymbolOutcome]) -> list[SymbolOutcome]:
    rank = {s: i for i, s in enumerate(scopes)}
    return sorted(outcomes, key=lambda o: rank.get(o.scope_key, len(rank)))


def _discard(f: Any) -> None:
    from stages.jobs._files import discard

    discard(f)


def _discard_run_files(settings: Settings, run_id: str) -> None:
    from stages.jobs._files import discard_run

    discard_run(settings.data_root, run_id)


def _execute(
    ctx: JobContext,
    run: RunContext,
    asset: registry.AssetSpec,
    spec: registry.JobSpec,
    pending: list[str],
    skip: Mapping[str, str],
    preset: list[SymbolOutcome],
    partials: list[PartitionResult],
    clock: _Clock,
    progress: Progress | None,
    start_next: StartNext | None = None,
) -> JobResult:
    from stages.jobs import stage
    from stages.parallel import StageWork, compute_scopes, worker_count

    gather, compute = stage(ctx.job)
    total = len(pending)
    if progress:
        progress(f"{ctx.job}: reading inputs", 0, total)
    inputs = gather(ctx) if pending else None
    work = StageWork(ctx=ctx, compute=compute, inputs=inputs, asset_key=asset.key,
                     spool=spool_folder(ctx.data_root, run.run_id))
    provider_safe = not asset.needs_provider or bool(getattr(ctx.provider, "process_safe", False))
    workers = worker_count(ctx.settings.workers, total, provider_safe)
    checks_by_scope: dict[str, tuple[CheckResult, ...]] = {}
    failures = 0
    for i, done in enumerate(compute_scopes(work, pending, workers=workers)):
        partials.append(done.part)
        checks_by_scope[done.part.scope_key] = done.checks
        failures += done.part.status == FAILED
        if progress:
            progress(f"{ctx.job}: {done.part.scope_key}{_failed_so_far(failures)}", i + 1, total)
        clock.timed(run.heartbeat)
    if progress:
        progress(f"{ctx.job}: committing{_failed_so_far(failures)}", total, total)

    events: list[Any] = []
    outcomes: list[SymbolOutcome] = list(preset)
    all_checks: list[CheckResult] = []
    for part in partials:
        if part.status == SUCCESS:
            primary = part.primary_file
            extra = dict(_json_safe(part.extra))
            mat = run.materialized(
                asset.key, ctx.partition_key, part.scope_key, asset_kind=asset.kind, rows=part.rows,
                bytes=primary.bytes if primary else None,
                min_data_time=_ts(part.min_data_time), max_data_time=_ts(part.max_data_time),
                code_version=spec.code_version, data_version=primary.sha256[:16] if primary else None,
                path=primary.relpath if primary else None, sha256=primary.sha256 if primary else None, extra=extra,
            )
            events.append(mat)
            checks = checks_by_scope.get(part.scope_key, ())
            for asset_key in dict.fromkeys(c.asset_key for c in checks):
                events.append(run.checks(asset_key, ctx.partition_key, part.scope_key, [
                    {"check_name": c.check_name, "severity": c.severity, "status": c.status,
                     "metrics": _json_safe(c.metrics), "message": c.message}
                    for c in checks if c.asset_key == asset_key], materialization_id=mat.event_id))
            all_checks.extend(checks)
            outcomes.append(SymbolOutcome(scope_key=part.scope_key, status=SUCCESS, rows=part.rows,
                                          bytes=primary.bytes if primary else None,
                                          path=primary.relpath if primary else None,
                                          sha256=primary.sha256 if primary else None,
                                          materialization_id=mat.event_id, extra=extra))
        elif part.status == FAILED:
            events.append(run.asset_failed(asset.key, ctx.partition_key, part.scope_key, asset_kind=asset.kind,
                                           error_type=part.error_type or "Error",
                                           error_message=(part.error or "")[:2000]))
            outcomes.append(SymbolOutcome(scope_key=part.scope_key, status=FAILED, error=part.error))
        else:
            events.append(run.skipped(asset.key, ctx.partition_key, part.scope_key, asset_kind=asset.kind,
                                      reason=part.reason or "", extra=_json_safe(part.extra)))
            outcomes.append(SymbolOutcome(scope_key=part.scope_key, status=SKIPPED, reason=part.reason,
                                          extra=_json_safe(part.extra)))
    for scope, reason in skip.items():
        events.append(run.skipped(asset.key, ctx.partition_key, scope, asset_kind=asset.kind, reason=reason))
        outcomes.append(SymbolOutcome(scope_key=scope, status=SKIPPED, reason=reason))

    error = _run_error(partials, all_checks)
    successes = [p for p in partials if p.status == SUCCESS]

    def write_data(con: Any) -> None:
        from stages.datastore import write_all

        t0, c0 = time.perf_counter(), time.process_time()
        try:
            write_all(con, [w for part in successes for w in part.writes], ctx.run_id)
        finally:
            clock.data += time.perf_counter() - t0
            clock.data_cpu += time.process_time() - c0

    writer = write_data if successes else None
    # The daily's next run, planned from these outcomes, starts in this commit: one commit fewer.
    following = start_next(outcomes) if start_next else None
    start = (following,) if following is not None else ()
    if error is None:
        clock.timed(lambda: run.complete(events, data_writer=writer, start=start))
    else:
        from ledger.events import RunFailed
        from ledger.fingerprint import fingerprint

        failed_event = RunFailed(run_id=ctx.run_id, error_type="StageError", error_message=error[:2000],
                                 error_fingerprint=fingerprint("StageError", error))
        clock.timed(lambda: run.commit([*events, failed_event], data_writer=writer, start=start))
        run.finished = True
    for part in successes:  # committed: the files may now appear under their final names
        from stages.jobs._files import publish

        for f in part.files:
            publish(f)
    scopes = (*ctx.symbols,) if asset.per_symbol else (registry.ALL_SCOPE,)
    return JobResult(run_id=ctx.run_id, job=ctx.job, asset_key=asset.key, as_of=ctx.as_of,
                     status=SUCCESS if error is None else FAILED, outcomes=tuple(_in_order(scopes, outcomes)),
                     checks=tuple(all_checks), error=error)


def _failed_so_far(failures: int) -> str:
    return f" ({failures} failed)" if failures else ""


def _ts(day: dt.date | None) -> str | None:
    return None if day is None else dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).isoformat()


def _run_error(partials: Sequence[PartitionResult], checks: Sequence[CheckResult]) -> str | None:
    bad = [c for c in checks if c.status == "fail" and c.severity == "error"]
    if bad:
        names = ", ".join(f"{c.scope_key} {c.check_name}" for c in bad[:5])
        more = f" (+{len(bad) - 5} more)" if len(bad) > 5 else ""
        return f"{len(bad)} error-severity check(s) failed: {names}{more}; the data was kept, see `options-helper health`"
    attempted = [p for p in partials if p.status != SKIPPED]
    failures = [p for p in attempted if p.status == FAILED]
    if attempted and len(failures) == len(attempted):
        first = failures[0]
        return f"every symbol failed ({len(failures)}); first: {first.scope_key}: {first.error}"
    return None


# -- the daily pipeline ---------------------------------------------------------------------------
def run_daily(
    *,
    as_of: dt.date,
    symbols: Sequence[str] | None = None,
    settings: Settings,
    provider: MarketDataProvider | None = None,
    triggered_by: str = "python",
    parent_run_id: str | None = None,
    backfill_id: str | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
    resume: bool = False,
    jobs: Sequence[str] | None = None,
    generated_at: dt.datetime | None = None,
) -> DailyResult:
    """Every stage for ``as_of`` in the seed's order (candles, options bars, snapshots, flow,
    derived, briefing, dashboard). A symbol whose upstream asset failed for the session is
    skipped downstream with reason ``upstream_failed:<asset>``. ``generated_at`` stamps the
    reports (default: the session's close, so the same inputs render the same bytes)."""
    from ledger.calendar import TradingCalendar

    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise UsageError("now must be timezone-aware")
    calendar = TradingCalendar.xnys()
    check_session(as_of, settings, now, calendar)
    names = resolve_symbols(symbols, settings)
    order = list(jobs) if jobs is not None else list(registry.DAILY_ORDER)
    for j in order:
        registry.job(j)
    if provider is None and any(registry.asset(registry.job(j).asset_key).needs_provider for j in order):
        from stages.providers import build_provider

        provider = build_provider(settings)
    led = _open_ledger(settings)
    todo = [j for j in registry.DAILY_ORDER if j in order]
    broken: dict[str, set[str]] = {}  # asset -> symbols without a usable partition this session
    results: list[JobResult] = []

    def plan(job: str, broken: Mapping[str, set[str]]) -> _Plan:
        asset = registry.asset(registry.job(job).asset_key)
        return _Plan.make(job, as_of=as_of, names=names, settings=settings, provider=provider,
                          skip=_skips_for(asset, broken), resume=resume, skip_failed_upstream=False, led=led)

    # The next job is planned from a job's outcomes before that job commits, so its run starts in
    # that commit; should the commit fail, the plan is dropped and made again from what was kept.
    ahead: dict[str, tuple[_Plan, RunContext]] = {}

    def start_after(job: str, asset_key: str) -> StartNext | None:
        following = todo[todo.index(job) + 1:]
        if not following:
            return None

        def start(outcomes: Sequence[SymbolOutcome]) -> RunContext | None:
            p = plan(following[0], {**broken, asset_key: _broken_scopes(outcomes)})
            if p.idle:
                return None
            run = p.new_run(led, triggered_by=triggered_by, parent_run_id=parent_run_id, backfill_id=backfill_id)
            ahead[following[0]] = (p, run)
            return run

        return start

    for j in todo:
        t0, c0 = time.perf_counter(), _cpu_time()
        p, run = ahead.pop(j, (None, None))
        if p is None or run is None or not run.begun:
            p, run = plan(j, broken), None
        if p.idle:
            results.append(p.idle_result(t0, c0))
            broken[p.asset.key] = set()
            continue
        if run is None:
            run = p.new_run(led, triggered_by=triggered_by, parent_run_id=parent_run_id, backfill_id=backfill_id)
        result = _perform(p, run, led=led, settings=settings, now=now, calendar=calendar, progress=progress,
                          generated_at=generated_at, clock=_Clock(), started=t0, cpu=c0,
                          start_next=start_after(j, p.asset.key))
        results.append(result)
        broken[p.asset.key] = _broken_scopes(result.outcomes)
    status = SUCCESS if all(r.ok for r in results) else FAILED
    return DailyResult(as_of=as_of, status=status, results=tuple(results), seconds=time.perf_counter() - started)


def _broken_scopes(outcomes: Sequence[SymbolOutcome]) -> set[str]:
    """Scopes without a usable partition: failed, or skipped because their upstream failed."""
    return {o.scope_key for o in outcomes
            if o.status == FAILED or (o.status == SKIPPED and (o.reason or "").startswith(UPSTREAM_FAILED))}


__all__ = [
    "ALREADY_MATERIALIZED",
    "UPSTREAM_FAILED",
    "DailyResult",
    "JobResult",
    "SymbolOutcome",
    "check_session",
    "default_session",
    "dumps",
    "raise_for_status",
    "resolve_symbols",
    "run_daily",
    "run_job",
]
