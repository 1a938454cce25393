"""Asset checks: one Dagster check spec per check of ``stages.analytics.checks``, nothing re-run.

The runner evaluates every check before it commits and records each result once in
``meta.asset_checks``. The asset then reports those same results to Dagster from its
materialization (``MaterializeResult(check_results=...)``): one ``AssetCheckResult`` per check
name, aggregated across symbols (failed if any symbol failed), with each symbol's status,
message and metrics in the metadata. Severity maps ``warn`` -> ``WARN`` and ``error`` -> ``ERROR``.
A check skipped for every symbol (e.g. no rows) is reported as passed with ``status: skip``:
Dagster has no "skipped" outcome, and a skip is not a finding.
"""

import json
from collections.abc import Sequence
from typing import Any

import dagster as dg

from stages.analytics.checks import Check, CheckResult, checks_for

SEVERITY = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def check_specs(asset_key: str) -> list[dg.AssetCheckSpec]:
    """The Dagster check specs of ``asset_key``, from the same registry the runner uses."""
    return [
        dg.AssetCheckSpec(
            name=check.name,
            asset=asset_key,
            description=f"{check.description} (severity {check.severity})",
            # Error-severity failures already fail the stage; blocking keeps Dagster consistent.
            blocking=check.severity == "error",
            metadata={"severity": check.severity},
        )
        for check in checks_for(asset_key)
    ]


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON (numpy scalars, dates and the like become numbers or strings)."""
    return json.loads(json.dumps(value, default=str))


def _scope_detail(result: CheckResult) -> dict[str, Any]:
    return {"status": result.status, "message": result.message, "metrics": jsonable(result.metrics)}


def _aggregate(check: Check, results: Sequence[CheckResult]) -> dg.AssetCheckResult:
    failed = sorted(r.scope_key for r in results if r.status == "fail")
    passed = sorted(r.scope_key for r in results if r.status == "pass")
    skipped = sorted(r.scope_key for r in results if r.status == "skip")
    if failed:
        status = "fail"
    elif passed:
        status = "pass"
    else:
        status = "skip"
    if status == "fail":
        first = next(r for r in results if r.status == "fail")
        description = f"failed for {len(failed)} of {len(results)} scope(s): {', '.join(failed)}; {first.message}"
    elif status == "pass":
        description = f"passed for {len(passed)} scope(s)" + (f", skipped for {len(skipped)}" if skipped else "")
    elif results:
        reasons = sorted({str(r.metrics.get("reason", "")) for r in results} - {""})
        description = f"skipped ({', '.join(reasons) or 'no data'})"
    else:
        description = "not evaluated by this run (no scope produced data)"
    return dg.AssetCheckResult(
        check_name=check.name,
        passed=status != "fail",
        severity=SEVERITY[check.severity],
        description=description,
        metadata={
            "status": status,
            "severity": check.severity,
            "scopes_passed": len(passed),
            "scopes_failed": len(failed),
            "scopes_skipped": len(skipped),
            "failed_scopes": ", ".join(failed),
            "by_scope": dg.MetadataValue.json({r.scope_key: _scope_detail(r) for r in results}),
        },
    )


def check_results(asset_key: str, results: Sequence[CheckResult]) -> list[dg.AssetCheckResult]:
    """One ``AssetCheckResult`` per check spec of ``asset_key``, from the runner's results."""
    by_name: dict[str, list[CheckResult]] = {}
    for result in results:
        if result.asset_key == asset_key:
            by_name.setdefault(result.check_name, []).append(result)
    return [_aggregate(check, by_name.get(check.name, [])) for check in checks_for(asset_key)]


__all__ = ["SEVERITY", "check_results", "check_specs", "jsonable"]
