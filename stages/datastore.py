"""SQL for the data tables of migration 0002: one place per table, reads and partition writes.

Reads take a DuckDB connection the runner opened read-only for the length of the read; writes
(``write``) run inside the ledger's transaction through ``RunContext.complete(data_writer=...)``:
delete the partition's rows, then insert the new ones from Arrow. Every inserted row gets the
``run_id`` of the run that wrote it. Column and table names come from ``TABLES`` only; values
are always bound parameters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ledger.errors import StageError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


@attrs.frozen(kw_only=True)
class TableSpec:
    """A data table: its insert columns (without ``run_id``) and the columns of its partition."""

    name: str
    columns: tuple[str, ...]
    partition: tuple[str, ...]


CANDLES = TableSpec(
    name="candles_daily",
    columns=("symbol", "date", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count"),
    partition=("symbol", "date"),
)
OPTION_CONTRACTS = TableSpec(
    name="option_contracts",
    columns=("contract_symbol", "as_of", "underlying", "expiry", "option_type", "strike", "multiplier", "status",
             "open_interest", "open_interest_date", "close_price"),
    partition=("underlying", "as_of"),
)
OPTIONS_BARS = TableSpec(
    name="options_bars",
    columns=("contract_symbol", "date", "underlying", "ts", "open", "high", "low", "close", "volume", "vwap",
             "trade_count"),
    partition=("underlying", "date"),
)
SNAPSHOT_FILES = TableSpec(
    name="options_snapshot_files",
    columns=("symbol", "date", "path", "bytes", "sha256", "contracts", "spot", "provider"),
    partition=("symbol", "date"),
)
FLOW = TableSpec(
    name="options_flow",
    columns=("symbol", "from_date", "to_date", "window_size", "group_by", "row_key", "as_of", "contract_symbol",
             "expiry", "option_type", "strike", "delta_oi", "delta_oi_notional", "volume_notional", "delta_notional",
             "n_pairs", "flow_class", "volume", "oi_start", "oi_end", "n_contracts", "n_new", "n_disappeared",
             "status", "n_expired", "expired_oi", "expired_notional", "gap_sessions"),
    partition=("symbol", "to_date", "window_size"),
)
DERIVED = TableSpec(
    name="derived_metrics",
    columns=("symbol", "date", "spot", "pc_oi", "pc_vol", "call_wall", "put_wall", "gamma_peak_strike",
             "atm_iv_near", "em_near_pct", "skew_near_pp", "rv_20d", "rv_60d", "iv_rv_20d",
             "atm_iv_near_percentile", "iv_term_slope", "iv_rank_252d"),
    partition=("symbol", "date"),
)
REPORT_FILES = TableSpec(
    name="report_files",
    columns=("kind", "date", "path", "bytes", "sha256"),
    partition=("kind", "date"),
)
TABLES: dict[str, TableSpec] = {t.name: t for t in (CANDLES, OPTION_CONTRACTS, OPTIONS_BARS, SNAPSHOT_FILES, FLOW,
                                                     DERIVED, REPORT_FILES)}


@attrs.frozen(kw_only=True)
class TableWrite:
    """Replace one partition of ``table``: delete the rows matching ``partition`` (column ->
    value, or column -> list of values), insert ``rows`` (an Arrow table with the spec's columns)."""

    table: str
    rows: pa.Table = attrs.field(eq=False)
    partition: Mapping[str, Any]
    # Set by ``spool``: the rows wait in this Parquet file and ``rows`` is empty (schema only).
    spooled: Path | None = None

    @property
    def spec(self) -> TableSpec:
        return TABLES[self.table]


# Rows of a write at least this large wait on disk until the commit (``spool``), so what a stage
# holds until its transaction does not grow with the watchlist (a symbol's flow is ~1.6 MiB).
SPOOL_BYTES = 1 << 20


def spool(w: TableWrite, folder: Path, name: str) -> TableWrite:
    """``w`` with its rows written to ``folder/<table>/<name>.parquet`` when they are large."""
    import pyarrow.parquet as pq

    if w.spooled is not None or w.rows.nbytes < SPOOL_BYTES:
        return w
    path = Path(folder) / w.table / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(w.rows.select(list(w.spec.columns)), path, compression="none")
    return attrs.evolve(w, rows=w.rows.schema.empty_table(), spooled=path)


def _where(partition: Mapping[str, Any], spec: TableSpec) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, value in partition.items():
        if column not in spec.partition:
            raise StageError(f"{column!r} is not a partition column of {spec.name}")
        if isinstance(value, list | tuple | set | frozenset):
            clauses.append(f"{column} IN (SELECT unnest(?))")
            params.append(sorted(value))
        else:
            clauses.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(clauses) or "FALSE", params


def write(con: duckdb.DuckDBPyConnection, w: TableWrite, run_id: str) -> int:
    """Replace ``w``'s partition in ``w.table``, stamping ``run_id``; returns rows inserted."""
    spec = w.spec
    missing = [c for c in spec.columns if c not in w.rows.column_names]
    if missing:
        raise StageError(f"rows for {spec.name} lack column(s) {', '.join(missing)}")
    where, params = _where(w.partition, spec)
    con.execute(f"DELETE FROM {spec.name} WHERE {where}", params)
    if w.spooled is not None:
        return _insert_spooled(con, spec, [w.spooled], run_id)
    if w.rows.num_rows == 0:
        return 0
    view = f"_rows_{spec.name}"
    con.register(view, w.rows.select(list(spec.columns)))
    try:
        cols = ", ".join(spec.columns)
        con.execute(f"INSERT INTO {spec.name} ({cols}, run_id) SELECT {cols}, ? FROM {view}", [run_id])
    finally:
        con.unregister(view)
    return w.rows.num_rows


def _partition_keys(w: TableWrite) -> list[tuple[Any, ...]]:
    """Every (column values...) cell that ``w.partition`` names, lists expanded, in sorted column order."""
    cells: list[tuple[Any, ...]] = [()]
    for column in sorted(w.partition):
        value = w.partition[column]
        if column not in w.spec.partition:
            raise StageError(f"{column!r} is not a partition column of {w.spec.name}")
        values = sorted(value) if isinstance(value, list | tuple | set | frozenset) else [value]
        cells = [(*cell, v) for cell in cells for v in values]
    return cells


def write_all(con: duckdb.DuckDBPyConnection, writes: Sequence[TableWrite], run_id: str) -> int:
    """``write`` for many partitions, as one DELETE and one INSERT per table and partition shape.

    A job writes one partition per symbol; replacing them together costs two statements per
    table instead of two per symbol. Writes whose partitions overlap (the same cell twice) keep
    their order by falling back to ``write`` one at a time. Returns rows inserted."""
    import pyarrow as pa

    groups: dict[tuple[str, tuple[str, ...]], list[TableWrite]] = {}
    for w in writes:
        groups.setdefault((w.table, tuple(sorted(w.partition))), []).append(w)
    total = 0
    for (table, columns), group in groups.items():
        spec = TABLES[table]
        cells = [cell for w in group for cell in _partition_keys(w)]
        if len(group) == 1 or not columns or len(set(cells)) != len(cells):
            total += sum(write(con, w, run_id) for w in group)
            continue
        for w in group:
            missing = [c for c in spec.columns if c not in w.rows.column_names]
            if missing:
                raise StageError(f"rows for {spec.name} lack column(s) {', '.join(missing)}")
        keys = pa.table({c: [cell[i] for cell in cells] for i, c in enumerate(columns)})
        rows = pa.concat_tables([w.rows.select(list(spec.columns)) for w in group if w.rows.num_rows],
                                promote_options="permissive") if any(w.rows.num_rows for w in group) else None
        con.register("_partition_keys", keys)
        try:
            match = " AND ".join(f"{spec.name}.{c} = _partition_keys.{c}" for c in columns)
            con.execute(f"DELETE FROM {spec.name} USING _partition_keys WHERE {match}")
        finally:
            con.unregister("_partition_keys")
        cols = ", ".join(spec.columns)
        if rows is not None:
            view = f"_rows_{spec.name}"
            con.register(view, rows)
            try:
                con.execute(f"INSERT INTO {spec.name} ({cols}, run_id) SELECT {cols}, ? FROM {view}", [run_id])
            finally:
                con.unregister(view)
            total += rows.num_rows
        files = [w.spooled for w in group if w.spooled is not None]
        if files:
            total += _insert_spooled(con, spec, files, run_id)
    return total


def _insert_spooled(con: duckdb.DuckDBPyConnection, spec: TableSpec, files: Sequence[Path], run_id: str) -> int:
    """Insert spooled rows; DuckDB streams the files in, so they never sit in memory all at once."""
    cols = ", ".join(spec.columns)
    inserted = con.execute(f"INSERT INTO {spec.name} ({cols}, run_id) SELECT {cols}, ? FROM read_parquet(?)",
                           [run_id, [str(f) for f in files]]).fetchone()
    return int(inserted[0]) if inserted else 0


# -- reads ----------------------------------------------------------------------------------------
def select(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pa.Table:
    """The result of ``sql`` as an Arrow table."""
    relation = con.sql(sql, params=list(params))
    if hasattr(relation, "to_arrow_table"):  # DuckDB >= 2
        return relation.to_arrow_table()
    return relation.arrow()  # pragma: no cover - DuckDB 1.x


def candle_dates(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], start: dt.date, end: dt.date) -> dict[str, set[dt.date]]:
    """The sessions already stored per symbol in [start, end]."""
    rows = con.execute(
        "SELECT symbol, date FROM candles_daily WHERE symbol IN (SELECT unnest(?)) AND date BETWEEN ? AND ?",
        [sorted(symbols), start, end],
    ).fetchall()
    out: dict[str, set[dt.date]] = {}
    for symbol, day in rows:
        out.setdefault(symbol, set()).add(day)
    return out


def candles(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], start: dt.date, end: dt.date) -> pa.Table:
    """Stored candles of ``symbols`` in [start, end], ordered by (symbol, date)."""
    return select(
        con,
        f"SELECT {', '.join(CANDLES.columns)}, run_id FROM candles_daily "
        "WHERE symbol IN (SELECT unnest(?)) AND date BETWEEN ? AND ? ORDER BY symbol, date",
        [sorted(symbols), start, end],
    )


def closes(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], day: dt.date) -> dict[str, float]:
    """The stored close of each symbol on ``day`` (symbols without one are absent)."""
    rows = con.execute(
        "SELECT symbol, close FROM candles_daily WHERE symbol IN (SELECT unnest(?)) AND date = ? AND close > 0",
        [sorted(symbols), day],
    ).fetchall()
    return {s: float(c) for s, c in rows}


def snapshot_files(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], days: Iterable[dt.date]) -> list[dict[str, Any]]:
    """Rows of ``options_snapshot_files`` for the symbols and sessions (as dicts)."""
    cur = con.execute(
        "SELECT symbol, date, path, bytes, sha256, contracts, spot, provider, run_id FROM options_snapshot_files "
        "WHERE symbol IN (SELECT unnest(?)) AND date IN (SELECT unnest(?)) ORDER BY symbol, date",
        [sorted(symbols), sorted(days)],
    )
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def latest_snapshot_files(con: duckdb.DuckDBPyConnection, wanted: Iterable[tuple[str, dt.date]]) -> list[dict[str, Any]]:
    """For each (symbol, day): the ``options_snapshot_files`` row of the symbol's latest session on
    or before ``day`` (pairs without one are absent). The row carries the asked ``day`` as ``wanted``."""
    pairs = sorted(set(wanted))
    if not pairs:
        return []
    cur = con.execute(
        "SELECT w.symbol AS wanted_symbol, w.day AS wanted, f.symbol, f.date, f.path, f.bytes, f.sha256, f.contracts, "
        "f.spot, f.provider, f.run_id FROM (SELECT unnest(?) AS symbol, unnest(?) AS day) w "
        "ASOF JOIN options_snapshot_files f ON f.symbol = w.symbol AND f.date <= w.day ORDER BY w.symbol, w.day",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    )
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def snapshot_sessions(con: duckdb.DuckDBPyConnection, symbols: Iterable[str]) -> list[dt.date]:
    """The sessions with a stored snapshot of any of ``symbols``, newest first."""
    rows = con.execute(
        "SELECT DISTINCT date FROM options_snapshot_files WHERE symbol IN (SELECT unnest(?)) ORDER BY date DESC",
        [sorted(symbols)],
    ).fetchall()
    return [r[0] for r in rows]


def derived(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], start: dt.date, end: dt.date) -> pa.Table:
    """Stored derived rows of ``symbols`` in [start, end], ordered by (symbol, date)."""
    return select(
        con,
        f"SELECT {', '.join(DERIVED.columns)} FROM derived_metrics "
        "WHERE symbol IN (SELECT unnest(?)) AND date BETWEEN ? AND ? ORDER BY symbol, date",
        [sorted(symbols), start, end],
    )


def flow(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], to_date: dt.date, *,
         group_by: str | Sequence[str] | None = None, window_size: int = 1) -> pa.Table:
    """Stored flow rows ending at ``to_date`` (optionally of one grouping, or several)."""
    sql = (f"SELECT {', '.join(FLOW.columns)} FROM options_flow WHERE symbol IN (SELECT unnest(?)) "
           "AND to_date = ? AND window_size = ?")
    params: list[Any] = [sorted(symbols), to_date, window_size]
    if group_by is not None:
        sql += " AND group_by IN (SELECT unnest(?))"
        params.append([group_by] if isinstance(group_by, str) else list(group_by))
    return select(con, sql + " ORDER BY symbol, group_by, row_key", params)


def flow_pairs(con: duckdb.DuckDBPyConnection, symbols: Iterable[str], start: dt.date, end: dt.date) -> list[tuple[Any, ...]]:
    """The stored one-session flow partitions with ``to_date`` in [start, end]:
    ``(symbol, to_date, from_date, gap_sessions)``, newest first per symbol (read from the
    per-type ``total`` rows, which every partition of the current code has)."""
    return con.execute(
        "SELECT DISTINCT symbol, to_date, from_date, coalesce(gap_sessions, 1) FROM options_flow "
        "WHERE symbol IN (SELECT unnest(?)) AND window_size = 1 AND group_by = 'total' AND to_date BETWEEN ? AND ? "
        "ORDER BY symbol, to_date DESC", [sorted(symbols), start, end],
    ).fetchall()


# Sums of a window's stored one-session rows; oi_start/oi_end from its first/last pair only. Of
# the grouping asked for, only the ``top`` rows by |net ΔOI$| of each sign come back (the zones);
# the per-type ``total`` rows always do.
_FLOW_WINDOW_SQL = """
WITH agg AS (
SELECT f.symbol, f.group_by, f.row_key,
       any_value(f.contract_symbol) AS contract_symbol, any_value(f.expiry) AS expiry,
       any_value(f.option_type) AS option_type, any_value(f.strike) AS strike,
       sum(f.delta_oi) AS delta_oi, sum(f.delta_oi_notional) AS delta_oi_notional,
       sum(f.volume_notional) AS volume_notional, sum(f.delta_notional) AS delta_notional,
       sum(f.volume) AS volume,
       sum(f.oi_start) FILTER (WHERE f.from_date = k.window_start) AS oi_start,
       sum(f.oi_end) FILTER (WHERE f.to_date = k.window_end) AS oi_end,
       sum(f.n_pairs)::BIGINT AS n_pairs, max(f.n_contracts)::BIGINT AS n_contracts,
       sum(f.n_new)::BIGINT AS n_new, sum(f.n_disappeared)::BIGINT AS n_disappeared,
       sum(coalesce(f.n_expired, 0))::BIGINT AS n_expired, sum(f.expired_oi) AS expired_oi,
       sum(f.expired_notional) AS expired_notional
FROM options_flow f JOIN _flow_window_pairs k ON f.symbol = k.symbol AND f.to_date = k.to_date
WHERE f.window_size = 1 AND (f.group_by = ? OR f.group_by = 'total')
GROUP BY f.symbol, f.group_by, f.row_key
)
SELECT * FROM agg
WHERE group_by = 'total' OR delta_oi_notional <> 0
QUALIFY group_by = 'total' OR row_number() OVER (PARTITION BY symbol, group_by, delta_oi_notional > 0
                                                 ORDER BY abs(delta_oi_notional) DESC, row_key) <= ?
"""


def flow_window(con: duckdb.DuckDBPyConnection, pairs: pa.Table, group_by: str, top: int) -> pa.Table:
    """The stored one-session rows of ``pairs`` netted per (symbol, grouping, row_key) in DuckDB:
    the per-type ``total`` rows, and of ``group_by`` the ``top`` building (net ΔOI$ > 0) and
    ``top`` unwinding (< 0) rows per symbol by |net ΔOI$| (ties at the cut: by row_key; the
    caller orders the few rows it gets: ranking on one key is what keeps this fast).

    ``pairs``: one row per (symbol, to_date) of the window, with the window's ``window_start``
    and ``window_end`` per symbol. Windows are computed on read, never stored twice."""
    con.register("_flow_window_pairs", pairs)
    try:
        return select(con, _FLOW_WINDOW_SQL, [group_by, top])
    finally:
        con.unregister("_flow_window_pairs")


def report_files(con: duckdb.DuckDBPyConnection, day: dt.date | None = None) -> list[dict[str, Any]]:
    """Rows of ``report_files`` (of one session, or all), newest first."""
    sql = "SELECT kind, date, path, bytes, sha256, run_id FROM report_files"
    params: list[Any] = []
    if day is not None:
        sql += " WHERE date = ?"
        params.append(day)
    cur = con.execute(sql + " ORDER BY date DESC, kind", params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def table_rows(con: duckdb.DuckDBPyConnection, table: str, *, exclude: Sequence[str] = ("run_id",)) -> pa.Table:
    """Every row of a data table in a deterministic order (for tests and audits)."""
    spec = TABLES[table]
    cols = [c for c in (*spec.columns, "run_id") if c not in exclude]
    order = ", ".join(c for c in spec.columns if c in cols)
    return select(con, f"SELECT {', '.join(cols)} FROM {spec.name} ORDER BY {order}")


# -- one symbol's history (the portal's Symbol page) ----------------------------------------------
def symbols_with_data(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Symbols with candles, derived metrics or option snapshots stored."""
    return [r[0] for r in con.execute(
        "SELECT symbol FROM candles_daily UNION SELECT symbol FROM derived_metrics "
        "UNION SELECT symbol FROM options_snapshot_files ORDER BY 1").fetchall()]


def symbol_candles(con: duckdb.DuckDBPyConnection, symbol: str, *, sessions: int) -> pa.Table:
    """The newest ``sessions`` candles of ``symbol`` (date, close, volume), newest first."""
    return select(con, "SELECT date, close, volume FROM candles_daily WHERE symbol = ? ORDER BY date DESC LIMIT ?",
                  [symbol, sessions])


def symbol_derived(con: duckdb.DuckDBPyConnection, symbol: str, *, sessions: int) -> pa.Table:
    """The newest ``sessions`` rows of ``symbol``'s derived metrics (without symbol and run id), newest first."""
    return select(con, "SELECT * EXCLUDE (symbol, run_id) FROM derived_metrics WHERE symbol = ? "
                       "ORDER BY date DESC LIMIT ?", [symbol, sessions])


def latest_flow_by_strike(con: duckdb.DuckDBPyConnection, symbol: str) -> tuple[dt.date | None, pa.Table]:
    """``symbol``'s flow on its newest session (shortest window, first grouping), summed by
    strike and option type; (None, empty) when it has none."""
    rows = con.execute("SELECT max(to_date) FROM options_flow WHERE symbol = ?", [symbol]).fetchall()
    day = rows[0][0] if rows else None
    table = select(
        con,
        """
        SELECT strike, option_type, sum(delta_oi) AS delta_oi, sum(delta_oi_notional) AS delta_oi_notional,
               sum(volume_notional) AS volume_notional, sum(delta_notional) AS delta_notional
        FROM options_flow
        WHERE symbol = ? AND to_date = ? AND strike IS NOT NULL
          AND window_size = (SELECT min(window_size) FROM options_flow WHERE symbol = ? AND to_date = ?)
          AND group_by = (SELECT min(group_by) FROM options_flow WHERE symbol = ? AND to_date = ?)
        GROUP BY ALL ORDER BY strike, option_type
        """, [symbol, day] * 3)
    return day, table


# -- ledger projections the runner consults -------------------------------------------------------
def materialized_scopes(con: duckdb.DuckDBPyConnection, asset_key: str, partition_key: str,
                        code_version: str | None) -> set[str]:
    """Scopes of (asset, partition) whose latest event is a materialization by this code version."""
    rows = con.execute(
        "SELECT scope_key FROM meta.partition_status WHERE asset_key = ? AND partition_key = ? "
        "AND status = 'materialized' AND (? IS NULL OR code_version = ?)",
        [asset_key, partition_key, code_version, code_version],
    ).fetchall()
    return {r[0] for r in rows}


def broken_scopes(con: duckdb.DuckDBPyConnection, asset_keys: Sequence[str], partition_key: str,
                  scopes: Iterable[str], upstream_failed: str) -> dict[str, set[str]]:
    """Per asset, the scopes without a usable partition for the session: the latest asset event
    is a failure, or a skip whose reason starts with ``upstream_failed`` (what ``run_daily``
    carries from stage to stage, read back from the ledger)."""
    rows = con.execute(
        "SELECT p.asset_key, p.scope_key FROM meta.partition_status p JOIN meta.events e ON e.seq = p.last_seq "
        "WHERE p.partition_key = ? AND p.asset_key IN (SELECT unnest(?)) AND p.scope_key IN (SELECT unnest(?)) "
        "AND (p.status = 'failed' OR (p.status = 'skipped' AND starts_with(coalesce(e.payload->>'reason', ''), ?)))",
        [partition_key, list(asset_keys) or [""], sorted(scopes) or [""], upstream_failed],
    ).fetchall()
    out: dict[str, set[str]] = {}
    for asset_key, scope in rows:
        out.setdefault(asset_key, set()).add(scope)
    return out


def failed_checks(con: duckdb.DuckDBPyConnection, partition_key: str, scopes: Iterable[str]) -> list[dict[str, Any]]:
    """Failed checks recorded for the session and scopes (the latest evaluation of each check)."""
    cur = con.execute(
        "SELECT asset_key, scope_key, check_name, severity, status, message FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY asset_key, scope_key, check_name ORDER BY seq DESC) AS n"
        "  FROM meta.asset_checks WHERE partition_key = ? AND scope_key IN (SELECT unnest(?))"
        ") WHERE n = 1 AND status = 'fail' ORDER BY scope_key, asset_key, check_name",
        [partition_key, sorted(scopes)],
    )
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def session_health(con: duckdb.DuckDBPyConnection, partition_key: str, exclude_jobs: Sequence[str],
                   exclude_assets: Sequence[str] = ()) -> dict[str, Any]:
    """A ledger health summary for one session: each job's latest run for it, asset cells by
    status, failed checks and abandoned runs; the excluded jobs and assets are left out (a
    report leaves itself out). Only what describes the session's state is shown, no run ids,
    triggers or times: the same state renders the same summary, whoever ran the stages."""
    cur = con.execute(
        "SELECT job_name, status, error_type, error_message FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY job_name ORDER BY first_seq DESC) AS n"
        "  FROM meta.ingestion_runs WHERE partition_key = ? AND job_name NOT IN (SELECT unnest(?))"
        ") WHERE n = 1 ORDER BY job_name",
        [partition_key, list(exclude_jobs) or [""]],
    )
    names = [d[0] for d in cur.description or []]
    runs = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    cells = con.execute(
        "SELECT asset_key, status, count(*) FROM meta.partition_status WHERE partition_key = ? "
        "AND asset_key NOT IN (SELECT unnest(?)) GROUP BY ALL ORDER BY ALL", [partition_key, list(exclude_assets) or [""]],
    ).fetchall()
    checks = con.execute(
        "SELECT asset_key, scope_key, check_name, severity, message FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY asset_key, scope_key, check_name ORDER BY seq DESC) AS n"
        "  FROM meta.asset_checks WHERE partition_key = ? AND asset_key NOT IN (SELECT unnest(?))"
        ") WHERE n = 1 AND status = 'fail' ORDER BY asset_key, scope_key, check_name",
        [partition_key, list(exclude_assets) or [""]],
    ).fetchall()
    abandoned = con.execute(
        "SELECT count(*) FROM meta.ingestion_runs WHERE partition_key = ? AND status = 'abandoned'", [partition_key],
    ).fetchone()
    by_status: dict[str, int] = {}
    for _, status, n in cells:
        by_status[status] = by_status.get(status, 0) + int(n)
    return {
        "session": partition_key,
        "runs_failed": sum(r["status"] == "failed" for r in runs),
        "abandoned_runs": int(abandoned[0]) if abandoned else 0,
        "cells": ", ".join(f"{k}: {v}" for k, v in sorted(by_status.items())) or "none",
        "latest_runs": runs,
        "failed_checks": [dict(zip(("asset_key", "scope_key", "check_name", "severity", "message"), c, strict=True))
                          for c in checks],
    }


__all__ = [
    "CANDLES",
    "DERIVED",
    "FLOW",
    "OPTIONS_BARS",
    "OPTION_CONTRACTS",
    "REPORT_FILES",
    "SNAPSHOT_FILES",
    "SPOOL_BYTES",
    "TABLES",
    "TableSpec",
    "TableWrite",
    "broken_scopes",
    "candle_dates",
    "candles",
    "closes",
    "derived",
    "failed_checks",
    "flow",
    "flow_pairs",
    "flow_window",
    "latest_flow_by_strike",
    "latest_snapshot_files",
    "materialized_scopes",
    "report_files",
    "select",
    "session_health",
    "snapshot_files",
    "snapshot_sessions",
    "spool",
    "symbol_candles",
    "symbol_derived",
    "symbols_with_data",
    "table_rows",
    "write",
    "write_all",
]
