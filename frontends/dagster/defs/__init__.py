"""The options-helper Dagster code location: ``dagster dev -m frontends.dagster.defs``.

Assets, checks, jobs and schedules are generated from ``stages.registry``; every asset calls the
same runner as the CLI, so the DuckDB ledger is written exactly as for a CLI run (with
``triggered_by = dagster`` and the Dagster run id as parent). See docs/dagster.md.
"""

try:
    import dagster as dg
except ImportError as e:  # pragma: no cover - exercised only without the extra
    from ledger.errors import MissingExtraError

    raise MissingExtraError.for_extra("orchestrator", "dagster") from e

from frontends.dagster.defs.assets import ASSETS
from frontends.dagster.defs.jobs import JOBS
from frontends.dagster.defs.partitions import SESSIONS
from frontends.dagster.defs.resources import RESOURCES
from frontends.dagster.defs.schedules import SCHEDULES
from frontends.dagster.defs.sensors import SENSORS

defs = dg.Definitions(assets=ASSETS, jobs=JOBS, schedules=SCHEDULES, sensors=SENSORS, resources=RESOURCES)

__all__ = ["SESSIONS", "defs"]
