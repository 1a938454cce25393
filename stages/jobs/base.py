"""What a job module receives and returns.

A job module (``stages/jobs/<stage>.py``) has two functions:

* ``gather(ctx) -> inputs``: every database read the stage needs, for all its scopes at once,
  through ``ctx.read`` (a read-only connection held only for the call);
* ``compute(ctx, inputs, scope) -> PartitionResult``: the work for one scope (a symbol, or
  ``ALL``), calling the provider and ``stages.analytics``; it stages files but never writes the
  database. A per-scope problem is raised as an ``OptionsHelperError`` (provider, stage or usage
  error) and becomes that scope's failure; anything else is a bug and fails the run.

The runner runs the asset's checks on ``check_input``, then commits every scope's writes with
the run's events in one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from stages.datastore import TableWrite
from stages.jobs._files import StagedFile

if TYPE_CHECKING:
    import duckdb

    from ledger.calendar import TradingCalendar
    from ledger.config import Settings
    from stages.providers.base import MarketDataProvider

T = TypeVar("T")

SUCCESS, FAILED, SKIPPED = "success", "failed", "skipped"


@attrs.frozen(kw_only=True)
class JobContext:
    """One run of one job for one session."""

    job: str
    asset_key: str
    as_of: dt.date
    symbols: tuple[str, ...]
    settings: Settings
    run_id: str
    now: dt.datetime
    calendar: TradingCalendar
    provider: MarketDataProvider | None
    reader: Callable[[Callable[[duckdb.DuckDBPyConnection], Any]], Any] = attrs.field(repr=False)
    generated_at: dt.datetime | None = None  # the reports' stamp; None: the session's close

    @property
    def partition_key(self) -> str:
        return self.as_of.isoformat()

    @property
    def data_root(self) -> Path:
        return Path(self.settings.data_root)

    @property
    def report_time(self) -> dt.datetime:
        """The time the session's reports say they were generated: the caller's ``generated_at``,
        else the session's close, so a re-run of a report renders the same bytes."""
        return self.generated_at or self.calendar.session_close(self.as_of)

    @property
    def previous_session(self) -> dt.date:
        return self.calendar.previous_session(self.as_of)

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``fn`` on a short read-only connection."""
        return self.reader(fn)  # type: ignore[no-any-return]

    def require_provider(self) -> MarketDataProvider:
        if self.provider is None:  # pragma: no cover - the runner builds one for provider stages
            from ledger.errors import StageError

            raise StageError(f"{self.job} needs a market data provider")
        return self.provider


@attrs.frozen(kw_only=True)
class PartitionResult:
    """The outcome of one scope: rows to write, files staged, what to check, and lineage."""

    scope_key: str
    status: str = SUCCESS
    writes: tuple[TableWrite, ...] = ()
    files: tuple[StagedFile, ...] = ()
    check_input: Any = attrs.field(default=None, eq=False, repr=False)
    rows: int = 0
    min_data_time: dt.date | None = None
    max_data_time: dt.date | None = None
    reason: str | None = None
    error: str | None = None
    error_type: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def primary_file(self) -> StagedFile | None:
        return self.files[0] if self.files else None


def skipped(scope: str, reason: str, **extra: Any) -> PartitionResult:
    return PartitionResult(scope_key=scope, status=SKIPPED, reason=reason, extra=extra)


def failed(scope: str, exc: BaseException) -> PartitionResult:
    return PartitionResult(scope_key=scope, status=FAILED, error=str(exc), error_type=type(exc).__name__)


__all__ = ["FAILED", "SKIPPED", "SUCCESS", "JobContext", "PartitionResult", "failed", "skipped"]
