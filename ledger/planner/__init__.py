"""The gap planner: which (asset, session, scope) cells are missing or out of date, why, and the
commands that fix them, upstream first.

The planner reads the projections only (``meta.partition_status``, ``meta.ingestion_runs``,
``meta.asset_checks``) and never imports ``stages``: the asset graph arrives as plain data
(``PlannerAsset``). The analysis is set-based: one scan of ``partition_status`` maps every
analysed cell to a slot of one flat integer grid (``reads``), the rules run vectorised in graph
order (``grid``: a few dense passes per asset find the candidate cells, the rules run on those),
and ranges and steps are gaps and islands along each scope's sessions (``ranges``). See
docs/gaps.md for the rules and the figures; in short, per cell, first match wins:

=====================  ==========================================================================
``unrecoverable``      the cell needs work but cannot be produced: the provider cannot produce the
                       asset for that past session, or the cell is absent and an upstream cell it
                       needs is absent and itself unrecoverable
``failed``             the latest asset event is a failure, or (no row) a failed run targeted it
``abandoned``          no row, and an abandoned run targeted it
``upstream_missing``   no row (or a skipped one), and an upstream cell is absent or failed (and fixable)
``missing``            no row
``check_failed``       an error-severity check failed on the cell's current materialization
``stale``              the stage's code version changed since, an upstream cell was materialized
                       after this one, or an upstream cell is itself in the plan
=====================  ==========================================================================

A lag-1 dependency (flow needs the previous session's snapshot) makes the planner look at the
session before the window too, for the assets such a dependency reaches (the "lookback" cells).
"""

from ledger.planner.backfill import backfill_cell_states, backfill_finished, backfill_planned, backfill_runs
from ledger.planner.graph import ancestors, lookback_assets
from ledger.planner.model import (
    ABSENT_REASONS,
    ALL_SCOPE,
    REASONS,
    GapPlan,
    GapRange,
    PlannerAsset,
    PlanStep,
)
from ledger.planner.plan import default_window, plan_gaps
from ledger.planner.reads import _SCOPE_PUSHDOWN  # noqa: F401  (the tests exercise both read paths)

__all__ = [
    "ABSENT_REASONS",
    "ALL_SCOPE",
    "REASONS",
    "GapPlan",
    "GapRange",
    "PlanStep",
    "PlannerAsset",
    "ancestors",
    "backfill_cell_states",
    "backfill_finished",
    "backfill_planned",
    "backfill_runs",
    "default_window",
    "lookback_assets",
    "plan_gaps",
]
