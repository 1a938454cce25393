"""Short-lived DuckDB connections with jittered exponential backoff on a locked file.

DuckDB admits one read-write process, or many read-only processes, per file. So writers open
read-write only to commit and readers open read-only per query; both retry a lock held by another
process within a bounded budget, then raise ``LedgerLockedError`` naming the holder.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ledger.errors import CorruptDatabaseError, DatabaseNotFoundError, LedgerLockedError

# One lock per process: DuckDB refuses a read-only and a read-write connection to the same file
# in one process, so this process's readers and writers take turns.
PROCESS_LOCK = threading.RLock()
_HOLDER = re.compile(r"Conflicting lock is held in (.+?)(?: \(PID (\d+)\))?[.;]?(?:\s|$)")

CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False, "autoload_known_extensions": True,
}


def is_lock_error(exc: BaseException) -> bool:
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
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[float], None] | None = None,
    utc: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection held only for the ``with`` block; retries a locked file with backoff.

    ``utc`` sets the session time zone to UTC (date arithmetic on TIMESTAMPTZ in SQL then means UTC
    dates); it loads ICU, ~10 ms, which appends skip: they do no time zone arithmetic in SQL.

    ``on_wait`` receives the seconds spent waiting for the lock (for contention figures).
    """
    target = str(path)
    if target != ":memory:" and read_only and not Path(target).exists():
        raise DatabaseNotFoundError(f"no database at {target}; create one with `options-helper db init`")
    deadline = time.monotonic() + timeout_seconds
    delay = 0.005
    waited_from = time.monotonic()
    with PROCESS_LOCK:
        while True:
            try:
                con = duckdb.connect(target, read_only=read_only, config=CONFIG)
                break
            except (duckdb.IOException, duckdb.ConnectionException) as e:
                if not is_lock_error(e):
                    raise _translate_open_error(target, e) from e
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    holder = lock_holder(e)
                    who = f" by {holder}" if holder else ""
                    raise LedgerLockedError(
                        f"{target} is locked{who} for more than {timeout_seconds:.0f} s; wait for that process "
                        "to finish, or raise the budget with OPTIONS_HELPER_LOCK_TIMEOUT"
                    ) from None
                sleep(min(remaining, delay * (0.5 + random.random())))
                delay = min(delay * 2, 0.5)
            except duckdb.Error as e:
                raise _translate_open_error(target, e) from e
        if on_wait is not None:
            on_wait(time.monotonic() - waited_from)
        try:
            # DuckDB draws a progress bar on stdout for queries over 2 s: it would corrupt --json output.
            con.execute("SET enable_progress_bar = false")
            if utc:
                con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


def _translate_open_error(target: str, e: Exception) -> Exception:
    text = str(e)
    if "not a valid DuckDB database file" in text or "Wrong magic" in text or "database file" in text.lower():
        return CorruptDatabaseError(
            f"{target} is not a DuckDB database (or is damaged): {text.splitlines()[0]}; "
            "point --duckdb-path at a ledger file, or move this file away"
        )
    return CorruptDatabaseError(f"cannot open {target}: {text.splitlines()[0]}")


__all__ = ["CONFIG", "PROCESS_LOCK", "connect", "is_lock_error", "lock_holder"]


def attach_read_only(
    con: duckdb.DuckDBPyConnection, path: Path | str, alias: str, *, timeout_seconds: float = 60.0
) -> None:
    """ATTACH a database file read-only into ``con``, retrying while another process writes it."""
    if not Path(path).exists():
        raise DatabaseNotFoundError(f"no database at {path}; create one with `options-helper db init`")
    quoted = str(path).replace("'", "''")
    deadline = time.monotonic() + timeout_seconds
    delay = 0.005
    while True:
        try:
            con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)")
            return
        except (duckdb.IOException, duckdb.ConnectionException, duckdb.BinderException) as e:
            if not is_lock_error(e) or time.monotonic() >= deadline:
                if is_lock_error(e):
                    raise LedgerLockedError(f"{path} stayed locked for {timeout_seconds:.0f} s") from None
                raise _translate_open_error(str(path), e) from e
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.5)
