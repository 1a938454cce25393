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

_RANK = """CASE event_type WHEN 'run_abandoned' THEN 1 WHEN 'run_succeeded' THEN 2
                          WHEN 'run_failed' THEN 3 ELSE 0 END"""
_STATUS_OF_RANK = "CASE {r} WHEN 0 THEN 'started' WHEN 1 THEN 'abandoned' WHEN 2 THEN 'success' ELSE 'failed' END"

RUNS = f"""
INSERT INTO {{meta}}.ingestion_runs
WITH ev AS (
    SELECT *, {_RANK} AS rnk,
           -- the terminal event that wins: highest rank, then earliest seq
           ({_RANK}) * 1000000000000000 - seq AS win
    FROM {{events}}
    WHERE event_type IN ('run_started', 'run_heartbeat', 'run_succeeded', 'run_failed', 'run_abandoned')
), agg AS (
    SELECT
        run_id,
        any_value(payload->>'parent_run_id') FILTER (WHERE event_type = 'run_started') AS parent_run_id,
        any_value(payload->>'job_name') FILTER (WHERE event_type = 'run_started') AS job_name,
        any_value(payload->>'triggered_by') FILTER (WHERE event_type = 'run_started') AS triggered_by,
        max(rnk) AS status_rank,
        min(recorded_at) FILTER (WHERE event_type = 'run_started') AS started_at,
        arg_max(recorded_at, win) FILTER (WHERE rnk > 0) AS ended_at,
        any_value(payload->>'provider') FILTER (WHERE event_type = 'run_started') AS provider,
        any_value(payload->'args') FILTER (WHERE event_type = 'run_started') AS args_json,
        any_value(payload->>'app_version') FILTER (WHERE event_type = 'run_started') AS app_version,
        arg_max(CASE WHEN event_type = 'run_failed' THEN payload->>'error_type'
                     WHEN event_type = 'run_abandoned' THEN 'Abandoned' END, win) FILTER (WHERE rnk > 0) AS error_type,
        arg_max(CASE WHEN event_type = 'run_failed' THEN payload->>'error_message'
                     WHEN event_type = 'run_abandoned' THEN payload->>'reason' END, win) FILTER (WHERE rnk > 0) AS error_message,
        arg_max(payload->>'stack_hash', win) FILTER (WHERE rnk > 0) AS error_stack_hash,
        max(recorded_at) AS last_heartbeat_at,
        max(recorded_at + to_microseconds(CAST(CAST(payload->>'lease_seconds' AS DOUBLE) * 1000000 AS BIGINT)))
            FILTER (WHERE event_type IN ('run_started', 'run_heartbeat')) AS lease_expires_at,
        any_value(partition_key) FILTER (WHERE event_type = 'run_started') AS partition_key,
        any_value(CAST(payload->'scope_keys' AS VARCHAR[])) FILTER (WHERE event_type = 'run_started') AS scope_keys,
        any_value(payload->>'code_version') FILTER (WHERE event_type = 'run_started') AS code_version,
        any_value(payload->>'backfill_id') FILTER (WHERE event_type = 'run_started') AS backfill_id,
        arg_max(payload->>'error_fingerprint', win) FILTER (WHERE rnk > 0) AS error_fingerprint,
        min(seq) FILTER (WHERE event_type = 'run_started') AS first_seq,
        max(seq) AS last_seq
    FROM ev
    GROUP BY run_id
)
SELECT run_id, parent_run_id, job_name, triggered_by, {_STATUS_OF_RANK.format(r="status_rank")} AS status,
       started_at, ended_at,
       CASE WHEN ended_at IS NOT NULL AND started_at IS NOT NULL
            THEN date_diff('millisecond', started_at, ended_at) END AS duration_ms,
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
    duration_ms = date_diff('millisecond', COALESCE(started_at, excluded.started_at),
        CASE WHEN excluded.status_rank > status_rank THEN excluded.ended_at ELSE ended_at END),
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
SELECT run_id, asset_key, payload->>'asset_kind' AS asset_kind, partition_key,
       CASE event_type WHEN 'asset_materialized' THEN 'success' WHEN 'asset_failed' THEN 'failed' ELSE 'skipped' END,
       CAST(payload->>'rows' AS BIGINT), NULL, NULL, CAST(payload->>'bytes' AS BIGINT),
       CAST(payload->>'min_data_time' AS TIMESTAMPTZ), CAST(payload->>'max_data_time' AS TIMESTAMPTZ),
       CASE event_type
            WHEN 'asset_failed' THEN json_merge_patch(payload->'extra',
                 json_object('error_type', payload->>'error_type', 'error', payload->>'error_message'))
            WHEN 'asset_skipped' THEN json_merge_patch(payload->'extra', json_object('reason', payload->>'reason'))
            ELSE payload->'extra' END,
       NULL, recorded_at, NULL,
       scope_key, payload->>'code_version', payload->>'data_version', payload->>'path', payload->>'sha256', seq
FROM {{events}}
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
SELECT asset_key, scope_key, CAST(payload->>'max_data_time' AS TIMESTAMPTZ) AS watermark_ts,
       recorded_at AS updated_at, run_id AS last_run_id, seq
FROM {events}
WHERE event_type = 'asset_materialized' AND payload->>'max_data_time' IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY asset_key, scope_key
                           ORDER BY CAST(payload->>'max_data_time' AS TIMESTAMPTZ) DESC, seq DESC) = 1
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
SELECT event_id, asset_key, partition_key, payload->>'check_name', payload->>'severity', payload->>'status',
       recorded_at, payload->'metrics', payload->>'message', run_id, scope_key,
       payload->>'materialization_id', CAST(payload->>'materialization_seq' AS BIGINT), seq
FROM {events}
WHERE event_type = 'check_evaluated'
ON CONFLICT (check_id) DO NOTHING
"""

PARTITIONS = f"""
INSERT INTO {{meta}}.partition_status
WITH ev AS (
    SELECT *, event_type = 'asset_materialized' AS is_mat FROM {{events}} WHERE {_ASSET_EVENTS}
)
SELECT asset_key, partition_key, scope_key,
       arg_max(CASE event_type WHEN 'asset_materialized' THEN 'materialized'
                               WHEN 'asset_failed' THEN 'failed' ELSE 'skipped' END, seq) AS status,
       arg_max(run_id, seq) AS run_id,
       max(seq) AS last_seq,
       arg_max(recorded_at, seq) AS updated_at,
       max(seq) FILTER (WHERE is_mat) AS materialized_seq,
       arg_max(recorded_at, seq) FILTER (WHERE is_mat) AS materialized_at,
       arg_max(run_id, seq) FILTER (WHERE is_mat) AS materialized_run_id,
       arg_max(payload->>'code_version', seq) FILTER (WHERE is_mat) AS code_version,
       arg_max(payload->>'data_version', seq) FILTER (WHERE is_mat) AS data_version,
       arg_max(CAST(payload->>'rows' AS BIGINT), seq) FILTER (WHERE is_mat) AS rows,
       arg_max(CAST(payload->>'bytes' AS BIGINT), seq) FILTER (WHERE is_mat) AS bytes,
       arg_max(payload->>'path', seq) FILTER (WHERE is_mat) AS path,
       arg_max(payload->>'sha256', seq) FILTER (WHERE is_mat) AS sha256
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


def fold(con: duckdb.DuckDBPyConnection, events: str, meta: str = "meta") -> None:
    """Fold the event relation ``events`` (a table name or parenthesised query) into ``meta``."""
    for statement in FOLDS:
        con.execute(statement.format(events=events, meta=meta))


def clear(con: duckdb.DuckDBPyConnection, meta: str = "meta") -> None:
    """Empty every projection (never the log) before a rebuild."""
    for table in PROJECTION_TABLES:
        con.execute(f"DELETE FROM {meta}.{table}")


__all__ = ["FOLDS", "PROJECTION_KEYS", "PROJECTION_TABLES", "clear", "fold"]
