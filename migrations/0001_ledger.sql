-- The ledger: the append-only event log and the projections that are folded from it.
-- meta.events is the source of truth; nothing ever UPDATEs or DELETEs it.
-- Every other meta table can be dropped and rebuilt from meta.events (`options-helper db rebuild`).

CREATE SCHEMA IF NOT EXISTS meta;

CREATE TABLE meta.events (
    seq            BIGINT PRIMARY KEY,      -- gap-free, commit-ordered global position
    event_id       VARCHAR NOT NULL UNIQUE, -- UUIDv7
    event_type     VARCHAR NOT NULL,        -- stable name, e.g. run_started
    schema_version INTEGER NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    run_id         VARCHAR,
    asset_key      VARCHAR,
    partition_key  VARCHAR,                 -- session date YYYY-MM-DD
    scope_key      VARCHAR,                 -- symbol or ALL
    payload        JSON NOT NULL,
    prev_hash      VARCHAR NOT NULL,
    hash           VARCHAR NOT NULL
);

-- One row per run; the original's columns first, ours appended.
CREATE TABLE meta.ingestion_runs (
    run_id            VARCHAR PRIMARY KEY,
    parent_run_id     VARCHAR,
    job_name          VARCHAR,
    triggered_by      VARCHAR,
    status            VARCHAR NOT NULL,     -- started | success | failed | abandoned
    started_at        TIMESTAMPTZ,
    ended_at          TIMESTAMPTZ,
    duration_ms       BIGINT,
    provider          VARCHAR,
    storage_backend   VARCHAR,
    args_json         JSON,
    git_sha           VARCHAR,
    app_version       VARCHAR,
    error_type        VARCHAR,
    error_message     VARCHAR,
    error_stack_hash  VARCHAR,
    status_rank       INTEGER NOT NULL,     -- started 0 < abandoned 1 < success 2 < failed 3
    last_heartbeat_at TIMESTAMPTZ,
    lease_expires_at  TIMESTAMPTZ,
    partition_key     VARCHAR,
    scope_keys        VARCHAR[],
    code_version      VARCHAR,
    backfill_id       VARCHAR,
    error_fingerprint VARCHAR,
    first_seq         BIGINT,
    last_seq          BIGINT NOT NULL
);

-- The latest asset event per (run, asset, partition, scope).
CREATE TABLE meta.ingestion_run_assets (
    run_id         VARCHAR NOT NULL,
    asset_key      VARCHAR NOT NULL,
    asset_kind     VARCHAR,
    partition_key  VARCHAR NOT NULL,
    status         VARCHAR NOT NULL,        -- success | failed | skipped
    rows_inserted  BIGINT,
    rows_updated   BIGINT,
    rows_deleted   BIGINT,
    bytes_written  BIGINT,
    min_event_ts   TIMESTAMPTZ,
    max_event_ts   TIMESTAMPTZ,
    extra_json     JSON,
    started_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    duration_ms    BIGINT,
    scope_key      VARCHAR NOT NULL,
    code_version   VARCHAR,
    data_version   VARCHAR,
    path           VARCHAR,
    sha256         VARCHAR,
    seq            BIGINT NOT NULL,
    PRIMARY KEY (run_id, asset_key, partition_key, scope_key)
);

-- Freshness: the newest data date per (asset, scope). Only moves forward.
CREATE TABLE meta.asset_watermarks (
    asset_key     VARCHAR NOT NULL,
    scope_key     VARCHAR NOT NULL,
    watermark_ts  TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    last_run_id   VARCHAR,
    seq           BIGINT NOT NULL,
    PRIMARY KEY (asset_key, scope_key)
);

-- Every check evaluation, linked to the materialization it validated.
CREATE TABLE meta.asset_checks (
    check_id                  VARCHAR PRIMARY KEY,   -- the CheckEvaluated event_id
    asset_key                 VARCHAR NOT NULL,
    partition_key             VARCHAR,
    check_name                VARCHAR NOT NULL,
    severity                  VARCHAR NOT NULL,      -- warn | error
    status                    VARCHAR NOT NULL,      -- pass | fail | skip
    checked_at                TIMESTAMPTZ NOT NULL,
    metrics_json              JSON,
    message                   VARCHAR,
    run_id                    VARCHAR,
    scope_key                 VARCHAR,
    materialization_event_id  VARCHAR,
    materialization_seq       BIGINT,
    seq                       BIGINT NOT NULL
);

-- The latest state of every (asset, session, scope) cell: what the gap planner reads.
CREATE TABLE meta.partition_status (
    asset_key           VARCHAR NOT NULL,
    partition_key       VARCHAR NOT NULL,
    scope_key           VARCHAR NOT NULL,
    status              VARCHAR NOT NULL,   -- materialized | failed | skipped (the latest asset event)
    run_id              VARCHAR,
    last_seq            BIGINT NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    materialized_seq    BIGINT,             -- the latest successful materialization, if any
    materialized_at     TIMESTAMPTZ,
    materialized_run_id VARCHAR,
    code_version        VARCHAR,
    data_version        VARCHAR,
    rows                BIGINT,
    bytes               BIGINT,
    path                VARCHAR,
    sha256              VARCHAR,
    PRIMARY KEY (asset_key, partition_key, scope_key)
);

-- How far the projections have folded the log, and the head of the hash chain.
CREATE TABLE meta.ledger_checkpoint (
    name        VARCHAR PRIMARY KEY,
    last_seq    BIGINT NOT NULL,
    last_hash   VARCHAR NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
