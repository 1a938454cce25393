"""What a run of the pipeline returns: per scope, per job, per day; JSON-ready, and an exception
for scripts that want one."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ledger.errors import StageError
from ledger.redact import known_secret_values, redact_text
from stages.jobs.base import FAILED, SKIPPED, SUCCESS

if TYPE_CHECKING:
    from stages.analytics.checks import CheckResult


def json_safe(value: Any) -> Any:
    """Plain JSON values: NaN -> None, numpy scalars -> Python, dates -> ISO strings."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


@attrs.frozen(kw_only=True)
class SymbolOutcome:
    """What happened to one scope (a symbol, or ``ALL``)."""

    scope_key: str
    status: str  # success | failed | skipped
    rows: int = 0
    bytes: int | None = None
    path: str | None = None
    sha256: str | None = None
    # Messages are masked against the known secrets here, whoever raised them (results are printed).
    reason: str | None = attrs.field(default=None, converter=lambda v: _masked(v))
    error: str | None = attrs.field(default=None, converter=lambda v: _masked(v))
    materialization_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(attrs.asdict(self))  # type: ignore[no-any-return]


def _masked(text: str | None) -> str | None:
    return None if text is None else redact_text(text, known_secret_values(os.environ))


@attrs.frozen(kw_only=True)
class JobResult:
    """One run of one job. ``run_id`` is None when ``resume=True`` found nothing to do."""

    run_id: str | None
    job: str
    asset_key: str
    as_of: dt.date
    status: str  # success | failed
    outcomes: tuple[SymbolOutcome, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    error: str | None = attrs.field(default=None, converter=lambda v: _masked(v))
    seconds: float = 0.0
    ledger_seconds: float = 0.0  # inside ledger commits (run start, heartbeats, the final transaction)
    data_write_seconds: float = 0.0  # the part of the final transaction spent writing data rows
    cpu_seconds: float = 0.0  # process CPU time (all threads), for figures on a busy machine
    ledger_cpu_seconds: float = 0.0
    data_write_cpu_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    def outcome(self, scope: str) -> SymbolOutcome | None:
        return next((o for o in self.outcomes if o.scope_key == scope), None)

    def scopes(self, status: str) -> list[str]:
        return [o.scope_key for o in self.outcomes if o.status == status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "asset_key": self.asset_key,
            "as_of": self.as_of.isoformat(),
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 4),
            "ledger_seconds": round(self.ledger_seconds, 4),
            "data_write_seconds": round(self.data_write_seconds, 4),
            "cpu_seconds": round(self.cpu_seconds, 4),
            "ledger_cpu_seconds": round(self.ledger_cpu_seconds, 4),
            "data_write_cpu_seconds": round(self.data_write_cpu_seconds, 4),
            "counts": {s: len(self.scopes(s)) for s in (SUCCESS, FAILED, SKIPPED)},
            "outcomes": [o.to_dict() for o in self.outcomes],
            "checks": [json_safe(attrs.asdict(c)) for c in self.checks],
        }


@attrs.frozen(kw_only=True)
class DailyResult:
    """Every stage of one session, in the seed's order."""

    as_of: dt.date
    status: str  # success | failed
    results: tuple[JobResult, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    def result(self, job: str) -> JobResult | None:
        return next((r for r in self.results if r.job == job), None)

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "status": self.status, "seconds": round(self.seconds, 4),
                "results": [r.to_dict() for r in self.results]}


def raise_for_status(result: JobResult | DailyResult) -> None:
    """Raise ``StageError`` (exit code 9) if the job or any job of the day failed."""
    if result.ok:
        return
    if isinstance(result, DailyResult):
        bad = [r for r in result.results if not r.ok]
        raise StageError("; ".join(f"{r.job}: {r.error}" for r in bad))
    raise StageError(f"{result.job}: {result.error}")


def dumps(result: JobResult | DailyResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


__all__ = ["DailyResult", "JobResult", "SymbolOutcome", "dumps", "json_safe", "raise_for_status"]
