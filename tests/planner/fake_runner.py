"""A stand-in for ``stages.runner.run_job`` that only writes ledger events (no data), so backfill
tests run in milliseconds. ``KILL_AFTER`` (env ``FAKE_RUNNER_KILL_AFTER``) kills the process with
SIGKILL right after starting that many runs' RunStarted, leaving the last run "started"."""

from __future__ import annotations

import datetime as dt
import os
import signal
from collections.abc import Sequence
from typing import Any

import attrs

import ledger
from stages import registry

CALLS: list[tuple[str, str, tuple[str, ...]]] = []


@attrs.frozen(kw_only=True)
class Outcome:
    scope_key: str
    status: str


@attrs.frozen(kw_only=True)
class Result:
    run_id: str
    status: str
    outcomes: tuple[Outcome, ...]
    error: str | None = None


def run_job(job: str, *, as_of: dt.date, symbols: Sequence[str] | None, settings: Any, provider: Any = None,
            triggered_by: str = "python", backfill_id: str | None = None, progress: Any = None,
            now: Any = None, fail: Sequence[str] = ()) -> Result:
    spec = registry.job(job)
    asset = registry.asset(spec.asset_key)
    scopes = list(symbols or ()) if asset.per_symbol else [registry.ALL_SCOPE]
    pk = as_of.isoformat()
    CALLS.append((job, pk, tuple(scopes)))
    from ledger.events import AssetFailed, AssetMaterialized, RunStarted, RunSucceeded
    from ledger.ids import new_uuid7

    led = ledger.Ledger.from_settings(settings)
    run_id = new_uuid7()
    started = RunStarted(run_id=run_id, job_name=job, triggered_by=triggered_by, partition_key=pk,
                         scope_keys=scopes, code_version=spec.code_version, backfill_id=backfill_id,
                         lease_seconds=settings.lease_seconds)
    kill_after = int(os.environ.get("FAKE_RUNNER_KILL_AFTER", "0"))
    if kill_after and len(CALLS) >= kill_after:
        led.append([started])
        os.kill(os.getpid(), signal.SIGKILL)
    bad = set(fail) | set(os.environ.get("FAKE_RUNNER_FAIL", "").split(",")) - {""}
    events: list = [started]
    outcomes = []
    for s in scopes:
        if f"{job}:{pk}:{s}" in bad:
            events.append(AssetFailed(run_id=run_id, asset_key=asset.key, partition_key=pk, scope_key=s,
                                      error_message="injected"))
            outcomes.append(Outcome(scope_key=s, status="failed"))
        else:
            events.append(AssetMaterialized(run_id=run_id, asset_key=asset.key, partition_key=pk, scope_key=s,
                                            rows=1, code_version=spec.code_version))
            outcomes.append(Outcome(scope_key=s, status="success"))
    events.append(RunSucceeded(run_id=run_id))
    led.append(events)
    status = "failed" if any(o.status == "failed" for o in outcomes) else "success"
    return Result(run_id=run_id, status=status, outcomes=tuple(outcomes))
