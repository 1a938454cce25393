"""The projections of the event log, as set-based SQL folds.

Each statement folds a relation of events (``{events}``: the whole log, or the log up to a bound)
into an empty projection table in schema ``{meta}``: a rebuild, time travel, ``db verify``.
Appends maintain the projections incrementally with the Python fold (``ledger.fold`` through
``ledger.incremental``), whose merge rules are joins in a semilattice (max of rank, of seq, of
watermark); the tests check that both give the same rows.

This module is the one place the projection SQL lives.
"""

from __future__ import annotations

import duckdb

PROJECTION_TABLES = (
    "ingestion_runs",
    "ingestion_run_assets",
    "asset_watermarks",
    "asset_checks",
    "partition_status",
)

# Primary keys, for comparisons and ordered reads.
PROJECTION_KEYS: dict[str, tuple[str, ...]] = {
    "ingestion_runs": ("run_id",),
    "ingestion_run_assets": ("run_id", "asset_key", "partition_key", "scope_key"),
    "asset_watermarks": ("asset_key", "scope_key"),
    "asset_checks": ("check_id",),
    "partition_status": ("asset_key", "partition_key", "scope_key"),
}

# Every payload field the folds read, parsed once per event (json_transform), not once per use.
PAYLOAD_SHAPE = (
    '{"parent_run_id":"VARCHAR","job_name":"VARCHAR","triggered_by":"VARCHAR","provider":"VARCHAR",'
    '"args":"JSON","app_version":"VARCHAR","error_type":"VARCHAR","error_message":"VARCHAR",'
    '"reason":"VARCHAR","stack_hash":"VARCHAR","lease_seconds":"DOUBLE","scope_keys":["VARCHAR"],'
    '"code_version":"VARCHAR","backfill_id":"VARCHAR","error_fingerprint":"VARCHAR","asset_kind":"VARCHAR",'
    '"rows":"BIGINT","bytes":"BIGINT","min_data_time":"VARCHAR","max_data_time":"VARCHAR","extra":"JSON",'
    '"data_version":"VARCHAR","path":"VARCHAR","sha256":"VARCHAR","check_name":"VARCHAR",'
    '"severity":"VARCHAR","status":"VARCHAR","metrics":"JSON","message":"VARCHAR",'
    '"materialization_id":"VARCHAR","materialization_seq":"BIGINT"}'
)

FLATTEN = f"""
CREATE OR REPLACE TEMP TABLE _ledger_flat AS
SELECT seq, event_id, event_type, recorded_at, run_id, asset_key, partition_key, scope_key,
       json_transform(payload, '{PAYLOAD_SHAPE}') AS p
FROM {{events}}
WHERE event_type IN ('run_started', 'run_heartbeat', 'run_succeeded', 'run_failed', 'run_abandoned',
                     'asset_materialized', 'asset_failed', 'asset_skipped', 'check_evaluated')
"""

_RANK = """CASE event_type WHEN 'run_abandoned' THEN 1 WHEN 'run_succeeded' THEN 2
                          WHEN 'run_failed' THEN 3 ELSE 0 END"""
_STATUS_OF_RANK = "CASE {r} WHEN 0 THEN 'started' WHEN 1 THEN 'abandoned' WHEN 2 THEN 'success' ELSE 'failed' END"

RUNS = f"""
INSERT INTO {{meta}}.ingestion_runs
WITH ev AS (
    SELECT *, {_RANK} AS rnk,
           -- the terminal event that wins: highest rank, then earliest seq
           ({_RANK}) * 1000000000000000 - seq AS win
    FROM _ledger_flat
    WHERE event_type IN ('run_started', 'run_heartbeat', 'run_succeeded', 'run_failed', 'run_abandoned')
), agg AS (
    SELECT
        run_id,
        any_value(p.parent_run_id) FILTER (WHERE event_type = 'run_started') AS parent_run_id,
        any_value(p.job_name) FILTER (WHERE event_type = 'run_started') AS job_name,
        any_value(p.triggered_by) FILTER (WHERE event_type = 'run_started') AS triggered_by,
        max(rnk) AS status_rank,
        min(recorded_at) FILTER (WHERE event_type = 'run_started') AS started_at,
        arg_max_null(recorded_at, win) FILTER (WHERE rnk > 0) AS ended_at,
        any_value(p.provider) FILTER (WHERE event_type = 'run_started') AS provider,
        any_value(p.args) FILTER (WHERE event_type = 'run_started') AS args_json,
        any_value(p.app_version) FILTER (WHERE event_type = 'run_started') AS app_version,
        arg_max_null(CASE WHEN event_type = 'run_failed' THEN p.error_type
                     WHEN event_type = 'run_abandoned' THEN 'Abandoned' END, win) FILTER (WHERE rnk > 0) AS error_type,
        arg_max_null(CASE WHEN event_type = 'run_failed' THEN p.error_message
                     WHEN event_type = 'run_abandoned' THEN p.reason END, win) FILTER (WHERE rnk > 0) AS error_message,
        arg_max_null(p.stack_hash, win) FILTER (WHERE rnk > 0) AS error_stack_hash,
        max(recorded_at) AS last_heartbeat_at,
        max(recorded_at + to_microseconds(CAST(p.lease_seconds * 1000000 AS BIGINT)))
            FILTER (WHERE event_type IN ('run_started', 'run_heartbeat')) AS lease_expires_at,
        any_value(partition_key) FILTER (WHERE event_type = 'run_started') AS partition_key,
        any_value(p.scope_keys) FILTER (WHERE event_type = 'run_started') AS scope_keys,
        any_value(p.code_version) FILTER (WHERE event_type = 'run_started') AS code_version,
        any_value(p.backfill_id) FILTER (WHERE event_type = 'run_started') AS backfill_id,
        arg_max_null(p.error_fingerprint, win) FILTER (WHERE rnk > 0) AS error_fingerprint,
        min(seq) FILTER (WHERE event_type = 'run_started') AS first_seq,
        max(seq) AS last_seq
    FROM ev
    GROUP BY run_id
)
SELECT run_id, parent_run_id, job_name, triggered_by, {_STATUS_OF_RANK.format(r="status_rank")} AS status,
       started_at, ended_at,
       (epoch_us(ended_at) - epoch_us(started_at)) // 1000 AS duration_ms,
       provider, 'duckdb' AS storage_backend, args_json, NULL AS git_sha, app_version,
       error_type, error_message, error_stack_hash, status_rank, last_heartbeat_at, lease_expires_at,
       partition_key, scope_keys, code_version, backfill_id, error_fingerprint, first_seq, last_seq
FROM agg
"""

_ASSET_EVENTS = "event_type IN ('asset_materialized', 'asset_failed', 'asset_skipped')"

RUN_ASSETS = f"""
INSERT INTO {{meta}}.ingestion_run_assets
SELECT run_id, asset_key, p.asset_kind AS asset_kind, partition_key,
       CASE event_type WHEN 'asset_materialized' THEN 'success' WHEN 'asset_failed' THEN 'failed' ELSE 'skipped' END,
       p.rows, NULL, NULL, p.bytes,
       CAST(p.min_data_time AS TIMESTAMPTZ), CAST(p.max_data_time AS TIMESTAMPTZ),
       CASE event_type
            WHEN 'asset_failed' THEN json_merge_patch(p.extra,
                 json_object('error_type', p.error_type, 'error', p.error_message))
            WHEN 'asset_skipped' THEN json_merge_patch(p.extra, json_object('reason', p.reason))
            ELSE p.extra END,
       NULL, recorded_at, NULL,
       scope_key, p.code_version, p.data_version, p.path, p.sha256, seq
FROM _ledger_flat
WHERE {_ASSET_EVENTS}
QUALIFY row_number() OVER (PARTITION BY run_id, asset_key, partition_key, scope_key ORDER BY seq DESC) = 1
"""

WATERMARKS = """
INSERT INTO {meta}.asset_watermarks
SELECT asset_key, scope_key, CAST(p.max_data_time AS TIMESTAMPTZ) AS watermark_ts,
       recorded_at AS updated_at, run_id AS last_run_id, seq
FROM _ledger_flat
WHERE event_type = 'asset_materialized' AND p.max_data_time IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY asset_key, scope_key
                           ORDER BY CAST(p.max_data_time AS TIMESTAMPTZ) DESC, seq DESC) = 1
"""

CHECKS = """
INSERT INTO {meta}.asset_checks
SELECT event_id, asset_key, partition_key, p.check_name, p.severity, p.status,
       recorded_at, p.metrics, p.message, run_id, scope_key,
       p.materialization_id, p.materialization_seq, seq
FROM _ledger_flat
WHERE event_type = 'check_evaluated'
"""

PARTITIONS = f"""
INSERT INTO {{meta}}.partition_status
WITH ev AS (
    SELECT *, event_type = 'asset_materialized' AS is_mat FROM _ledger_flat WHERE {_ASSET_EVENTS}
)
SELECT asset_key, partition_key, scope_key,
       arg_max_null(CASE event_type WHEN 'asset_materialized' THEN 'materialized'
                               WHEN 'asset_failed' THEN 'failed' ELSE 'skipped' END, seq) AS status,
       arg_max_null(run_id, seq) AS run_id,
       max(seq) AS last_seq,
       arg_max_null(recorded_at, seq) AS updated_at,
       max(seq) FILTER (WHERE is_mat) AS materialized_seq,
       arg_max_null(recorded_at, seq) FILTER (WHERE is_mat) AS materialized_at,
       arg_max_null(run_id, seq) FILTER (WHERE is_mat) AS materialized_run_id,
       arg_max_null(p.code_version, seq) FILTER (WHERE is_mat) AS code_version,
       arg_max_null(p.data_version, seq) FILTER (WHERE is_mat) AS data_version,
       arg_max_null(p.rows, seq) FILTER (WHERE is_mat) AS rows,
       arg_max_null(p.bytes, seq) FILTER (WHERE is_mat) AS bytes,
       arg_max_null(p.path, seq) FILTER (WHERE is_mat) AS path,
       arg_max_null(p.sha256, seq) FILTER (WHERE is_mat) AS sha256
FROM ev
GROUP BY asset_key, partition_key, scope_key
"""

FOLDS = (RUNS, RUN_ASSETS, WATERMARKS, CHECKS, PARTITIONS)


def fold(con: duckdb.DuckDBPyConnection, events: str, meta: str = "meta") -> None:
    """Fold the event relation ``events`` (a table name or parenthesised query) into the empty
    projections of ``meta`` (a rebuild, time travel, verify). Appends merge batches into existing
    rows with the Python fold (``ledger.incremental``), which applies the same rules."""
    con.execute(FLATTEN.replace("{events}", events))  # the shape holds braces: no str.format
    try:
        for statement in FOLDS:
            con.execute(statement.format(meta=meta))
    finally:
        con.execute("DROP TABLE IF EXISTS _ledger_flat")


def clear(con: duckdb.DuckDBPyConnection, meta: str = "meta") -> None:
    """Empty every projection (never the log) before a rebuild.

    Each table is dropped and re-created from its own stored DDL (the same columns, types and
    keys): deleting a million rows one by one through the indexes costs seconds, this costs none.
    """
    for table in PROJECTION_TABLES:
        row = con.execute(
            "SELECT sql FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?", [meta, table]).fetchone()
        if row is None:  # not in this catalog: fall back to deleting the rows
            con.execute(f"DELETE FROM {meta}.{table}")
            continue
        con.execute(f"DROP TABLE {meta}.{table}")
        con.execute(row[0])


__all__ = ["FOLDS", "PROJECTION_KEYS", "PROJECTION_TABLES", "clear", "fold"]
