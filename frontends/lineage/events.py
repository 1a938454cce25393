"""Ledger runs -> OpenLineage ``RunEvent``s, with the ``openlineage-python`` client's own types.

- A run's ``run_started`` becomes a **START** event; its ``run_succeeded`` / ``run_failed`` /
  ``run_abandoned`` becomes **COMPLETE** / **FAIL** (with the error message facet) / **ABORT**.
  Each carries the ledger run id as the OpenLineage run id (UUIDv7) and ``eventTime`` = the
  event's ``recorded_at``.
- The job is the registry's job (``ingest_candles``, ... ``build_dashboard``) in the export's
  namespace (default ``options-helper``).
- Inputs are the registry's upstream assets of the job's asset, the output is its asset:
  datasets named after the registry's assets, in namespace ``duckdb://<database file>`` for tables
  and ``file://<data root>`` for the Parquet snapshots and the report files. The terminal event's
  output carries ``outputStatistics`` (rows, bytes, files written by the run) and the run's checks
  as a ``dataQualityAssertions`` facet (one assertion per check and symbol).
- Runs triggered by Dagster carry the ``parent`` run facet naming the Dagster run (namespace
  ``dagster``, job = the code location ``options-helper``: the ledger records the Dagster run id,
  not the Dagster job's name); runs of ``options-helper backfill`` name their backfill as parent.
- ``nominalTime`` is the session (the partition), ``processing_engine`` is options-helper and its
  version, and ``tags`` hold ``triggered_by``, the provider and the partition.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    datasource_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    tags_run,
)

from ledger.events import (
    AssetMaterialized,
    CheckEvaluated,
    RunAbandoned,
    RunFailed,
    RunStarted,
    RunSucceeded,
    StoredEvent,
    check_evaluations,
)
from stages import registry

DEFAULT_NAMESPACE = "options-helper"
DAGSTER_NAMESPACE = "dagster"
DAGSTER_LOCATION = "options-helper"  # [tool.dagster] code_location_name
PRODUCER = "https://github.com/options-helper/options-helper"
TERMINAL = (RunSucceeded, RunFailed, RunAbandoned)
_STATE = {RunSucceeded: RunState.COMPLETE, RunFailed: RunState.FAIL, RunAbandoned: RunState.ABORT}


@attrs.frozen(kw_only=True)
class Where:
    """Where the datasets live: the database file and the data root (absolute)."""

    database: Path
    data_root: Path
    namespace: str = DEFAULT_NAMESPACE

    def dataset_namespace(self, asset_key: str) -> str:
        if registry.asset(asset_key).kind == "file":
            return f"file://{self.data_root.resolve()}"
        return f"duckdb://{self.database.resolve()}"


def _time(stored: StoredEvent) -> str:
    return stored.recorded_at.isoformat()


def _is_uuid(value: str | None) -> bool:
    if not value:
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _run_facets(started: RunStarted) -> dict[str, Any]:
    from ledger.api import APP_VERSION

    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=started.app_version or APP_VERSION, name="options-helper", producer=PRODUCER),
        "tags": tags_run.TagsRunFacet(tags=[
            tags_run.TagsRunFacetFields(key=k, value=str(v), source="options-helper")
            for k, v in (("triggered_by", started.triggered_by), ("provider", started.provider),
                         ("partition", started.partition_key), ("scopes", len(started.scope_keys)))
            if v is not None
        ], producer=PRODUCER),
    }
    if started.partition_key:
        facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=f"{started.partition_key}T00:00:00Z", producer=PRODUCER)
    parent = _parent(started)
    if parent is not None:
        facets["parent"] = parent
    return facets


def _parent(started: RunStarted) -> parent_run.ParentRunFacet | None:
    if started.triggered_by == "dagster" and _is_uuid(started.parent_run_id):
        return parent_run.ParentRunFacet(run=parent_run.Run(runId=str(started.parent_run_id)),
                                         job=parent_run.Job(namespace=DAGSTER_NAMESPACE, name=DAGSTER_LOCATION),
                                         producer=PRODUCER)
    if started.backfill_id and _is_uuid(started.backfill_id):
        return parent_run.ParentRunFacet(run=parent_run.Run(runId=started.backfill_id),
                                         job=parent_run.Job(namespace=DEFAULT_NAMESPACE, name="backfill"),
                                         producer=PRODUCER)
    return None


def _job(started: RunStarted, where: Where) -> Job:
    facets: dict[str, Any] = {"jobType": job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="OPTIONS_HELPER", jobType="JOB", producer=PRODUCER)}
    return Job(namespace=where.namespace, name=started.job_name, facets=facets)


def _asset_of(job_name: str) -> registry.AssetSpec | None:
    try:
        return registry.asset(registry.job(job_name).asset_key)
    except Exception:  # a job outside the registry (Python API): no declared datasets
        return None


def _inputs(spec: registry.AssetSpec | None, where: Where) -> list[InputDataset]:
    if spec is None:
        return []
    keys = dict.fromkeys(u.asset_key for u in spec.upstream)
    return [InputDataset(namespace=where.dataset_namespace(k), name=k) for k in keys]


def _assertions(checks: Sequence[CheckEvaluated]) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=c.check_name, success=c.status != "fail", severity=c.severity,
                name=f"{c.check_name}[{c.scope_key}]", description=c.message or None,
                params={"scope": c.scope_key, "status": c.status, "partition": c.partition_key or ""},
            )
            for c in checks
        ],
        producer=PRODUCER,
    )


def _output(spec: registry.AssetSpec | None, where: Where, mats: Sequence[AssetMaterialized] = (),
            checks: Sequence[CheckEvaluated] = (), *, final: bool = False) -> list[OutputDataset]:
    if spec is None:
        return []
    facets: dict[str, Any] = {"datasource": datasource_dataset.DatasourceDatasetFacet(
        name=where.dataset_namespace(spec.key), uri=where.dataset_namespace(spec.key), producer=PRODUCER)}
    output_facets: dict[str, Any] = {}
    if final:
        files = [m for m in mats if m.path]
        output_facets["outputStatistics"] = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=sum(int(m.rows or 0) for m in mats),
            # Table assets record no byte size: say nothing rather than 0.
            size=sum(int(m.bytes) for m in mats if m.bytes is not None) if any(m.bytes is not None for m in mats) else None,
            fileCount=len(files) if spec.kind == "file" else None, producer=PRODUCER)
        if checks:
            facets["dataQualityAssertions"] = _assertions(checks)
    return [OutputDataset(namespace=where.dataset_namespace(spec.key), name=spec.key, facets=facets,
                          outputFacets=output_facets)]


def start_event(stored: StoredEvent, where: Where) -> RunEvent:
    started: RunStarted = stored.event  # type: ignore[assignment]
    spec = _asset_of(started.job_name)
    return RunEvent(eventType=RunState.START, eventTime=_time(stored), producer=PRODUCER,
                    run=Run(runId=started.run_id, facets=_run_facets(started)), job=_job(started, where),
                    inputs=_inputs(spec, where), outputs=_output(spec, where))


def end_event(stored: StoredEvent, started: RunStarted, run_events: Sequence[StoredEvent], where: Where) -> RunEvent:
    """The terminal event of ``started``'s run; ``run_events`` are its events (materializations
    and checks are read from them)."""
    end = stored.event
    spec = _asset_of(started.job_name)
    mats = [s.event for s in run_events if isinstance(s.event, AssetMaterialized)]
    checks = [c for s in run_events for c in check_evaluations(s.event)]
    facets = _run_facets(started)
    if isinstance(end, RunFailed):
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=f"{end.error_type}: {end.error_message}", programmingLanguage="python", producer=PRODUCER)
    elif isinstance(end, RunAbandoned):
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=end.reason, programmingLanguage="python", producer=PRODUCER)
    return RunEvent(eventType=_STATE[type(end)], eventTime=_time(stored), producer=PRODUCER,
                    run=Run(runId=started.run_id, facets=facets), job=_job(started, where),
                    inputs=_inputs(spec, where),
                    outputs=_output(spec, where, mats, checks, final=True))  # type: ignore[arg-type]


__all__ = ["DEFAULT_NAMESPACE", "TERMINAL", "Where", "end_event", "start_event"]
