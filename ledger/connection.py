"""Short-lived DuckDB connections with jittered exponential backoff on a locked file.

DuckDB admits one read-write process, or many read-only processes, per file. So writers open
read-write only to commit and readers open read-only per query; both retry a lock held by another
process within a bounded budget, then raise ``LedgerLockedError`` naming the holder.

A file is not opened with ``duckdb.connect`` per use: that builds a whole database instance (buffer
manager, thread pool, extensions) and costs ~35 ms on this machine. Instead one in-memory DuckDB
per process (the *host*) ATTACHes the file for the length of a use and DETACHes it after, which
checkpoints and releases the file lock exactly as closing a connection did, in ~3 ms each way.
Each use gets its own cursor (its own session: temp tables and registered objects end with it)
whose default catalog is the attached file, so SQL reads ``meta.events`` as before.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import attrs
import duckdb

from ledger import retry
from ledger.errors import DatabaseNotFoundError, LedgerLockedError
from ledger.transaction import open_error

# One lock per process: this process's readers and writers of a file take turns (DuckDB would
# refuse a read-only and a read-write attachment of one file at the same time).
PROCESS_LOCK = threading.RLock()
_HOLDER = re.compile(r"Conflicting lock is held in (.+?)(?: \(PID (\d+)\))?[.;]?(?:\s|$)")

CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False, "autoload_known_extensions": True,
}


@attrs.define
class _Attachment:
    """A file attached to the host: its alias, mode and how many open uses share it."""

    alias: str
    read_only: bool
    users: int = 0


@attrs.define
class _Host:
    """The process's in-memory DuckDB and the files attached to it (guarded by PROCESS_LOCK)."""

    con: duckdb.DuckDBPyConnection
    attached: dict[str, _Attachment] = attrs.field(factory=dict)
    role: str = "read"  # the settings in force: "read" (DuckDB's defaults) or "write" (_set_role)
    spill: str | None = None  # temp_directory, once set (_spill_beside)
    spill_fixed: bool = False  # DuckDB has used it: it stays for the host's life


_HOST: _Host | None = None
_ALIASES = itertools.count(1)

# Observers of the file opening and closing ("attach" / "detach", read_only, seconds taken): the
# benchmarks and tests count and time them. DETACH is where DuckDB checkpoints a written file.
Observer = Callable[[str, bool, float], None]
OBSERVERS: list[Observer] = []


def _notify(what: str, read_only: bool, seconds: float) -> None:
    for observer in OBSERVERS:
        observer(what, read_only, seconds)


_HOST_LOCK = threading.Lock()


def _host() -> _Host:
    global _HOST
    with _HOST_LOCK:  # warm_up() may be building it on another thread
        if _HOST is None:
            con = duckdb.connect(":memory:", config=CONFIG)
            # UTC sessions: date arithmetic on TIMESTAMPTZ in SQL means UTC dates. ICU loads once here.
            con.execute("SET GLOBAL TimeZone = 'UTC'")
            _HOST = _Host(con=con)
        return _HOST


def warm_up() -> threading.Thread | None:
    """Build this process's DuckDB instance on another thread while the caller goes on importing
    (the thread; None when the instance exists already).

    DuckDB releases the GIL while it builds an instance (~30 ms), so a command that imports more
    between importing DuckDB and its first query overlaps the two: the CLI's read commands
    (rich, and for `gaps` numpy and the planner; 5-11 % faster, docs/performance.md). A failure
    there is left for the first real use to raise. The thread is not a daemon: the interpreter
    waits for it before exiting, since a process that exits while DuckDB is still building its
    instance aborts (a command that found nothing to read; tests/cli/test_exit.py)."""
    if _HOST is not None:
        return None
    thread = threading.Thread(target=_warm_up, name="duckdb-warm-up")
    thread.start()
    return thread


def _warm_up() -> None:
    with suppress(duckdb.Error):
        _host()


# A forked child's copy of the parent's host: kept referenced, never closed nor freed (freeing
# it would run DuckDB's destructor, which joins threads the child does not have, and crash).
_FORKED_FROM: list[_Host] = []


def _forget_host() -> None:
    """In a forked child: set the parent's host aside untouched; the child opens its own (with a
    lock of its own: a warm-up thread of the parent may have held the parent's when it forked)."""
    global _HOST, _HOST_LOCK
    if _HOST is not None:
        _FORKED_FROM.append(_HOST)
    _HOST = None
    _HOST_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_host)


# A writer's memory budget. Without one DuckDB keeps every block a commit writes cached (its
# default limit is 80 % of RAM): the 500-symbol daily's flow commit (3.35 M rows) took the
# runner's peak RSS from ~470 to 718-728 MiB; with this budget the runner peaks at 622-639 MiB, in
# the same wall time (docs/performance.md). Blocks already written to the file are evicted, not spilled.
WRITE_MEMORY_LIMIT = "256MiB"


def _set_role(host: _Host, target: str, read_only: bool) -> None:
    """Writes run on one thread (their statements are small: per-statement overhead is the cost)
    within ``WRITE_MEMORY_LIMIT``; reads keep DuckDB's defaults. The settings are instance-wide,
    so they change only with the role."""
    if not read_only:
        _spill_beside(host, target)
    wanted = "read" if read_only else "write"
    if host.role != wanted:
        (use_whole_machine if read_only else use_write_budget)(host.con)
        host.role = wanted


def use_write_budget(con: duckdb.DuckDBPyConnection) -> None:
    """A writer's settings: one thread, ``WRITE_MEMORY_LIMIT`` (left unbounded if what the host
    holds cannot shrink to it)."""
    con.execute("SET threads = 1")
    with suppress(duckdb.OutOfMemoryException):
        con.execute(f"SET memory_limit = '{WRITE_MEMORY_LIMIT}'")


def use_whole_machine(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's defaults: every core, 80 % of RAM (readers; a rebuild, whose fold of the whole log
    would spill within a commit's budget)."""
    con.execute("RESET threads")
    con.execute("RESET memory_limit")


def _spill_beside(host: _Host, target: str) -> None:
    """What a write must spill (a large transaction's rows not yet in the file) goes to
    ``<file>.tmp``, DuckDB's own default for a file database; the in-memory host's default is
    ``.tmp`` in the working directory. DuckDB creates the folder only when it spills and removes it
    when the host closes; it refuses to move a folder it has used (then the first one stays: a
    per-run folder, removed after its run, would break the next run's spills)."""
    folder = f"{os.path.realpath(target)}.tmp"
    if host.spill == folder or host.spill_fixed:
        return
    try:
        host.con.execute("SET temp_directory = ?", [folder])
        host.spill = folder
    except duckdb.NotImplementedException:
        host.spill_fixed = True


def _attach(host: _Host, target: str, read_only: bool) -> _Attachment:
    key = os.path.realpath(target)
    current = host.attached.get(key)
    if current is not None:
        if current.read_only and not read_only:
            raise LedgerLockedError(
                f"{target} is open read-only in this process (a reader is still iterating); finish "
                "reading before writing"
            )
        return current  # a nested use, or a read inside this process's write: share the attachment
    alias = f"ledger_{next(_ALIASES)}"
    quoted = target.replace("'", "''")
    t0 = time.perf_counter()
    host.con.execute(f"ATTACH '{quoted}' AS {alias}" + (" (READ_ONLY)" if read_only else ""))
    _notify("attach", read_only, time.perf_counter() - t0)
    current = _Attachment(alias=alias, read_only=read_only)
    host.attached[key] = current
    return current


def _detach(host: _Host, target: str, attachment: _Attachment) -> None:
    """DETACH checkpoints a written file and releases its lock.

    If the checkpoint fails (a full disk), what was committed is safe in the write-ahead log and is
    replayed by the next open, as when closing a connection fails to checkpoint: so this warns
    instead of raising, closes the host (which releases every file it holds; DuckDB has invalidated
    the attachment) and the next use builds a new one."""
    attachment.users -= 1
    if attachment.users > 0:
        return
    host.attached.pop(os.path.realpath(target), None)
    t0 = time.perf_counter()
    try:
        host.con.execute(f"DETACH {attachment.alias}")
        _notify("detach", attachment.read_only, time.perf_counter() - t0)
    except duckdb.Error as e:
        _forget_host()
        with suppress(duckdb.Error):
            host.con.close()
        import logging  # here: the only message this module logs (every command imports it)

        logging.getLogger(__name__).warning(
            "could not checkpoint %s when releasing it (%s); what was committed is kept in %s.wal and "
            "replayed on the next open. Free disk space or fix the file's permissions", target,
            str(e).splitlines()[0], target,
        )
def is_lock_error(exc: BaseException) -> bool:
    """Another process holds the file's lock.

    The one error recognised by its words: DuckDB 2.0.1 reports a lock held by another process as a
    plain ``IOException`` ("Could not set lock on file ...: Conflicting lock is held in ... (PID n)"),
    with no type or code of its own (tests/ledger/test_errors.py pins the text, so an upgrade that
    changes it fails there). A file attached twice in this process is typed
    (``ResourceInUseException``) and is a lock too."""
    if isinstance(exc, duckdb.ResourceInUseException):
        return True
    return isinstance(exc, duckdb.IOException | duckdb.ConnectionException) and (
        "Could not set lock" in str(exc) or "Conflicting lock" in str(exc)
    )


def lock_holder(exc: BaseException) -> str | None:
    m = _HOLDER.search(str(exc))
    if not m:
        return None
    return f"{m.group(1)} (PID {m.group(2)})" if m.group(2) else m.group(1)


@contextmanager
def connect(
    path: Path | str,
    *,
    read_only: bool,
    timeout_seconds: float = 60.0,
    sleep: Callable[[float], None] | None = None,
    on_wait: Callable[[float], None] | None = None,
    isolated: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``path`` held only for the ``with`` block; retries a locked file with backoff.

    Sessions are in UTC (date arithmetic on TIMESTAMPTZ in SQL then means UTC dates). ``:memory:``
    gets a fresh database of its own.
    ``isolated`` opens the file in a database instance of its own instead of the shared host: for a
    session that changes instance-wide settings (the portal's SQL console turns external access off).

    ``on_wait`` receives the seconds spent waiting for the lock (for contention figures).
    """
    target = str(path)
    if isolated:
        with _isolated(target, read_only=read_only, timeout_seconds=timeout_seconds, sleep=sleep,
                       on_wait=on_wait) as con:
            yield con
        return
    if target == ":memory:":
        with PROCESS_LOCK:
            con = duckdb.connect(":memory:", config=CONFIG)
            try:
                con.execute("SET enable_progress_bar = false")
                con.execute("SET TimeZone = 'UTC'")
                yield con
            finally:
                con.close()
        return
    if read_only and not Path(target).exists():
        raise DatabaseNotFoundError(f"no database at {target}; create one with `options-helper db init`")
    waited_from = time.monotonic()
    with PROCESS_LOCK:
        host = _host()
        nested = os.path.realpath(target) in host.attached
        attachment = _retry_locked(lambda: _attach(host, target, read_only), target, read_only=read_only,
                                   timeout_seconds=timeout_seconds, sleep=sleep, queue=not nested)
        attachment.users += 1
        if on_wait is not None:
            on_wait(time.monotonic() - waited_from)
        cursor: duckdb.DuckDBPyConnection | None = None
        try:
            _set_role(host, target, attachment.read_only)
            cursor = host.con.cursor()
            # DuckDB draws a progress bar on stdout for queries over 2 s: it would corrupt --json output.
            cursor.execute("SET enable_progress_bar = false")
            cursor.execute(f"USE {attachment.alias}")
            yield cursor
        finally:
            if cursor is not None:
                cursor.close()  # rolls back a transaction left open
            _detach(host, target, attachment)


@contextmanager
def _isolated(
    target: str, *, read_only: bool, timeout_seconds: float, sleep: Callable[[float], None] | None,
    on_wait: Callable[[float], None] | None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    if read_only and not Path(target).exists():
        raise DatabaseNotFoundError(f"no database at {target}; create one with `options-helper db init`")
    waited_from = time.monotonic()
    with PROCESS_LOCK:
        con = _retry_locked(lambda: duckdb.connect(target, read_only=read_only, config=CONFIG), target,
                            read_only=read_only, timeout_seconds=timeout_seconds, sleep=sleep)
        if on_wait is not None:
            on_wait(time.monotonic() - waited_from)
        try:
            con.execute("SET enable_progress_bar = false")
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


_T = TypeVar("_T")

# A lock is tried again soon (5 ms, doubling to 0.5 s; 40 ms while marked waiting: see _Turn).
_LOCK_BACKOFF = retry.Backoff(initial=0.005, maximum=0.5)


def _retry_locked(
    open_once: Callable[[], _T], target: str, *, timeout_seconds: float, read_only: bool,
    sleep: Callable[[float], None] | None = None, queue: bool = True,
) -> _T:
    """``open_once()`` until it does not fail on another process's lock, with jittered exponential
    backoff (``ledger.retry``) within ``timeout_seconds``; then ``LedgerLockedError``. Any other
    failure to open is named by ``transaction.open_error``. ``queue``: take turns with the other
    processes waiting for this file (``_Turn``); off for a nested use already inside."""
    turn = _Turn(target) if queue else None
    started = retry.monotonic()
    try:
        if turn is not None:
            turn.let_waiters_in_first(started + timeout_seconds, sleep or retry.pause)
        return retry.call(
            open_once,
            transient=is_lock_error,
            budget_seconds=max(0.0, timeout_seconds - (retry.monotonic() - started)),
            backoff=_LOCK_BACKOFF,
            clamp_to_budget=True,
            # A waiter polls often enough to take the gap a releasing process leaves it.
            cap=(lambda: _WAITER_POLL_SECONDS if turn.waiting else None) if turn is not None else None,
            before_wait=(lambda _attempt: turn.wait()) if turn is not None else None,
            give_up=lambda e, _n, _s: _locked(target, e, timeout_seconds),
            sleep=sleep,
        )
    except duckdb.Error as e:
        raise open_error(target, read_only, e) from e
    finally:
        if turn is not None:
            turn.close()


_WAITER_POLL_SECONDS = 0.04
_GIVE_WAY_SECONDS = 0.25


class _Turn:
    """Waiters first, across processes. DuckDB's file lock is a free-for-all: a process that has
    just released the file and comes straight back (a writer in a loop) nearly always beats one
    that is backing off, so readers (the portal, ``health``) and other writers could starve.

    A process that found the file locked marks itself waiting with a shared ``flock`` on
    ``<file>.waiting`` until it gets in. A process about to open the file first looks for such
    marks and, while there are any, steps back (up to ``_GIVE_WAY_SECONDS``) so a waiter takes the
    gap. Where the marker file cannot be opened (a read-only directory) this does nothing."""

    def __init__(self, target: str) -> None:
        self.path = f"{target}.waiting"
        self.waiting = False
        self._fd: int | None = None

    def _open(self) -> int | None:
        if self._fd is None:
            with suppress(OSError):
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def others_waiting(self) -> bool:
        if not os.path.exists(self.path):
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free unless someone holds a shared mark
            return False
        except OSError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's own lock

    def let_waiters_in_first(self, deadline: float, sleep: Callable[[float], None]) -> None:
        until = min(deadline, retry.monotonic() + _GIVE_WAY_SECONDS)
        while self.others_waiting() and retry.monotonic() < until:
            sleep(0.004 + 0.004 * random.random())

    def wait(self) -> None:
        if self.waiting:
            return
        fd = self._open()
        if fd is not None:
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_SH)  # exclusive holders only probe, for microseconds
                self.waiting = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the mark
            self._fd = None
        self.waiting = False


def _locked(target: str, e: BaseException, timeout_seconds: float) -> LedgerLockedError:
    holder = lock_holder(e)
    who = f" by {holder}" if holder else ""
    return LedgerLockedError(
        f"{target} is locked{who} for more than {timeout_seconds:.0f} s; wait for that process "
        "to finish, or raise the budget with OPTIONS_HELPER_LOCK_TIMEOUT"
    )


def attach_read_only(
    con: duckdb.DuckDBPyConnection, path: Path | str, alias: str, *, timeout_seconds: float = 60.0
) -> None:
    """ATTACH a database file read-only into ``con``, retrying while another process writes it."""
    if not Path(path).exists():
        raise DatabaseNotFoundError(f"no database at {path}; create one with `options-helper db init`")
    quoted = str(path).replace("'", "''")
    _retry_locked(lambda: con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)"), str(path), read_only=True,
                  timeout_seconds=timeout_seconds)


__all__ = ["CONFIG", "OBSERVERS", "PROCESS_LOCK", "WRITE_MEMORY_LIMIT", "attach_read_only", "connect", "is_lock_error",
           "lock_holder", "use_whole_machine", "use_write_budget"]
