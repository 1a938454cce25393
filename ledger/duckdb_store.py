"""The DuckDB event store: the log, the projections and the data, in one transaction per append.

A file-backed store opens the file read-write only for the length of a commit (and read-only per
query), so other processes can write and read between commits. ``:memory:`` keeps one connection
and runs the same code.

An append reads the head and the state of the runs it continues (one statement), checks the
batch, masks secrets in its payloads, chains its hashes, moves the checkpoint row, runs the
stage's data writer, inserts the events and folds them into the projections with the statements
``ledger.projections`` generates from its one definition; all in one transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ledger import liveness, migrate
from ledger.connection import (
    CONFIG,
    PROCESS_LOCK,
    attach_read_only,
    connect,
    use_whole_machine,
    use_write_budget,
)
from ledger.errors import ConflictError, LedgerError
from ledger.events import Event, RunStarted, StoredEvent, StoredRow, from_row
from ledger.redact import known_secret_values, redacted_rows
from ledger.store import (
    GENESIS_HASH,
    Clock,
    RunState,
    abandon_events,
    chain,
    resolve_check_links,
    to_reap,
    utc_now,
    validate_batch,
)
from ledger.transaction import transaction

JSON_COLUMNS = {"args_json", "extra_json", "metrics_json"}
_EVENT_COLUMNS = ("seq", "event_id", "event_type", "schema_version", "recorded_at", "run_id", "asset_key",
                  "partition_key", "scope_key", "payload", "prev_hash", "hash")


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
    runs = {run_id: RunState(rank=int(rank), lease_expires_at=_utc(lease))
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


class DuckDBEventStore:
    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock = utc_now,
        auto_reap: bool = True,
        lock_timeout_seconds: float = 60.0,
        on_lock_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._auto_reap = auto_reap
        self._timeout = lock_timeout_seconds
        self._on_wait = on_lock_wait
        self._memory_con: duckdb.DuckDBPyConnection | None = None
        self._local = threading.RLock()
        if self.path == ":memory:":
            self._memory_con = duckdb.connect(":memory:", config=CONFIG)
            self._memory_con.execute("SET enable_progress_bar = false")
            self._memory_con.execute("SET TimeZone = 'UTC'")
            # Small statements run faster on one thread (file-backed writers get this from connect()).
            self._memory_con.execute("SET threads = 1")
            migrate.migrate(self._memory_con)
        elif (_MIGRATED.get(self.path) or "absent") == _file_id(self.path) or (
            Path(self.path).exists() and not self._pending_migrations()
        ):
            _MIGRATED[self.path] = _file_id(self.path)  # readers never take the write lock here
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            with self._connection(read_only=False) as con:
                migrate.migrate(con, path=self.path)
            _MIGRATED[self.path] = _file_id(self.path)

    def _pending_migrations(self) -> bool:
        with self._connection(read_only=True) as con:
            return bool(migrate.check(con))

    # -- connections --------------------------------------------------------------------------
    @contextmanager
    def _connection(self, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._memory_con is not None:
            with self._local:
                yield self._memory_con
            return
        with connect(self.path, read_only=read_only, timeout_seconds=self._timeout, on_wait=self._on_wait) as con:
            yield con

    # -- writing ------------------------------------------------------------------------------
    def append(
        self,
        events: Sequence[Event],
        *,
        expected_last_seq: int | None = None,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    ) -> list[StoredEvent]:
        with self._connection(read_only=False) as con, transaction(con, self.path, doing="append"):
            return self._append_in(con, list(events), expected_last_seq, data_writer, reap=self._auto_reap)

    def _append_in(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: list[Event],
        expected_last_seq: int | None,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None,
        *,
        reap: bool,
        now: dt.datetime | None = None,
    ) -> list[StoredEvent]:
        """One append's read, checks and writes, inside the caller's transaction."""
        from ledger import projections  # here, not at the top: the read commands never fold

        now = now or self._clock()
        run_ids = sorted({e.run_id for e in batch if e.run_id})
        gone = _gone_runs(con, batch, run_ids) if reap else {}
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

    def _head(self, con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
        row = con.execute("SELECT last_seq, last_hash FROM meta.ledger_checkpoint WHERE name = 'log'").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)

    def reap(self, now: dt.datetime | None = None) -> list[StoredEvent]:
        """Mark open runs as abandoned: those whose lease expired, and those whose process is gone from
        this host (``ledger.liveness``)."""
        with self._connection(read_only=False) as con, transaction(con, self.path, doing="reap"):
            return self._append_in(con, [], None, None, reap=True, now=now)

    def rebuild(self) -> int:
        """Drop every projection's rows and fold the whole log again, in one transaction."""
        from ledger import projections

        with self._connection(read_only=False) as con:
            use_whole_machine(con)  # a rebuild is one big fold: every core and DuckDB's default memory help
            try:
                with transaction(con, self.path, doing="rebuild", folding_the_log=True):
                    projections.clear(con)
                    projections.fold(con, "meta.events")
                    n = int(con.execute("SELECT count(*) FROM meta.events").fetchone()[0])  # type: ignore[index]
            finally:
                use_write_budget(con)  # what connect() set for writers
        return n

    # -- reading ------------------------------------------------------------------------------
    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._connection(read_only=True) as con:
            yield con

    def last_seq(self) -> int:
        with self.reader() as con:
            return self._head(con)[0]

    def read(
        self, *, since_seq: int = 0, until_seq: int | None = None, run_id: str | None = None, limit: int | None = None
    ) -> list[StoredEvent]:
        sql = f"SELECT {', '.join(_EVENT_COLUMNS)} FROM meta.events WHERE seq > ?"
        params: list[Any] = [since_seq]
        if until_seq is not None:
            sql += " AND seq <= ?"
            params.append(until_seq)
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self.reader() as con:
            rows = con.execute(sql, params).fetchall()
        return [stored_from_tuple(r) for r in rows]

    def projection(self, table: str, *, as_of_seq: int | None = None) -> list[dict[str, Any]]:
        from ledger import projections

        if table not in projections.PROJECTION_TABLES:
            raise LedgerError(f"unknown projection {table!r}")
        order = ", ".join(projections.PROJECTION_KEYS[table])
        if as_of_seq is None:
            with self.reader() as con:
                return normalise_rows(con.execute(f"SELECT * FROM meta.{table} ORDER BY {order}"))
        with self.as_of(as_of_seq) as con:
            return normalise_rows(con.execute(f"SELECT * FROM meta.{table} ORDER BY {order}"))

    @contextmanager
    def as_of(self, seq: int) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection whose ``meta`` projections are folded from the log up to ``seq`` only."""
        from ledger import projections

        if self._memory_con is not None:
            with self._local:
                mem = duckdb.connect(":memory:", config=CONFIG)
                mem.execute("SET enable_progress_bar = false")
                try:
                    mem.execute("SET TimeZone = 'UTC'")
                    migrate.migrate(mem)
                    # DuckDB 2 has no fetch_arrow_table(); a cursor's relation avoids the DB-API result's
                    # extra copy and is not blocked by a half-fetched result on the main connection.
                    cur = self._memory_con.cursor()
                    try:
                        events = cur.sql(
                            "SELECT * REPLACE (CAST(payload AS VARCHAR) AS payload) FROM meta.events WHERE seq <= ?",
                            params=[int(seq)],
                        ).to_arrow_table()
                    finally:
                        cur.close()
                    mem.register("_src_events", events)
                    projections.fold(mem, "(SELECT * REPLACE (CAST(payload AS JSON) AS payload) FROM _src_events)")
                    yield mem
                finally:
                    mem.close()
            return
        with connect(":memory:", read_only=False) as mem:
            migrate.migrate(mem)
            with PROCESS_LOCK:  # serialises with this process's writers
                attach_read_only(mem, self.path, "src", timeout_seconds=self._timeout)
                try:
                    projections.fold(mem, f"(SELECT * FROM src.meta.events WHERE seq <= {int(seq)})")
                    mem.execute("INSERT INTO meta.events SELECT * FROM src.meta.events WHERE seq <= ?", [seq])
                finally:
                    mem.execute("DETACH src")
            yield mem


def _gone_runs(con: duckdb.DuckDBPyConnection, batch: list[Event], run_ids: list[str]) -> dict[str, str]:
    """Open runs whose process is gone from this host (``ledger.liveness``), looked for when a run
    starts and on ``reap()`` (an empty batch): not on every append, which keeps appends to the
    reads they need."""
    if batch and not any(isinstance(e, RunStarted) for e in batch):
        return {}
    return liveness.gone_runs(con, keep=run_ids)


# Files this process has checked (or brought) up to the code's schema, by (device, inode), so that
# opening the same ledger again does not cost another connection.
_MIGRATED: dict[str, tuple[int, int] | None] = {}


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _utc(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def stored_from_tuple(r: Sequence[Any]) -> StoredEvent:
    seq, event_id, event_type, schema_version, recorded_at, run_id, asset_key, partition_key, scope_key, payload, prev, h = r
    event = from_row(event_type=event_type, schema_version=schema_version, event_id=event_id, run_id=run_id,
                     asset_key=asset_key, partition_key=partition_key, scope_key=scope_key, payload=payload)
    return StoredEvent(seq=int(seq), recorded_at=_utc(recorded_at), prev_hash=prev, hash=h, event=event)  # type: ignore[arg-type]


def stored_row_of(r: Sequence[Any]) -> StoredRow:
    _, event_id, event_type, schema_version, _, run_id, asset_key, partition_key, scope_key, payload, _, _ = r
    return StoredRow(event_id=event_id, event_type=event_type, schema_version=int(schema_version), run_id=run_id,
                     asset_key=asset_key, partition_key=partition_key, scope_key=scope_key, payload=payload)


def normalise_rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Rows as dicts with JSON parsed and timestamps in UTC, comparable with the Python fold."""
    names = [d[0] for d in cursor.description or []]
    out = []
    for values in cursor.fetchall():
        row = {}
        for name, value in zip(names, values, strict=True):
            if name in JSON_COLUMNS and isinstance(value, str):
                value = json.loads(value)
            elif isinstance(value, dt.datetime):
                value = _utc(value)
            row[name] = value
        out.append(row)
    return out


__all__ = ["DuckDBEventStore", "normalise_rows", "stored_from_tuple", "stored_row_of"]
