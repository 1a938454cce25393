"""The DuckDB event store: the log, the projections and the data, in one transaction per append.

A file-backed store opens the file read-write only for the length of a commit (and read-only per
query), so other processes can write and read between commits. ``:memory:`` keeps one connection
and runs the same code. What an append reads, checks and writes is ``ledger.append``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ledger import migrate, queries
from ledger.clock import Clock, as_utc, utc_now
from ledger.connection import (
    CONFIG,
    PROCESS_LOCK,
    attach_read_only,
    connect,
    use_whole_machine,
    use_write_budget,
)
from ledger.errors import LedgerError
from ledger.transaction import transaction

if TYPE_CHECKING:
    from ledger.events import Event, StoredEvent, StoredRow

_EVENT_COLUMNS = ("seq", "event_id", "event_type", "schema_version", "recorded_at", "run_id", "asset_key",
                  "partition_key", "scope_key", "payload", "prev_hash", "hash")


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
        """One append's read, checks and writes, inside the caller's transaction (``ledger.append``)."""
        from ledger.append import append_in  # here: the read commands never append

        return append_in(con, batch, expected_last_seq, data_writer, reap=reap, now=now or self._clock())

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
            return queries.head(con)

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
                return queries.normalise_rows(con.execute(f"SELECT * FROM meta.{table} ORDER BY {order}"))
        with self.as_of(as_of_seq) as con:
            return queries.normalise_rows(con.execute(f"SELECT * FROM meta.{table} ORDER BY {order}"))

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


# Files this process has checked (or brought) up to the code's schema, by (device, inode), so that
# opening the same ledger again does not cost another connection.
_MIGRATED: dict[str, tuple[int, int] | None] = {}


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def stored_from_tuple(r: Sequence[Any]) -> StoredEvent:
    from ledger.events import StoredEvent, from_row  # here: reading the log is the `events` command's

    seq, event_id, event_type, schema_version, recorded_at, run_id, asset_key, partition_key, scope_key, payload, prev, h = r
    event = from_row(event_type=event_type, schema_version=schema_version, event_id=event_id, run_id=run_id,
                     asset_key=asset_key, partition_key=partition_key, scope_key=scope_key, payload=payload)
    return StoredEvent(seq=int(seq), recorded_at=as_utc(recorded_at), prev_hash=prev, hash=h, event=event)  # type: ignore[arg-type]


def stored_row_of(r: Sequence[Any]) -> StoredRow:
    from ledger.events import StoredRow

    _, event_id, event_type, schema_version, _, run_id, asset_key, partition_key, scope_key, payload, _, _ = r
    return StoredRow(event_id=event_id, event_type=event_type, schema_version=int(schema_version), run_id=run_id,
                     asset_key=asset_key, partition_key=partition_key, scope_key=scope_key, payload=payload)


__all__ = ["DuckDBEventStore", "stored_from_tuple", "stored_row_of"]
