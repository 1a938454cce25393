"""One module per stage: gather inputs (short reads), compute per scope, return what to commit.

``stage(job_name)`` returns the (gather, compute) pair of a job; modules load on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from stages.registry import (
    BUILD_BRIEFING,
    BUILD_DASHBOARD,
    COMPUTE_DERIVED,
    COMPUTE_FLOW,
    INGEST_CANDLES,
    INGEST_OPTIONS_BARS,
    SNAPSHOT_OPTIONS,
)

# job name -> (module, gather function, compute function)
_STAGES: dict[str, tuple[str, str, str]] = {
    INGEST_CANDLES: ("stages.jobs.candles", "gather", "compute"),
    INGEST_OPTIONS_BARS: ("stages.jobs.options_bars", "gather", "compute"),
    SNAPSHOT_OPTIONS: ("stages.jobs.snapshot", "gather", "compute"),
    COMPUTE_FLOW: ("stages.jobs.flow", "gather", "compute"),
    COMPUTE_DERIVED: ("stages.jobs.derived", "gather", "compute"),
    BUILD_BRIEFING: ("stages.jobs.reports", "gather_briefing", "compute_briefing"),
    BUILD_DASHBOARD: ("stages.jobs.reports", "gather_dashboard", "compute_dashboard"),
}


def stage(job_name: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The (gather, compute) functions of ``job_name``."""
    module_name, gather, compute = _STAGES[job_name]
    module = importlib.import_module(module_name)
    return getattr(module, gather), getattr(module, compute)


__all__ = ["stage"]
