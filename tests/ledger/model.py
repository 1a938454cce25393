"""The independent model of the ledger the tests compare production against.

Written from the rules (docs/ledger.md, the tables of migrations/0001_ledger.sql, ledger/store.py's
docstring), not from the production folds: it imports nothing from ``ledger.fold``,
``ledger.incremental`` or ``ledger.projections``, only the event types and their payload text
(``ledger.events``). Two parts:

- ``project(log)``: the five projections of a log, each defined over the *whole* log at once
  ("the latest asset event of the cell", "the newest data date, then the latest event") rather
  than folded event by event, so that it shares no merge code, and no merge bug, with an append
  that folds a batch into stored rows.
- ``ModelLedger``: the log itself, as a list: seqs from 1, batches all-or-nothing, the conflicts
  ``append`` must refuse, expired leases abandoned by the next append or by ``reap``, and
  ``materialization_seq`` resolved from ``materialization_id``. Its ``projection`` folds its log
  (up to ``as_of_seq``) with ``project``, so it plugs into ``tests.ledger.helpers.snapshot``.

Rows are dicts in the shape ``ledger.queries.normalise_rows`` reads from DuckDB: timestamps
as aware UTC datetimes, JSON columns parsed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ledger.errors import ConflictError
from ledger.events import (
    CheckEvaluated,
    ChecksEvaluated,
    Event,
    RunAbandoned,
    RunFailed,
    RunHeartbeat,
    RunStarted,
    RunSucceeded,
    to_row,
)

# The projection tables and their primary keys (migrations/0001_ledger.sql).
TABLES = ("ingestion_runs", "ingestion_run_assets", "asset_watermarks", "asset_checks", "partition_status")
KEYS: dict[str, tuple[str, ...]] = {
    "ingestion_runs": ("run_id",),
    "ingestion_run_assets": ("run_id", "asset_key", "partition_key", "scope_key"),
    "asset_watermarks": ("asset_key", "scope_key"),
    "asset_checks": ("check_id",),
    "partition_status": ("asset_key", "partition_key", "scope_key"),
}

# A run's status: started 0 < abandoned 1 < success 2 < failed 3; the highest wins.
RANK = {"run_started": 0, "run_heartbeat": 0, "run_abandoned": 1, "run_succeeded": 2, "run_failed": 3}
STATUS = {0: "started", 1: "abandoned", 2: "success", 3: "failed"}
RUN_ASSET_STATUS = {"asset_materialized": "success", "asset_failed": "failed", "asset_skipped": "skipped"}
CELL_STATUS = {"asset_materialized": "materialized", "asset_failed": "failed", "asset_skipped": "skipped"}


@attrs.frozen
class Logged:
    """One event of the model's log: its seq, the time its batch was recorded, the event."""

    seq: int
    recorded_at: dt.datetime
    event: Event

    @property
    def event_type(self) -> str:
        return self.event.EVENT_TYPE

    @property
    def payload(self) -> dict[str, Any]:
        """The payload as it reads back from the log (the stored JSON text, parsed)."""
        return json.loads(to_row(self.event).payload)  # type: ignore[no-any-return]

    def envelope(self, name: str) -> Any:
        return getattr(self.event, name, None)


def timestamp(text: str | None) -> dt.datetime | None:
    """A data time as DuckDB casts it to TIMESTAMPTZ in a UTC session: naive text is UTC."""
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _micros(seconds: float) -> int:
    # CAST(DOUBLE AS BIGINT) rounds half away from zero.
    scaled = seconds * 1_000_000
    return int(scaled + 0.5) if scaled >= 0 else -int(-scaled + 0.5)


def _merge_patch(target: Any, patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7396 for a flat patch (what json_merge_patch does): a null removes the key."""
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


# -- the projections, each defined over the whole log ---------------------------------------------
def project(log: Iterable[Logged]) -> dict[str, list[dict[str, Any]]]:
    """Every projection of ``log`` (events in seq order), rows sorted by primary key."""
    events = sorted(log, key=lambda e: e.seq)
    tables = {
        "ingestion_runs": runs(events),
        "ingestion_run_assets": run_assets(events),
        "asset_watermarks": watermarks(events),
        "asset_checks": checks(events),
        "partition_status": partition_status(events),
    }
    return {t: sorted(rows, key=lambda r, t=t: tuple(str(r[k]) for k in KEYS[t])) for t, rows in tables.items()}


def _group(events: Iterable[Logged], key: Callable[[Logged], Any]) -> dict[Any, list[Logged]]:
    groups: dict[Any, list[Logged]] = defaultdict(list)
    for e in events:
        groups[key(e)].append(e)
    return groups


def runs(events: Sequence[Logged]) -> list[dict[str, Any]]:
    """One row per run: its start's fields; the status of its highest-ranked event; the terminal
    event that sets status, end and error is the highest-ranked one, the earliest of that rank."""
    out = []
    of_runs = [e for e in events if e.event_type in RANK]
    for run_id, evs in _group(of_runs, lambda e: e.envelope("run_id")).items():
        starts = [e for e in evs if e.event_type == "run_started"]
        start = starts[0] if starts else None
        sp = start.payload if start else {}
        rank = max(RANK[e.event_type] for e in evs)
        terminals = [e for e in evs if RANK[e.event_type] == rank and rank > 0]
        end = min(terminals, key=lambda e: e.seq) if terminals else None
        ep = end.payload if end else {}
        leases = [e.recorded_at + dt.timedelta(microseconds=_micros(e.payload["lease_seconds"]))
                  for e in evs if e.event_type in ("run_started", "run_heartbeat")]
        started_at = start.recorded_at if start else None
        ended_at = end.recorded_at if end else None
        error_type = error_message = None
        if end is not None and end.event_type == "run_failed":
            error_type, error_message = ep.get("error_type"), ep.get("error_message")
        elif end is not None and end.event_type == "run_abandoned":
            error_type, error_message = "Abandoned", ep.get("reason")
        duration = None
        if started_at is not None and ended_at is not None:
            duration = (ended_at - started_at) // dt.timedelta(microseconds=1) // 1000
        out.append({
            "run_id": run_id,
            "parent_run_id": sp.get("parent_run_id"),
            "job_name": sp.get("job_name"),
            "triggered_by": sp.get("triggered_by"),
            "status": STATUS[rank],
            "started_at": started_at,
            "ended_at": ended_at,
            "duration_ms": duration,
            "provider": sp.get("provider"),
            "storage_backend": "duckdb",
            "args_json": sp.get("args"),
            "git_sha": None,
            "app_version": sp.get("app_version"),
            "error_type": error_type,
            "error_message": error_message,
            "error_stack_hash": ep.get("stack_hash"),
            "status_rank": rank,
            "last_heartbeat_at": max(e.recorded_at for e in evs),
            "lease_expires_at": max(leases) if leases else None,
            "partition_key": start.envelope("partition_key") if start else None,
            "scope_keys": list(sp["scope_keys"]) if start and sp.get("scope_keys") is not None else None,
            "code_version": sp.get("code_version"),
            "backfill_id": sp.get("backfill_id"),
            "error_fingerprint": ep.get("error_fingerprint"),
            "first_seq": start.seq if start else None,
            "last_seq": max(e.seq for e in evs),
        })
    return out


def _asset_events(events: Sequence[Logged]) -> list[Logged]:
    return [e for e in events if e.event_type in CELL_STATUS]


def _cell(e: Logged) -> tuple[Any, ...]:
    return (e.envelope("asset_key"), e.envelope("partition_key"), e.envelope("scope_key"))


def run_assets(events: Sequence[Logged]) -> list[dict[str, Any]]:
    """One row per (run, asset, partition, scope): its latest asset event (the highest seq)."""
    out = []
    for (run_id, asset, partition, scope), evs in _group(
            _asset_events(events), lambda e: (e.envelope("run_id"), *_cell(e))).items():
        last = max(evs, key=lambda e: e.seq)
        p = last.payload
        extra = p.get("extra")
        if last.event_type == "asset_failed":
            extra = _merge_patch(extra, {"error_type": p.get("error_type"), "error": p.get("error_message")})
        elif last.event_type == "asset_skipped":
            extra = _merge_patch(extra, {"reason": p.get("reason")})
        out.append({
            "run_id": run_id, "asset_key": asset, "asset_kind": p.get("asset_kind"), "partition_key": partition,
            "status": RUN_ASSET_STATUS[last.event_type],
            "rows_inserted": _int(p.get("rows")), "rows_updated": None, "rows_deleted": None,
            "bytes_written": _int(p.get("bytes")),
            "min_event_ts": timestamp(p.get("min_data_time")), "max_event_ts": timestamp(p.get("max_data_time")),
            "extra_json": extra, "started_at": None, "ended_at": last.recorded_at, "duration_ms": None,
            "scope_key": scope, "code_version": p.get("code_version"), "data_version": p.get("data_version"),
            "path": p.get("path"), "sha256": p.get("sha256"), "seq": last.seq,
        })
    return out


def watermarks(events: Sequence[Logged]) -> list[dict[str, Any]]:
    """One row per (asset, scope) ever materialized with a data time: the newest data date wins,
    whatever order the events came in; among equal dates the latest event."""
    dated = [e for e in events if e.event_type == "asset_materialized" and e.payload.get("max_data_time") is not None]
    out = []
    for (asset, scope), evs in _group(dated, lambda e: (e.envelope("asset_key"), e.envelope("scope_key"))).items():
        best = max(evs, key=lambda e: (timestamp(e.payload["max_data_time"]), e.seq))
        out.append({"asset_key": asset, "scope_key": scope, "watermark_ts": timestamp(best.payload["max_data_time"]),
                    "updated_at": best.recorded_at, "last_run_id": best.envelope("run_id"), "seq": best.seq})
    return out


def checks(events: Sequence[Logged]) -> list[dict[str, Any]]:
    """One row per check evaluation, never overwritten."""
    out = []
    for e in events:
        if e.event_type == "check_evaluated":
            evaluations = [(e.event.event_id, e.payload)]
        elif e.event_type == "checks_evaluated":  # a row per check, its id <event_id>/<check_name>
            evaluations = [(f"{e.event.event_id}/{c['check_name']}", {**e.payload, **c}) for c in e.payload["checks"]]
        else:
            continue
        out.extend({
            "check_id": check_id, "asset_key": e.envelope("asset_key"),
            "partition_key": e.envelope("partition_key"), "check_name": p.get("check_name"),
            "severity": p.get("severity"), "status": p.get("status"), "checked_at": e.recorded_at,
            "metrics_json": p.get("metrics"), "message": p.get("message"), "run_id": e.envelope("run_id"),
            "scope_key": e.envelope("scope_key"), "materialization_event_id": p.get("materialization_id"),
            "materialization_seq": _int(p.get("materialization_seq")), "seq": e.seq,
        } for check_id, p in evaluations)
    return out


def partition_status(events: Sequence[Logged]) -> list[dict[str, Any]]:
    """One row per cell: the status of its latest asset event, and its latest materialization's
    seq, time, run, versions, rows, bytes, path and hash, kept after a later failure or skip."""
    out = []
    for (asset, partition, scope), evs in _group(_asset_events(events), _cell).items():
        last = max(evs, key=lambda e: e.seq)
        mats = [e for e in evs if e.event_type == "asset_materialized"]
        mat = max(mats, key=lambda e: e.seq) if mats else None
        mp = mat.payload if mat else {}
        out.append({
            "asset_key": asset, "partition_key": partition, "scope_key": scope,
            "status": CELL_STATUS[last.event_type], "run_id": last.envelope("run_id"), "last_seq": last.seq,
            "updated_at": last.recorded_at,
            "materialized_seq": mat.seq if mat else None,
            "materialized_at": mat.recorded_at if mat else None,
            "materialized_run_id": mat.envelope("run_id") if mat else None,
            "code_version": mp.get("code_version"), "data_version": mp.get("data_version"),
            "rows": _int(mp.get("rows")), "bytes": _int(mp.get("bytes")),
            "path": mp.get("path"), "sha256": mp.get("sha256"),
        })
    return out


# -- the log ------------------------------------------------------------------------------------
TERMINAL = (RunSucceeded, RunFailed)


class ModelLedger:
    """The log as a list, with the append rules of docs/ledger.md ("Appends are refused ...") and
    lease expiry; projections by ``project``."""

    def __init__(self, *, clock: Callable[[], dt.datetime], auto_reap: bool = True) -> None:
        self.clock = clock
        self.auto_reap = auto_reap
        self.log: list[Logged] = []

    # what the rules need to know of the runs
    def _run_ranks(self, log: Sequence[Logged]) -> dict[str, int]:
        ranks: dict[str, int] = {}
        for e in log:
            if e.event_type in RANK:
                run_id = e.event.run_id
                ranks[run_id] = max(ranks.get(run_id, 0), RANK[e.event_type])  # type: ignore[index]
        return ranks

    def _expired(self, now: dt.datetime) -> list[tuple[str, dt.datetime]]:
        """Runs still started whose lease (the latest start or heartbeat + its lease) ended before ``now``."""
        leases: dict[str, dt.datetime] = {}
        for e in self.log:
            if isinstance(e.event, RunStarted | RunHeartbeat):
                end = e.recorded_at + dt.timedelta(microseconds=_micros(e.event.lease_seconds))
                leases[e.event.run_id] = max(leases.get(e.event.run_id, end), end)
        ranks = self._run_ranks(self.log)
        return sorted((r, end) for r, end in leases.items() if ranks.get(r) == 0 and end < now)

    def append(self, events: Sequence[Event], *, expected_last_seq: int | None = None,
               _reaping: bool = False) -> list[Logged]:
        head = len(self.log)
        if expected_last_seq is not None and expected_last_seq != head:
            raise ConflictError(f"expected the log to end at seq {expected_last_seq}, it ends at {head}")
        now = self.clock()
        batch = list(events)
        if self.auto_reap and not _reaping:
            alive = {e.run_id for e in batch if e.run_id}  # a run appending now is not abandoned
            batch = [RunAbandoned(run_id=r, lease_expired_at=end.astimezone(dt.UTC).isoformat(timespec="microseconds"))
                     for r, end in self._expired(now) if r not in alive] + batch
        self._refuse_conflicts(batch)
        ids = {e.event.event_id: e.seq for e in self.log}
        ids.update({e.event_id: head + i + 1 for i, e in enumerate(batch)})
        logged = []
        for i, event in enumerate(batch):
            if isinstance(event, CheckEvaluated | ChecksEvaluated) and event.materialization_id \
                    and event.materialization_seq is None:
                if event.materialization_id not in ids:
                    raise ConflictError(f"check refers to materialization {event.materialization_id}, not in the log")
                event = attrs.evolve(event, materialization_seq=ids[event.materialization_id])
            to_row(event)  # a payload the log cannot store refuses the batch
            logged.append(Logged(head + i + 1, now, event))
        self.log.extend(logged)
        return logged

    def _refuse_conflicts(self, batch: Sequence[Event]) -> None:
        seen = {e.event.event_id for e in self.log}
        ranks = self._run_ranks(self.log)
        for event in batch:
            if event.event_id in seen:
                raise ConflictError(f"duplicate event id {event.event_id}")
            seen.add(event.event_id)
            run_id = event.run_id
            if run_id is None:
                continue
            if isinstance(event, RunStarted):
                if run_id in ranks:
                    raise ConflictError(f"run {run_id} was already started")
                ranks[run_id] = 0
            elif run_id not in ranks:
                raise ConflictError(f"run {run_id} was never started")
            elif ranks[run_id] >= RANK["run_succeeded"]:
                raise ConflictError(f"run {run_id} already finished")
            else:
                ranks[run_id] = max(ranks[run_id], RANK.get(event.EVENT_TYPE, 0))

    def reap(self, now: dt.datetime | None = None) -> list[Logged]:
        doomed = self._expired(now or self.clock())
        if not doomed:
            return []
        return self.append([RunAbandoned(run_id=r, lease_expired_at=end.astimezone(dt.UTC).isoformat(
            timespec="microseconds")) for r, end in doomed], _reaping=True)

    def last_seq(self) -> int:
        return len(self.log)

    def read(self) -> list[Logged]:
        return list(self.log)

    def projections(self, *, as_of_seq: int | None = None) -> dict[str, list[dict[str, Any]]]:
        return project(e for e in self.log if as_of_seq is None or e.seq <= as_of_seq)

    def projection(self, table: str, *, as_of_seq: int | None = None) -> list[dict[str, Any]]:
        return self.projections(as_of_seq=as_of_seq)[table]


def replay(stored: Iterable[Any]) -> ModelLedger:
    """A model holding exactly ``stored`` (events read back from a store, with their seq and
    recorded_at): for comparing a store's projections with the model's fold of its own log."""
    model = ModelLedger(clock=lambda: dt.datetime.now(dt.UTC), auto_reap=False)
    model.log = [Logged(s.seq, s.recorded_at, s.event) for s in stored]
    return model


__all__ = ["KEYS", "TABLES", "Logged", "ModelLedger", "project", "replay", "timestamp"]
