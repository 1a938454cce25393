"""Assets, generated from ``stages.registry``: the same keys and dependencies as the CLI.

Each asset body is one call to the runner the CLI uses (``stages.run_job``) for the partition's
session, with ``triggered_by="dagster"`` and the Dagster run id as the ledger run's parent. The
runner writes the ledger (runs, assets, watermarks, checks, partition status) in one transaction,
exactly as for a CLI run; this module only translates its ``JobResult`` for Dagster: the
materialization metadata and the check results. Nothing here parses printed text.

Dependencies: ``Upstream(lag=0)`` is the same session; ``lag=1`` is the previous *session*
(``TimeWindowPartitionMapping`` steps over the partitions, which are the sessions), so
``options_flow`` depends on this and the previous session's ``options_snapshot_file``.

Every asset is in the ``options_helper_duckdb`` pool: with the pool limit of 1 from
``frontends/dagster/dagster.yaml`` only one step at a time, across all runs, commits to DuckDB.
"""

# No ``from __future__ import annotations``: Dagster reads the resource parameters' annotations.
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from frontends.dagster.defs.checks import check_results, check_specs, jsonable
from frontends.dagster.defs.partitions import SESSIONS, session_of
from frontends.dagster.defs.resources import LedgerResource, ProviderResource, UniverseResource
from stages import registry
from stages.registry import AssetSpec

GROUP = "options_helper"
DUCKDB_POOL = "options_helper_duckdb"
TRIGGERED_BY = "dagster"
_KINDS = {"table": {"duckdb"}, "file": {"file"}, "view": {"duckdb"}}


def _deps(spec: AssetSpec) -> list[dg.AssetDep]:
    """One ``AssetDep`` per upstream key; lags become a previous-partitions mapping."""
    lags: dict[str, list[int]] = {}
    for upstream in spec.upstream:
        lags.setdefault(upstream.asset_key, []).append(upstream.lag)
    deps = []
    for key, key_lags in lags.items():
        if max(key_lags) == 0:
            deps.append(dg.AssetDep(key))
        else:
            # The first partition has no previous session: that is a skip, not an error.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dg.BetaWarning)
                mapping = dg.TimeWindowPartitionMapping(
                    start_offset=-max(key_lags), end_offset=-min(key_lags), allow_nonexistent_upstream_partitions=True
                )
            deps.append(dg.AssetDep(key, partition_mapping=mapping))
    return deps


def _absolute(path: str | None, data_root: Path) -> str | None:
    if not path:
        return None
    p = Path(path)
    return str(p if p.is_absolute() else (data_root / p).resolve())


def file_metadata(files: Any, data_root: Path) -> dict[str, Any]:
    """Dagster metadata for a file asset's files (anything with scope_key, path, bytes, sha256):
    one file's path and digest, or a table of them and one combined digest."""
    if not files:
        return {}
    if len(files) == 1:
        return {"path": dg.MetadataValue.path(_absolute(files[0].path, data_root) or ""), "sha256": files[0].sha256 or ""}
    table = "| scope | path | bytes | sha256 |\n|---|---|---|---|\n" + "\n".join(
        f"| {f.scope_key} | {_absolute(f.path, data_root)} | {f.bytes} | {f.sha256} |" for f in files
    )
    digest = hashlib.sha256(
        "\n".join(f"{f.scope_key}:{f.sha256}" for f in sorted(files, key=lambda f: f.scope_key)).encode()
    ).hexdigest()
    return {"paths": dg.MetadataValue.md(table), "sha256": digest}


def materialization_metadata(spec: AssetSpec, result: Any, data_root: Path) -> dict[str, Any]:
    """Rows, bytes, the ledger run id, per-scope outcomes, and path/sha256 for file assets."""
    outcomes = list(result.outcomes)
    rows = sum(int(o.rows or 0) for o in outcomes)
    size = sum(int(o.bytes or 0) for o in outcomes)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("success", "failed", "skipped")}
    meta: dict[str, Any] = {
        "ledger_run_id": result.run_id,
        "ledger_status": result.status,
        "session": result.as_of.isoformat(),
        "dagster/row_count": rows,
        "rows": rows,
        "bytes": size,
        "scopes_succeeded": counts["success"],
        "scopes_failed": counts["failed"],
        "scopes_skipped": counts["skipped"],
        "seconds": round(float(result.seconds), 3),
        "ledger_query": dg.MetadataValue.md(f"`options-helper runs show {result.run_id}`"),
        "outcomes": dg.MetadataValue.json(
            jsonable(
                {
                    o.scope_key: {
                        "status": o.status, "rows": o.rows, "bytes": o.bytes,
                        "path": _absolute(o.path, data_root), "sha256": o.sha256,
                        "reason": o.reason, "error": o.error,
                    }
                    for o in outcomes
                }
            )
        ),
    }
    if result.error:
        meta["error"] = str(result.error)
    if spec.kind == "file":
        meta.update(file_metadata([o for o in outcomes if o.path], data_root))
    return meta


def _provider_for(spec: AssetSpec, provider: ProviderResource, settings: Any) -> Any:
    """The provider, as ``options-helper daily`` passes it to every stage (and records its name).

    A stage that reads no market data still runs when the provider cannot be built (e.g. alpaca
    without keys), as ``options-helper flow`` would.
    """
    from ledger.errors import OptionsHelperError

    try:
        return provider.build(settings)
    except OptionsHelperError:
        if spec.needs_provider:
            raise
        return None


def materialize_partition(
    context: dg.AssetExecutionContext,
    spec: AssetSpec,
    ledger: LedgerResource,
    provider: ProviderResource,
    universe: UniverseResource,
) -> Iterator[Any]:
    """Run the asset's job for the partition's session through the runner; report to Dagster."""
    import stages

    job = registry.job(spec.job)
    session = session_of(context.partition_key)
    settings = ledger.settings(provider=provider.resolved_name())
    symbols = universe.resolve(settings)
    context.log.info(
        f"{job.name} for {session} (options-helper {job.cli_command} --as-of {session}); "
        f"provider {settings.provider}, database {settings.duckdb_path}"
    )
    result = stages.run_job(
        job.name,
        as_of=session,
        symbols=symbols,
        settings=settings,
        provider=_provider_for(spec, provider, settings),
        triggered_by=TRIGGERED_BY,
        parent_run_id=context.run.run_id,
        # As `options-helper daily` does: skip a symbol whose upstream failed for this session.
        skip_failed_upstream=True,
    )
    metadata = materialization_metadata(spec, result, settings.data_root)
    checks = check_results(spec.key, result.checks)
    if result.status != "success":
        # Report the checks the runner recorded, then fail the step: nothing was committed.
        yield from checks
        raise dg.Failure(
            description=(
                f"{job.name} failed for {session}: {result.error or 'see the ledger run'}; "
                f"inspect it with: options-helper runs show {result.run_id}"
            ),
            metadata=metadata,
        )
    context.log.info(
        f"{spec.key} {session}: {metadata['rows']} rows, {metadata['bytes']} bytes, ledger run {result.run_id}"
    )
    yield dg.MaterializeResult(metadata=metadata, check_results=checks)


def build_asset(spec: AssetSpec) -> dg.AssetsDefinition:
    job = registry.job(spec.job)

    @dg.asset(
        name=spec.key,
        deps=_deps(spec),
        partitions_def=SESSIONS,
        check_specs=check_specs(spec.key),
        code_version=job.code_version,
        description=f"{spec.description}\n\nProduced by `options-helper {job.cli_command}` (job `{job.name}`).",
        group_name=GROUP,
        kinds=_KINDS.get(spec.kind, set()),
        pool=DUCKDB_POOL,
        metadata={
            "job": job.name,
            "cli_command": f"options-helper {job.cli_command}",
            "per_symbol": spec.per_symbol,
            "kind": spec.kind,
        },
    )
    def _asset(
        context: dg.AssetExecutionContext,
        ledger: LedgerResource,
        provider: ProviderResource,
        universe: UniverseResource,
    ) -> Iterator[Any]:
        yield from materialize_partition(context, spec, ledger, provider, universe)

    return _asset


ASSETS: list[dg.AssetsDefinition] = [build_asset(spec) for spec in registry.ASSETS]

__all__ = ["ASSETS", "DUCKDB_POOL", "GROUP", "TRIGGERED_BY", "build_asset", "materialization_metadata"]
