"""Backfill bookkeeping, read side: what a backfill planned, how far it got, the runs it started."""

from __future__ import annotations

import json
from typing import Any

import duckdb


def _backfill_event(
    con: duckdb.DuckDBPyConnection, event_type: str, backfill_id: str, meta: str, *, last: bool
) -> tuple[int, Any, dict[str, Any]] | None:
    """(seq, recorded_at, payload) of the first (or ``last``) ``event_type`` event of ``backfill_id``."""
    rows = con.execute(
        f"SELECT seq, recorded_at, CAST(payload AS VARCHAR) FROM {meta}.events "
        f"WHERE event_type = ? AND payload->>'backfill_id' = ? ORDER BY seq {'DESC' if last else 'ASC'} LIMIT 1",
        [event_type, backfill_id]).fetchall()
    if not rows:
        return None
    seq, recorded_at, payload = rows[0]
    return int(seq), recorded_at, json.loads(payload)


def backfill_planned(con: duckdb.DuckDBPyConnection, backfill_id: str, meta: str = "meta") -> dict[str, Any] | None:
    """The ``BackfillPlanned`` event of ``backfill_id``: seq, recorded_at, args, cells; or None."""
    found = _backfill_event(con, "backfill_planned", backfill_id, meta, last=False)
    if found is None:
        return None
    seq, recorded_at, payload = found
    return {"seq": seq, "recorded_at": recorded_at, "args": payload.get("args", {}),
            "cells": [tuple(c) for c in payload.get("cells", [])]}


def backfill_cell_states(con: duckdb.DuckDBPyConnection, backfill_id: str, planned_seq: int,
                         meta: str = "meta") -> list[tuple[str, str, str, str]]:
    """Each target cell of a backfill with its state: ``done`` (materialized or skipped since the
    backfill was planned), ``failed`` (its latest event since then is a failure) or ``pending``."""
    rows = con.execute(f"""
        WITH cells AS (
            SELECT c[1] AS asset_key, c[2] AS partition_key, c[3] AS scope_key
            FROM (SELECT unnest(CAST(payload->'cells' AS VARCHAR[][])) AS c FROM {meta}.events
                  WHERE event_type = 'backfill_planned' AND seq = ?)
        )
        SELECT c.asset_key, c.partition_key, c.scope_key,
               CASE WHEN p.status IN ('materialized', 'skipped') AND p.last_seq > ? THEN 'done'
                    WHEN p.status = 'materialized' AND p.materialized_seq > ? THEN 'done'
                    WHEN p.status = 'failed' AND p.last_seq > ? THEN 'failed'
                    ELSE 'pending' END AS state
        FROM cells c LEFT JOIN {meta}.partition_status p
          ON p.asset_key = c.asset_key AND p.partition_key = c.partition_key AND p.scope_key = c.scope_key
        ORDER BY c.partition_key, c.asset_key, c.scope_key""",
        [planned_seq, planned_seq, planned_seq, planned_seq]).fetchall()
    return [(str(a), str(p), str(s), str(state)) for a, p, s, state in rows]


def backfill_runs(con: duckdb.DuckDBPyConnection, backfill_id: str, meta: str = "meta") -> list[dict[str, Any]]:
    """The runs a backfill started, oldest first."""
    cur = con.execute(
        f"SELECT run_id, job_name, partition_key, status, scope_keys, started_at, ended_at, error_message "
        f"FROM {meta}.ingestion_runs WHERE backfill_id = ? ORDER BY first_seq", [backfill_id])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def backfill_finished(con: duckdb.DuckDBPyConnection, backfill_id: str, meta: str = "meta") -> dict[str, Any] | None:
    """The last ``BackfillFinished`` event of ``backfill_id``: seq, recorded_at, status, message; or None."""
    found = _backfill_event(con, "backfill_finished", backfill_id, meta, last=True)
    if found is None:
        return None
    seq, recorded_at, payload = found
    return {"seq": seq, "recorded_at": recorded_at, "status": payload.get("status"),
            "message": payload.get("message", "")}
