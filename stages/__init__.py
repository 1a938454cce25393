"""options-helper's stages: the asset registry, providers, stage functions and the runner.

    import stages
    result = stages.run_job("ingest_candles", as_of=date(2026, 11, 25), symbols=["SPY"], settings=settings)
    day = stages.run_daily(as_of=date(2026, 11, 25), settings=settings)
    gaps = stages.plan(settings)          # the gap planner; stages.backfill(settings) fills them
    stages.universe(settings)             # default symbols: the watchlist and the portfolio's underlyings
    from stages import portfolio          # the portfolio file, valued: portfolio.show(settings)

Importing this package is cheap: the runner (and with it pyarrow, pandas and the analytics)
loads on first use of one of the names below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stages.analytics.checks import CheckResult
    from stages.backfills import BackfillResult, backfill, backfill_resume, backfill_status
    from stages.inputs import default_session, resolve_symbols, universe
    from stages.planning import plan
    from stages.results import DailyResult, JobResult, SymbolOutcome, raise_for_status
    from stages.runner import run_daily, run_job

_LAZY = {
    "CheckResult": "stages.analytics.checks",
    "BackfillResult": "stages.backfills",
    "backfill": "stages.backfills",
    "backfill_resume": "stages.backfills",
    "backfill_status": "stages.backfills",
    "plan": "stages.planning",
    "DailyResult": "stages.results",
    "JobResult": "stages.results",
    "SymbolOutcome": "stages.results",
    "default_session": "stages.inputs",
    "raise_for_status": "stages.results",
    "resolve_symbols": "stages.inputs",
    "universe": "stages.inputs",
    "run_daily": "stages.runner",
    "run_job": "stages.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stages' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])




__all__ = [
    "BackfillResult",
    "CheckResult",
    "DailyResult",
    "JobResult",
    "SymbolOutcome",
    "backfill",
    "backfill_resume",
    "backfill_status",
    "default_session",
    "plan",
    "raise_for_status",
    "resolve_symbols",
    "run_daily",
    "run_job",
    "universe",
]
