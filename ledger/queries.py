"""Read queries over the projections (health, runs, events, watermarks, checks, partitions).

Each takes an open connection whose ``meta`` schema holds the projections to read: the live file
(read-only, per query) or a time-travel fold (``DuckDBEventStore.as_of``). SQL for reads lives here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from ledger.duckdb_store import normalise_rows

_RUN_COLUMNS = (
    "run_id, parent_run_id, job_name, triggered_by, status, started_at, ended_at, duration_ms, provider, "
    "error_type, error_message, error_fingerprint, partition_key, scope_keys, backfill_id, last_heartbeat_at, "
    "lease_expires_at, code_version"
)


def latest_runs(con: duckdb.DuckDBPyConnection, *, limit: int = 50) -> list[dict[str, Any]]:
    """The latest run of each job."""
    return normalise_rows(con.execute(
        f"SELECT {_RUN_COLUMNS} FROM meta.ingestion_runs WHERE job_name IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY job_name ORDER BY started_at DESC, first_seq DESC) = 1 "
        "ORDER BY started_at DESC LIMIT ?", [limit]))


def runs(
    con: duckdb.DuckDBPyConnection,
    *,
    limit: int = 50,
    status: str | None = None,
    job: str | None = None,
    triggered_by: str | None = None,
    backfill_id: str | None = None,
) -> list[dict[str, Any]]:
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    for column, value in (("status", status), ("job_name", job), ("triggered_by", triggered_by),
                          ("backfill_id", backfill_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    params.append(limit)
    return normalise_rows(con.execute(
        f"SELECT {_RUN_COLUMNS} FROM meta.ingestion_runs WHERE {' AND '.join(where)} "
        "ORDER BY first_seq DESC NULLS LAST LIMIT ?", params))


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
    """Failed checks whose materialization is still the current one for its cell."""
    return normalise_rows(con.execute(
        """
        SELECT c.check_id, c.checked_at, c.asset_key, c.partition_key, c.scope_key, c.check_name, c.severity,
               c.status, c.metrics_json, c.message, c.run_id, c.materialization_seq,
               (p.materialized_seq IS NOT DISTINCT FROM c.materialization_seq) AS current
        FROM meta.asset_checks c
        LEFT JOIN meta.partition_status p
          ON p.asset_key = c.asset_key AND p.partition_key = c.partition_key AND p.scope_key = c.scope_key
        WHERE c.status = 'fail' AND c.checked_at >= ?
        ORDER BY c.checked_at DESC, c.seq DESC LIMIT ?
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


def seq_at(con: duckdb.DuckDBPyConnection, when: dt.datetime) -> int:
    row = con.execute("SELECT max(seq) FROM meta.events WHERE recorded_at <= ?", [when]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    out = {}
    for table in ("events", "ingestion_runs", "ingestion_run_assets", "asset_watermarks", "asset_checks",
                  "partition_status"):
        out[table] = int(con.execute(f"SELECT count(*) FROM meta.{table}").fetchone()[0])  # type: ignore[index]
    return out


__all__ = [
    "abandoned_runs",
    "checks",
    "counts",
    "failed_checks",
    "latest_runs",
    "partition_status",
    "recent_failures",
    "run_assets",
    "run_checks",
    "run_row",
    "runs",
    "seq_at",
    "watermarks",
]
