"""One append: what it reads of the log, the checks it makes, and what it writes, inside the
caller's transaction (``DuckDBEventStore.append`` and ``reap`` open it).

It reads the head (seq and hash) and the state of the runs it continues (one statement), checks
the batch, masks secrets in its payloads, chains its hashes, moves the checkpoint row, runs the
stage's data writer, inserts the events and folds them into the projections with the statements
``ledger.projections`` generates from its one definition.

Apart from ``ledger.duckdb_store`` so that the commands that only read never import the events'
classes, the masking or the hash chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from ledger import liveness, projections
from ledger.clock import as_utc
from ledger.errors import ConflictError
from ledger.events import Event, RunStarted, StoredEvent, StoredRow
from ledger.redact import known_secret_values, redacted_rows
from ledger.store import (
    GENESIS_HASH,
    RunState,
    abandon_events,
    chain,
    resolve_check_links,
    to_reap,
    validate_batch,
)


def append_in(
    con: duckdb.DuckDBPyConnection,
    batch: list[Event],
    expected_last_seq: int | None,
    data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None,
    *,
    reap: bool,
    now: dt.datetime,
) -> list[StoredEvent]:
    """One append's read, checks and writes, inside the caller's transaction."""
    run_ids = sorted({e.run_id for e in batch if e.run_id})
    gone = gone_runs(con, batch, run_ids) if reap else {}
    head, prev, runs = _read_state(con, sorted({*run_ids, *gone}), expired_before=now if reap else None)
    if expected_last_seq is not None and expected_last_seq != head:
        raise ConflictError(f"expected the log to end at seq {expected_last_seq}, it ends at {head}")
    if reap:
        # A run appending now is alive, whatever its lease says: never reap the batch's own runs.
        batch = abandon_events(to_reap(runs, now, gone, alive=run_ids), runs, gone) + batch
    validate_batch(batch, runs)
    if not batch:
        return []
    batch_seq = {e.event_id: head + i + 1 for i, e in enumerate(batch)}
    wanted = [e.materialization_id for e in batch  # type: ignore[attr-defined]
              if getattr(e, "materialization_id", None) and e.materialization_id not in batch_seq]  # type: ignore[attr-defined]
    known = _seqs_of(con, wanted)
    batch = resolve_check_links(batch, lambda eid: batch_seq.get(eid) or known.get(eid))
    # The ledger's boundary: no secret is hashed or stored, whichever code built the event.
    secrets = known_secret_values(os.environ)
    batch, rows = redacted_rows(batch, secrets)
    hashes = chain(prev, head + 1, now, rows)
    stored = [StoredEvent(seq=head + i, recorded_at=now, prev_hash=p, hash=h, event=event)
              for i, (event, p, h) in enumerate(zip(batch, [prev, *hashes[:-1]], hashes, strict=True), start=1)]
    # The checkpoint row is a projection of the log's head; moving it first refuses a second
    # writer of this process that read the same head.
    if not _write_checkpoint(con, (head, prev), (stored[-1].seq, stored[-1].hash), now):
        raise ConflictError(f"the log moved past seq {head} during this append; retry it")
    if data_writer is not None:
        data_writer(con)
    con.from_arrow(_events_table(stored, rows, now)).insert_into("meta.events")
    started = {e.run_id for e in batch if isinstance(e, RunStarted)}
    projections.fold_batch(con, head, rows, new_runs=all(e.run_id in started for e in batch if e.run_id),
                           old_runs=not started)  # validate_batch refuses events of runs never started
    return stored


def _events_table(stored: Sequence[StoredEvent], rows: Sequence[StoredRow], now: dt.datetime) -> Any:
    """A batch as an Arrow table with the columns of ``meta.events`` in their order."""
    import pyarrow as pa

    # The payload column is typed arrow.json: its text comes from the JSON encoder, so DuckDB's cast
    # need not parse it again.
    return pa.Table.from_arrays([
        pa.array([st.seq for st in stored], pa.int64()), pa.array([r.event_id for r in rows], pa.string()),
        pa.array([r.event_type for r in rows], pa.string()), pa.array([r.schema_version for r in rows], pa.int32()),
        pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
        pa.array([r.run_id for r in rows], pa.string()), pa.array([r.asset_key for r in rows], pa.string()),
        pa.array([r.partition_key for r in rows], pa.string()), pa.array([r.scope_key for r in rows], pa.string()),
        pa.array([r.payload for r in rows], pa.json_()), pa.array([st.prev_hash for st in stored], pa.string()),
        pa.array([st.hash for st in stored], pa.string()),
    ], schema=_events_schema())


@functools.cache
def _events_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("seq", pa.int64()), ("event_id", pa.string()), ("event_type", pa.string()), ("schema_version", pa.int32()),
        ("recorded_at", pa.timestamp("us", tz="UTC")), ("run_id", pa.string()), ("asset_key", pa.string()),
        ("partition_key", pa.string()), ("scope_key", pa.string()), ("payload", pa.json_()),
        ("prev_hash", pa.string()), ("hash", pa.string()),
    ])


def _read_state(
    con: duckdb.DuckDBPyConnection, run_ids: Sequence[str], *, expired_before: dt.datetime | None
) -> tuple[int, str, dict[str, RunState]]:
    """What an append must know of the log, in one statement: its head (seq and hash, to chain the
    batch) and the state of the batch's runs and, to reap, of the runs whose lease expired before
    ``expired_before``."""
    where: list[str] = []
    params: list[Any] = []
    if run_ids:
        where.append(f"run_id IN ({', '.join('?' * len(run_ids))})")
        params.extend(run_ids)
    if expired_before is not None:
        where.append("(status_rank = 0 AND lease_expires_at < ?)")
        params.append(expired_before)
    rows = con.execute(
        "SELECT c.last_seq, c.last_hash, r.run_id, r.status_rank, r.lease_expires_at FROM (SELECT 1) AS one "
        "LEFT JOIN meta.ledger_checkpoint c ON c.name = 'log' "
        "LEFT JOIN (SELECT run_id, status_rank, lease_expires_at FROM meta.ingestion_runs "
        f"WHERE {' OR '.join(where) or 'false'}) r ON true", params
    ).fetchall()
    head, head_hash = (int(rows[0][0]), str(rows[0][1])) if rows[0][0] is not None else (0, GENESIS_HASH)
    runs = {run_id: RunState(rank=int(rank), lease_expires_at=as_utc(lease))
            for _, _, run_id, rank, lease in rows if run_id is not None}
    return head, head_hash, runs


def _write_checkpoint(
    con: duckdb.DuckDBPyConnection, old: tuple[int, str], new: tuple[int, str], now: dt.datetime
) -> bool:
    """Move the checkpoint row from the head ``old`` to ``new`` (an INSERT for an empty log); False,
    with nothing written, if the stored head is not ``old``."""
    (old_seq, old_hash), (seq, new_hash) = old, new
    if old_seq == 0:
        con.execute("INSERT INTO meta.ledger_checkpoint VALUES ('log', ?, ?, ?)", [seq, new_hash, now])
        return True
    updated = con.execute(
        "UPDATE meta.ledger_checkpoint SET last_seq = ?, last_hash = ?, updated_at = ? "
        "WHERE name = 'log' AND last_seq = ? AND last_hash = ?", [seq, new_hash, now, old_seq, old_hash]
    ).fetchone()
    return bool(updated and updated[0] == 1)


def _seqs_of(con: duckdb.DuckDBPyConnection, event_ids: Sequence[str]) -> dict[str, int]:
    if not event_ids:
        return {}
    ids = sorted(set(event_ids))
    rows = con.execute(f"SELECT event_id, seq FROM meta.events WHERE event_id IN ({', '.join('?' * len(ids))})",
                       ids).fetchall()
    return {e: int(s) for e, s in rows}


def gone_runs(con: duckdb.DuckDBPyConnection, batch: list[Event], run_ids: list[str]) -> dict[str, str]:
    """Open runs whose process is gone from this host (``ledger.liveness``), looked for when a run
    starts and on ``reap()`` (an empty batch): not on every append, which keeps appends to the
    reads they need."""
    if batch and not any(isinstance(e, RunStarted) for e in batch):
        return {}
    return liveness.gone_runs(con, keep=run_ids)
