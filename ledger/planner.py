"""The gap planner: which (asset, session, scope) cells are missing or out of date, why, and the
commands that fix them, upstream first.

The planner reads the projections only (``meta.partition_status``, ``meta.ingestion_runs``,
``meta.asset_checks``) and never imports ``stages``: the asset graph arrives as plain data
(``PlannerAsset``). The analysis is set-based SQL: the sessions of the window are registered as an
Arrow table with their index, and one ``CREATE TEMP TABLE`` per asset, in graph order, joins that
asset's expected cells (sessions x scopes) to its partition rows and to the states already computed
for its upstream assets. See docs/gaps.md for the rules; in short, per cell, first match wins:

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
        out = []
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
    window = [_to_date(d) for d in calendar.session_array(start, end)]
    if not window:
        raise UsageError(f"no {CALENDAR_NAME} sessions between {start} and {end}")
    sub = [by_key[k] for k in analysed]
    lb_assets = lookback_assets(sub)
    lookback = calendar.previous_session(window[0]) if lb_assets else None
    days = ([lookback] if lookback else []) + window
    first_window_idx = 1 if lookback else 0

    cutoffs = _cutoffs(sub, unrecoverable, end)
    with _scratch(con) as names:
        _register_inputs(con, names, days, syms)
        _prepare_runs_and_checks(con, names, sub, days, meta)
        for i, a in enumerate(sub):
            first_idx = 0 if a.key in lb_assets else first_window_idx
            _asset_state(con, names, i, a, sub, days, len(syms), first_idx, versions.get(a.key),
                         cutoffs.get(a.key), meta)
        reported = [(i, a) for i, a in enumerate(sub) if a.key in report]
        if reported:
            con.execute(f"CREATE TEMP TABLE {names['gaps']} AS " + " UNION ALL ".join(
                f"SELECT {i} AS ord, t.idx, coalesce(s.scope_key, '{ALL_SCOPE}') AS scope_key, t.reason "
                f"FROM {names['st']}{i} t LEFT JOIN {names['syms']} s ON s.sid = t.sid WHERE t.reason IS NOT NULL"
                for i, _ in reported))
        else:
            con.execute(f"CREATE TEMP TABLE {names['gaps']} (ord INTEGER, idx INTEGER, scope_key VARCHAR, reason VARCHAR)")
        counts = dict(con.execute(f"SELECT reason, count(*) FROM {names['gaps']} GROUP BY reason").fetchall())
        range_rows = con.execute(f"""
            SELECT ord, scope_key, reason, min(idx), count(*) FROM (
                SELECT *, idx - row_number() OVER (PARTITION BY ord, scope_key, reason ORDER BY idx) AS grp
                FROM {names['gaps']}) GROUP BY ord, scope_key, reason, grp
            ORDER BY ord, scope_key, min(idx), reason""").fetchall()
        step_rows = con.execute(f"""
            WITH fix AS (
                SELECT ord, scope_key, idx,
                       idx - row_number() OVER (PARTITION BY ord, scope_key ORDER BY idx) AS grp
                FROM {names['gaps']} WHERE reason <> 'unrecoverable'
            ), isl AS (
                SELECT ord, scope_key, min(idx) AS lo, max(idx) AS hi FROM fix GROUP BY ord, scope_key, grp
            )
            SELECT ord, lo, hi, list(scope_key ORDER BY scope_key) FROM isl
            GROUP BY ord, lo, hi ORDER BY ord, lo, hi""").fetchall()

    ranges = tuple(
        GapRange(asset_key=sub[o].key, scope_key=scope, start=days[lo], end=days[lo + n - 1], sessions=n, reason=r)
        for o, scope, r, lo, n in range_rows
    )
    steps = tuple(
        _step(n + 1, sub[o], list(scopes), days[lo], days[hi], hi - lo + 1, universe_option)
        for n, (o, lo, hi, scopes) in enumerate(step_rows)
    )
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


@contextmanager
def _scratch(con: duckdb.DuckDBPyConnection) -> Iterator[dict[str, str]]:
    """Unique names for the temp tables and views of one plan, dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    names = {k: f"_gp_{tag}_{k}" for k in ("cal", "syms", "jobs", "bad", "chk_mat", "chk_run", "chk_ck", "gaps", "st")}
    try:
        yield names
    finally:
        for k in ("cal", "syms", "jobs"):
            with suppress(Exception):  # best effort: the connection may already be closed
                con.unregister(names[k])
        tables = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE ?", [f"_gp_{tag}_%"]
        ).fetchall()
        for (t,) in tables:
            con.execute(f"DROP TABLE IF EXISTS temp.{t}")


def _register_inputs(con: duckdb.DuckDBPyConnection, names: dict[str, str], days: Sequence[dt.date],
                     syms: Sequence[str]) -> None:
    import pyarrow as pa

    cal = pa.table({
        "idx": pa.array(range(len(days)), pa.int32()),
        "pk": pa.array([d.isoformat() for d in days], pa.string()),
    })
    scopes = pa.table({"sid": pa.array(range(len(syms)), pa.int32()), "scope_key": pa.array(list(syms), pa.string())})
    con.register(names["cal"], cal)
    con.register(names["syms"], scopes)


def _prepare_runs_and_checks(con: duckdb.DuckDBPyConnection, names: dict[str, str], sub: Sequence[PlannerAsset],
                             days: Sequence[dt.date], meta: str) -> None:
    """Small keyed tables: failed/abandoned runs and failed error checks, per cell key ``ck``."""
    lo, hi = days[0].isoformat(), days[-1].isoformat()
    cal, syms = names["cal"], names["syms"]
    n = f"(SELECT greatest(count(*), 1) FROM {syms})"
    jobs = {a.job: a for a in sub if a.job}
    con.register(names["jobs"], _arrow_table({
        "job_name": list(jobs), "asset_key": [a.key for a in jobs.values()],
        "per_symbol": [a.per_symbol for a in jobs.values()]}))
    # The latest failed or abandoned run per cell that targeted it (a run naming no scopes
    # targets every scope; an exact scope beats such a run). Keyed (asset_key, ck).
    con.execute(f"""
        CREATE TEMP TABLE {names['bad']} AS
        WITH r AS (
            SELECT r.job_name, r.partition_key, r.status, coalesce(r.first_seq, r.last_seq) AS seq,
                   unnest(CASE WHEN len(coalesce(r.scope_keys, []::VARCHAR[])) = 0 THEN ['*']
                               ELSE r.scope_keys END) AS scope
            FROM {meta}.ingestion_runs r SEMI JOIN {names['jobs']} j ON j.job_name = r.job_name
            WHERE r.status IN ('failed', 'abandoned') AND r.partition_key BETWEEN ? AND ?
        ), keyed AS (
            SELECT j.asset_key, c.idx * {n} + s.sid AS ck, r.status, r.seq, r.scope = '*' AS wildcard
            FROM r JOIN {names['jobs']} j ON j.job_name = r.job_name JOIN {cal} c ON c.pk = r.partition_key
                   JOIN {syms} s ON (s.scope_key = r.scope OR r.scope = '*')
            WHERE j.per_symbol
            UNION ALL
            SELECT j.asset_key, c.idx * {n} - 1 AS ck, r.status, r.seq, FALSE
            FROM r JOIN {names['jobs']} j ON j.job_name = r.job_name JOIN {cal} c ON c.pk = r.partition_key
            WHERE NOT j.per_symbol
        )
        SELECT asset_key, ck, arg_max(status, (NOT wildcard, status = 'failed', seq)) AS run_status
        FROM keyed GROUP BY asset_key, ck""", [lo, hi])
    # Error-severity checks whose latest evaluation (per check and materialization, or run when the
    # event has no link) failed: start from the failures (rare) and drop those evaluated again later.
    con.execute(f"""
        CREATE TEMP TABLE {names['chk_run']} AS
        WITH f AS (
            SELECT k.asset_key, k.partition_key, k.scope_key, k.check_name, k.run_id, k.materialization_seq, k.seq
            FROM {meta}.asset_checks k SEMI JOIN {names['jobs']} j ON j.asset_key = k.asset_key
            WHERE k.severity = 'error' AND k.status = 'fail' AND k.partition_key BETWEEN ? AND ?
        )
        SELECT f.asset_key, f.partition_key, f.scope_key, f.run_id, f.materialization_seq FROM f
        WHERE NOT EXISTS (
            SELECT 1 FROM {meta}.asset_checks k
            WHERE k.asset_key = f.asset_key AND k.partition_key = f.partition_key AND k.scope_key = f.scope_key
              AND k.check_name = f.check_name AND k.seq > f.seq AND k.severity = 'error'
              AND coalesce(k.materialization_seq, -1) = coalesce(f.materialization_seq, -1)
              AND k.run_id IS NOT DISTINCT FROM f.run_id)""", [lo, hi])
    con.execute(f"CREATE TEMP TABLE {names['chk_mat']} AS SELECT DISTINCT materialization_seq AS mseq "
                f"FROM {names['chk_run']} WHERE materialization_seq IS NOT NULL")
    con.execute(f"""
        CREATE TEMP TABLE {names['chk_ck']} AS
        SELECT DISTINCT k.asset_key, CASE WHEN j.per_symbol THEN c.idx * {n} + s.sid ELSE c.idx * {n} - 1 END AS ck,
               k.run_id
        FROM {names['chk_run']} k JOIN {names['jobs']} j ON j.asset_key = k.asset_key
             JOIN {cal} c ON c.pk = k.partition_key
             LEFT JOIN {syms} s ON s.scope_key = k.scope_key OR k.scope_key = '{ALL_SCOPE}'
        WHERE k.materialization_seq IS NULL AND (s.sid IS NOT NULL OR NOT j.per_symbol)""")


def _arrow_table(columns: Mapping[str, list[Any]]) -> Any:
    import pyarrow as pa

    return pa.table(columns)


def _asset_state(con: duckdb.DuckDBPyConnection, names: dict[str, str], i: int, a: PlannerAsset,
                 sub: Sequence[PlannerAsset], days: Sequence[dt.date], n_syms: int, first_idx: int,
                 version: str | None, cutoff: dt.date | None, meta: str) -> None:
    """``st{i}``: one row per expected cell of ``a``: ck, idx, sid, vseq, reason, bits.

    A cell key ``ck`` is ``idx * n + sid`` for a symbol's cell and ``idx * n - 1`` for an ALL cell,
    so every join between cells is one integer equality."""
    index = {a2.key: j for j, a2 in enumerate(sub)}
    cal, syms, st = names["cal"], names["syms"], names["st"]
    n = max(n_syms, 1)
    cutoff_idx = _cutoff_index(days, cutoff)
    lo, hi = days[first_idx].isoformat(), days[-1].isoformat()

    if a.per_symbol:
        cells = (f"SELECT c.idx, s.sid, c.idx * {n} + s.sid AS ck FROM {cal} c CROSS JOIN {syms} s "
                 f"WHERE c.idx >= {first_idx}")
        ps = (f"SELECT c.idx * {n} + s.sid AS ck, p.status, p.materialized_seq, p.last_seq, p.code_version, "
              f"p.materialized_run_id FROM {meta}.partition_status p JOIN {cal} c ON c.pk = p.partition_key "
              f"JOIN {syms} s ON s.scope_key = p.scope_key "
              f"WHERE p.asset_key = ? AND p.partition_key BETWEEN ? AND ?")
    else:
        cells = f"SELECT c.idx, -1 AS sid, c.idx * {n} - 1 AS ck FROM {cal} c WHERE c.idx >= {first_idx}"
        ps = (f"SELECT c.idx * {n} - 1 AS ck, p.status, p.materialized_seq, p.last_seq, p.code_version, "
              f"p.materialized_run_id FROM {meta}.partition_status p JOIN {cal} c ON c.pk = p.partition_key "
              f"WHERE p.asset_key = ? AND p.partition_key BETWEEN ? AND ? AND p.scope_key = '{ALL_SCOPE}'")

    joins, bits, vseqs = [], [], []
    for m, (up, lag) in enumerate(a.upstream):
        j = index[up]
        ua = sub[j]
        alias = f"u{m}"
        if ua.per_symbol and not a.per_symbol:
            # every symbol's cell of the session: aggregate per session first
            src = (f"(SELECT (idx + {lag}) * {n} - 1 AS ck, bit_or(bits) AS bits, max(vseq) AS vseq "
                   f"FROM {st}{j} GROUP BY idx)")
            on = f"{alias}.ck = x.ck"
        elif ua.per_symbol:
            src, on = f"{st}{j}", f"{alias}.ck = x.ck - {lag * n}"
        elif a.per_symbol:  # an ALL-scoped upstream: every symbol depends on it
            src, on = f"{st}{j}", f"{alias}.ck = (x.idx - {lag}) * {n} - 1"
        else:
            src, on = f"{st}{j}", f"{alias}.ck = x.ck - {lag * n}"
        joins.append(f"LEFT JOIN {src} {alias} ON {on}")
        bits.append(f"coalesce({alias}.bits, 0)")
        vseqs.append(f"{alias}.vseq")
    up_bits = " | ".join(bits) if bits else "0"
    up_vseq = f"greatest({', '.join(vseqs)})" if vseqs else "NULL::BIGINT"
    absent_blocked = f"(NOT present AND (up_bits & {_ABSENT_BLOCKED}) <> 0)"

    sql = f"""
    CREATE TEMP TABLE {st}{i} AS
    WITH x AS (
        SELECT c.ck, c.idx, c.sid, p.status, p.materialized_seq, p.materialized_run_id, p.code_version,
               CASE p.status WHEN 'materialized' THEN p.materialized_seq WHEN 'skipped' THEN p.last_seq END AS vseq,
               coalesce(p.status IN ('materialized', 'skipped'), FALSE) AS present
        FROM ({cells}) c LEFT JOIN ({ps}) p ON p.ck = c.ck
    ), y AS (
        SELECT x.ck, x.idx, x.sid, x.present, x.vseq, x.status, r.run_status,
               (x.status = 'materialized' AND (km.mseq IS NOT NULL OR k.run_id IS NOT NULL)) AS chk,
               (x.status = 'materialized' AND x.code_version IS NOT NULL AND ?::VARCHAR IS NOT NULL
                AND x.code_version <> ?::VARCHAR) AS code_stale,
               {up_bits} AS up_bits, {up_vseq} AS up_vseq
        FROM x
        {' '.join(joins)}
        LEFT JOIN (SELECT ck, run_status FROM {names['bad']} WHERE asset_key = ?) r ON r.ck = x.ck
        LEFT JOIN {names['chk_mat']} km ON km.mseq = x.materialized_seq
        LEFT JOIN (SELECT ck, run_id FROM {names['chk_ck']} WHERE asset_key = ?) k
               ON k.ck = x.ck AND k.run_id = x.materialized_run_id
    ), z AS (
        SELECT ck, idx, sid, present, vseq, up_bits,
               CASE
                   WHEN status = 'failed' THEN 'failed'
                   WHEN status IS NULL THEN CASE
                        WHEN run_status = 'failed' THEN 'failed'
                        WHEN run_status = 'abandoned' THEN 'abandoned'
                        WHEN (up_bits & {_ABSENT_FIXABLE}) <> 0 THEN 'upstream_missing'
                        ELSE 'missing' END
                   WHEN chk THEN 'check_failed'
                   WHEN status = 'skipped' AND (up_bits & {_ABSENT_FIXABLE}) <> 0 THEN 'upstream_missing'
                   WHEN code_stale OR (up_bits & {_WILL_CHANGE | _ABSENT_FIXABLE}) <> 0 OR up_vseq > vseq THEN 'stale'
               END AS base
        FROM y
    )
    SELECT ck, idx, sid, vseq,
           CASE WHEN base IS NOT NULL AND (idx < {cutoff_idx} OR {absent_blocked}) THEN 'unrecoverable'
                ELSE base END AS reason,
           CASE WHEN base IS NULL THEN 0
                WHEN idx < {cutoff_idx} OR {absent_blocked} THEN CASE WHEN present THEN 0 ELSE {_ABSENT_BLOCKED} END
                WHEN present THEN {_WILL_CHANGE} ELSE {_ABSENT_FIXABLE} END AS bits
    FROM z
    """
    # Placeholders in textual order: the partition_status subquery (in x), the code version pair
    # (in y's select list), the failed-run and unlinked-check subqueries.
    con.execute(sql, [a.key, lo, hi, version, version, a.key, a.key])


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


def _to_date(value: np.datetime64) -> dt.date:
    return dt.date.fromordinal(int(value.astype("datetime64[D]").astype(np.int64)) + 719163)


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
