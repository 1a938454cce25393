"""The Python API of the ledger: ``ledger.open(path)`` and the ``Ledger`` it returns.

    import ledger
    led = ledger.open("data/warehouse/options.duckdb")
    with led.run("ingest_candles", triggered_by="python", scope_keys=["AAPL"]) as run:
        run.heartbeat()
        run.complete([run.materialized("candles_daily", "2026-11-25", "AAPL", rows=1)])
    led.health()

Readers (the portal, ``health``, a follower) open it read-only: nothing is created or migrated,
every query opens the file read-only for its own length, and writes raise ``ReadOnlyLedgerError``:

    led = ledger.Ledger.from_settings(settings, read_only=True)
    led.health()["watermarks"]; led.events(since=120, limit=500)
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ledger import liveness, queries
from ledger.clock import Clock, utc_now
from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import (
    DatabaseNotFoundError,
    MigrationError,
    ReadOnlyLedgerError,
    SchemaMissingError,
    UnknownRunError,
    UsageError,
)
from ledger.redact import known_secret_values, redact, redact_text

if TYPE_CHECKING:
    from ledger.config import Settings
    from ledger.events import (
        AssetFailed,
        AssetMaterialized,
        AssetSkipped,
        CheckEvaluated,
        ChecksEvaluated,
        Event,
        RunStarted,
        StoredEvent,
    )
    from ledger.verify import VerifyReport

APP_VERSION = "0.1.0"


def _this_process() -> dict[str, Any]:
    """The host, pid and process start of this process, for ``RunStarted`` (ledger.liveness)."""
    process = liveness.current()
    return {"host": process.host, "pid": process.pid, "pid_start": process.pid_start}


class Ledger:
    """A ledger file. Holds no connection between calls. Build one with ``ledger.open(path)`` or
    ``Ledger.from_settings(settings)``; ``read_only`` ledgers refuse every write."""

    def __init__(
        self,
        store: DuckDBEventStore,
        *,
        clock: Clock = utc_now,
        lease_seconds: float = 300.0,
        read_only: bool = False,
        session_close_delay_minutes: int = 30,
    ) -> None:
        self.store = store
        self.path = Path(store.path)
        self._clock = clock
        self.lease_seconds = lease_seconds
        self.read_only = read_only
        self.session_close_delay_minutes = session_close_delay_minutes

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        read_only: bool = False,
        create: bool = True,
        clock: Clock = utc_now,
        auto_reap: bool = True,
    ) -> Ledger:
        """The ledger named by ``settings`` (its path, lock timeout, lease and session close delay).

        ``read_only``: never creates or migrates the file and refuses writes (see ``open``);
        ``create=False``: a missing file is ``DatabaseNotFoundError`` instead of a new ledger."""
        return open(
            settings.duckdb_path, read_only=read_only, create=create, clock=clock, auto_reap=auto_reap,
            lock_timeout_seconds=settings.lock_timeout_seconds, lease_seconds=settings.lease_seconds,
            session_close_delay_minutes=settings.session_close_delay_minutes,
        )

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyLedgerError(
                f"cannot {what}: {self.path} was opened read-only; open it with ledger.open(path) or "
                "Ledger.from_settings(settings) to write"
            )

    # -- writing ------------------------------------------------------------------------------
    def append(
        self,
        events: Sequence[Event],
        *,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        expected_last_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Append events atomically (with ``data_writer``'s rows, in the same transaction)."""
        self._writable("append events")
        return self.store.append(events, data_writer=data_writer, expected_last_seq=expected_last_seq)

    def run(
        self,
        job_name: str,
        *,
        triggered_by: str = "python",
        parent_run_id: str | None = None,
        provider: str | None = None,
        args: dict[str, Any] | None = None,
        partition_key: str | None = None,
        scope_keys: Sequence[str] = (),
        code_version: str | None = None,
        backfill_id: str | None = None,
        lease_seconds: float | None = None,
        run_id: str | None = None,
    ) -> RunContext:
        """A context manager recording one run: started on enter, succeeded or failed on exit."""
        # The event classes are imported where events are built, here and in RunContext: the read
        # commands build none, and ledger.events takes ~10 ms to import (docs/performance.md).
        from ledger.events import RunStarted
        from ledger.ids import new_uuid7

        self._writable(f"start a run of {job_name}")
        started = RunStarted(
            run_id=run_id or new_uuid7(),
            job_name=job_name,
            triggered_by=triggered_by,
            parent_run_id=parent_run_id,
            provider=provider,
            args=redact(args or {}, known_secret_values(os.environ)),
            partition_key=partition_key,
            scope_keys=[str(k) for k in scope_keys],  # type: ignore[misc]  # attrs converter
            code_version=code_version,
            backfill_id=backfill_id,
            lease_seconds=lease_seconds or self.lease_seconds,
            app_version=APP_VERSION,
            **_this_process(),
        )
        return RunContext(self, started)

    def reap(self, now: dt.datetime | None = None) -> list[StoredEvent]:
        self._writable("reap expired runs")
        return self.store.reap(now)

    def rebuild(self) -> int:
        self._writable("rebuild the projections")
        return self.store.rebuild()

    def verify(self) -> VerifyReport:
        from ledger.verify import verify_file  # here: it imports the projections, which reads need not

        return verify_file(str(self.path), timeout_seconds=self.store._timeout)

    # -- reading ------------------------------------------------------------------------------
    # Every read opens the file read-only for its own length (or folds a time-travel copy).
    @contextmanager
    def reader(self, *, as_of_seq: int | None = None, as_of_time: dt.datetime | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (or a time-travel fold) held only for the block."""
        if as_of_time is not None and as_of_seq is None:
            as_of_seq, _ = self.resolve_as_of(time=as_of_time)
        with self.store.reader() as con:
            # As of the head (or later) the live file answers, without a fold: no writer can commit
            # while this read-only connection is open, so the head it reads is the head it shows.
            if as_of_seq is None or queries.head(con) <= as_of_seq:
                yield con
                return
        with self.store.as_of(as_of_seq) as con:
            yield con

    def resolve_as_of(
        self, *, seq: int | None = None, time: dt.datetime | None = None
    ) -> tuple[int | None, dt.datetime | None]:
        """An "as of" choice as (seq, moment): a moment gives the last seq recorded by then, a seq
        the moment it was recorded. ``(None, None)`` means now."""
        if seq is None and time is None:
            return None, None
        if time is not None and time.tzinfo is None:
            time = time.replace(tzinfo=dt.UTC)
        with self.store.reader() as con:
            if seq is None:
                return queries.seq_at(con, time), time  # type: ignore[arg-type]
            return int(seq), time or queries.recorded_at(con, int(seq))

    def last_seq(self) -> int:
        return self.store.last_seq()

    def events(self, since: int = 0, limit: int | None = None, *, run_id: str | None = None) -> list[StoredEvent]:
        """Events with seq > ``since`` in seq order, at most ``limit`` (a follower polls with the
        last seq it has seen); ``run_id``: that run's only."""
        return self.store.read(since_seq=since, run_id=run_id, limit=limit)

    def runs(self, *, limit: int = 50, status: str | None = None, job: str | None = None,
             triggered_by: str | None = None, partition: str | None = None, search: str | None = None,
             as_of_seq: int | None = None, backfill_id: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, filtered; ``search`` matches a run id or backfill id prefix, or error text."""
        with self.reader(as_of_seq=as_of_seq) as con:
            return queries.runs(con, limit=limit, status=status, job=job, triggered_by=triggered_by,
                                partition=partition, search=search, backfill_id=backfill_id)

    def run_filters(self) -> dict[str, list[str]]:
        """The jobs, statuses and triggers the runs can be filtered by."""
        with self.reader() as con:
            return queries.run_filters(con)

    def run_detail(self, run_id: str) -> dict[str, Any]:
        """One run: its row, its redacted arguments and error (with the message template), its
        assets, checks and events in order (each with its offset from the start in seconds)."""
        from ledger.fingerprint import message_template

        run_id = run_id.strip()
        with self.reader() as con:
            row = queries.run_row(con, run_id)
            if row is None:
                raise UnknownRunError(f"no run {run_id} in {self.path}; list runs with `options-helper runs`")
            assets = queries.run_assets(con, run_id)
            checks = queries.run_checks(con, run_id)
        secrets = known_secret_values(os.environ)
        started = row.get("started_at")
        events = []
        for e in self.events(run_id=run_id):
            d = _redacted_event(_event_dict(e), secrets)
            d["offset_s"] = (e.recorded_at - started).total_seconds() if isinstance(started, dt.datetime) else None
            events.append(d)
        error = None
        if row.get("status") in ("failed", "abandoned"):
            message = redact_text(row.get("error_message") or "", secrets)
            error = {"type": row.get("error_type"), "message": message, "fingerprint": row.get("error_fingerprint"),
                     "stack_hash": row.get("error_stack_hash"), "template": message_template(message)}
        return {"run": row, "args": redact(row.get("args_json") or {}, secrets), "error": error,
                "assets": assets, "checks": checks, "events": events}

    def watermarks(self, *, as_of_seq: int | None = None) -> list[dict[str, Any]]:
        with self.reader(as_of_seq=as_of_seq) as con:
            return queries.watermarks(con)

    def checks(self, *, status: str | None = None, limit: int = 200, as_of_seq: int | None = None) -> list[dict[str, Any]]:
        with self.reader(as_of_seq=as_of_seq) as con:
            return queries.checks(con, status=status, limit=limit)

    def partition_status(self, *, asset_key: str | None = None, scope_key: str | None = None,
                         as_of_seq: int | None = None) -> list[dict[str, Any]]:
        with self.reader(as_of_seq=as_of_seq) as con:
            return queries.partition_status(con, asset_key=asset_key, scope_key=scope_key)

    def partition_cells(self, *, start: dt.date, end: dt.date, scopes: Sequence[str]) -> list[dict[str, Any]]:
        """Per (asset, partition) in [start, end]: cells materialized, failed and skipped over
        ``scopes`` (and the ALL scope), and their code versions (see ``queries.partition_cells``)."""
        with self.reader() as con:
            return queries.partition_cells(con, start=start.isoformat(), end=end.isoformat(), scopes=list(scopes))

    def partition_overview(self) -> dict[str, Any]:
        """The per-symbol scopes with cells, and the first and last partition dates (or None)."""
        with self.reader() as con:
            out = queries.partition_overview(con)
        for k in ("first", "last"):
            out[k] = dt.date.fromisoformat(out[k]) if out[k] else None
        return out

    def tables(self) -> list[dict[str, Any]]:
        """Every table and view in the file (ledger and warehouse), ``meta`` first."""
        with self.reader() as con:
            return queries.tables(con)

    def table_columns(self, schema: str, table: str) -> list[dict[str, Any]]:
        with self.reader() as con:
            return queries.table_columns(con, schema, table)

    def table_preview(self, schema: str, table: str, *, limit: int = 100, order_by: str | None = None,
                      descending: bool = True) -> list[dict[str, Any]]:
        """The first ``limit`` rows of a table, optionally ordered by one of its columns."""
        with self.reader() as con:
            return queries.table_preview(con, schema, table, limit=limit, order_by=order_by, descending=descending)

    def health(
        self,
        *,
        as_of_seq: int | None = None,
        as_of_time: dt.datetime | None = None,
        days: int = 7,
        limit: int = 50,
        close_delay_minutes: int | None = None,
    ) -> dict[str, Any]:
        """The health report: latest run per job, failures (and their groups by fingerprint),
        freshness of every watermark in XNYS sessions behind the latest completed session, failed
        checks, abandoned runs, counts and a summary; as the ledger stood at ``as_of_seq`` or
        ``as_of_time`` (failures, checks and abandoned runs over the ``days`` before that moment)."""
        from ledger import health, migrate
        from ledger.calendar import TradingCalendar

        seq, when = self.resolve_as_of(seq=as_of_seq, time=as_of_time)
        reference = when or self._clock()
        delay = self.session_close_delay_minutes if close_delay_minutes is None else close_delay_minutes
        cal = TradingCalendar.xnys()
        latest_session = cal.latest_completed_session(reference, delay)
        with self.reader() as con:
            head = queries.head(con)
            version = migrate.schema_version(con)
            if seq is None or seq >= head:  # now: the same connection answers
                seq = None if seq is None else head
                sections = health.report(con, reference=reference, latest_session=latest_session, calendar=cal,
                                         days=days, limit=limit)
        if seq is not None and seq < head:
            with self.store.as_of(seq) as con:
                sections = health.report(con, reference=reference, latest_session=latest_session, calendar=cal,
                                         days=days, limit=limit)
        return {
            "database_path": str(self.path),
            "database_exists": True,
            "schema_version": version,
            "last_seq": head if seq is None else min(head, seq),
            "head_seq": head,
            "as_of": {"seq": seq, "time": when.isoformat() if when else None},
            "reference": reference,
            "latest_completed_session": latest_session.isoformat(),
            **sections,
        }


class RunContext:
    """One run's lifecycle. ``complete()`` commits the final events with the success marker in
    one transaction; leaving the block without it records success (or failure on an exception)."""

    def __init__(self, ledger: Ledger, started: RunStarted) -> None:
        self.ledger = ledger
        self.started = started
        self.run_id = started.run_id
        self.begun = False  # its RunStarted is committed (on enter, or by another run's commit)
        self.finished = False
        self._last_beat = 0.0

    def __enter__(self) -> RunContext:
        if not self.begun:
            self.ledger.append([self.started])
            self._mark_begun()
        return self

    def _mark_begun(self) -> None:
        self.begun = True
        self._last_beat = time.monotonic()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.finished:
            return
        if exc is None:
            self.complete([])
        else:
            self.fail(exc)

    # event builders (they do not commit)
    def materialized(self, asset_key: str, partition_key: str, scope_key: str, **fields: Any) -> AssetMaterialized:
        from ledger.events import AssetMaterialized

        return AssetMaterialized(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                                 scope_key=scope_key, **fields)

    def asset_failed(self, asset_key: str, partition_key: str, scope_key: str, **fields: Any) -> AssetFailed:
        from ledger.events import AssetFailed

        return AssetFailed(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                           scope_key=scope_key, **fields)

    def skipped(self, asset_key: str, partition_key: str, scope_key: str, **fields: Any) -> AssetSkipped:
        from ledger.events import AssetSkipped

        return AssetSkipped(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                            scope_key=scope_key, **fields)

    def check(self, **fields: Any) -> CheckEvaluated:
        from ledger.events import CheckEvaluated

        return CheckEvaluated(run_id=self.run_id, **fields)

    def checks(self, asset_key: str, partition_key: str | None, scope_key: str, checks: Sequence[Mapping[str, Any]],
               **fields: Any) -> ChecksEvaluated:
        """One event for the checks of one materialization (each a mapping of check_name, severity,
        status, metrics and message): what a stage records, a row per check in ``meta.asset_checks``."""
        from ledger.events import ChecksEvaluated

        return ChecksEvaluated(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                               scope_key=scope_key, checks=checks, **fields)

    # commits
    def commit(
        self,
        events: Sequence[Event],
        *,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        start: Sequence[RunContext] = (),
    ) -> list[StoredEvent]:
        """Append ``events`` in one transaction. ``start``: runs whose ``RunStarted`` joins the
        batch (after ``events``), so a pipeline's next run starts in its predecessor's final
        commit instead of a commit of its own; enter them as usual afterwards."""
        fresh = [r for r in start if not r.begun]
        if any(r.ledger.path != self.ledger.path for r in fresh):
            raise ValueError("a run can only start in a commit to its own ledger")
        stored = self.ledger.append([*events, *(r.started for r in fresh)], data_writer=data_writer)
        self._last_beat = time.monotonic()
        for r in fresh:
            r._mark_begun()
        return stored

    def heartbeat(self, *, force: bool = False) -> bool:
        """Renew the lease; throttled to a third of the lease unless ``force``."""
        from ledger.events import RunHeartbeat

        lease = self.started.lease_seconds
        if not force and time.monotonic() - self._last_beat < lease / 3:
            return False
        self.commit([RunHeartbeat(run_id=self.run_id, lease_seconds=lease)])
        return True

    def complete(
        self,
        events: Sequence[Event],
        *,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        start: Sequence[RunContext] = (),
    ) -> list[StoredEvent]:
        from ledger.events import RunSucceeded

        stored = self.commit([*events, RunSucceeded(run_id=self.run_id)], data_writer=data_writer, start=start)
        self.finished = True
        return stored

    def fail(self, exc: BaseException, events: Sequence[Event] = (), *, start: Sequence[RunContext] = ()) -> list[StoredEvent]:
        from ledger.events import RunFailed
        from ledger.fingerprint import fingerprint, stack_hash

        secrets = known_secret_values(os.environ)
        message = redact_text(str(exc), secrets)
        error_type = type(exc).__name__
        failed = RunFailed(run_id=self.run_id, error_type=error_type, error_message=message[:2000],
                           error_fingerprint=fingerprint(error_type, message), stack_hash=stack_hash(exc))
        stored = self.commit([*events, failed], start=start)
        self.finished = True
        return stored


def _redacted_event(d: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    """Known secret values masked in every text, and secret-named keys inside the free-form fields
    (``args``, ``metrics``, ``extra``): belt and braces, as the ledger redacts before storing."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k in ("args", "metrics", "extra"):
            out[k] = redact(v, secrets)
        elif isinstance(v, str):
            out[k] = redact_text(v, secrets)
        else:
            out[k] = v
    return out


def _event_dict(s: StoredEvent) -> dict[str, Any]:
    import attrs

    body = attrs.asdict(s.event)
    return {"seq": s.seq, "event_type": s.event.EVENT_TYPE, "recorded_at": s.recorded_at, **body}


def open(
    path: str | os.PathLike[str],
    *,
    read_only: bool = False,
    create: bool = True,
    clock: Clock = utc_now,
    lock_timeout_seconds: float = 60.0,
    lease_seconds: float = 300.0,
    auto_reap: bool = True,
    session_close_delay_minutes: int = 30,
) -> Ledger:
    """Open the ledger at ``path``.

    Read-write (the default) creates a missing file unless ``create=False`` and applies pending
    migrations. ``read_only=True`` never writes: a missing file is ``DatabaseNotFoundError``, a file
    whose schema is behind the code is ``MigrationError`` (both say which command to run), every
    query opens the file read-only for its own length (so a writer waits a query at most), and
    ``append``, ``run``, ``reap`` and ``rebuild`` raise ``ReadOnlyLedgerError``."""
    target = str(path)
    if read_only:
        store = _read_only_store(target, clock=clock, lock_timeout_seconds=lock_timeout_seconds)
    else:
        if target != ":memory:" and not create and not Path(target).exists():
            raise DatabaseNotFoundError(f"no database at {target}; create one with `options-helper db init`")
        store = DuckDBEventStore(target, clock=clock, auto_reap=auto_reap, lock_timeout_seconds=lock_timeout_seconds)
    return Ledger(store, clock=clock, lease_seconds=lease_seconds, read_only=read_only,
                  session_close_delay_minutes=session_close_delay_minutes)


def status(path: str | os.PathLike[str], *, lock_timeout_seconds: float = 60.0) -> dict[str, Any]:
    """What is at ``path``, read-only and whatever its state: whether it exists, its schema version
    and pending migrations, its head seq, row counts and size. A file DuckDB cannot open raises
    ``CorruptDatabaseError``; a newer or altered schema, ``MigrationError``."""
    from ledger import migrate
    from ledger.connection import connect

    target = Path(path)
    doc: dict[str, Any] = {"database_path": str(target), "exists": target.is_file(),
                           "code_schema_version": migrate.code_schema_version()}
    if not doc["exists"]:
        everything = [f"{m.version:04d}_{m.name}" for m in migrate.load_migrations()]
        return doc | {"schema_version": 0, "pending": everything, "last_seq": 0, "counts": {}, "bytes": 0}
    with connect(target, read_only=True, timeout_seconds=lock_timeout_seconds) as con:
        pending = migrate.check(con)
        version = migrate.schema_version(con)
        doc |= {"schema_version": version, "pending": [f"{m.version:04d}_{m.name}" for m in pending],
                "last_seq": queries.head(con) if version else 0,
                "counts": queries.counts(con) if version else {}}
    return doc | {"bytes": target.stat().st_size}


def _read_only_store(target: str, *, clock: Clock, lock_timeout_seconds: float) -> DuckDBEventStore:
    """The store of an existing, current ledger file, checked on one read-only connection.

    The store is built while that connection is open: its own schema check shares it, and any
    attempt of the store to open the file read-write here would fail rather than write."""
    from ledger import migrate
    from ledger.connection import connect

    if target == ":memory:":
        raise UsageError("an in-memory ledger cannot be opened read-only: it would always be empty")
    if not Path(target).exists():
        raise DatabaseNotFoundError(f"no database at {target}; create one with `options-helper db init`")
    with connect(target, read_only=True, timeout_seconds=lock_timeout_seconds) as con:
        pending = migrate.check(con)
        if pending:
            version = migrate.schema_version(con)
            if version == 0:
                raise SchemaMissingError(f"{target} holds no ledger yet; create its tables with `options-helper db init`")
            raise MigrationError(
                f"{target} is at schema version {version}, this code needs {pending[-1].version}; "
                "apply the migrations with `options-helper db migrate`"
            )
        return DuckDBEventStore(target, clock=clock, auto_reap=False, lock_timeout_seconds=lock_timeout_seconds)


__all__ = ["APP_VERSION", "Ledger", "RunContext", "open", "status"]
