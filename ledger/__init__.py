"""options-helper's ledger: an append-only event log in DuckDB and the projections folded from it.

Import what you need from here; the submodules are implementation. Names are loaded lazily so
that ``import ledger`` (and the CLI's ``--help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ledger import errors as _errors

_EXPORTS = {
    "APP_VERSION": "ledger.api",
    "Ledger": "ledger.api",
    "RunContext": "ledger.api",
    "open": "ledger.api",
    "status": "ledger.api",
    "AlpacaSettings": "ledger.config",
    "Settings": "ledger.config",
    "get_duckdb_path": "ledger.config",
    "load_settings": "ledger.config",
    "DuckDBEventStore": "ledger.duckdb_store",
    "AssetFailed": "ledger.events",
    "AssetMaterialized": "ledger.events",
    "AssetSkipped": "ledger.events",
    "BackfillFinished": "ledger.events",
    "BackfillPlanned": "ledger.events",
    "CheckEvaluated": "ledger.events",
    "ChecksEvaluated": "ledger.events",
    "Event": "ledger.events",
    "GapPlan": "ledger.planner.model",
    "GapRange": "ledger.planner.model",
    "PlanStep": "ledger.planner.model",
    "RunAbandoned": "ledger.events",
    "RunFailed": "ledger.events",
    "RunHeartbeat": "ledger.events",
    "RunStarted": "ledger.events",
    "RunSucceeded": "ledger.events",
    "StoredEvent": "ledger.events",
    "EventStore": "ledger.store",
    "VerifyReport": "ledger.verify",
    "TradingCalendar": "ledger.calendar",
    # every error class, so that callers catch them from here (ledger.errors lists them)
    **{name: "ledger.errors" for name in _errors.__all__ if isinstance(getattr(_errors, name), type)},
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
