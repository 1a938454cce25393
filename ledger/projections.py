"""The projections of the event log, as set-based SQL folds.

Each statement folds a relation of events (``{events}``: the whole log, or the log up to a bound)
into an empty projection table in schema ``{meta}``: a rebuild, time travel, ``db verify``.
Appends maintain the projections incrementally with the Python fold (``ledger.fold`` through
``ledger.incremental``), whose merge rules are joins in a semilattice (max of rank, of seq, of
watermark); the tests check that both give the same rows.

A rebuild writes about a million rows. What it costs is parsing payloads, building primary-key
indexes and compressing the rows, so: each payload is parsed once, with a shape of only the fields
its family of events needs (a run's start and winning terminal payloads after grouping, once per
run); and a table keyed on several columns gets its key after its rows, so that DuckDB builds the
index once, at commit, instead of a transaction-local index while inserting and the table's
index again at commit; and rows are inserted in no particular order.

This module is the one place the projection SQL lives.
"""

from __future__ import annotations

import re
from contextlib import suppress

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

_RUN_TYPES = "('run_started', 'run_heartbeat', 'run_succeeded', 'run_failed', 'run_abandoned')"
_ASSET_TYPES = "('asset_materialized', 'asset_failed', 'asset_skipped')"

# The payload fields each fold reads, by family of events (json_transform parses a payload once).
START_SHAPE = (
    '{"parent_run_id":"VARCHAR","job_name":"VARCHAR","triggered_by":"VARCHAR","provider":"VARCHAR",'
    '"args":"JSON","app_version":"VARCHAR","scope_keys":["VARCHAR"],"code_version":"VARCHAR","backfill_id":"VARCHAR"}'
)
END_SHAPE = (
    '{"error_type":"VARCHAR","error_message":"VARCHAR","reason":"VARCHAR","stack_hash":"VARCHAR",'
    '"error_fingerprint":"VARCHAR"}'
)
ASSET_SHAPE = (
    '{"asset_kind":"VARCHAR","rows":"BIGINT","bytes":"BIGINT","min_data_time":"VARCHAR","max_data_time":"VARCHAR",'
    '"extra":"JSON","error_type":"VARCHAR","error_message":"VARCHAR","reason":"VARCHAR","code_version":"VARCHAR",'
    '"data_version":"VARCHAR","path":"VARCHAR","sha256":"VARCHAR"}'
)
CHECK_SHAPE = (
    '{"check_name":"VARCHAR","severity":"VARCHAR","status":"VARCHAR","metrics":"JSON","message":"VARCHAR",'
    '"materialization_id":"VARCHAR","materialization_seq":"BIGINT"}'
)

# Three folds read the asset events: their payloads are parsed once, into a temporary table.
FLATTEN = f"""
CREATE OR REPLACE TEMP TABLE _ledger_assets AS
SELECT seq, event_type, recorded_at, run_id, asset_key, partition_key, scope_key,
       json_transform(payload, '{ASSET_SHAPE}') AS p
FROM {{events}}
WHERE event_type IN {_ASSET_TYPES}
"""

_RANK = """CASE event_type WHEN 'run_abandoned' THEN 1 WHEN 'run_succeeded' THEN 2
                          WHEN 'run_failed' THEN 3 ELSE 0 END"""
_STATUS_OF_RANK = "CASE {r} WHEN 0 THEN 'started' WHEN 1 THEN 'abandoned' WHEN 2 THEN 'success' ELSE 'failed' END"

RUNS = f"""
INSERT INTO {{meta}}.ingestion_runs
WITH agg AS (
    SELECT run_id,
           max(rnk) AS status_rank,
           -- the terminal event that wins: highest rank, then earliest seq
           arg_max_null({{'at': recorded_at, 'type': event_type, 'payload': payload}}, rnk * 1000000000000000 - seq)
               FILTER (WHERE rnk > 0) AS term,
           max(recorded_at) AS last_heartbeat_at,
           max(CASE WHEN event_type IN ('run_started', 'run_heartbeat') THEN recorded_at + to_microseconds(CAST(
               json_transform(payload, '{{"lease_seconds":"DOUBLE"}}').lease_seconds * 1000000 AS BIGINT)) END)
               AS lease_expires_at,
           min(seq) FILTER (WHERE event_type = 'run_started') AS first_seq,
           max(seq) AS last_seq
    FROM (SELECT run_id, seq, recorded_at, event_type, payload, {_RANK} AS rnk
          FROM {{events}} WHERE event_type IN {_RUN_TYPES})
    GROUP BY run_id
), runs AS (
    -- a run has one start (the store refuses another): its payload and the winner's, parsed once per run
    SELECT agg.*, s.recorded_at AS started_at, s.partition_key, s.p,
           json_transform(term.payload, '{END_SHAPE}') AS e
    FROM agg LEFT JOIN (
        SELECT seq, recorded_at, partition_key, json_transform(payload, '{START_SHAPE}') AS p
        FROM {{events}} WHERE event_type = 'run_started'
    ) s ON s.seq = agg.first_seq
)
SELECT run_id, p.parent_run_id, p.job_name, p.triggered_by, {_STATUS_OF_RANK.format(r="status_rank")} AS status,
       started_at, term.at AS ended_at,
       (epoch_us(term.at) - epoch_us(started_at)) // 1000 AS duration_ms,
       p.provider, 'duckdb' AS storage_backend, p.args, NULL AS git_sha, p.app_version,
       CASE term.type WHEN 'run_failed' THEN e.error_type WHEN 'run_abandoned' THEN 'Abandoned' END AS error_type,
       CASE term.type WHEN 'run_failed' THEN e.error_message WHEN 'run_abandoned' THEN e.reason END AS error_message,
       e.stack_hash, status_rank, last_heartbeat_at, lease_expires_at,
       partition_key, p.scope_keys, p.code_version, p.backfill_id, e.error_fingerprint, first_seq, last_seq
FROM runs
"""

RUN_ASSETS = """
INSERT INTO {meta}.ingestion_run_assets
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
FROM _ledger_assets
QUALIFY row_number() OVER (PARTITION BY run_id, asset_key, partition_key, scope_key ORDER BY seq DESC) = 1
"""

WATERMARKS = """
INSERT INTO {meta}.asset_watermarks
SELECT asset_key, scope_key, w.watermark_ts, w.updated_at, w.last_run_id, w.seq
FROM (
    -- the newest data date wins, then the latest event: an aggregate, not a sort of the events
    SELECT asset_key, scope_key,
           arg_max({'watermark_ts': watermark_ts, 'updated_at': recorded_at, 'last_run_id': run_id, 'seq': seq},
                   {'watermark_ts': watermark_ts, 'seq': seq}) AS w
    FROM (SELECT *, CAST(p.max_data_time AS TIMESTAMPTZ) AS watermark_ts FROM _ledger_assets
          WHERE event_type = 'asset_materialized' AND p.max_data_time IS NOT NULL)
    GROUP BY asset_key, scope_key
)
"""

CHECKS = f"""
INSERT INTO {{meta}}.asset_checks
SELECT event_id, asset_key, partition_key, p.check_name, p.severity, p.status,
       recorded_at, p.metrics, p.message, run_id, scope_key,
       p.materialization_id, p.materialization_seq, seq
FROM (SELECT *, json_transform(payload, '{CHECK_SHAPE}') AS p FROM {{events}} WHERE event_type = 'check_evaluated')
"""

PARTITIONS = """
INSERT INTO {meta}.partition_status
WITH ev AS (
    SELECT *, event_type = 'asset_materialized' AS is_mat FROM _ledger_assets
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
    rows with the Python fold (``ledger.incremental``), which applies the same rules.

    Run it in a transaction where a failure must leave the tables as they were: tables keyed on
    several columns are re-created without their key until their rows are in.
    """
    keys = {table: key for table in PROJECTION_TABLES if (key := _drop_key(con, meta, table))}
    # Projections have no row order (every read sorts by key): letting each thread append its own
    # rows saves copying them into insertion order. The setting is the session's, not the
    # transaction's: it is put back, except after a failure in a transaction, which refuses SET.
    ordered = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]  # type: ignore[index]
    con.execute("SET preserve_insertion_order = false")
    try:
        con.execute(FLATTEN.replace("{events}", events))  # the shapes hold braces: no str.format
        for statement in FOLDS:
            con.execute(statement.replace("{meta}", meta).replace("{events}", events))
        con.execute("DROP TABLE _ledger_assets")
        for table, key in keys.items():
            # In a transaction DuckDB builds the index at commit (and checks the key there).
            con.execute(f"ALTER TABLE {meta}.{table} ADD {key}")
    except BaseException:
        with suppress(duckdb.Error):  # a failed transaction refuses both: its rollback drops the table
            con.execute("DROP TABLE IF EXISTS _ledger_assets")
            con.execute(f"SET preserve_insertion_order = {bool(ordered)}")
        raise
    con.execute(f"SET preserve_insertion_order = {bool(ordered)}")


_TABLE_KEY = re.compile(r", (PRIMARY KEY\([^()]*\))\);$")


def _drop_key(con: duckdb.DuckDBPyConnection, meta: str, table: str) -> str | None:
    """Re-create the empty ``table`` without its primary key and return the key's clause, when the
    key is a table constraint (``PRIMARY KEY(a, b)``), so that adding it back gives the same DDL
    text and the same constraints in the same order (tests/ledger/test_rebuild.py holds the
    migrations' tables to that). A key declared on its column (``run_id VARCHAR PRIMARY KEY``)
    stays, since ``ALTER TABLE ... ADD PRIMARY KEY`` would store it as a table constraint; so do
    tables with rows or with other kinds of constraint."""
    where = "database_name = current_database() AND schema_name = ? AND table_name = ?"
    row = con.execute(f"SELECT sql FROM duckdb_tables() WHERE {where}", [meta, table]).fetchone()
    match = _TABLE_KEY.search(row[0]) if row else None
    if match is None:
        return None
    kinds = {k for (k,) in con.execute(f"SELECT constraint_type FROM duckdb_constraints() WHERE {where}",
                                       [meta, table]).fetchall()}
    if kinds - {"NOT NULL", "PRIMARY KEY"} or con.execute(f"SELECT 1 FROM {meta}.{table} LIMIT 1").fetchone():
        return None
    columns = con.execute(
        f"SELECT column_name, data_type, column_default, is_nullable FROM duckdb_columns() WHERE {where} "
        "ORDER BY column_index", [meta, table]).fetchall()
    body = ", ".join(
        '"{}" {}{}{}'.format(name.replace('"', '""'), dtype, "" if default is None else f" DEFAULT {default}",
                             "" if nullable else " NOT NULL")
        for name, dtype, default, nullable in columns
    )
    con.execute(f"DROP TABLE {meta}.{table}")
    con.execute(f"CREATE TABLE {meta}.{table} ({body})")
    return match.group(1)


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
