"""The projections as a Python fold, and a list-backed store over it: the model the tests compare
the ledger (``ledger.projections``, SQL) against, written independently of it.

Until tests/ledger/model.py (the independent model) lands, this is the former ``ledger.fold`` and
``ledger.store.InMemoryEventStore``, kept under tests/ only: production no longer runs it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ledger.errors import ConflictError
from ledger.events import Event, StoredEvent, StoredRow, to_row
from ledger.projections import PROJECTION_KEYS, PROJECTION_TABLES
from ledger.store import (
    GENESIS_HASH,
    Clock,
    RunState,
    abandon_events,
    event_hash,
    expired_runs,
    resolve_check_links,
    utc_now,
    validate_batch,
)

_RANK = {"run_abandoned": 1, "run_succeeded": 2, "run_failed": 3}
_STATUS = {0: "started", 1: "abandoned", 2: "success", 3: "failed"}
_ASSET_STATUS = {"asset_materialized": "success", "asset_failed": "failed", "asset_skipped": "skipped"}
_CELL_STATUS = {"asset_materialized": "materialized", "asset_failed": "failed", "asset_skipped": "skipped"}


def _ts(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class ProjectionState:
    """Projection tables as dicts keyed by primary key."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple[Any, ...] | str, dict[str, Any]]] = {t: {} for t in PROJECTION_TABLES}

    def rows(self, table: str) -> list[dict[str, Any]]:
        keys = PROJECTION_KEYS[table]
        return sorted(self.tables[table].values(), key=lambda r: tuple(str(r[k]) for k in keys))


def fold_events(state: ProjectionState, events: Iterable[tuple[StoredEvent, StoredRow]]) -> None:
    for stored, row in events:
        payload = json.loads(row.payload)
        t = row.event_type
        if t == "run_started" or t == "run_heartbeat" or t in _RANK:
            _fold_run(state, stored, row, payload)
        elif t in _ASSET_STATUS:
            _fold_asset(state, stored, row, payload)
        elif t == "check_evaluated":
            _fold_check(state, stored, row, payload)


def _lease_end(recorded_at: dt.datetime, payload: dict[str, Any]) -> dt.datetime:
    # DuckDB's CAST(DOUBLE AS BIGINT) rounds to nearest; mirror it.
    return recorded_at + dt.timedelta(microseconds=round(float(payload["lease_seconds"]) * 1_000_000))


def _fold_run(state: ProjectionState, s: StoredEvent, row: StoredRow, p: dict[str, Any]) -> None:
    t = row.event_type
    rank = _RANK.get(t, 0)
    started = t == "run_started"
    new = {
        "run_id": row.run_id,
        "parent_run_id": p.get("parent_run_id") if started else None,
        "job_name": p.get("job_name") if started else None,
        "triggered_by": p.get("triggered_by") if started else None,
        "status": _STATUS[rank],
        "started_at": s.recorded_at if started else None,
        "ended_at": s.recorded_at if rank > 0 else None,
        "duration_ms": None,
        "provider": p.get("provider") if started else None,
        "storage_backend": "duckdb",
        "args_json": p.get("args") if started else None,
        "git_sha": None,
        "app_version": p.get("app_version") if started else None,
        "error_type": p.get("error_type") if t == "run_failed" else ("Abandoned" if t == "run_abandoned" else None),
        "error_message": p.get("error_message") if t == "run_failed" else (p.get("reason") if t == "run_abandoned" else None),
        "error_stack_hash": p.get("stack_hash") if rank > 0 else None,
        "status_rank": rank,
        "last_heartbeat_at": s.recorded_at,
        "lease_expires_at": _lease_end(s.recorded_at, p) if t in ("run_started", "run_heartbeat") else None,
        "partition_key": row.partition_key if started else None,
        "scope_keys": list(p.get("scope_keys") or []) if started else None,
        "code_version": p.get("code_version") if started else None,
        "backfill_id": p.get("backfill_id") if started else None,
        "error_fingerprint": p.get("error_fingerprint") if rank > 0 else None,
        "first_seq": s.seq if started else None,
        "last_seq": s.seq,
    }
    table = state.tables["ingestion_runs"]
    run_id = str(row.run_id)
    old = table.get(run_id)
    if old is None:
        table[run_id] = new
        return
    wins = new["status_rank"] > old["status_rank"]
    merged = dict(old)
    for col in ("parent_run_id", "job_name", "triggered_by", "started_at", "provider", "storage_backend",
                "args_json", "app_version", "partition_key", "scope_keys", "code_version", "backfill_id"):
        merged[col] = old[col] if old[col] is not None else new[col]
    for col in ("status", "ended_at", "error_type", "error_message", "error_stack_hash", "error_fingerprint"):
        merged[col] = new[col] if wins else old[col]
    start = old["started_at"] if old["started_at"] is not None else new["started_at"]
    end = merged["ended_at"]
    merged["duration_ms"] = (
        int((end - start) // dt.timedelta(milliseconds=1)) if start is not None and end is not None else None
    )
    merged["status_rank"] = max(old["status_rank"], new["status_rank"])
    merged["last_heartbeat_at"] = _greatest(old["last_heartbeat_at"], new["last_heartbeat_at"])
    merged["lease_expires_at"] = _greatest(old["lease_expires_at"], new["lease_expires_at"])
    merged["first_seq"] = _least(old["first_seq"], new["first_seq"])
    merged["last_seq"] = max(old["last_seq"], new["last_seq"])
    table[run_id] = merged


def _greatest(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _least(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _merge_patch(base: Any, patch: dict[str, Any]) -> Any:
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _fold_asset(state: ProjectionState, s: StoredEvent, row: StoredRow, p: dict[str, Any]) -> None:
    t = row.event_type
    extra = p.get("extra")
    if t == "asset_failed":
        extra = _merge_patch(extra, {"error_type": p.get("error_type"), "error": p.get("error_message")})
    elif t == "asset_skipped":
        extra = _merge_patch(extra, {"reason": p.get("reason")})
    key = (row.run_id, row.asset_key, row.partition_key, row.scope_key)
    runs_assets = state.tables["ingestion_run_assets"]
    old = runs_assets.get(key)
    if old is None or s.seq > old["seq"]:
        runs_assets[key] = {
            "run_id": row.run_id, "asset_key": row.asset_key, "asset_kind": p.get("asset_kind"),
            "partition_key": row.partition_key, "status": _ASSET_STATUS[t],
            "rows_inserted": _int(p.get("rows")), "rows_updated": None, "rows_deleted": None,
            "bytes_written": _int(p.get("bytes")),
            "min_event_ts": _ts(p.get("min_data_time")), "max_event_ts": _ts(p.get("max_data_time")),
            "extra_json": extra, "started_at": None, "ended_at": s.recorded_at, "duration_ms": None,
            "scope_key": row.scope_key, "code_version": p.get("code_version"),
            "data_version": p.get("data_version"), "path": p.get("path"), "sha256": p.get("sha256"),
            "seq": s.seq,
        }
    mat = t == "asset_materialized"
    if mat and p.get("max_data_time") is not None:
        wm = _ts(p["max_data_time"])
        wkey = (row.asset_key, row.scope_key)
        marks = state.tables["asset_watermarks"]
        prev = marks.get(wkey)
        if prev is None or (wm, s.seq) > (prev["watermark_ts"], prev["seq"]):
            marks[wkey] = {"asset_key": row.asset_key, "scope_key": row.scope_key, "watermark_ts": wm,
                           "updated_at": s.recorded_at, "last_run_id": row.run_id, "seq": s.seq}
    ckey = (row.asset_key, row.partition_key, row.scope_key)
    cells = state.tables["partition_status"]
    cell = cells.get(ckey)
    if cell is None:
        cell = {"asset_key": row.asset_key, "partition_key": row.partition_key, "scope_key": row.scope_key,
                "status": None, "run_id": None, "last_seq": -1, "updated_at": None,
                "materialized_seq": None, "materialized_at": None, "materialized_run_id": None,
                "code_version": None, "data_version": None, "rows": None, "bytes": None,
                "path": None, "sha256": None}
        cells[ckey] = cell
    if s.seq > cell["last_seq"]:
        cell.update(status=_CELL_STATUS[t], run_id=row.run_id, last_seq=s.seq, updated_at=s.recorded_at)
    if mat and s.seq > (cell["materialized_seq"] or -1):
        cell.update(materialized_seq=s.seq, materialized_at=s.recorded_at, materialized_run_id=row.run_id,
                    code_version=p.get("code_version"), data_version=p.get("data_version"),
                    rows=_int(p.get("rows")), bytes=_int(p.get("bytes")), path=p.get("path"),
                    sha256=p.get("sha256"))


def _fold_check(state: ProjectionState, s: StoredEvent, row: StoredRow, p: dict[str, Any]) -> None:
    checks = state.tables["asset_checks"]
    if row.event_id in checks:
        return
    checks[row.event_id] = {
        "check_id": row.event_id, "asset_key": row.asset_key, "partition_key": row.partition_key,
        "check_name": p.get("check_name"), "severity": p.get("severity"), "status": p.get("status"),
        "checked_at": s.recorded_at, "metrics_json": p.get("metrics"), "message": p.get("message"),
        "run_id": row.run_id, "scope_key": row.scope_key,
        "materialization_event_id": _str(p.get("materialization_id")),
        "materialization_seq": _int(p.get("materialization_seq")), "seq": s.seq,
    }



class InMemoryEventStore:
    """A list of events and a Python fold: the reference backend and the model for tests."""

    def __init__(self, *, clock: Clock = utc_now, auto_reap: bool = True) -> None:
        self._clock = clock
        self._auto_reap = auto_reap
        self._log: list[StoredEvent] = []
        self._rows: list[StoredRow] = []
        self._ids: dict[str, int] = {}
        self._state = ProjectionState()

    def _runs(self) -> dict[str, RunState]:
        return {
            str(run_id): RunState(rank=r["status_rank"], lease_expires_at=r["lease_expires_at"])
            for run_id, r in self._state.tables["ingestion_runs"].items()
        }

    def append(
        self,
        events: Sequence[Event],
        *,
        expected_last_seq: int | None = None,
        data_writer: Callable[[Any], None] | None = None,
    ) -> list[StoredEvent]:
        if data_writer is not None:
            raise ConflictError("the in-memory store holds no data tables; use the DuckDB store")
        head = len(self._log)
        if expected_last_seq is not None and expected_last_seq != head:
            raise ConflictError(f"expected the log to end at seq {expected_last_seq}, it ends at {head}")
        now = self._clock()
        runs = self._runs()
        batch = list(events)
        if self._auto_reap:
            alive = {e.run_id for e in batch if e.run_id}  # a run appending now is not abandoned
            batch = abandon_events([r for r in expired_runs(runs, now) if r not in alive], runs) + batch
        validate_batch(batch, runs, ())
        dup = [e.event_id for e in batch if e.event_id in self._ids]
        if dup:
            raise ConflictError(f"duplicate event id {dup[0]}")
        batch_ids = {e.event_id: head + i + 1 for i, e in enumerate(batch)}
        batch = resolve_check_links(batch, lambda eid: batch_ids.get(eid) or self._ids.get(eid))
        stored, rows = self._seal(batch, head, now)
        self._log.extend(stored)
        self._rows.extend(rows)
        self._ids.update({s.event.event_id: s.seq for s in stored})
        fold_events(self._state, zip(stored, rows, strict=True))
        return stored

    def _seal(self, batch: list[Event], head: int, now: dt.datetime) -> tuple[list[StoredEvent], list[StoredRow]]:
        prev = self._log[-1].hash if self._log else GENESIS_HASH
        stored, rows = [], []
        for i, event in enumerate(batch):
            seq = head + i + 1
            row = to_row(event)
            h = event_hash(prev, seq, now, row)
            stored.append(StoredEvent(seq=seq, recorded_at=now, prev_hash=prev, hash=h, event=event))
            rows.append(row)
            prev = h
        return stored, rows

    def last_seq(self) -> int:
        return len(self._log)

    def read(
        self, *, since_seq: int = 0, until_seq: int | None = None, run_id: str | None = None, limit: int | None = None
    ) -> list[StoredEvent]:
        out = [
            s for s in self._log
            if s.seq > since_seq and (until_seq is None or s.seq <= until_seq)
            and (run_id is None or s.event.run_id == run_id)
        ]
        return out[:limit] if limit is not None else out

    def projection(self, table: str, *, as_of_seq: int | None = None) -> list[dict[str, Any]]:
        state = self._state
        if as_of_seq is not None and as_of_seq < len(self._log):
            state = ProjectionState()
            fold_events(state, zip(self._log[:as_of_seq], self._rows[:as_of_seq], strict=True))
        return state.rows(table)

    def reap(self, now: dt.datetime | None = None) -> list[StoredEvent]:
        runs = self._runs()
        doomed = expired_runs(runs, now or self._clock())
        if not doomed:
            return []
        saved, self._auto_reap = self._auto_reap, False
        try:
            return self.append(abandon_events(doomed, runs))
        finally:
            self._auto_reap = saved

    def rebuild(self) -> None:
        self._state = ProjectionState()
        fold_events(self._state, zip(self._log, self._rows, strict=True))


__all__ = ["InMemoryEventStore", "ProjectionState", "fold_events"]
