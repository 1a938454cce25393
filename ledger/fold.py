"""The projections as a Python fold: the in-memory backend, and the model the tests compare the
SQL fold (``ledger.projections``) against. It mirrors the SQL merge rules one for one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from ledger.events import StoredEvent, StoredRow
from ledger.projections import PROJECTION_KEYS, PROJECTION_TABLES

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


__all__ = ["ProjectionState", "fold_events"]
