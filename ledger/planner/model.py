"""The gap planner: which (asset, session, scope) cells are missing or out of date, why, and the
commands that fix them, upstream first.

The planner reads the projections only (``meta.partition_status``, ``meta.ingestion_runs``,
``meta.asset_checks``) and never imports ``stages``: the asset graph arrives as plain data
(``PlannerAsset``). The analysis is set-based: sessions, symbols and assets are mapped to small
integers once (registered Arrow tables joined in one scan of ``partition_status``), each analysed
asset becomes a dense (session, scope) grid of integer codes, and the rules run vectorised over
whole grids in graph order (numpy); ranges and steps are gaps and islands on those grids. See
docs/gaps.md for the rules and the figures; in short, per cell, first match wins:

=====================  ==========================================================================
``unrecoverable``      the cell needs work but cannot be produced: the provider cannot produce the
                       asset for that past session, or the cell is absent and an upstream cell it
                       needs is absent and itself unrecoverable
``failed``             the latest asset event is a failure, or (no row) a failed run targeted it
``abandoned``          no row, and an abandoned run targeted it
``upstream_missing``   no row (or a skipped one), and an upstream cell is absent or failed (and fixable)
``missing``            no row
``check_failed``       an error-severity check failed on the cell's current materialization
``stale``              the stage's code version changed since, an upstream cell was materialized
                       after this one, or an upstream cell is itself in the plan
=====================  ==========================================================================

A lag-1 dependency (flow needs the previous session's snapshot) makes the planner look at the
session before the window too, for the assets such a dependency reaches (the "lookback" cells).
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import attrs
import duckdb
import numpy as np

from ledger.calendar import CALENDAR_NAME, TradingCalendar
from ledger.errors import UsageError

ALL_SCOPE = "ALL"
REASONS = ("unrecoverable", "failed", "abandoned", "upstream_missing", "missing", "check_failed", "stale")
# Reasons of cells with no usable data (the cell does not exist, or its latest attempt failed).
ABSENT_REASONS = ("failed", "abandoned", "upstream_missing", "missing")

# Bits a cell passes to its dependents: it will change (present, in the plan); it is absent and
# fixable; it is absent and cannot be produced.
_WILL_CHANGE, _ABSENT_FIXABLE, _ABSENT_BLOCKED = 1, 2, 4


@attrs.frozen(kw_only=True)
class PlannerAsset:
    """One node of the asset graph, as the planner needs it.

    ``upstream``: ``(asset_key, lag)`` pairs, lag 0 (same session) or 1 (previous session).
    ``recoverable_before``: whether the asset can be produced for past sessions at all (a
    live-only provider dataset cannot); ``plan_gaps``'s ``unrecoverable`` mapping says from when.
    """

    key: str
    upstream: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=lambda us: tuple((k, int(lag)) for k, lag in us))
    per_symbol: bool = True
    job: str = ""
    cli_command: str = ""
    code_version: str | None = None
    recoverable_before: bool = True


@attrs.frozen(kw_only=True)
class GapRange:
    """Consecutive sessions of one (asset, scope) cell row with the same reason."""

    asset_key: str
    scope_key: str
    start: dt.date
    end: dt.date
    sessions: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"asset_key": self.asset_key, "scope_key": self.scope_key, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "sessions": self.sessions, "reason": self.reason}


@attrs.frozen(kw_only=True)
class PlanStep:
    """One command of the plan: one job over consecutive sessions for a group of symbols."""

    step: int
    job: str
    asset_key: str
    symbols: tuple[str, ...]  # () for ALL-scoped assets
    start: dt.date
    end: dt.date
    sessions: int
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "job": self.job, "asset_key": self.asset_key, "symbols": list(self.symbols),
                "start": self.start.isoformat(), "end": self.end.isoformat(), "sessions": self.sessions,
                "command": self.command}


@attrs.frozen(kw_only=True)
class GapPlan:
    """The result of ``plan_gaps``: what is wrong (``ranges``) and how to fix it (``steps``)."""

    start: dt.date
    end: dt.date
    sessions: int
    symbols: tuple[str, ...]
    assets: tuple[str, ...]
    cells_expected: int
    cells_missing: int  # cells the plan can fix (every reason but unrecoverable)
    cells_unrecoverable: int
    reasons: Mapping[str, int]
    ranges: tuple[GapRange, ...]
    steps: tuple[PlanStep, ...]
    lookback_session: dt.date | None = None
    lookback_assets: tuple[str, ...] = ()
    # The analysed sessions (lookback first, when there is one), to expand ranges into cells.
    session_days: tuple[dt.date, ...] = attrs.field(default=(), repr=False, eq=False)

    @property
    def ok(self) -> bool:
        return self.cells_missing == 0

    def cells(self, *, include_unrecoverable: bool = False) -> list[tuple[str, dt.date, str]]:
        """Every cell of the plan as ``(asset_key, session, scope_key)``, in plan order."""
        index = {d: i for i, d in enumerate(self.session_days)}
        out: list[tuple[str, dt.date, str]] = []
        for r in self.ranges:
            if r.reason == "unrecoverable" and not include_unrecoverable:
                continue
            i = index[r.start]
            out.extend((r.asset_key, d, r.scope_key) for d in self.session_days[i : i + r.sessions])
        rank = {a: i for i, a in enumerate(self.assets)}
        out.sort(key=lambda c: (c[1], rank.get(c[0], len(rank)), c[2]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "sessions": self.sessions,
            "symbols": list(self.symbols),
            "assets": list(self.assets),
            "cells_expected": self.cells_expected,
            "cells_missing": self.cells_missing,
            "cells_unrecoverable": self.cells_unrecoverable,
            "reasons": dict(self.reasons),
            "lookback": {"session": self.lookback_session.isoformat() if self.lookback_session else None,
                         "assets": list(self.lookback_assets)},
            "ranges": [r.to_dict() for r in self.ranges],
            "steps": [s.to_dict() for s in self.steps],
        }


# -- the graph ---------------------------------------------------------------------------------
def _check_graph(graph: Sequence[PlannerAsset]) -> dict[str, PlannerAsset]:
    by_key: dict[str, PlannerAsset] = {}
    for a in graph:
        if a.key in by_key:
            raise UsageError(f"asset {a.key!r} appears twice in the planner graph")
        for up, lag in a.upstream:
            if up not in by_key:
                raise UsageError(f"asset {a.key!r} depends on {up!r}, which is not before it in the graph; "
                                 "pass the graph in topological order")
            if lag not in (0, 1):
                raise UsageError(f"asset {a.key!r}: lag {lag} on {up!r} is not supported (0 or 1)")
        by_key[a.key] = a
    return by_key


def ancestors(graph: Sequence[PlannerAsset], keys: Sequence[str]) -> list[str]:
    """``keys`` and every asset they depend on, in graph order."""
    by_key = _check_graph(graph)
    wanted = set(keys)
    for a in reversed(graph):
        if a.key in wanted:
            wanted.update(up for up, _ in a.upstream)
    return [k for k in by_key if k in wanted]


def lookback_assets(graph: Sequence[PlannerAsset]) -> list[str]:
    """Assets needed at the session before the window: lag-1 targets and their same-session inputs."""
    wanted = {up for a in graph for up, lag in a.upstream if lag == 1}
    for a in reversed(graph):
        if a.key in wanted:
            wanted.update(up for up, lag in a.upstream if lag == 0)
    return [a.key for a in graph if a.key in wanted]


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


# -- the plan ----------------------------------------------------------------------------------
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
    by_key = _check_graph(graph)
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
    window: list[dt.date] = calendar.session_array(start, end).astype("datetime64[D]").tolist()
    if not window:
        raise UsageError(f"no {CALENDAR_NAME} sessions between {start} and {end}")
    sub = [by_key[k] for k in analysed]
    lb_assets = lookback_assets(sub)
    lookback = calendar.previous_session(window[0]) if lb_assets else None
    days = ([lookback] if lookback else []) + window
    first_window_idx = 1 if lookback else 0

    cutoffs = _cutoffs(sub, unrecoverable, end)
    layout = _Layout.of(sub, days, syms, {a.key: (0 if a.key in lb_assets else first_window_idx) for a in sub})
    with _registered(con, layout, versions) as names:
        cells = _read_cells(con, names, layout, meta)
        runs, checked = _read_runs_and_checks(con, names, layout, meta)
    reasons = _propagate(layout, cells, runs, checked, cutoffs)
    reported = [(i, a) for i, a in enumerate(sub) if a.key in report]
    ranges, steps, counts = _collapse(layout, reasons, reported, universe_option)

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
        ranges=ranges, steps=steps, lookback_session=lookback,
        lookback_assets=tuple(k for k in lb_assets if k in report), session_days=tuple(days),
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


# Reason codes of the dense grids: 0 = nothing to do, else 1 + the reason's index in REASONS.
_CODE = {r: i + 1 for i, r in enumerate(REASONS)}
# The status of a cell's row, as read: the low two bits; bit 2 set when its code version is stale.
_NONE, _MATERIALIZED, _SKIPPED, _FAILED, _CODE_STALE = 0, 1, 2, 3, 4
_NO_SEQ = np.iinfo(np.int64).min  # "no vseq" (SQL NULL) in the int64 grids
# Up to this many symbols, the scope filter is also pushed into the partition_status scan as an
# IN list (bound parameters), so a plan for a few symbols reads only their rows.
_SCOPE_PUSHDOWN = 64


@attrs.frozen
class _Layout:
    """Where each analysed cell lives in one flat array: asset ``i`` owns ``size(i)`` slots from
    ``base[i]``, row-major by (session index, scope id); an ALL-scoped asset has one column."""

    sub: tuple[PlannerAsset, ...]
    days: tuple[dt.date, ...]
    syms: tuple[str, ...]
    width: tuple[int, ...]
    base: tuple[int, ...]
    first_idx: tuple[int, ...]

    @classmethod
    def of(cls, sub: Sequence[PlannerAsset], days: Sequence[dt.date], syms: Sequence[str],
           first_idx: Mapping[str, int]) -> _Layout:
        width = tuple(len(syms) if a.per_symbol else 1 for a in sub)
        base = tuple(int(b) for b in np.cumsum([0, *(len(days) * w for w in width)])[:-1])
        return cls(tuple(sub), tuple(days), tuple(syms), width, base, tuple(first_idx[a.key] for a in sub))

    @property
    def total(self) -> int:
        return len(self.days) * sum(self.width)

    def grid(self, flat: np.ndarray, i: int) -> np.ndarray:
        """Asset ``i``'s part of ``flat`` as a (sessions, scopes) view."""
        n = len(self.days) * self.width[i]
        return flat[self.base[i] : self.base[i] + n].reshape(len(self.days), self.width[i])


@contextmanager
def _registered(con: duckdb.DuckDBPyConnection, layout: _Layout,
                versions: Mapping[str, str | None]) -> Iterator[dict[str, str]]:
    """The plan's small dictionary tables, registered under unique names and dropped afterwards:
    ``cal`` (idx, pk), ``syms`` (sid, scope_key) and ``assets`` (asset_key, job, per_symbol,
    version, base, w, first_idx): every string is mapped to an integer once, by these joins."""
    import pyarrow as pa

    tag = uuid.uuid4().hex[:10]
    names = {k: f"_gp_{tag}_{k}" for k in ("cal", "syms", "assets")}
    sub = layout.sub
    tables = {
        "cal": pa.table({"idx": pa.array(range(len(layout.days)), pa.int32()),
                         "pk": pa.array([d.isoformat() for d in layout.days], pa.string())}),
        "syms": pa.table({"sid": pa.array(range(len(layout.syms)), pa.int32()),
                          "scope_key": pa.array(list(layout.syms), pa.string())}),
        "assets": pa.table({
            "asset_key": pa.array([a.key for a in sub], pa.string()),
            "job": pa.array([a.job for a in sub], pa.string()),
            "per_symbol": pa.array([a.per_symbol for a in sub], pa.bool_()),
            "version": pa.array([versions.get(a.key) for a in sub], pa.string()),
            "base": pa.array(layout.base, pa.int64()),
            "w": pa.array(layout.width, pa.int64()),
            "first_idx": pa.array(layout.first_idx, pa.int32()),
        }),
    }
    try:
        for k, t in tables.items():
            con.register(names[k], t)
        yield names
    finally:
        for k in tables:
            with suppress(Exception):  # best effort: the connection may already be closed
                con.unregister(names[k])


def _cells_from(names: dict[str, str], meta: str) -> str:
    """FROM/WHERE of the partition rows of the analysed cells, with their flat position ``pos``.
    No range filter on ``partition_key``: the join with ``cal`` restricts the sessions, and DuckDB
    pushes its bounds into the scan for row-group pruning, whereas a literal range would be
    evaluated on every row before the more selective scope filter."""
    return (f"""FROM {meta}.partition_status p
        JOIN {names['assets']} a ON a.asset_key = p.asset_key
        JOIN {names['cal']} c ON c.pk = p.partition_key
        LEFT JOIN {names['syms']} s ON a.per_symbol AND s.scope_key = p.scope_key
        WHERE CASE WHEN a.per_symbol THEN s.sid IS NOT NULL ELSE p.scope_key = '{ALL_SCOPE}' END""")


_POS = "a.base + c.idx * a.w + coalesce(s.sid, 0)"


def _pushdown(layout: _Layout) -> tuple[str, list[Any]]:
    """Literal filters (bound parameters) the scan applies before any join, so that a plan for a
    few symbols reads only their rows. An equality is pushed into the scan itself; one scope is the
    most selective filter (and comparing short scope keys is cheaper than asset keys); a few
    scopes an IN list. With many, the joins below do the filtering."""
    scopes = ([*layout.syms] if any(a.per_symbol for a in layout.sub) else []) + (
        [ALL_SCOPE] if not all(a.per_symbol for a in layout.sub) else [])
    sql, params = "", []
    if len(layout.sub) == 1 and len(scopes) != 1:
        sql, params = " AND p.asset_key = ?", [layout.sub[0].key]
    if len(scopes) == 1:
        sql, params = sql + " AND p.scope_key = ?", [*params, *scopes]
    elif len(scopes) <= _SCOPE_PUSHDOWN:
        sql, params = sql + f" AND p.scope_key IN ({', '.join('?' * len(scopes))})", [*params, *scopes]
    return sql, params


def _read_cells(con: duckdb.DuckDBPyConnection, names: dict[str, str], layout: _Layout,
                meta: str) -> tuple[np.ndarray, np.ndarray]:
    """One pass over ``partition_status``: the flat grids of row status (``_NONE`` where there is
    no row; ``| _CODE_STALE`` when materialized by another code version) and vseq (the seq a
    downstream cell compares with: the materialization, or the skip; ``_NO_SEQ`` otherwise)."""
    extra, params = _pushdown(layout)
    rows = con.execute(f"""
        SELECT {_POS} AS pos,
               (CASE p.status WHEN 'materialized' THEN {_MATERIALIZED} WHEN 'skipped' THEN {_SKIPPED}
                              WHEN 'failed' THEN {_FAILED} ELSE {_NONE} END
                + CASE WHEN p.status = 'materialized' AND p.code_version <> a.version THEN {_CODE_STALE}
                       ELSE 0 END)::UTINYINT AS code,
               coalesce(CASE p.status WHEN 'materialized' THEN p.materialized_seq WHEN 'skipped' THEN p.last_seq END,
                        {_NO_SEQ}) AS vseq
        {_cells_from(names, meta)}{extra}""", params).fetchnumpy()
    status = np.zeros(layout.total, np.uint8)
    vseq = np.full(layout.total, _NO_SEQ, np.int64)
    pos = np.asarray(rows["pos"], np.int64)
    status[pos] = np.asarray(rows["code"], np.uint8)
    vseq[pos] = np.asarray(rows["vseq"], np.int64)
    return status, vseq


def _failing_checks(names: dict[str, str], meta: str) -> str:
    """Error-severity checks whose latest evaluation (per check and materialization, or run when
    the event has no link) failed: start from the failures (rare) and drop those evaluated again
    later. Parameters: the window's first and last partition keys."""
    return f"""
        SELECT f.asset_key, f.partition_key, f.scope_key, f.run_id, f.materialization_seq
        FROM {meta}.asset_checks f
        WHERE f.severity = 'error' AND f.status = 'fail' AND f.partition_key BETWEEN ? AND ?
          AND f.asset_key IN (SELECT asset_key FROM {names['assets']})
          AND NOT EXISTS (
            SELECT 1 FROM {meta}.asset_checks k
            WHERE k.asset_key = f.asset_key AND k.partition_key = f.partition_key AND k.scope_key = f.scope_key
              AND k.check_name = f.check_name AND k.seq > f.seq AND k.severity = 'error'
              AND coalesce(k.materialization_seq, -1) = coalesce(f.materialization_seq, -1)
              AND k.run_id IS NOT DISTINCT FROM f.run_id)"""


def _read_runs_and_checks(con: duckdb.DuckDBPyConnection, names: dict[str, str], layout: _Layout,
                          meta: str) -> tuple[np.ndarray, np.ndarray]:
    """(runs, checked). ``runs``, a flat grid: 1 where the latest failed run that targeted the
    cell failed, 2 where it was abandoned (a run naming no scopes targets every scope; an exact
    scope beats such a run, then a failure beats an abandonment, then the later run). ``checked``:
    the flat positions of the materialized cells whose current materialization failed an error
    check. One small statement; ``partition_status`` is read again only when a check fails."""
    lo, hi = layout.days[0].isoformat(), layout.days[-1].isoformat()
    rows = con.execute(f"""
        WITH r AS (
            SELECT r.job_name, r.partition_key, r.status, coalesce(r.first_seq, r.last_seq) AS seq,
                   unnest(CASE WHEN len(coalesce(r.scope_keys, []::VARCHAR[])) = 0 THEN ['*']
                               ELSE r.scope_keys END) AS scope
            FROM {meta}.ingestion_runs r
            WHERE r.status IN ('failed', 'abandoned') AND r.partition_key BETWEEN ? AND ?
              AND r.job_name IN (SELECT job FROM {names['assets']} WHERE job <> '')
        ), keyed AS (
            SELECT a.base + c.idx * a.w + s.sid AS pos, r.status, r.seq, r.scope = '*' AS wildcard
            FROM r JOIN {names['assets']} a ON a.job = r.job_name JOIN {names['cal']} c ON c.pk = r.partition_key
                   JOIN {names['syms']} s ON (s.scope_key = r.scope OR r.scope = '*')
            WHERE a.per_symbol AND c.idx >= a.first_idx
            UNION ALL
            SELECT a.base + c.idx * a.w AS pos, r.status, r.seq, FALSE
            FROM r JOIN {names['assets']} a ON a.job = r.job_name JOIN {names['cal']} c ON c.pk = r.partition_key
            WHERE NOT a.per_symbol AND c.idx >= a.first_idx
        )
        SELECT pos, CASE arg_max(status, (NOT wildcard, status = 'failed', seq)) WHEN 'failed' THEN 1 ELSE 2 END
        FROM keyed GROUP BY pos
        UNION ALL
        SELECT -1, count(*) FROM ({_failing_checks(names, meta)})""", [lo, hi, lo, hi]).fetchall()
    runs = np.zeros(layout.total, np.uint8)
    failing = 0
    for pos, value in rows:
        if pos < 0:
            failing = value
        else:
            runs[pos] = value
    if not failing:
        return runs, np.zeros(0, np.int64)
    # A failed check of a linked materialization flags that materialization (its seq is unique);
    # an unlinked one flags the cells its run materialized (every scope for a check on ALL).
    found = con.execute(f"""
        WITH g AS ({_failing_checks(names, meta)})
        SELECT {_POS} AS pos {_cells_from(names, meta)}
          AND p.status = 'materialized'
          AND (p.materialized_seq IN (SELECT materialization_seq FROM g WHERE materialization_seq IS NOT NULL)
               OR EXISTS (SELECT 1 FROM g WHERE g.materialization_seq IS NULL AND g.asset_key = p.asset_key
                          AND g.partition_key = p.partition_key AND g.run_id = p.materialized_run_id
                          AND (g.scope_key = p.scope_key OR g.scope_key = '{ALL_SCOPE}' OR NOT a.per_symbol)))""",
        [lo, hi]).fetchnumpy()
    return runs, np.asarray(found["pos"], np.int64)


def _propagate(layout: _Layout, cells: tuple[np.ndarray, np.ndarray], runs: np.ndarray, checked: np.ndarray,
               cutoffs: Mapping[str, dt.date]) -> list[np.ndarray]:
    """Each analysed asset's (sessions, scopes) grid of reason codes, in graph order.

    Vectorised over whole grids: a cell passes three bits to its dependents (will change; absent
    and fixable; absent and blocked) and its vseq; a lag-1 edge is a shift by one session, an
    ALL cell reads the OR (bits) and max (vseq) over every symbol of its session."""
    status_flat, vseq_flat = cells
    chk_flat = np.zeros(layout.total, bool)
    chk_flat[checked] = True
    index = {a.key: i for i, a in enumerate(layout.sub)}
    n_days = len(layout.days)
    rows = np.arange(n_days)[:, None]
    bits_of: list[np.ndarray] = []
    vseq_of: list[np.ndarray] = []
    out: list[np.ndarray] = []
    for i, a in enumerate(layout.sub):
        code, vseq = layout.grid(status_flat, i), layout.grid(vseq_flat, i)
        run, chk = layout.grid(runs, i), layout.grid(chk_flat, i)
        status = code & 3
        present = (status == _MATERIALIZED) | (status == _SKIPPED)
        up_bits = np.zeros(code.shape, np.uint8)
        up_vseq = np.full(code.shape, _NO_SEQ, np.int64)
        for up, lag in a.upstream:
            j = index[up]
            ub, uv = bits_of[j], vseq_of[j]
            if layout.sub[j].per_symbol and not a.per_symbol:
                ub = np.bitwise_or.reduce(ub, axis=1, keepdims=True)
                uv = np.max(uv, axis=1, keepdims=True, initial=_NO_SEQ)
            if lag:
                ub = np.concatenate([np.zeros((lag, ub.shape[1]), ub.dtype), ub[:-lag]])
                uv = np.concatenate([np.full((lag, uv.shape[1]), _NO_SEQ, uv.dtype), uv[:-lag]])
            up_bits |= ub
            np.maximum(up_vseq, uv, out=up_vseq)
        none = status == _NONE
        fixable_up = (up_bits & _ABSENT_FIXABLE) != 0
        stale = (((code & _CODE_STALE) != 0) | ((up_bits & (_WILL_CHANGE | _ABSENT_FIXABLE)) != 0)
                 | ((up_vseq > vseq) & (vseq != _NO_SEQ)))
        base = np.select(
            [status == _FAILED, none & (run == 1), none & (run == 2), none & fixable_up, none,
             (status == _MATERIALIZED) & chk, (status == _SKIPPED) & fixable_up, stale],
            [_CODE[r] for r in ("failed", "failed", "abandoned", "upstream_missing", "missing",
                                "check_failed", "upstream_missing", "stale")],
            0).astype(np.uint8)
        base[: layout.first_idx[i]] = 0  # not analysed: no cell
        cutoff_idx = _cutoff_index(layout.days, cutoffs.get(a.key))
        blocked = (base != 0) & ((rows < cutoff_idx) | (~present & ((up_bits & _ABSENT_BLOCKED) != 0)))
        out.append(np.where(blocked, np.uint8(_CODE["unrecoverable"]), base))
        bits = np.where(present, np.uint8(_WILL_CHANGE), np.uint8(_ABSENT_FIXABLE))
        bits[blocked] = np.where(present[blocked], 0, _ABSENT_BLOCKED)
        bits[base == 0] = 0
        bits_of.append(bits.astype(np.uint8))
        v = vseq.copy()
        v[: layout.first_idx[i]] = _NO_SEQ
        vseq_of.append(v)
    return out


def _runs_of(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal non-zero values along the sessions of each scope of a (sessions, scopes)
    grid (gaps and islands): (scope, first session, length, value), by scope then session."""
    n_days = grid.shape[0]
    flat = np.zeros((grid.shape[1], n_days + 1), grid.dtype)  # a zero column keeps scopes apart
    flat[:, :n_days] = grid.T
    flat = flat.ravel()
    edges = np.flatnonzero(np.diff(flat, prepend=flat.dtype.type(0)) != 0)
    lengths = np.diff(np.append(edges, flat.size))
    values = flat[edges]
    keep = values != 0
    edges, lengths, values = edges[keep], lengths[keep], values[keep]
    scope, first = np.divmod(edges, n_days + 1)
    return scope, first, lengths, values


def _collapse(layout: _Layout, reasons: Sequence[np.ndarray], reported: Sequence[tuple[int, PlannerAsset]],
              universe_option: str | None) -> tuple[tuple[GapRange, ...], tuple[PlanStep, ...], dict[str, int]]:
    """Ranges per (asset, scope, reason), steps per (asset, session range, symbols), and the count
    of cells per reason, for the reported assets in graph order."""
    days = layout.days
    unrec = _CODE["unrecoverable"]
    totals = np.zeros(len(REASONS) + 1, np.int64)
    ranges: list[GapRange] = []
    steps: list[PlanStep] = []
    for i, a in reported:
        grid = reasons[i]
        totals += np.bincount(grid.ravel(), minlength=len(REASONS) + 1)
        scopes = list(layout.syms) if a.per_symbol else [ALL_SCOPE]
        scope, first, length, value = (x.tolist() for x in _runs_of(grid))
        ranges.extend(
            GapRange(asset_key=a.key, scope_key=scopes[s], start=days[lo], end=days[lo + n - 1], sessions=n,
                     reason=REASONS[v - 1])
            for s, lo, n, v in zip(scope, first, length, value, strict=True))
        # Steps: islands of cells to fix (any reason but unrecoverable), symbols with the same
        # island grouped, ordered by first session, last session, then symbol.
        s_arr, lo_arr, n_arr, _ = _runs_of(((grid != 0) & (grid != unrec)).astype(np.uint8))
        hi_arr = lo_arr + n_arr - 1
        order = np.lexsort((s_arr, hi_arr, lo_arr))
        s_arr, lo_arr, hi_arr = s_arr[order], lo_arr[order], hi_arr[order]
        cut = np.flatnonzero((np.diff(lo_arr) != 0) | (np.diff(hi_arr) != 0)) + 1
        bounds = np.concatenate([[0], cut, [len(order)]]).tolist() if len(order) else [0]
        s_list, lo_list, hi_list = s_arr.tolist(), lo_arr.tolist(), hi_arr.tolist()
        for b0, b1 in itertools.pairwise(bounds):
            lo, hi = lo_list[b0], hi_list[b0]
            steps.append(_step(len(steps) + 1, a, [scopes[s] for s in s_list[b0:b1]], days[lo], days[hi],
                               hi - lo + 1, universe_option))
    counts = {r: int(totals[_CODE[r]]) for r in REASONS if totals[_CODE[r]]}
    return tuple(ranges), tuple(steps), counts


def _cutoff_index(days: Sequence[dt.date], cutoff: dt.date | None) -> int:
    if cutoff is None:
        return -1
    return int(np.searchsorted(np.array(days, dtype="datetime64[D]"), np.datetime64(cutoff, "D"), side="left"))


def _step(n: int, a: PlannerAsset, scopes: list[str], lo: dt.date, hi: dt.date, sessions: int,
          universe_option: str | None) -> PlanStep:
    symbols = tuple(scopes) if a.per_symbol else ()
    if a.per_symbol:
        sym_opt = f" --symbols {','.join(symbols)}"
    else:
        sym_opt = f" {universe_option}" if universe_option else ""
    if sessions == 1 and a.cli_command:
        command = f"options-helper {a.cli_command} --as-of {lo.isoformat()}{sym_opt}"
    else:
        command = (f"options-helper backfill --assets {a.key}{sym_opt} "
                   f"--start {lo.isoformat()} --end {hi.isoformat()}")
    return PlanStep(step=n, job=a.job, asset_key=a.key, symbols=symbols, start=lo, end=hi, sessions=sessions,
                    command=command)


# -- backfill bookkeeping (read side) ----------------------------------------------------------
def backfill_planned(con: duckdb.DuckDBPyConnection, backfill_id: str, meta: str = "meta") -> dict[str, Any] | None:
    """The ``BackfillPlanned`` event of ``backfill_id``: seq, recorded_at, args, cells; or None."""
    import json

    rows = con.execute(
        f"SELECT seq, recorded_at, CAST(payload AS VARCHAR) FROM {meta}.events "
        "WHERE event_type = 'backfill_planned' AND payload->>'backfill_id' = ? ORDER BY seq LIMIT 1",
        [backfill_id]).fetchall()
    if not rows:
        return None
    row = rows[0]
    payload = json.loads(row[2])
    return {"seq": int(row[0]), "recorded_at": row[1], "args": payload.get("args", {}),
            "cells": [tuple(c) for c in payload.get("cells", [])]}


def backfill_cell_states(con: duckdb.DuckDBPyConnection, backfill_id: str, planned_seq: int,
                         meta: str = "meta") -> list[tuple[str, str, str, str]]:
    """Each target cell of a backfill with its state: ``done`` (materialized or skipped since the
    backfill was planned), ``failed`` (its latest event since then is a failure) or ``pending``."""
    rows = con.execute(f"""
        WITH cells AS (
            SELECT c[1] AS asset_key, c[2] AS partition_key, c[3] AS scope_key
            FROM (SELECT unnest(CAST(payload->'cells' AS VARCHAR[][])) AS c FROM {meta}.events
                  WHERE event_type = 'backfill_planned' AND seq = ?)
        )
        SELECT c.asset_key, c.partition_key, c.scope_key,
               CASE WHEN p.status IN ('materialized', 'skipped') AND p.last_seq > ? THEN 'done'
                    WHEN p.status = 'materialized' AND p.materialized_seq > ? THEN 'done'
                    WHEN p.status = 'failed' AND p.last_seq > ? THEN 'failed'
                    ELSE 'pending' END AS state
        FROM cells c LEFT JOIN {meta}.partition_status p
          ON p.asset_key = c.asset_key AND p.partition_key = c.partition_key AND p.scope_key = c.scope_key
        ORDER BY c.partition_key, c.asset_key, c.scope_key""",
        [planned_seq, planned_seq, planned_seq, planned_seq]).fetchall()
    return [(str(a), str(p), str(s), str(state)) for a, p, s, state in rows]


def backfill_runs(con: duckdb.DuckDBPyConnection, backfill_id: str, meta: str = "meta") -> list[dict[str, Any]]:
    """The runs a backfill started, oldest first."""
    cur = con.execute(
        f"SELECT run_id, job_name, partition_key, status, scope_keys, started_at, ended_at, error_message "
        f"FROM {meta}.ingestion_runs WHERE backfill_id = ? ORDER BY first_seq", [backfill_id])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def backfill_finished(con: duckdb.DuckDBPyConnection, backfill_id: str, meta: str = "meta") -> dict[str, Any] | None:
    import json

    rows = con.execute(
        f"SELECT seq, recorded_at, CAST(payload AS VARCHAR) FROM {meta}.events "
        "WHERE event_type = 'backfill_finished' AND payload->>'backfill_id' = ? ORDER BY seq DESC LIMIT 1",
        [backfill_id]).fetchall()
    if not rows:
        return None
    row = rows[0]
    payload = json.loads(row[2])
    return {"seq": int(row[0]), "recorded_at": row[1], "status": payload.get("status"),
            "message": payload.get("message", "")}


__all__ = [
    "ABSENT_REASONS",
    "ALL_SCOPE",
    "REASONS",
    "GapPlan",
    "GapRange",
    "PlanStep",
    "PlannerAsset",
    "ancestors",
    "backfill_cell_states",
    "backfill_finished",
    "backfill_planned",
    "backfill_runs",
    "default_window",
    "lookback_assets",
    "plan_gaps",
]
