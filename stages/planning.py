"""The gap planner, wired to the registry, the provider and the settings.

``ledger.planner`` knows nothing of stages: this module turns the registry and the provider's
capabilities into ``PlannerAsset`` rows, picks the window and the universe, opens the ledger
read-only and calls ``plan_gaps``.

    import stages
    plan = stages.plan(settings, start=dt.date(2026, 11, 2), symbols=["AAPL"])
    plan.to_dict()["steps"]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ledger.calendar import TradingCalendar
from ledger.config import DEFAULT_FLOW_MAX_GAP_SESSIONS, Settings
from ledger.errors import OptionsHelperError, UsageError
from ledger.planner import GapPlan, PlannerAsset, default_window, plan_gaps
from stages import registry

if TYPE_CHECKING:
    from ledger import Ledger
    from stages.providers.capabilities import ProviderCapabilities

DEFAULT_SESSIONS = 20


def provider_capabilities(settings: Settings) -> ProviderCapabilities:
    """The capabilities of the configured provider, without building or importing it (no
    credentials needed, and `gaps` starts without the synthetic market's modules)."""
    from stages.providers.capabilities import CAPABILITIES

    try:
        return CAPABILITIES[settings.provider]
    except KeyError:
        from ledger.errors import ConfigError

        raise ConfigError(f"unknown provider {settings.provider!r}; choose synthetic or alpaca") from None


def planner_graph(capabilities: ProviderCapabilities | None = None, *,
                  max_gap_sessions: int = DEFAULT_FLOW_MAX_GAP_SESSIONS) -> list[PlannerAsset]:
    """The registry's asset graph as planner input, in topological order. A lag-1 input with
    ``fallback`` reaches ``max_gap_sessions`` back (the settings' ``flow_max_gap_sessions``)."""
    out = []
    for spec in registry.ASSETS:
        job = registry.job_for_asset(spec.key)
        recoverable = True
        if spec.provider_dataset and capabilities is not None:
            recoverable = capabilities.can_backfill(spec.provider_dataset)
        out.append(PlannerAsset(
            key=spec.key, upstream=tuple((u.asset_key, u.lag) for u in spec.upstream), per_symbol=spec.per_symbol,
            job=job.name, cli_command=job.cli_command, code_version=job.code_version, recoverable_before=recoverable,
            lag_reach=max_gap_sessions if any(u.lag and u.fallback for u in spec.upstream) else 1,
        ))
    return out


def resolve_assets(assets: Sequence[str] | None) -> list[str] | None:
    """Validate ``--assets`` (comma-separated values allowed); None means every asset."""
    if not assets:
        return None
    keys = [k.strip() for item in assets for k in item.split(",") if k.strip()]
    for k in keys:
        registry.asset(k)  # raises UsageError naming the known assets
    return [k for k in registry.ASSET_KEYS if k in set(keys)]


def resolve_symbols(settings: Settings, symbols: Sequence[str] | None) -> tuple[list[str], bool]:
    """(the universe, whether it was given explicitly). Default: the default watchlist and the
    portfolio's underlyings (``stages.inputs.universe``), as every stage's default symbols."""
    if symbols:
        syms = sorted({s.strip().upper() for item in symbols for s in item.split(",") if s.strip()})
        if syms:
            return syms, True
    from stages.inputs import universe

    return sorted(universe(settings)), False


def plan(
    settings: Settings,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    assets: Sequence[str] | None = None,
    symbols: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    capabilities: ProviderCapabilities | None = None,
    calendar: TradingCalendar | None = None,
    clock: Callable[[], dt.datetime] | None = None,
) -> GapPlan:
    """The gap plan for the ledger of ``settings``.

    Window: [start, end] (default: the 20 sessions ending at the latest completed session, i.e.
    the last XNYS close plus ``settings.session_close_delay_minutes`` before ``now``). Universe:
    ``symbols`` or the default watchlist. With explicit ``symbols`` and no ``assets``, the
    ALL-scoped assets (briefing, dashboard) are left out: they cover the whole universe.
    """
    import ledger

    cal = calendar or TradingCalendar.xnys()
    when = now or (clock or (lambda: dt.datetime.now(dt.UTC)))()
    latest = cal.latest_completed_session(when, settings.session_close_delay_minutes)
    lo, hi = default_window(cal, start=start, end=end, latest=latest, sessions=DEFAULT_SESSIONS)
    caps = capabilities if capabilities is not None else provider_capabilities(settings)
    graph = planner_graph(caps, max_gap_sessions=settings.flow_max_gap_sessions)
    universe, explicit = resolve_symbols(settings, symbols)
    keys = resolve_assets(assets)
    if keys is None and explicit:
        keys = [a.key for a in graph if a.per_symbol]
    # A live-only dataset can be produced for the latest completed session only.
    unrecoverable: dict[str, dt.date | None] = {a.key: (None if a.recoverable_before else latest) for a in graph}
    universe_option = f"--symbols {','.join(universe)}" if explicit else None

    if not settings.duckdb_path.exists():
        raise _no_database(settings)
    led = ledger.Ledger.from_settings(settings, read_only=True)
    with led.reader() as con:
        return plan_gaps(
            con, graph=graph, symbols=universe, start=lo, end=hi, calendar=cal,
            code_versions=registry.code_versions(), unrecoverable=unrecoverable, assets=keys,
            universe_option=universe_option,
        )


# Cell statuses of the partition grid, worst last.
CELL_STATUSES = ("ok", "stale", "partial", "skipped", "missing", "failed")


def cell_statuses(
    led: Ledger, *, start: dt.date, end: dt.date, scopes: Sequence[str], calendar: TradingCalendar | None = None,
) -> list[dict[str, Any]]:
    """One row per (asset, XNYS session) in [start, end], in registry then session order: the
    cell's status over ``scopes`` (per-symbol assets) or the ALL scope. ``ok``: every expected
    cell materialized by this code version; ``stale``: materialized, some by an older code
    version; ``failed``: not all materialized and one failed; ``partial``: some materialized;
    ``skipped``; ``missing``. A later failure does not undo a materialization."""
    cal = calendar or TradingCalendar.xnys()
    sessions = [d.isoformat() for d in cal.sessions_in_range(start, end)]
    if not sessions:
        return []
    found = {(r["asset_key"], r["partition_key"]): r
             for r in led.partition_cells(start=start, end=end, scopes=list(scopes))}
    code = registry.code_versions()
    out = []
    for spec in registry.ASSETS:
        expected = max(1, len(scopes)) if spec.per_symbol else 1
        for day in sessions:
            cell = found.get((spec.key, day), {})
            ok, failed, skipped = int(cell.get("ok") or 0), int(cell.get("failed") or 0), int(cell.get("skipped") or 0)
            if ok >= expected:
                stale = any(v != code.get(spec.key) for v in cell.get("code_versions") or [])
                status = "stale" if stale else "ok"
            else:
                status = "failed" if failed else "partial" if ok else "skipped" if skipped else "missing"
            detail = f"{ok}/{expected} ok" + (f", {failed} failed" if failed else "") + (f", {skipped} skipped" if skipped else "")
            out.append({"asset_key": spec.key, "session": day, "status": status, "ok": ok, "failed": failed,
                        "skipped": skipped, "expected": expected, "detail": detail})
    return out


def _no_database(settings: Settings) -> OptionsHelperError:
    from ledger.errors import DatabaseNotFoundError

    return DatabaseNotFoundError(
        f"no database at {settings.duckdb_path}; create one with `options-helper db init` "
        "(every cell of the window is missing until the first run)")


def parse_window(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    from ledger.calendar import parse_date

    lo = parse_date(start) if start else None
    hi = parse_date(end) if end else None
    if lo and hi and lo > hi:
        raise UsageError(f"--start {lo} is after --end {hi}")
    return lo, hi


__all__ = ["CELL_STATUSES", "DEFAULT_SESSIONS", "cell_statuses", "parse_window", "plan", "planner_graph", "provider_capabilities",
           "resolve_assets", "resolve_symbols"]
