"""The one registry of assets and jobs. Every frontend and the gap planner read it; no key is
spelled anywhere else.

Bump a stage's ``code_version`` whenever its logic changes: the gap planner then reports that
stage's existing partitions as ``stale``.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

CANDLES_DAILY = "candles_daily"
OPTIONS_BARS = "options_bars"
OPTIONS_SNAPSHOT_FILE = "options_snapshot_file"
OPTIONS_FLOW = "options_flow"
DERIVED_METRICS = "derived_metrics"
BRIEFING_MARKDOWN = "briefing_markdown"
DASHBOARD_VIEWS = "dashboard_views"

INGEST_CANDLES = "ingest_candles"
INGEST_OPTIONS_BARS = "ingest_options_bars"
SNAPSHOT_OPTIONS = "snapshot_options"
COMPUTE_FLOW = "compute_flow"
COMPUTE_DERIVED = "compute_derived"
BUILD_BRIEFING = "build_briefing"
BUILD_DASHBOARD = "build_dashboard"

# Scope of assets computed over the whole universe at once (one partition per session).
ALL_SCOPE = "ALL"


@attrs.frozen(kw_only=True)
class Upstream:
    """A dependency: ``asset_key`` at the same session, or the previous session (``lag=1``)."""

    asset_key: str
    lag: int = 0
    # Lag 1 only: when the previous session's cell cannot be produced, an earlier one (within the
    # setting's reach: ``flow_max_gap_sessions``) will do (the job takes the latest it finds).
    fallback: bool = False


@attrs.frozen(kw_only=True)
class AssetSpec:
    key: str
    job: str
    kind: str  # "table" | "file" | "view"
    description: str
    upstream: tuple[Upstream, ...] = ()
    per_symbol: bool = True  # False: one partition per session with scope ALL
    needs_provider: bool = False
    provider_dataset: str | None = None  # the provider capability the stage reads, if any


@attrs.frozen(kw_only=True)
class JobSpec:
    name: str
    asset_key: str
    code_version: str
    cli_command: str  # the words after `options-helper`
    description: str


ASSETS: tuple[AssetSpec, ...] = (
    AssetSpec(
        key=CANDLES_DAILY, job=INGEST_CANDLES, kind="table", needs_provider=True, provider_dataset="stock_bars",
        description="Daily OHLCV with vwap and trade count, one row per (symbol, date).",
    ),
    AssetSpec(
        key=OPTIONS_BARS, job=INGEST_OPTIONS_BARS, kind="table", needs_provider=True, provider_dataset="option_bars",
        description="Daily bars of listed option contracts near the money, one row per (contract, date).",
    ),
    AssetSpec(
        key=OPTIONS_SNAPSHOT_FILE, job=SNAPSHOT_OPTIONS, kind="file", needs_provider=True,
        provider_dataset="option_chain", upstream=(Upstream(asset_key=CANDLES_DAILY),),
        description="The full option chain as of the session, one Parquet file per (symbol, date).",
    ),
    AssetSpec(
        key=OPTIONS_FLOW, job=COMPUTE_FLOW, kind="table",
        upstream=(Upstream(asset_key=OPTIONS_SNAPSHOT_FILE),
                  Upstream(asset_key=OPTIONS_SNAPSHOT_FILE, lag=1, fallback=True)),
        description="Day-over-day change in open interest and volume, by contract, strike and expiry.",
    ),
    AssetSpec(
        key=DERIVED_METRICS, job=COMPUTE_DERIVED, kind="table",
        upstream=(Upstream(asset_key=OPTIONS_SNAPSHOT_FILE), Upstream(asset_key=CANDLES_DAILY), Upstream(asset_key=OPTIONS_FLOW)),
        description="Per-symbol daily metrics: put/call ratios, walls, ATM IV, expected move, skew, RV, IV rank.",
    ),
    AssetSpec(
        key=BRIEFING_MARKDOWN, job=BUILD_BRIEFING, kind="file", per_symbol=False,
        upstream=(Upstream(asset_key=DERIVED_METRICS), Upstream(asset_key=OPTIONS_FLOW)),
        description="The daily Markdown (and JSON) briefing for the universe.",
    ),
    AssetSpec(
        key=DASHBOARD_VIEWS, job=BUILD_DASHBOARD, kind="file", per_symbol=False,
        upstream=(Upstream(asset_key=BRIEFING_MARKDOWN),),
        description="A self-contained HTML dashboard of prices, IV, flow and ledger health.",
    ),
)

JOBS: tuple[JobSpec, ...] = (
    JobSpec(name=INGEST_CANDLES, asset_key=CANDLES_DAILY, code_version="1", cli_command="ingest candles",
            description="Ingest daily candles."),
    JobSpec(name=INGEST_OPTIONS_BARS, asset_key=OPTIONS_BARS, code_version="1", cli_command="ingest options-bars",
            description="Discover contracts and ingest their daily bars."),
    JobSpec(name=SNAPSHOT_OPTIONS, asset_key=OPTIONS_SNAPSHOT_FILE, code_version="1", cli_command="snapshot-options",
            description="Snapshot full option chains to Parquet."),
    JobSpec(name=COMPUTE_FLOW, asset_key=OPTIONS_FLOW, code_version="2", cli_command="flow",
            description="Compute open-interest and volume flow."),
    JobSpec(name=COMPUTE_DERIVED, asset_key=DERIVED_METRICS, code_version="1", cli_command="derived",
            description="Compute derived metrics."),
    JobSpec(name=BUILD_BRIEFING, asset_key=BRIEFING_MARKDOWN, code_version="1", cli_command="briefing",
            description="Write the daily briefing."),
    JobSpec(name=BUILD_DASHBOARD, asset_key=DASHBOARD_VIEWS, code_version="1", cli_command="dashboard",
            description="Write the HTML dashboard."),
)

ASSET_KEYS: tuple[str, ...] = tuple(a.key for a in ASSETS)
JOB_NAMES: tuple[str, ...] = tuple(j.name for j in JOBS)
DAILY_ORDER: tuple[str, ...] = JOB_NAMES

_ASSETS_BY_KEY = {a.key: a for a in ASSETS}
_JOBS_BY_NAME = {j.name: j for j in JOBS}
_JOB_BY_ASSET = {j.asset_key: j for j in JOBS}


def asset(key: str) -> AssetSpec:
    try:
        return _ASSETS_BY_KEY[key]
    except KeyError:
        from ledger.errors import UsageError

        raise UsageError(f"unknown asset {key!r}; known assets: {', '.join(ASSET_KEYS)}") from None


def job(name: str) -> JobSpec:
    try:
        return _JOBS_BY_NAME[name]
    except KeyError:
        from ledger.errors import UsageError

        raise UsageError(f"unknown job {name!r}; known jobs: {', '.join(JOB_NAMES)}") from None


def job_for_asset(key: str) -> JobSpec:
    asset(key)
    return _JOB_BY_ASSET[key]


def code_versions() -> dict[str, str]:
    """asset_key -> the current code version of the job that produces it."""
    return {j.asset_key: j.code_version for j in JOBS}


def downstream_closure(keys: Iterable[str]) -> list[str]:
    """``keys`` and every asset that depends on them, in graph order."""
    wanted = set(keys)
    for a in ASSETS:  # ASSETS is topologically ordered
        if any(u.asset_key in wanted for u in a.upstream):
            wanted.add(a.key)
    return [k for k in ASSET_KEYS if k in wanted]


def topological_order() -> tuple[str, ...]:
    return ASSET_KEYS


__all__ = [
    "ALL_SCOPE",
    "ASSETS",
    "ASSET_KEYS",
    "DAILY_ORDER",
    "JOBS",
    "JOB_NAMES",
    "AssetSpec",
    "JobSpec",
    "Upstream",
    "asset",
    "code_versions",
    "downstream_closure",
    "job",
    "job_for_asset",
    "topological_order",
]
