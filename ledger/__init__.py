"""options-helper's ledger: an append-only event log in DuckDB and the projections folded from it.

Import what you need from here; the submodules are implementation.
"""

from ledger.api import APP_VERSION, Ledger, RunContext, open
from ledger.config import Settings, get_duckdb_path, load_settings
from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import OptionsHelperError
from ledger.events import (
    AssetFailed,
    AssetMaterialized,
    AssetSkipped,
    BackfillFinished,
    BackfillPlanned,
    CheckEvaluated,
    Event,
    RunAbandoned,
    RunFailed,
    RunHeartbeat,
    RunStarted,
    RunSucceeded,
    StoredEvent,
)
from ledger.store import EventStore, InMemoryEventStore
from ledger.verify import VerifyReport

__all__ = [
    "APP_VERSION",
    "AssetFailed",
    "AssetMaterialized",
    "AssetSkipped",
    "BackfillFinished",
    "BackfillPlanned",
    "CheckEvaluated",
    "DuckDBEventStore",
    "Event",
    "EventStore",
    "InMemoryEventStore",
    "Ledger",
    "OptionsHelperError",
    "RunAbandoned",
    "RunContext",
    "RunFailed",
    "RunHeartbeat",
    "RunStarted",
    "RunSucceeded",
    "Settings",
    "StoredEvent",
    "VerifyReport",
    "get_duckdb_path",
    "load_settings",
    "open",
]
