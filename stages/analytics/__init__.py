"""Pure computations of the daily pipeline: snapshot enrichment, flow, derived metrics, quality
checks, the briefing and the dashboard.

Every public function is pure over in-memory tables (``pyarrow.Table`` in and out; pandas
frames are accepted as input): no I/O, no clock (``generated_at`` is a parameter), no database,
no ledger. The runner in ``stages`` reads the inputs, calls these and commits the results.

    snapshot.py   enrich_chain, SNAPSHOT_SCHEMA            options_snapshot_file rows
    flow.py       compute_flow, compute_flow_window, ...   options_flow rows
    derived.py    compute_derived, DERIVED_SCHEMA          derived_metrics rows
    checks.py     CheckResult, Check, checks_for, ...      pre-commit quality checks
    briefing.py   build_briefing, SymbolBriefing           briefing_markdown (+ JSON payload)
    dashboard.py  render_dashboard, DashboardInputs        dashboard_views (one HTML file)
"""

from __future__ import annotations

from stages.analytics.briefing import DISCLAIMER, SYNTHETIC_BANNER, SymbolBriefing, build_briefing
from stages.analytics.checks import (
    CROSSED_QUOTES_WARN_RATIO,
    NULL_IV_WARN_RATIO,
    Check,
    CheckResult,
    checks_for,
    failed,
    run_checks,
    skip_checks,
    summarize,
)
from stages.analytics.dashboard import DashboardInputs, DashboardSymbol, render_dashboard
from stages.analytics.derived import DERIVED_COLUMNS, DERIVED_SCHEMA, compute_derived
from stages.analytics.flow import (
    FLOW_GROUP_BYS,
    FLOW_PARTITION_COLUMNS,
    FLOW_SCHEMA,
    classify_flow,
    compute_flow,
    compute_flow_window,
    contract_flow,
    mark_price,
)
from stages.analytics.snapshot import IV_SOURCES, SNAPSHOT_SCHEMA, enrich_chain

__all__ = [
    "CROSSED_QUOTES_WARN_RATIO",
    "DERIVED_COLUMNS",
    "DERIVED_SCHEMA",
    "DISCLAIMER",
    "FLOW_GROUP_BYS",
    "FLOW_PARTITION_COLUMNS",
    "FLOW_SCHEMA",
    "IV_SOURCES",
    "NULL_IV_WARN_RATIO",
    "SNAPSHOT_SCHEMA",
    "SYNTHETIC_BANNER",
    "Check",
    "CheckResult",
    "DashboardInputs",
    "DashboardSymbol",
    "SymbolBriefing",
    "build_briefing",
    "checks_for",
    "classify_flow",
    "compute_derived",
    "compute_flow",
    "compute_flow_window",
    "contract_flow",
    "enrich_chain",
    "failed",
    "mark_price",
    "render_dashboard",
    "run_checks",
    "skip_checks",
    "summarize",
]
