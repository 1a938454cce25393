"""The ledger mirror's translation: ledger events after a cursor -> Dagster asset events.

Dagster records the runs it launches itself. A session materialized by ``options-helper daily``
from cron, by Python or by ``options-helper backfill`` is only in the ledger; this module turns
those runs' events into what Dagster calls *external* materializations, reported by the
``ledger_mirror`` sensor (``frontends/dagster/defs/sensors.py``):

- one ``AssetMaterialization`` per (ledger run, asset, session) materialized by a run **not**
  triggered by Dagster, partition key = the session, metadata as the assets report it
  (``ledger_run_id``, ``triggered_by``, ``scope_key``/``symbols``, ``rows``, ``bytes``, and for file
  assets ``path``/``sha256``);
- one ``AssetCheckEvaluation`` per check spec of that asset and session, aggregated across the
  run's symbols exactly as the Dagster assets do (``checks.check_results``: failed if any symbol
  failed, severity ``warn`` -> WARN, ``error`` -> ERROR).

Runs triggered by Dagster are skipped: Dagster recorded them itself. Assets outside the registry
and sessions outside the partitions definition are skipped too (Dagster has no such partition).

It reads the log through ``ledger.follow`` a page at a time; a full page is cut back to the end of
its last complete commit, so a run's materializations and checks are never split across ticks.
"""

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import dagster as dg

from frontends.dagster.defs.assets import file_metadata
from frontends.dagster.defs.checks import check_results, jsonable
from ledger.events import (
    AssetMaterialized,
    CheckEvaluated,
    ChecksEvaluated,
    RunStarted,
    StoredEvent,
    check_evaluations,
)
from ledger.follow import Page, read_page, run_starts
from stages import registry

PAGE_EVENTS = 5000
DAGSTER_TRIGGER = "dagster"
CODE_VERSION_TAG = "dagster/code_version"


@attrs.frozen(kw_only=True)
class MirrorTick:
    """What one evaluation reports: the asset events, the cursor to save, and a message."""

    asset_events: tuple[Any, ...]
    cursor: int
    message: str
    events_read: int = 0
    materializations: int = 0
    check_evaluations: int = 0
    skipped_dagster_runs: int = 0
    behind: bool = False


def complete_commits(page: Page) -> tuple[StoredEvent, ...]:
    """The page without its trailing, possibly partial, commit when the page is full.

    Every event of one commit carries the same ``recorded_at``; a full page may end inside a
    commit, so its last commit is left for the next page, unless it is the whole page (a commit
    bigger than a page is then reported in parts).
    """
    events = page.events
    if not page.more:
        return events
    last = events[-1].recorded_at
    cut = len(events)
    while cut > 0 and events[cut - 1].recorded_at == last:
        cut -= 1
    return events[:cut] if cut > 0 else events


def materialization_metadata(spec: registry.AssetSpec, started: RunStarted, mats: Sequence[StoredEvent],
                             data_root: Path) -> dict[str, Any]:
    """The metadata of one mirrored materialization (one run, asset and session)."""
    events: list[AssetMaterialized] = [m.event for m in mats]  # type: ignore[misc]
    scopes = [e.scope_key for e in events]
    rows = sum(int(e.rows or 0) for e in events)
    size = sum(int(e.bytes or 0) for e in events)
    meta: dict[str, Any] = {
        "ledger_run_id": started.run_id,
        "triggered_by": started.triggered_by,
        "job": started.job_name,
        "session": events[0].partition_key,
        "dagster/row_count": rows,
        "rows": rows,
        "bytes": size,
        "symbols": ", ".join(scopes),
        "scopes_materialized": len(scopes),
        "ledger_seq": mats[-1].seq,
        "code_version": events[0].code_version or "",
        "ledger_query": dg.MetadataValue.md(f"`options-helper runs show {started.run_id}`"),
        "mirrored_from": "the options-helper ledger (ledger_mirror sensor)",
    }
    if len(scopes) == 1:
        meta["scope_key"] = scopes[0]
    if started.parent_run_id:
        meta["parent_run_id"] = started.parent_run_id
    if started.backfill_id:
        meta["backfill_id"] = started.backfill_id
    if spec.kind == "file":
        meta.update(file_metadata([e for e in events if e.path], data_root))
    return meta


def _check_evaluations(asset_key: str, partition: str, checks: Sequence[CheckEvaluated]) -> list[dg.AssetCheckEvaluation]:
    from stages.analytics.checks import CheckResult

    results = [
        CheckResult(asset_key=c.asset_key, check_name=c.check_name, severity=c.severity, status=c.status,
                    scope_key=c.scope_key, metrics=dict(jsonable(c.metrics)), message=c.message)
        for c in checks
    ]
    # The assets' own aggregation, so a mirrored check reads like one Dagster evaluated.
    return [
        dg.AssetCheckEvaluation(asset_key=dg.AssetKey(asset_key), check_name=str(r.check_name), passed=r.passed,
                                metadata={**r.metadata, "mirrored_from": "the options-helper ledger"},
                                severity=r.severity, description=r.description, partition=partition)
        for r in check_results(asset_key, results)
    ]


def translate(events: Sequence[StoredEvent], starts: dict[str, RunStarted], *, data_root: Path,
              has_partition: Callable[[str], bool]) -> tuple[list[Any], int, int, set[str]]:
    """Asset events for the runs of ``events`` not triggered by Dagster, in seq order of the
    materializations: (events, materializations, check evaluations, Dagster runs skipped)."""
    groups: dict[tuple[str, str, str], list[StoredEvent]] = {}
    checks: dict[tuple[str, str, str], list[CheckEvaluated]] = {}
    dagster_runs: set[str] = set()
    for stored in events:
        event = stored.event
        if not isinstance(event, AssetMaterialized | CheckEvaluated | ChecksEvaluated) or event.partition_key is None:
            continue
        started = starts.get(event.run_id)
        if started is None:
            continue
        if started.triggered_by == DAGSTER_TRIGGER:
            dagster_runs.add(event.run_id)
            continue
        key = (event.run_id, event.asset_key, event.partition_key)
        if isinstance(event, AssetMaterialized):
            groups.setdefault(key, []).append(stored)
        else:
            checks.setdefault(key, []).extend(check_evaluations(event))
    out: list[Any] = []
    n_mats = n_checks = 0
    for (run_id, asset_key, partition), mats in groups.items():
        if asset_key not in registry.ASSET_KEYS or not has_partition(partition):
            continue
        spec = registry.asset(asset_key)
        code_version = mats[0].event.code_version  # type: ignore[attr-defined]
        out.append(dg.AssetMaterialization(
            asset_key=asset_key, partition=partition,
            description=f"materialized outside Dagster ({starts[run_id].triggered_by}), ledger run {run_id}",
            metadata=materialization_metadata(spec, starts[run_id], mats, data_root),
            # As on a materialization by the asset itself: Dagster compares it with the asset's
            # code version to tell whether the partition is stale.
            tags={CODE_VERSION_TAG: code_version} if code_version else None,
        ))
        n_mats += 1
        evaluations = _check_evaluations(asset_key, partition, checks.get((run_id, asset_key, partition), []))
        out.extend(evaluations)
        n_checks += len(evaluations)
    return out, n_mats, n_checks, dagster_runs


def mirror_tick(source: Any, cursor: int, *, data_root: Path, has_partition: Callable[[str], bool],
                limit: int = PAGE_EVENTS, where: str = "the ledger") -> MirrorTick:
    """One evaluation: read at most ``limit`` events after ``cursor``, translate them."""
    page = read_page(source, cursor, limit)
    if page.behind:
        return MirrorTick(
            asset_events=(), cursor=cursor, behind=True,
            message=(f"{where} ends at seq {page.head}, before this sensor's cursor (seq {cursor}): it is a different "
                     "or restored file, so nothing was mirrored. If that is intended, reset the cursor "
                     "(`dagster sensor cursor ledger_mirror --delete -m frontends.dagster.defs`, or edit it on the "
                     "sensor's page in the UI) and it mirrors this file from its first event."),
        )
    if not page.events:
        return MirrorTick(asset_events=(), cursor=cursor, message=f"no new ledger events after seq {cursor}")
    events = complete_commits(page)
    wanted = {e.event.run_id for e in events
              if isinstance(e.event, AssetMaterialized | CheckEvaluated | ChecksEvaluated) and e.event.run_id}
    starts = run_starts(source, wanted, known=events)
    out, n_mats, n_checks, dagster_runs = translate(events, starts, data_root=data_root, has_partition=has_partition)
    new_cursor = events[-1].seq
    more = " (more to read: the next tick continues)" if page.more else ""
    return MirrorTick(
        asset_events=tuple(out), cursor=new_cursor, events_read=len(events), materializations=n_mats,
        check_evaluations=n_checks, skipped_dagster_runs=len(dagster_runs),
        message=(f"ledger seq {cursor + 1}..{new_cursor}: mirrored {n_mats} materialization(s) and {n_checks} check "
                 f"evaluation(s) of runs outside Dagster; {len(dagster_runs)} Dagster-triggered run(s) left to "
                 f"Dagster's own record{more}"),
    )


__all__ = ["PAGE_EVENTS", "MirrorTick", "complete_commits", "materialization_metadata", "mirror_tick", "translate"]
