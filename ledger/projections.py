"""The projections of the event log, as set-based SQL folds.

Each statement folds a relation of events (``{events}``: the batch being appended, or the whole
log up to a bound) into a projection table in schema ``{meta}``. Every merge is a join in a
semilattice (max of rank, of seq, of watermark), so folding the log in one pass or batch by batch
gives the same rows: the incremental projections equal a rebuild, by construction, and the tests
check it.

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
ON CONFLICT (run_id) DO UPDATE SET
    parent_run_id = COALESCE(parent_run_id, excluded.parent_run_id),
    job_name = COALESCE(job_name, excluded.job_name),
    triggered_by = COALESCE(triggered_by, excluded.triggered_by),
    status = CASE WHEN excluded.status_rank > status_rank THEN excluded.status ELSE status END,
    started_at = COALESCE(started_at, excluded.started_at),
    ended_at = CASE WHEN excluded.status_rank > status_rank THEN excluded.ended_at ELSE ended_at END,
    duration_ms = (epoch_us(CASE WHEN excluded.status_rank > status_rank THEN excluded.ended_at ELSE ended_at END)
                   - epoch_us(COALESCE(started_at, excluded.started_at))) // 1000,
    provider = COALESCE(provider, excluded.provider),
    storage_backend = COALESCE(storage_backend, excluded.storage_backend),
    args_json = COALESCE(args_json, excluded.args_json),
    app_version = COALESCE(app_version, excluded.app_version),
    error_type = CASE WHEN excluded.status_rank > status_rank THEN excluded.error_type ELSE error_type END,
    error_message = CASE WHEN excluded.status_rank > status_rank THEN excluded.error_message ELSE error_message END,
    error_stack_hash = CASE WHEN excluded.status_rank > status_rank THEN excluded.error_stack_hash ELSE error_stack_hash END,
    error_fingerprint = CASE WHEN excluded.status_rank > status_rank THEN excluded.error_fingerprint ELSE error_fingerprint END,
    status_rank = greatest(status_rank, excluded.status_rank),
    last_heartbeat_at = greatest(last_heartbeat_at, excluded.last_heartbeat_at),
    lease_expires_at = greatest(lease_expires_at, excluded.lease_expires_at),
    partition_key = COALESCE(partition_key, excluded.partition_key),
    scope_keys = COALESCE(scope_keys, excluded.scope_keys),
    code_version = COALESCE(code_version, excluded.code_version),
    backfill_id = COALESCE(backfill_id, excluded.backfill_id),
    first_seq = least(first_seq, excluded.first_seq),
    last_seq = greatest(last_seq, excluded.last_seq)
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
ON CONFLICT (run_id, asset_key, partition_key, scope_key) DO UPDATE SET
    asset_kind = CASE WHEN excluded.seq > seq THEN excluded.asset_kind ELSE asset_kind END,
    status = CASE WHEN excluded.seq > seq THEN excluded.status ELSE status END,
    rows_inserted = CASE WHEN excluded.seq > seq THEN excluded.rows_inserted ELSE rows_inserted END,
    bytes_written = CASE WHEN excluded.seq > seq THEN excluded.bytes_written ELSE bytes_written END,
    min_event_ts = CASE WHEN excluded.seq > seq THEN excluded.min_event_ts ELSE min_event_ts END,
    max_event_ts = CASE WHEN excluded.seq > seq THEN excluded.max_event_ts ELSE max_event_ts END,
    extra_json = CASE WHEN excluded.seq > seq THEN excluded.extra_json ELSE extra_json END,
    ended_at = CASE WHEN excluded.seq > seq THEN excluded.ended_at ELSE ended_at END,
    code_version = CASE WHEN excluded.seq > seq THEN excluded.code_version ELSE code_version END,
    data_version = CASE WHEN excluded.seq > seq THEN excluded.data_version ELSE data_version END,
    path = CASE WHEN excluded.seq > seq THEN excluded.path ELSE path END,
    sha256 = CASE WHEN excluded.seq > seq THEN excluded.sha256 ELSE sha256 END,
    seq = greatest(seq, excluded.seq)
"""

WATERMARKS = """
INSERT INTO {meta}.asset_watermarks
SELECT asset_key, scope_key, CAST(p.max_data_time AS TIMESTAMPTZ) AS watermark_ts,
       recorded_at AS updated_at, run_id AS last_run_id, seq
FROM _ledger_flat
WHERE event_type = 'asset_materialized' AND p.max_data_time IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY asset_key, scope_key
                           ORDER BY CAST(p.max_data_time AS TIMESTAMPTZ) DESC, seq DESC) = 1
ON CONFLICT (asset_key, scope_key) DO UPDATE SET
    updated_at = CASE WHEN excluded.watermark_ts > watermark_ts
                        OR (excluded.watermark_ts = watermark_ts AND excluded.seq > seq)
                      THEN excluded.updated_at ELSE updated_at END,
    last_run_id = CASE WHEN excluded.watermark_ts > watermark_ts
                        OR (excluded.watermark_ts = watermark_ts AND excluded.seq > seq)
                       THEN excluded.last_run_id ELSE last_run_id END,
    seq = CASE WHEN excluded.watermark_ts > watermark_ts
                 OR (excluded.watermark_ts = watermark_ts AND excluded.seq > seq)
               THEN excluded.seq ELSE seq END,
    watermark_ts = greatest(watermark_ts, excluded.watermark_ts)
"""

CHECKS = """
INSERT INTO {meta}.asset_checks
SELECT event_id, asset_key, partition_key, p.check_name, p.severity, p.status,
       recorded_at, p.metrics, p.message, run_id, scope_key,
       p.materialization_id, p.materialization_seq, seq
FROM _ledger_flat
WHERE event_type = 'check_evaluated'
ON CONFLICT (check_id) DO NOTHING
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
ON CONFLICT (asset_key, partition_key, scope_key) DO UPDATE SET
    status = CASE WHEN excluded.last_seq > last_seq THEN excluded.status ELSE status END,
    run_id = CASE WHEN excluded.last_seq > last_seq THEN excluded.run_id ELSE run_id END,
    updated_at = CASE WHEN excluded.last_seq > last_seq THEN excluded.updated_at ELSE updated_at END,
    last_seq = greatest(last_seq, excluded.last_seq),
    materialized_at = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1)
                           THEN excluded.materialized_at ELSE materialized_at END,
    materialized_run_id = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1)
                               THEN excluded.materialized_run_id ELSE materialized_run_id END,
    code_version = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1)
                        THEN excluded.code_version ELSE code_version END,
    data_version = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1)
                        THEN excluded.data_version ELSE data_version END,
    rows = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1) THEN excluded.rows ELSE rows END,
    bytes = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1) THEN excluded.bytes ELSE bytes END,
    path = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1) THEN excluded.path ELSE path END,
    sha256 = CASE WHEN excluded.materialized_seq > COALESCE(materialized_seq, -1)
                  THEN excluded.sha256 ELSE sha256 END,
    materialized_seq = greatest(materialized_seq, excluded.materialized_seq)
"""

FOLDS = (RUNS, RUN_ASSETS, WATERMARKS, CHECKS, PARTITIONS)


def fold(con: duckdb.DuckDBPyConnection, events: str, meta: str = "meta", *, fresh: bool = False) -> None:
    """Fold the event relation ``events`` (a table name or parenthesised query) into ``meta``.

    ``fresh``: the projections are empty (a rebuild, time travel, verify), so the merge clauses
    can never fire and are left out, which lets DuckDB bulk-insert.
    """
    con.execute(FLATTEN.replace("{events}", events))  # the shape holds braces: no str.format
    try:
        for statement in FOLDS:
            sql = statement.format(meta=meta)
            if fresh:
                sql = sql.split("\nON CONFLICT")[0]
            con.execute(sql)
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
