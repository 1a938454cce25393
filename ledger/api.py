"""The Python API of the ledger: ``ledger.open(path)`` and the ``Ledger`` it returns.

    import ledger
    led = ledger.open("data/warehouse/options.duckdb")
    with led.run("ingest_candles", triggered_by="python", scope_keys=["AAPL"]) as run:
        run.heartbeat()
        run.complete([run.materialized("candles_daily", "2026-11-25", "AAPL", rows=1)])
    led.health()
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ledger import liveness, queries
from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import DatabaseNotFoundError, UnknownRunError
from ledger.events import (
    AssetFailed,
    AssetMaterialized,
    AssetSkipped,
    CheckEvaluated,
    Event,
    RunFailed,
    RunHeartbeat,
    RunStarted,
    RunSucceeded,
    StoredEvent,
)
from ledger.fingerprint import fingerprint, stack_hash
from ledger.ids import new_uuid7
from ledger.redact import known_secret_values, redact, redact_text
from ledger.store import Clock, utc_now
from ledger.verify import VerifyReport, verify_file

APP_VERSION = "0.1.0"


def _this_process() -> dict[str, Any]:
    """The host, pid and process start of this process, for ``RunStarted`` (ledger.liveness)."""
    process = liveness.current()
    return {"host": process.host, "pid": process.pid, "pid_start": process.pid_start}


class Ledger:
    """A ledger file. Holds no connection between calls."""

    def __init__(self, store: DuckDBEventStore, *, clock: Clock = utc_now, lease_seconds: float = 300.0) -> None:
        self.store = store
        self.path = Path(store.path)
        self._clock = clock
        self.lease_seconds = lease_seconds

    # -- writing ------------------------------------------------------------------------------
    def append(
        self,
        events: Sequence[Event],
        *,
        data_writer: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
        expected_last_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Append events atomically (with ``data_writer``'s rows, in the same transaction)."""
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
        return self.store.reap(now)

    def rebuild(self) -> int:
        return self.store.rebuild()

    def verify(self) -> VerifyReport:
        return verify_file(str(self.path), timeout_seconds=self.store._timeout)

    # -- reading ------------------------------------------------------------------------------
    @contextmanager
    def reader(self, *, as_of_seq: int | None = None, as_of_time: dt.datetime | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection (or a time-travel fold) held only for the block."""
        if as_of_time is not None and as_of_seq is None:
            with self.store.reader() as con:
                as_of_seq = queries.seq_at(con, as_of_time)
        if as_of_seq is None:
            with self.store.reader() as con:
                yield con
        else:
            with self.store.as_of(as_of_seq) as con:
                yield con

    def last_seq(self) -> int:
        return self.store.last_seq()

    def events(self, *, run_id: str | None = None, since: int = 0, limit: int | None = None) -> list[StoredEvent]:
        return self.store.read(since_seq=since, run_id=run_id, limit=limit)

    def runs(self, *, limit: int = 50, status: str | None = None, job: str | None = None,
             as_of_seq: int | None = None, backfill_id: str | None = None) -> list[dict[str, Any]]:
        with self.reader(as_of_seq=as_of_seq) as con:
            return queries.runs(con, limit=limit, status=status, job=job, backfill_id=backfill_id)

    def run_detail(self, run_id: str) -> dict[str, Any]:
        with self.reader() as con:
            row = queries.run_row(con, run_id)
            if row is None:
                raise UnknownRunError(f"no run {run_id} in {self.path}; list runs with `options-helper runs`")
            assets = queries.run_assets(con, run_id)
            checks = queries.run_checks(con, run_id)
        events = [_event_dict(e) for e in self.events(run_id=run_id)]
        return {"run": row, "assets": assets, "checks": checks, "events": events}

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

    def health(
        self,
        *,
        as_of_seq: int | None = None,
        as_of_time: dt.datetime | None = None,
        days: int = 7,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The health report: latest runs, failures, watermarks, failed checks, abandoned runs."""
        from ledger import migrate

        with self.reader(as_of_seq=as_of_seq, as_of_time=as_of_time) as con:
            bound = as_of_time or self._clock()
            since = bound - dt.timedelta(days=days)
            head = con.execute("SELECT coalesce(max(seq), 0) FROM meta.events").fetchone()
            return {
                "database_path": str(self.path),
                "database_exists": True,
                "schema_version": migrate.schema_version(con),
                "last_seq": int(head[0]) if head else 0,
                "as_of": {"seq": as_of_seq, "time": as_of_time.isoformat() if as_of_time else None},
                "latest_runs": queries.latest_runs(con, limit=limit),
                "recent_failures": queries.recent_failures(con, since=since, limit=limit),
                "watermarks": queries.watermarks(con),
                "failed_checks": queries.failed_checks(con, since=since, limit=limit),
                "abandoned_runs": queries.abandoned_runs(con, since=since, limit=limit),
                "counts": queries.counts(con),
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
        return AssetMaterialized(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                                 scope_key=scope_key, **fields)

    def asset_failed(self, asset_key: str, partition_key: str, scope_key: str, **fields: Any) -> AssetFailed:
        return AssetFailed(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                           scope_key=scope_key, **fields)

    def skipped(self, asset_key: str, partition_key: str, scope_key: str, **fields: Any) -> AssetSkipped:
        return AssetSkipped(run_id=self.run_id, asset_key=asset_key, partition_key=partition_key,
                            scope_key=scope_key, **fields)

    def check(self, **fields: Any) -> CheckEvaluated:
        return CheckEvaluated(run_id=self.run_id, **fields)

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
        stored = self.commit([*events, RunSucceeded(run_id=self.run_id)], data_writer=data_writer, start=start)
        self.finished = True
        return stored

    def fail(self, exc: BaseException, events: Sequence[Event] = (), *, start: Sequence[RunContext] = ()) -> list[StoredEvent]:
        secrets = known_secret_values(os.environ)
        message = redact_text(str(exc), secrets)
        error_type = type(exc).__name__
        failed = RunFailed(run_id=self.run_id, error_type=error_type, error_message=message[:2000],
                           error_fingerprint=fingerprint(error_type, message), stack_hash=stack_hash(exc))
        stored = self.commit([*events, failed], start=start)
        self.finished = True
        return stored


def _event_dict(s: StoredEvent) -> dict[str, Any]:
    import attrs

    body = attrs.asdict(s.event)
    return {"seq": s.seq, "event_type": s.event.EVENT_TYPE, "recorded_at": s.recorded_at, **body}


def open(
    path: str | os.PathLike[str],
    *,
    create: bool = True,
    clock: Clock = utc_now,
    lock_timeout_seconds: float = 60.0,
    lease_seconds: float = 300.0,
    auto_reap: bool = True,
) -> Ledger:
    """Open (and, unless ``create=False``, create and migrate) the ledger at ``path``."""
    target = str(path)
    if target != ":memory:" and not create and not Path(target).exists():
        raise DatabaseNotFoundError(f"no database at {target}; create one with `options-helper db init`")
    store = DuckDBEventStore(target, clock=clock, auto_reap=auto_reap, lock_timeout_seconds=lock_timeout_seconds)
    return Ledger(store, clock=clock, lease_seconds=lease_seconds)


__all__ = ["APP_VERSION", "Ledger", "RunContext", "open"]
