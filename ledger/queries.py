"""Read queries over the projections (health, runs, events, watermarks, checks, partitions).

Each takes an open connection whose ``meta`` schema holds the projections to read: the live file
(read-only, per query) or a time-travel fold (``DuckDBEventStore.as_of``). SQL for reads lives here.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from ledger.clock import as_utc

_RUN_COLUMNS = (
    "run_id, parent_run_id, job_name, triggered_by, status, started_at, ended_at, duration_ms, provider, "
    "error_type, error_message, error_fingerprint, partition_key, scope_keys, backfill_id, last_heartbeat_at, "
    "lease_expires_at, code_version"
)


def latest_runs(con: duckdb.DuckDBPyConnection, *, limit: int = 50) -> list[dict[str, Any]]:
    """The latest run of each job."""
    # The winners' ids first (a narrow aggregate), then their rows: a window over every run's full
    # row costs ~8x as much on 40,000 runs.
    return normalise_rows(con.execute(
        f"SELECT {_RUN_COLUMNS} FROM meta.ingestion_runs WHERE run_id IN ("
        "  SELECT arg_max(run_id, (started_at, first_seq)) FROM meta.ingestion_runs WHERE job_name IS NOT NULL "
        "  GROUP BY job_name) "
        "ORDER BY started_at DESC, first_seq DESC LIMIT ?", [limit]))


def runs(
    con: duckdb.DuckDBPyConnection,
    *,
    limit: int = 50,
    status: str | None = None,
    job: str | None = None,
    triggered_by: str | None = None,
    backfill_id: str | None = None,
    partition: str | None = None,
    search: str | None = None,
) -> list[dict[str, Any]]:
    """Runs, newest first; ``search`` matches a run id or backfill id prefix, or error text."""
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    for column, value in (("status", status), ("job_name", job), ("triggered_by", triggered_by),
                          ("backfill_id", backfill_id), ("partition_key", partition)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if search and search.strip():
        term = search.strip()
        where.append("(run_id ILIKE ? OR error_message ILIKE ? OR backfill_id ILIKE ?)")
        params += [term + "%", "%" + term + "%", term + "%"]
    params.append(limit)
    return normalise_rows(con.execute(
        f"SELECT {_RUN_COLUMNS} FROM meta.ingestion_runs WHERE {' AND '.join(where)} "
        "ORDER BY first_seq DESC NULLS LAST LIMIT ?", params))


def run_filters(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The distinct jobs, statuses and triggers of the runs (one scan)."""
    row = con.execute(
        "SELECT list(DISTINCT job_name ORDER BY job_name) FILTER (WHERE job_name IS NOT NULL), "
        "list(DISTINCT status ORDER BY status), "
        "list(DISTINCT triggered_by ORDER BY triggered_by) FILTER (WHERE triggered_by IS NOT NULL) "
        "FROM meta.ingestion_runs").fetchone()
    jobs, statuses, triggers = row if row else ([], [], [])
    return {"job_name": list(jobs or []), "status": list(statuses or []), "triggered_by": list(triggers or [])}


def run_row(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    rows = normalise_rows(con.execute("SELECT * FROM meta.ingestion_runs WHERE run_id = ?", [run_id]))
    return rows[0] if rows else None


def run_assets(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    return normalise_rows(con.execute(
        "SELECT * FROM meta.ingestion_run_assets WHERE run_id = ? ORDER BY seq", [run_id]))


def run_checks(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    return normalise_rows(con.execute("SELECT * FROM meta.asset_checks WHERE run_id = ? ORDER BY seq", [run_id]))


def recent_failures(con: duckdb.DuckDBPyConnection, *, since: dt.datetime, limit: int = 200) -> list[dict[str, Any]]:
    return normalise_rows(con.execute(
        f"SELECT {_RUN_COLUMNS} FROM meta.ingestion_runs WHERE status = 'failed' AND started_at >= ? "
        "ORDER BY started_at DESC LIMIT ?", [since, limit]))


def abandoned_runs(con: duckdb.DuckDBPyConnection, *, since: dt.datetime, limit: int = 200) -> list[dict[str, Any]]:
    return normalise_rows(con.execute(
        f"SELECT {_RUN_COLUMNS} FROM meta.ingestion_runs WHERE status = 'abandoned' AND started_at >= ? "
        "ORDER BY started_at DESC LIMIT ?", [since, limit]))


def watermarks(con: duckdb.DuckDBPyConnection, *, limit: int = 1000) -> list[dict[str, Any]]:
    return normalise_rows(con.execute(
        "SELECT asset_key, scope_key, watermark_ts, updated_at, last_run_id FROM meta.asset_watermarks "
        "ORDER BY asset_key, scope_key LIMIT ?", [limit]))


def failed_checks(con: duckdb.DuckDBPyConnection, *, since: dt.datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Failed checks since ``since``, newest first, each saying whether its materialization is
    still the current one for its cell. The cells are looked up only over the checks' partitions
    (a range DuckDB prunes by zone maps) instead of joining the whole partition status."""
    return normalise_rows(con.execute(
        """
        WITH c AS (
            SELECT * FROM meta.asset_checks WHERE status = 'fail' AND checked_at >= ?
            ORDER BY checked_at DESC, seq DESC LIMIT ?
        )
        SELECT c.check_id, c.checked_at, c.asset_key, c.partition_key, c.scope_key, c.check_name, c.severity,
               c.status, c.metrics_json, c.message, c.run_id, c.materialization_seq,
               (p.materialized_seq IS NOT DISTINCT FROM c.materialization_seq) AS current
        FROM c
        LEFT JOIN (SELECT asset_key, partition_key, scope_key, materialized_seq FROM meta.partition_status
                   WHERE partition_key BETWEEN (SELECT min(partition_key) FROM c)
                                           AND (SELECT max(partition_key) FROM c)) p
          ON p.asset_key = c.asset_key AND p.partition_key = c.partition_key AND p.scope_key = c.scope_key
        ORDER BY c.checked_at DESC, c.seq DESC
        """, [since, limit]))


def checks(con: duckdb.DuckDBPyConnection, *, limit: int = 200, status: str | None = None) -> list[dict[str, Any]]:
    where, params = "TRUE", []
    if status:
        where, params = "status = ?", [status]
    return normalise_rows(con.execute(
        f"SELECT * FROM meta.asset_checks WHERE {where} ORDER BY seq DESC LIMIT ?", [*params, limit]))


def partition_status(
    con: duckdb.DuckDBPyConnection, *, asset_key: str | None = None, scope_key: str | None = None, limit: int = 100_000
) -> list[dict[str, Any]]:
    where, params = ["TRUE"], []
    if asset_key:
        where.append("asset_key = ?")
        params.append(asset_key)
    if scope_key:
        where.append("scope_key = ?")
        params.append(scope_key)
    return normalise_rows(con.execute(
        f"SELECT * FROM meta.partition_status WHERE {' AND '.join(where)} "
        "ORDER BY asset_key, partition_key, scope_key LIMIT ?", [*params, limit]))


def failure_groups(con: duckdb.DuckDBPyConnection, *, since: dt.datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Failed runs since ``since`` grouped by error fingerprint, most frequent first; each group
    with its latest run's type, message and id."""
    return normalise_rows(con.execute(
        """
        SELECT coalesce(error_fingerprint, '(none)') AS error_fingerprint, count(*) AS failures,
               string_agg(DISTINCT job_name, ', ' ORDER BY job_name) AS jobs,
               coalesce(arg_max(error_type, first_seq), 'Error') AS error_type,
               coalesce(arg_max(error_message, first_seq), '') AS latest_message,
               min(started_at) AS first_at, max(started_at) AS latest_at,
               arg_max(run_id, first_seq) AS latest_run_id
        FROM meta.ingestion_runs WHERE status = 'failed' AND started_at >= ?
        GROUP BY 1 ORDER BY failures DESC, latest_at DESC LIMIT ?
        """, [since, limit]))


def partition_cells(
    con: duckdb.DuckDBPyConnection, *, start: str, end: str, scopes: list[str]
) -> list[dict[str, Any]]:
    """Per (asset, partition) in [start, end] over ``scopes`` (and the ALL scope): how many cells are
    materialized, failed or skipped (a later failure does not undo a materialization), and the
    code versions they were materialized with."""
    return normalise_rows(con.execute(
        """
        SELECT asset_key, partition_key,
               count(*) FILTER (WHERE status = 'materialized' OR materialized_seq IS NOT NULL) AS ok,
               count(*) FILTER (WHERE status = 'failed' AND materialized_seq IS NULL) AS failed,
               count(*) FILTER (WHERE status = 'skipped' AND materialized_seq IS NULL) AS skipped,
               list(DISTINCT code_version ORDER BY code_version) FILTER (WHERE code_version IS NOT NULL)
                 AS code_versions
        FROM meta.partition_status
        WHERE partition_key BETWEEN ? AND ? AND (scope_key = 'ALL' OR scope_key IN (SELECT unnest(?)))
        GROUP BY ALL ORDER BY ALL
        """, [start, end, scopes]))


def partition_overview(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The per-symbol scopes the ledger has cells for, and the span of their partitions."""
    scopes = [r[0] for r in con.execute(
        "SELECT DISTINCT scope_key FROM meta.partition_status WHERE scope_key <> 'ALL' ORDER BY 1").fetchall()]
    row = con.execute("SELECT min(partition_key), max(partition_key) FROM meta.partition_status").fetchone()
    return {"scopes": scopes, "first": row[0] if row else None, "last": row[1] if row else None}


def seq_at(con: duckdb.DuckDBPyConnection, when: dt.datetime) -> int:
    row = con.execute("SELECT max(seq) FROM meta.events WHERE recorded_at <= ?", [when]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def recorded_at(con: duckdb.DuckDBPyConnection, seq: int) -> dt.datetime | None:
    """When the event at (or last before) ``seq`` was recorded."""
    row = con.execute("SELECT recorded_at FROM meta.events WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                      [int(seq)]).fetchone()
    value = row[0] if row else None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return None


def head(con: duckdb.DuckDBPyConnection) -> int:
    """The log's last seq, from its checkpoint row (0 for an empty log)."""
    row = con.execute("SELECT coalesce(max(last_seq), 0) FROM meta.ledger_checkpoint WHERE name = 'log'").fetchone()
    return int(row[0]) if row else 0


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    out = {}
    for table in ("events", "ingestion_runs", "ingestion_run_assets", "asset_watermarks", "asset_checks",
                  "partition_status"):
        out[table] = int(con.execute(f"SELECT count(*) FROM meta.{table}").fetchone()[0])  # type: ignore[index]
    return out


# -- the catalog (the portal's table browser) --------------------------------------------------
def tables(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every table and view of the file, ``meta`` first, with its column count and (for tables)
    DuckDB's row count estimate."""
    return normalise_rows(con.execute(
        """
        SELECT t.table_schema AS schema, t.table_name AS name, lower(t.table_type) AS type,
               (SELECT count(*) FROM information_schema.columns c
                 WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name
                   AND c.table_catalog = t.table_catalog) AS columns,
               d.estimated_size AS rows
        FROM information_schema.tables t
        LEFT JOIN duckdb_tables() d ON d.schema_name = t.table_schema AND d.table_name = t.table_name
                                    AND d.database_name = t.table_catalog
        WHERE t.table_catalog = current_database() AND t.table_schema NOT IN ('information_schema', 'pg_catalog')
        ORDER BY (t.table_schema = 'meta') DESC, t.table_schema, t.table_name
        """))


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[dict[str, Any]]:
    return normalise_rows(con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
        "ORDER BY ordinal_position", [schema, table]))


def table_preview(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, *, limit: int = 100, order_by: str | None = None,
    descending: bool = True,
) -> list[dict[str, Any]]:
    """The first ``limit`` rows of one table or view. The query is built with sqlglot from names
    checked against the catalog, never by pasting text; an unknown table or column is ``LookupError``."""
    from sqlglot import exp

    columns = {c["column_name"] for c in table_columns(con, schema, table)}
    if not columns:
        raise LookupError(f"no table {schema}.{table}")
    query = exp.select("*").from_(exp.table_(table, db=schema, quoted=True)).limit(int(limit))
    if order_by:
        if order_by not in columns:
            raise LookupError(f"{schema}.{table} has no column {order_by!r}")
        query = query.order_by(exp.Ordered(this=exp.column(order_by, quoted=True), desc=descending))
    cursor = con.execute(query.sql(dialect="duckdb"))
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


JSON_COLUMNS = {"args_json", "extra_json", "metrics_json"}


def normalise_rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Rows as dicts with JSON parsed and timestamps in UTC, comparable with the Python fold."""
    names = [d[0] for d in cursor.description or []]
    out = []
    for values in cursor.fetchall():
        row = {}
        for name, value in zip(names, values, strict=True):
            if name in JSON_COLUMNS and isinstance(value, str):
                value = json.loads(value)
            elif isinstance(value, dt.datetime):
                value = as_utc(value)
            row[name] = value
        out.append(row)
    return out


__all__ = [
    "abandoned_runs",
    "checks",
    "counts",
    "failed_checks",
    "failure_groups",
    "head",
    "latest_runs",
    "normalise_rows",
    "partition_cells",
    "partition_overview",
    "partition_status",
    "recent_failures",
    "recorded_at",
    "run_assets",
    "run_checks",
    "run_filters",
    "run_row",
    "runs",
    "seq_at",
    "table_columns",
    "table_preview",
    "tables",
    "watermarks",
]
