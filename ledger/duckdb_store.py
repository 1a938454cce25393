"""The DuckDB event store: the log, the projections and the data, in one transaction per append.

A file-backed store opens the file read-write only for the length of a commit (and read-only per
query), so other processes can write and read between commits. ``:memory:`` keeps one connection.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ledger import incremental, liveness, migrate, projections
from ledger.append_session import (
    SessionCache,
    StaleCache,
    check_head,
    read_state,
    sql_list,
    write_checkpoint,
)
from ledger.connection import CONFIG, PROCESS_LOCK, attach_read_only, connect
from ledger.errors import ConflictError, LedgerError
from ledger.events import Event, RunStarted, StoredEvent, StoredRow, from_row, to_row
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


def _events_table(stored: Sequence[StoredEvent], rows: Sequence[StoredRow]) -> Any:
    import pyarrow as pa

    # The payload column is typed arrow.json: its text comes from the JSON encoder, so DuckDB's cast
    # need not parse it again.
    return pa.Table.from_arrays([
        pa.array([st.seq for st in stored], pa.int64()), pa.array([r.event_id for r in rows], pa.string()),
        pa.array([r.event_type for r in rows], pa.string()), pa.array([r.schema_version for r in rows], pa.int32()),
        pa.array([r.run_id for r in rows], pa.string()), pa.array([r.asset_key for r in rows], pa.string()),
        pa.array([r.partition_key for r in rows], pa.string()), pa.array([r.scope_key for r in rows], pa.string()),
        pa.array([r.payload for r in rows], pa.json_()), pa.array([st.prev_hash for st in stored], pa.string()),
        pa.array([st.hash for st in stored], pa.string()),
    ], schema=_events_schema())


def _insert_events(con: duckdb.DuckDBPyConnection, table: Any, now: dt.datetime) -> None:
    """Insert the ``_events_table`` of a batch, recorded at ``now`` (one literal for the batch)."""
    # DuckDB's replacement scan reads the local by name: no register/unregister (~0.9 ms).
    _ledger_batch = table
    con.execute(f"INSERT INTO meta.events ({', '.join(_EVENT_COLUMNS)}) SELECT seq, event_id, event_type, "
                f"schema_version, {incremental.timestamp_literal(now)}, run_id, asset_key, partition_key, scope_key, "
                "payload, prev_hash, hash FROM _ledger_batch")


@functools.cache
def _events_schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("seq", pa.int64()), ("event_id", pa.string()), ("event_type", pa.string()), ("schema_version", pa.int32()),
        ("run_id", pa.string()), ("asset_key", pa.string()), ("partition_key", pa.string()),
        ("scope_key", pa.string()), ("payload", pa.json_()), ("prev_hash", pa.string()), ("hash", pa.string()),
    ])


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
        self._held: duckdb.DuckDBPyConnection | None = None
        self._local = threading.RLock()
        self._writer = incremental.ProjectionWriter()
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
        if self._held is not None:
            with self._local:
                yield self._held
            return
        with connect(self.path, read_only=read_only, timeout_seconds=self._timeout, on_wait=self._on_wait) as con:
            yield con

    @contextmanager
    def session(self) -> Iterator[DuckDBEventStore]:
        """Hold one read-write connection across several appends (bulk loads, benchmarks).

        Other processes cannot open the file meanwhile: keep sessions short.
        """
        if self._memory_con is not None or self._held is not None:
            yield self
            return
        with connect(self.path, read_only=False, timeout_seconds=self._timeout, on_wait=self._on_wait) as con:
            self._held = con
            try:
                yield self
            finally:
                self._held = None
                self._writer.cache.drop()  # it was proved on this connection only

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
        now = now or self._clock()
        cache = self._writer.cache
        keep = self._may_keep(con)
        try:
            if keep and cache.valid_for(con):
                try:
                    return self._append_batch(con, batch, expected_last_seq, data_writer, reap, now, cache=cache)
                except StaleCache:
                    pass  # nothing is written yet: read the state and start over
            cache.drop()
            return self._append_batch(con, batch, expected_last_seq, data_writer, reap, now,
                                      fill=cache if keep else None)
        except BaseException:
            cache.drop()
            raise

    def _may_keep(self, con: duckdb.DuckDBPyConnection) -> bool:
        # Only a connection this store holds across appends (a session, or ``:memory:``) may keep
        # state between them: between two short-lived connections another process may write.
        return con is self._held or con is self._memory_con

    def _append_batch(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: list[Event],
        expected_last_seq: int | None,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None,
        reap: bool,
        now: dt.datetime,
        *,
        cache: SessionCache | None = None,
        fill: SessionCache | None = None,
    ) -> list[StoredEvent]:
        """One append's reads (none with a valid ``cache``), checks and writes; ``fill`` is a cache
        to load with the state read here."""
        run_ids = sorted({e.run_id for e in batch if e.run_id})
        gone = _gone_runs(con, batch, run_ids) if reap else {}
        if cache is not None:
            head, prev, runs_rows = cache.head, cache.head_hash, cache.open_runs
        else:
            head, prev, runs_rows = read_state(con, [*run_ids, *gone], now=now,
                                               open_runs="all" if fill is not None else "expired" if reap else None)
        batch = self._check_batch(batch, expected_last_seq, reap, now, head, runs_rows, run_ids,
                                  cached=cache is not None, gone=gone)
        if not batch:
            if cache is not None:
                check_head(con, head, prev)  # "nothing to reap" is the stored state's answer too
            elif fill is not None and head > 0:
                fill.fill(con, head, prev, {r: v for r, v in runs_rows.items() if v["status_rank"] == 0})
            return []
        batch_seq = {e.event_id: head + i + 1 for i, e in enumerate(batch)}
        wanted = [e.materialization_id for e in batch  # type: ignore[attr-defined]
                  if getattr(e, "materialization_id", None) and e.materialization_id not in batch_seq]  # type: ignore[attr-defined]
        known = self._seqs_of(con, wanted)
        batch = resolve_check_links(batch, lambda eid: batch_seq.get(eid) or known.get(eid))
        rows = [to_row(event) for event in batch]
        hashes = chain(prev, head + 1, now, rows)
        stored = [StoredEvent(seq=head + i, recorded_at=now, prev_hash=p, hash=h, event=event)
                  for i, (event, p, h) in enumerate(zip(batch, [prev, *hashes[:-1]], hashes, strict=True), start=1)]
        batch_runs = {e.run_id for e in batch if e.run_id}
        delta = incremental.fold_batch(head + 1, batch, {r: runs_rows[r] for r in batch_runs if r in runs_rows}, now)
        # The checkpoint row is a projection of the log's head. Moving it is the first write: it
        # proves a cached state (the stored head is the cached one) before anything else is written.
        if not write_checkpoint(con, (head, prev), (stored[-1].seq, stored[-1].hash), now):
            if cache is not None:
                raise StaleCache
            raise ConflictError(f"the log moved past seq {head} during this append; retry it")
        if data_writer is not None:
            data_writer(con)
        for sql, table in incremental.statements(delta, {e.run_id for e in batch if isinstance(e, RunStarted)}):  # type: ignore[arg-type]
            incremental.execute(con, sql, table)
        _insert_events(con, _events_table(stored, rows), now)
        if cache is not None:
            cache.advance(stored[-1].seq, stored[-1].hash, delta.runs)
        elif fill is not None:
            fill.fill(con, head, prev, {r: v for r, v in runs_rows.items() if v["status_rank"] == 0})
            fill.advance(stored[-1].seq, stored[-1].hash, delta.runs)
        return stored

    def _check_batch(
        self,
        batch: list[Event],
        expected_last_seq: int | None,
        reap: bool,
        now: dt.datetime,
        head: int,
        runs_rows: dict[str, dict[str, Any]],
        run_ids: list[str],
        *,
        cached: bool,
        gone: dict[str, str],
    ) -> list[Event]:
        """The batch to write (expired runs' abandonment first), or ``ConflictError``; with a cached
        state, ``StaleCache`` instead: a conflict is judged on the stored state."""
        try:
            if expected_last_seq is not None and expected_last_seq != head:
                raise ConflictError(f"expected the log to end at seq {expected_last_seq}, it ends at {head}")
            if cached and any(r not in runs_rows for r in run_ids):
                started_here = {e.run_id for e in batch if isinstance(e, RunStarted)}
                if any(r not in runs_rows and r not in started_here for r in run_ids):
                    raise StaleCache  # a finished or unknown run: the batch conflicts; read why
            runs = {r: RunState(rank=int(v["status_rank"]), lease_expires_at=v["lease_expires_at"])
                    for r, v in runs_rows.items()}
            if reap:
                # A run appending now is alive, whatever its lease says: never reap the batch's own runs.
                batch = abandon_events(to_reap(runs, now, gone, alive=run_ids), runs, gone) + batch
            validate_batch(batch, runs)
        except ConflictError:
            if cached:
                raise StaleCache from None
            raise
        return batch

    def _head(self, con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
        row = con.execute("SELECT last_seq, last_hash FROM meta.ledger_checkpoint WHERE name = 'log'").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)

    def _run_rows(
        self, con: duckdb.DuckDBPyConnection, run_ids: list[str], *, include_expired: bool, now: dt.datetime
    ) -> dict[str, dict[str, Any]]:
        """Full projection rows of the given runs, and of runs whose lease expired (to reap)."""
        return read_state(con, run_ids, open_runs="expired" if include_expired else None, now=now)[2]

    def _seqs_of(self, con: duckdb.DuckDBPyConnection, event_ids: list[str]) -> dict[str, int]:
        if not event_ids:
            return {}
        rows = con.execute(f"SELECT event_id, seq FROM meta.events WHERE event_id IN ({sql_list(set(event_ids))})"
                           ).fetchall()
        return {e: int(s) for e, s in rows}

    def reap(self, now: dt.datetime | None = None) -> list[StoredEvent]:
        """Mark open runs as abandoned: those whose lease expired, and those whose process is gone from
        this host (``ledger.liveness``)."""
        with self._connection(read_only=False) as con, transaction(con, self.path, doing="reap"):
            return self._append_in(con, [], None, None, reap=True, now=now)

    def rebuild(self) -> int:
        """Drop every projection's rows and fold the whole log again, in one transaction."""
        with self._connection(read_only=False) as con:
            con.execute("RESET threads")  # a rebuild is one big fold: every core helps
            try:
                with transaction(con, self.path, doing="rebuild", folding_the_log=True):
                    projections.clear(con)
                    projections.fold(con, "meta.events")
                    n = int(con.execute("SELECT count(*) FROM meta.events").fetchone()[0])  # type: ignore[index]
            finally:
                con.execute("SET threads = 1")  # what connect() set for writers
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
                            "SELECT * REPLACE (CAST(payload AS VARCHAR) AS payload) FROM meta.events "
                            f"WHERE seq <= {int(seq)}"
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
