"""``plan_gaps``: the window and the analysed assets, then read, propagate, collapse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np

# the submodules themselves, not the package (whose __init__ imports this module)
import ledger.planner.grid as grid
import ledger.planner.ranges as ranges
import ledger.planner.reads as reads
from ledger.calendar import CALENDAR_NAME, TradingCalendar
from ledger.errors import UsageError
from ledger.planner.graph import ancestors, check_graph, lookback_assets
from ledger.planner.model import REASONS, GapPlan, PlannerAsset


def default_window(calendar: TradingCalendar, *, start: dt.date | None, end: dt.date | None,
                   latest: dt.date, sessions: int = 20) -> tuple[dt.date, dt.date]:
    """[start, end] with the defaults: end = the latest completed session, start = ``sessions``
    sessions back from end."""
    end = end or latest
    for name, day in (("--start", start), ("--end", end)):
        if day is not None and not (calendar.first_session <= day <= calendar.last_session):
            raise UsageError(f"{name} {day} is outside the trading calendar "
                             f"({calendar.first_session} .. {calendar.last_session})")
    if start is None:
        start = calendar.last_sessions(sessions, end)[0]
    if start > end:
        raise UsageError(f"--start {start} is after --end {end}")
    return start, end


def plan_gaps(
    con: duckdb.DuckDBPyConnection,
    *,
    graph: Sequence[PlannerAsset],
    symbols: Sequence[str],
    start: dt.date,
    end: dt.date,
    calendar: TradingCalendar,
    code_versions: Mapping[str, str] | None = None,
    unrecoverable: Mapping[str, dt.date | None] | None = None,
    assets: Sequence[str] | None = None,
    universe_option: str | None = None,
    meta: str = "meta",
) -> GapPlan:
    """Plan the gaps of ``assets`` (default: the whole graph) for ``symbols`` over the sessions in
    [start, end], from the projections in schema ``meta`` of ``con``.

    ``graph`` is the whole asset graph in topological order (upstream assets are analysed even when
    not reported). ``code_versions`` (default: each asset's ``code_version``) marks older
    materializations stale. ``unrecoverable`` maps an asset to the first session it can still be
    produced for (``None``: any); missing cells before it are ``unrecoverable``. Assets with
    ``recoverable_before=False`` and no entry can only be produced for ``end``.
    ``universe_option`` is appended to the commands of ALL-scoped assets (e.g. ``--symbols A,B``).
    """
    by_key = check_graph(graph)
    if start > end:
        raise UsageError(f"start {start} is after end {end}")
    report = list(by_key) if assets is None else [a for a in by_key if a in set(assets)]
    unknown = set(assets or ()) - set(by_key)
    if unknown:
        raise UsageError(f"unknown asset(s) {', '.join(sorted(unknown))}; known: {', '.join(by_key)}")
    syms = sorted({s.strip().upper() for s in symbols if s.strip()})
    if not syms and any(by_key[a].per_symbol for a in report):
        raise UsageError("no symbols to plan for; pass --symbols or configure a watchlist")
    versions = {a.key: a.code_version for a in graph} | dict(code_versions or {})

    analysed = ancestors(graph, report)
    window = np.array(calendar.sessions_in_range(start, end), dtype="datetime64[D]")
    if not len(window):
        raise UsageError(f"no {CALENDAR_NAME} sessions between {start} and {end}")
    sub = [by_key[k] for k in analysed]
    lb_assets = lookback_assets(sub)
    lookback = calendar.previous_session(window[0].item()) if lb_assets else None
    days = np.concatenate([np.array([lookback], "datetime64[D]"), window]) if lookback else window
    first_window_idx = 1 if lookback else 0

    cutoffs = _cutoffs(sub, unrecoverable, end)
    layout = grid.Layout.of(sub, days, syms, {a.key: (0 if a.key in lb_assets else first_window_idx) for a in sub})
    found = reads.read(con, layout, versions, meta)
    reasons = grid.propagate(layout, found, cutoffs)
    reported = [(i, a) for i, a in enumerate(sub) if a.key in report]
    gap_ranges, steps, counts = ranges.collapse(layout, reasons, reported, universe_option)

    n_window = len(window)
    expected = 0
    for k in report:
        width = len(syms) if by_key[k].per_symbol else 1
        expected += width * (n_window + (1 if k in lb_assets and lookback else 0))
    unrec = int(counts.get("unrecoverable", 0))
    return GapPlan(
        start=start, end=end, sessions=n_window, symbols=tuple(syms), assets=tuple(report),
        cells_expected=expected, cells_missing=sum(int(v) for v in counts.values()) - unrec,
        cells_unrecoverable=unrec, reasons={r: int(counts[r]) for r in REASONS if r in counts},
        ranges=gap_ranges, steps=steps, lookback_session=lookback,
        lookback_assets=tuple(k for k in lb_assets if k in report), session_days=layout.days,
    )


def _cutoffs(sub: Sequence[PlannerAsset], unrecoverable: Mapping[str, dt.date | None] | None,
             end: dt.date) -> dict[str, dt.date]:
    out: dict[str, dt.date] = {}
    given = dict(unrecoverable or {})
    for a in sub:
        if a.key in given:
            if given[a.key] is not None:
                out[a.key] = given[a.key]  # type: ignore[assignment]
        elif not a.recoverable_before:
            out[a.key] = end
    return out
