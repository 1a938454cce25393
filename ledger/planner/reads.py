"""The planner's reads of the projections (``partition_status``, ``ingestion_runs``,
``asset_checks``), turned into the flat arrays of ``grid.CellReads``.

``partition_status`` is read once, in one of two ways:

- **narrow** (a few scopes, e.g. one symbol): one scan with the scope filter (bound parameters)
  applied inside it, no joins; the matching rows' raw columns come back as one list, and their
  keys are mapped to grid positions with Arrow hash lookups and numpy.
- **wide** (many scopes): one scan joined with three small dictionary tables (sessions, scopes,
  assets) that map every key to an integer, so DuckDB returns grid positions directly. This way
  never imports pandas (see ``_numpy``), so ``options-helper gaps`` starts fast.

The narrow way's result, and the wide way's on a table of a million rows or more, comes back as
Arrow (``fetchnumpy`` costs twice as much on millions of rows); a smaller wide read comes back
through ``fetchnumpy``, which spares ``options-helper gaps`` importing pyarrow.
Failed and abandoned runs and failed error checks are rare: the read only counts those of the
window, and reads them (one small statement each, few rows mapped in Python) when there are some.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from ledger.planner.grid import (
    CODE_STALE,
    FAILED,
    MATERIALIZED,
    NO_SEQ,
    NONE,
    RUN_ABANDONED,
    RUN_FAILED,
    SKIPPED,
    CellReads,
    Layout,
)
from ledger.planner.model import ALL_SCOPE

if TYPE_CHECKING:
    import pyarrow as pa

# Up to this many scopes, partition_status is read the narrow way (filters in the scan, no joins);
# up to _SCOPE_PUSHDOWN, the wide way's scan filters the scopes too.
_NARROW_SCOPES = 4
_SCOPE_PUSHDOWN = 64
# The wide way uses outer joins when the analysed cells are at least this share of the table.
_OUTER_SHARE = 0.5
# Up to this many sessions (about a year), the narrow way's scan filters the session range too.
_PRUNE_SESSIONS = 260
# From this many rows of partition_status, the wide way's result comes back as Arrow (half the
# conversion cost of ``fetchnumpy`` on millions of rows); below, through ``fetchnumpy``, which spares
# importing pyarrow (~35 ms of CPU, more than the conversion costs there) in `options-helper gaps`.
_ARROW_ROWS = 1_000_000

_STATUS = (f"CASE p.status WHEN 'materialized' THEN {MATERIALIZED} WHEN 'skipped' THEN {SKIPPED} "
           f"WHEN 'failed' THEN {FAILED} ELSE {NONE} END")
# The seq a dependent compares with: the cell's materialization, or its skip (NULL otherwise: NO_SEQ
# in the grid, whose literal would make the column a HUGEINT). Both are the seq of the cell's
# latest asset event (``last_seq``): a cell whose latest event is a materialization has
# ``materialized_seq = last_seq`` (both folds keep it so), and reading one BIGINT column instead of
# two matters when a scan touches every vector for a few rows.
_VSEQ = "CASE WHEN p.status IN ('materialized', 'skipped') THEN p.last_seq END"


def _code(version: str) -> str:
    """The status code of a row; ``version``: the SQL of the asset's current code version."""
    return (f"({_STATUS} + CASE WHEN p.status = 'materialized' AND p.code_version <> {version} "
            f"THEN {CODE_STALE} ELSE 0 END)::UTINYINT")


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _bounds(layout: Layout) -> list[str]:
    """The first and last partition keys of the analysed sessions."""
    return [layout.day_keys[0], layout.day_keys[-1]]


def read(con: duckdb.DuckDBPyConnection, layout: Layout, versions: Mapping[str, str | None], meta: str) -> CellReads:
    """Everything the rules need about the analysed cells, from the projections in ``meta``.

    Each statement costs a millisecond or more however small, so the small questions (are there
    failed or abandoned runs in the window, failed error checks, how big is the table) ride along
    with the narrow read, or go first in one statement; the runs and checks themselves are read
    only when there are some (rarely)."""
    # One slot more than the cells: rows that are not analysed cells come back at position -1 and
    # land there, which spares filtering millions of positions first.
    status = np.zeros(layout.total + 1, np.uint8)
    vseq = np.full(layout.total + 1, NO_SEQ, np.int64)
    runs = np.zeros(layout.total, np.uint8)
    checked = np.zeros(layout.total, bool)
    if not layout.total:
        return CellReads(status=status[:-1], vseq=vseq[:-1], runs=runs, checked=checked)
    lo, hi = _bounds(layout)
    small = f"""
        (SELECT count(*) FROM {meta}.ingestion_runs
         WHERE status IN ('failed', 'abandoned') AND partition_key BETWEEN ? AND ?) AS failed_runs,
        (SELECT count(*) FROM {meta}.asset_checks
         WHERE severity = 'error' AND status = 'fail' AND partition_key BETWEEN ? AND ?) AS failed_checks"""
    scopes = _scopes(layout)
    if 0 < len(scopes) <= _NARROW_SCOPES:
        cells_sql, cells_params = _narrow_sql(layout, meta, scopes)
        table = con.sql(f"SELECT ({cells_sql}) AS cells, {small}", params=[*cells_params, lo, hi, lo, hi]).to_arrow_table()
        failed_runs, failed_checks = table.column("failed_runs")[0].as_py(), table.column("failed_checks")[0].as_py()
        pos, code, seqs = _narrow_cells(layout, versions, scopes, table.column("cells"))
    else:
        failed_runs, failed_checks, table_rows = con.execute(
            f"SELECT {small}, (SELECT count(*) FROM {meta}.partition_status)", [lo, hi, lo, hi]).fetchall()[0]
        pos, code, seqs = (_read_wide(con, layout, versions, meta, scopes, table_rows) if scopes
                           else (np.zeros(0, np.int64), np.zeros(0, np.uint8), None))
    status[pos] = code
    if seqs is not None:
        vseq[pos] = seqs
    if failed_runs:
        _mark_runs(con, layout, meta, runs)
    if failed_checks:
        _mark_checked(con, layout, meta, checked)
    return CellReads(status=status[:-1], vseq=vseq[:-1], runs=runs, checked=checked)


def _scopes(layout: Layout) -> list[str]:
    """The scope keys the analysed assets have: the symbols and/or ALL."""
    per_symbol = [a.per_symbol for a in layout.sub]
    return ([*layout.syms] if any(per_symbol) else []) + ([ALL_SCOPE] if not all(per_symbol) else [])


def _numpy(column: pa.ChunkedArray | pa.Array, dtype: Any, null: int = 0) -> np.ndarray:
    """``column`` as a numpy array of ``dtype``, nulls replaced by ``null``.

    An integer column without nulls (every column of the wide read) is viewed from its Arrow
    buffers: Arrow's own ``to_numpy`` imports pandas on its first call (~0.25 s of CPU), which
    ``options-helper gaps`` would otherwise pay."""
    import pyarrow as pa

    if not column.null_count and pa.types.is_integer(column.type):
        kind = "i" if pa.types.is_signed_integer(column.type) else "u"
        width = np.dtype(f"{kind}{column.type.bit_width // 8}")
        whole = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if not len(whole):
            return np.zeros(0, dtype)
        return np.frombuffer(whole.buffers()[1], width, len(whole), whole.offset * width.itemsize).astype(dtype, copy=False)
    if column.null_count:
        import pyarrow.compute as pc

        column = pc.fill_null(column, bool(null) if dtype is bool else null)
    return np.asarray(column.to_numpy(), dtype)


def _narrow_sql(layout: Layout, meta: str, scopes: Sequence[str]) -> tuple[str, list[Any]]:
    """The narrow read: the raw columns of the rows of ``scopes``, filtered in the scan, as one list.

    Only the scope filter is selective enough to pay for itself in the scan (an equality is
    evaluated on the dictionary of a compressed column); the assets and sessions are filtered by
    ``_narrow_cells``, on the few rows left. A short window's range is filtered in the scan too: it
    prunes the row groups of other sessions (the table is appended session by session), whereas a
    long one prunes little and is then compared row by row wherever rows are not in session order.
    The rows come back as one list, raw: the scan yields many tiny chunks, and any expression (or
    result chunk) costs per chunk, whereas mapping the rows with Arrow and numpy costs per row."""
    cols = ["asset_key", "status", "code_version", "partition_key"]
    if len(scopes) > 1:
        cols.append("scope_key")
    if layout.needs_seqs:
        cols.append("last_seq")
    where = "p.scope_key = ?" if len(scopes) == 1 else f"p.scope_key IN ({_marks(len(scopes))})"
    params: list[Any] = [*scopes]
    if len(layout.days) <= _PRUNE_SESSIONS:
        where, params = where + " AND p.partition_key BETWEEN ? AND ?", [*params, *_bounds(layout)]
    fields = ", ".join(f"{c!r}: p.{c}" for c in cols)
    return f"SELECT list({{{fields}}}) FROM {meta}.partition_status p WHERE {where}", params


def _narrow_cells(layout: Layout, versions: Mapping[str, str | None], scopes: Sequence[str],
                  cells: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(positions, status codes, vseqs) of the narrow read's ``cells``; -1 for rows that are not
    analysed cells (another asset, a day that is not a session of the window)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = [a.key for a in layout.sub]
    table = pa.Table.from_struct_array(pc.list_flatten(cells))

    def lookup(column: str, values: Sequence[str | None]) -> np.ndarray:
        col = table.column(column)
        found = pc.index_in(col, value_set=pa.array(values, pa.string()).cast(col.type))
        return _numpy(found, np.int64, -1)

    n = table.num_rows
    day = lookup("partition_key", layout.day_keys)
    aid = lookup("asset_key", keys)
    per_symbol = np.array([*(a.per_symbol for a in layout.sub), False])[aid]  # -1 (not analysed): the last
    if len(scopes) > 1:
        sid = lookup("scope_key", layout.syms)
        is_all = _numpy(pc.equal(table.column("scope_key"), ALL_SCOPE), bool)
    else:
        sid = np.full(n, 0 if scopes[0] != ALL_SCOPE or layout.syms else -1, np.int64)
        is_all = np.full(n, scopes[0] == ALL_SCOPE)
    keep = (day >= 0) & (aid >= 0) & np.where(per_symbol, sid >= 0, is_all)
    base, width = np.array([*layout.base, 0], np.int64), np.array([*layout.width, 0], np.int64)
    pos = base[aid] + day * width[aid] + np.where(per_symbol, sid, 0)

    code = (lookup("status", ("materialized", "skipped", "failed")) + 1).astype(np.uint8)  # NONE .. FAILED
    version = pa.array([*(versions.get(k) for k in keys), None], pa.string()).take(np.where(aid < 0, len(keys), aid))
    other = _numpy(pc.not_equal(table.column("code_version"), version.cast(table.column("code_version").type)), bool)
    code[(code == MATERIALIZED) & other] |= CODE_STALE
    seqs = None
    if layout.needs_seqs:  # see _VSEQ
        seqs = np.where(((code & 3) == MATERIALIZED) | (code == SKIPPED),
                        _numpy(table.column("last_seq"), np.int64, NO_SEQ), NO_SEQ)
    return np.where(keep, pos, -1), code, seqs


def _dictionaries(layout: Layout, versions: Mapping[str, str | None]) -> tuple[str, list[Any]]:
    """The plan's small dictionary tables as a WITH clause, and its parameters: ``cal`` (idx, pk),
    ``scopes`` (sid, scope_key, is_all: the symbols, then ALL as column 0 of the ALL-scoped assets)
    and ``assets`` (asset_key, per_symbol, version, base, w): every string is mapped to an integer
    once, by the joins with these. Each is built by DuckDB from bound lists (``unnest`` zips them),
    not registered from Arrow: building Arrow arrays from Python imports pandas (~0.25 s of CPU)."""
    sub = layout.sub
    n_syms = len(layout.syms)
    sql = """WITH
        cal AS (SELECT unnest(?::VARCHAR[]) AS pk, unnest(range(?::BIGINT)) AS idx),
        scopes AS (SELECT unnest(?::VARCHAR[]) AS scope_key, unnest(?::BIGINT[]) AS sid,
                          unnest(?::BOOLEAN[]) AS is_all),
        assets AS (SELECT unnest(?::VARCHAR[]) AS asset_key, unnest(?::BOOLEAN[]) AS per_symbol,
                          unnest(?::VARCHAR[]) AS version, unnest(?::BIGINT[]) AS base, unnest(?::BIGINT[]) AS w)"""
    params: list[Any] = [
        list(layout.day_keys), len(layout.days),
        [*layout.syms, ALL_SCOPE], [*range(n_syms), 0], [False] * n_syms + [True],
        [a.key for a in sub], [a.per_symbol for a in sub], [versions.get(a.key) for a in sub],
        [int(b) for b in layout.base], [int(w) for w in layout.width],
    ]
    return sql, params


def _read_wide(con: duckdb.DuckDBPyConnection, layout: Layout, versions: Mapping[str, str | None], meta: str,
               scopes: Sequence[str], table_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The analysed rows with their flat positions, by joins with the dictionary tables.

    When the analysed cells are most of the table, left joins (a row that maps to no cell gets
    position -1): inner joins would make DuckDB push filters built from the
    small tables into the scan, which cost more on every row than they save. Otherwise inner
    joins, whose pushed-down filters skip the rows of other scopes early, plus an IN list of the
    scopes when there are few. The sessions' bounds reach the scan as a pushed-down join filter
    (row-group pruning) with inner joins; outer joins are for plans that span the table."""
    outer = layout.total >= table_rows * _OUTER_SHARE
    where, params = "TRUE", []
    if not outer and len(scopes) <= _SCOPE_PUSHDOWN:
        where, params = f"p.scope_key IN ({_marks(len(scopes))})", [*scopes]
    join = "LEFT JOIN" if outer else "JOIN"
    dictionaries, dict_params = _dictionaries(layout, versions)
    # vseq: NO_SEQ for NULL in SQL, so that every column comes back without nulls (see _numpy)
    vseq = f", coalesce({_VSEQ}, ({NO_SEQ})::BIGINT) AS vseq" if layout.needs_seqs else ""
    rel = con.sql(f"""{dictionaries}
        SELECT coalesce(a.base + c.idx * a.w + s.sid, -1) AS pos, {_code('a.version')} AS code {vseq}
        FROM {meta}.partition_status p
        {join} assets a ON a.asset_key = p.asset_key
        {join} cal c ON c.pk = p.partition_key
        {join} scopes s ON s.scope_key = p.scope_key AND s.is_all <> a.per_symbol
        WHERE {where}""", params=[*dict_params, *params])
    if table_rows < _ARROW_ROWS:
        arrays = rel.fetchnumpy()  # no nulls (see above): plain arrays
        seqs = np.asarray(arrays["vseq"], np.int64) if layout.needs_seqs else None
        return np.asarray(arrays["pos"], np.int64), np.asarray(arrays["code"], np.uint8), seqs
    table = rel.to_arrow_table()
    seqs = _numpy(table.column("vseq"), np.int64) if layout.needs_seqs else None
    return _numpy(table.column("pos"), np.int64), _numpy(table.column("code"), np.uint8), seqs


class _Keys:
    """Python maps from the keys of a few rows (runs, checks) to grid positions."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.day = {pk: i for i, pk in enumerate(layout.day_keys)}
        self.sid = {s: i for i, s in enumerate(layout.syms)}
        self.asset = {a.key: i for i, a in enumerate(layout.sub)}

    def pos(self, asset_key: str, partition_key: str, scope_key: str | None) -> int | None:
        """The position of an analysed cell, or None when the row is not one."""
        i, d = self.asset.get(asset_key), self.day.get(partition_key)
        if i is None or d is None or d < self.layout.first_idx[i]:
            return None
        if self.layout.sub[i].per_symbol:
            s = self.sid.get(scope_key)  # type: ignore[arg-type]
            if s is None:
                return None
        elif scope_key != ALL_SCOPE:
            return None
        else:
            s = 0
        return self.layout.base[i] + d * self.layout.width[i] + s


def _mark_runs(con: duckdb.DuckDBPyConnection, layout: Layout, meta: str, runs: np.ndarray) -> None:
    """Mark in the flat grid ``runs`` RUN_FAILED where the latest failed run that targeted the cell
    failed, RUN_ABANDONED where it was abandoned. A run naming no scopes targets every scope; an
    exact scope beats such a run, then a failure beats an abandonment, then the later run."""
    by_job: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(layout.sub):
        if a.job:
            by_job[a.job].append(i)
    if not by_job:
        return
    failed_runs = con.execute(f"""
        SELECT job_name, partition_key, status = 'failed', coalesce(first_seq, last_seq), scope_keys
        FROM {meta}.ingestion_runs
        WHERE status IN ('failed', 'abandoned') AND partition_key BETWEEN ? AND ?
          AND list_contains(?::VARCHAR[], job_name)""", [*_bounds(layout), sorted(by_job)]).fetchall()
    keys = _Keys(layout)
    pos: list[np.ndarray] = []
    rank: list[tuple[int, int, int, int]] = []  # (exact scope, failed, seq, count)
    for job, pk, failed, seq, scope_keys in failed_runs:
        d = keys.day.get(pk)
        if d is None:
            continue
        targets = scope_keys or ["*"]
        for i in by_job[job]:
            if d < layout.first_idx[i]:
                continue
            row = layout.base[i] + d * layout.width[i]
            for scope in targets:
                if not layout.sub[i].per_symbol:  # any run of the job targets the ALL cell
                    pos.append(np.array([row], np.int64))
                    rank.append((1, int(failed), seq, 1))
                elif scope == "*":
                    pos.append(row + np.arange(layout.width[i], dtype=np.int64))
                    rank.append((0, int(failed), seq, layout.width[i]))
                elif scope in keys.sid:
                    pos.append(np.array([row + keys.sid[scope]], np.int64))
                    rank.append((1, int(failed), seq, 1))
    if not pos:
        return
    p = np.concatenate(pos)
    exact, fail, seqs = (np.repeat(np.array([r[k] for r in rank], np.int64), [r[3] for r in rank]) for k in range(3))
    order = np.lexsort((seqs, fail, exact, p))  # by position, then the precedence; the last wins
    p, fail = p[order], fail[order]
    last = np.flatnonzero(np.append(p[1:] != p[:-1], True))
    runs[p[last]] = np.where(fail[last] == 1, RUN_FAILED, RUN_ABANDONED)


def _mark_checked(con: duckdb.DuckDBPyConnection, layout: Layout, meta: str, checked: np.ndarray) -> None:
    """Mark in the flat grid ``checked`` the materialized cells whose current materialization
    failed an error check.

    The failing checks are error-severity checks whose latest evaluation (per check and
    materialization, or run when the event has no link) failed: start from the failures (rare) and
    drop those evaluated again later. A linked one flags that materialization (its seq is unique);
    an unlinked one flags the cells its run materialized (every scope for a check on ALL)."""
    assets = [a.key for a in layout.sub]
    lo, hi = _bounds(layout)
    failing = con.execute(f"""
        SELECT f.asset_key, f.partition_key, f.scope_key, f.run_id, f.materialization_seq
        FROM {meta}.asset_checks f
        WHERE f.severity = 'error' AND f.status = 'fail' AND f.partition_key BETWEEN ? AND ?
          AND list_contains(?::VARCHAR[], f.asset_key)
          AND NOT EXISTS (
            SELECT 1 FROM {meta}.asset_checks k
            WHERE k.asset_key = f.asset_key AND k.partition_key = f.partition_key AND k.scope_key = f.scope_key
              AND k.check_name = f.check_name AND k.seq > f.seq AND k.severity = 'error'
              AND coalesce(k.materialization_seq, -1) = coalesce(f.materialization_seq, -1)
              AND k.run_id IS NOT DISTINCT FROM f.run_id)""", [lo, hi, assets]).fetchall()
    if not failing:
        return
    linked = {m for *_, m in failing if m is not None}
    unlinked: dict[tuple[str, str, str], list[str | None]] = defaultdict(list)
    for a, pk, scope, run_id, m in failing:
        if m is None and run_id is not None:
            unlinked[(a, pk, run_id)].append(scope)
    cells = con.execute(f"""
        SELECT asset_key, partition_key, scope_key, materialized_seq, materialized_run_id
        FROM {meta}.partition_status
        WHERE status = 'materialized' AND list_contains(?::VARCHAR[], asset_key) AND partition_key BETWEEN ? AND ?
          AND (materialized_seq IN (SELECT unnest(?::BIGINT[]))
               OR materialized_run_id IN (SELECT unnest(?::VARCHAR[])))""",
        [assets, lo, hi, sorted(linked), sorted({run for _, _, run in unlinked})]).fetchall()
    keys = _Keys(layout)
    per_symbol = {a.key: a.per_symbol for a in layout.sub}
    for a, pk, scope, m, run_id in cells:
        flagged = m in linked or any(s in (scope, ALL_SCOPE) or not per_symbol[a]
                                     for s in unlinked.get((a, pk, run_id), ()))
        p = keys.pos(a, pk, scope) if flagged else None
        if p is not None:
            checked[p] = True
