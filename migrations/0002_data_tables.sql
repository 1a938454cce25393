-- The warehouse: the data tables the stages write (docs/contracts.md, "Data tables").
-- Every row carries the run_id that wrote it. A stage re-run replaces its partition's rows
-- (DELETE then INSERT in the ledger's transaction), so nothing is duplicated.
-- The small tables have a primary key; the bulk tables (option contracts, option bars, flow)
-- rely on partition replacement and the pre-commit checks instead, because a unique index
-- makes DuckDB's delete-and-reinsert of a partition about ten times slower.

CREATE TABLE candles_daily (
    symbol       VARCHAR NOT NULL,
    date         DATE NOT NULL,
    ts           TIMESTAMPTZ,
    open         DOUBLE,
    high         DOUBLE,
    low          DOUBLE,
    close        DOUBLE,
    volume       BIGINT,
    vwap         DOUBLE,
    trade_count  BIGINT,
    run_id       VARCHAR NOT NULL,
    PRIMARY KEY (symbol, date)
);

-- Contracts listed for an underlying as of a session (one row per contract and as_of).
CREATE TABLE option_contracts (
    contract_symbol     VARCHAR NOT NULL,
    as_of               DATE NOT NULL,
    underlying          VARCHAR NOT NULL,
    expiry              DATE NOT NULL,
    option_type         VARCHAR NOT NULL,
    strike              DOUBLE NOT NULL,
    multiplier          INTEGER,
    status              VARCHAR,
    open_interest       BIGINT,
    open_interest_date  DATE,
    close_price         DOUBLE,
    run_id              VARCHAR NOT NULL
);

-- Daily bars of contracts (scope = the underlying).
CREATE TABLE options_bars (
    contract_symbol  VARCHAR NOT NULL,
    date             DATE NOT NULL,
    underlying       VARCHAR NOT NULL,
    ts               TIMESTAMPTZ,
    open             DOUBLE,
    high             DOUBLE,
    low              DOUBLE,
    close            DOUBLE,
    volume           BIGINT,
    vwap             DOUBLE,
    trade_count      BIGINT,
    run_id           VARCHAR NOT NULL
);

-- One row per snapshot file; path is relative to the data root.
CREATE TABLE options_snapshot_files (
    symbol     VARCHAR NOT NULL,
    date       DATE NOT NULL,
    path       VARCHAR NOT NULL,
    bytes      BIGINT NOT NULL,
    sha256     VARCHAR NOT NULL,
    contracts  BIGINT NOT NULL,
    spot       DOUBLE,
    provider   VARCHAR,
    run_id     VARCHAR NOT NULL,
    PRIMARY KEY (symbol, date)
);

-- Flow rows, unique on (symbol, from_date, to_date, window_size, group_by, row_key).
CREATE TABLE options_flow (
    symbol             VARCHAR NOT NULL,
    from_date          DATE NOT NULL,
    to_date            DATE NOT NULL,
    window_size        INTEGER NOT NULL,
    group_by           VARCHAR NOT NULL,
    row_key            VARCHAR NOT NULL,
    as_of              DATE NOT NULL,
    contract_symbol    VARCHAR,
    expiry             DATE,
    option_type        VARCHAR,
    strike             DOUBLE,
    delta_oi           DOUBLE,
    delta_oi_notional  DOUBLE,
    volume_notional    DOUBLE,
    delta_notional     DOUBLE,
    n_pairs            BIGINT NOT NULL,
    flow_class         VARCHAR NOT NULL,
    run_id             VARCHAR NOT NULL,
    volume             DOUBLE,
    oi_start           DOUBLE,
    oi_end             DOUBLE,
    n_contracts        BIGINT,
    n_new              BIGINT,
    n_disappeared      BIGINT,
    status             VARCHAR
);

CREATE TABLE derived_metrics (
    symbol                  VARCHAR NOT NULL,
    date                    DATE NOT NULL,
    spot                    DOUBLE,
    pc_oi                   DOUBLE,
    pc_vol                  DOUBLE,
    call_wall               DOUBLE,
    put_wall                DOUBLE,
    gamma_peak_strike       DOUBLE,
    atm_iv_near             DOUBLE,
    em_near_pct             DOUBLE,
    skew_near_pp            DOUBLE,
    rv_20d                  DOUBLE,
    rv_60d                  DOUBLE,
    iv_rv_20d               DOUBLE,
    atm_iv_near_percentile  DOUBLE,
    iv_term_slope           DOUBLE,
    iv_rank_252d            DOUBLE,
    run_id                  VARCHAR NOT NULL,
    PRIMARY KEY (symbol, date)
);

-- Report files (briefing Markdown and JSON, dashboard HTML); path is relative to the data root.
CREATE TABLE report_files (
    kind    VARCHAR NOT NULL CHECK (kind IN ('briefing_markdown', 'briefing_json', 'dashboard_views')),
    date    DATE NOT NULL,
    path    VARCHAR NOT NULL,
    bytes   BIGINT NOT NULL,
    sha256  VARCHAR NOT NULL,
    run_id  VARCHAR NOT NULL,
    PRIMARY KEY (kind, date)
);
