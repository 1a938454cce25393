"""Is a run's process still there? The rule that abandons a crashed run on this machine at once.

``RunStarted`` records the host name, the process id and the process's start time (``pid_start``:
clock ticks after boot, field 22 of ``/proc/PID/stat``). A run still ``started`` is *gone* when it
was started on this host and its process is not running any more: no process has that id, or the
process with that id started at another time (the id was reused). Such a run is abandoned by the
next writer that starts a run and by ``db reap`` without waiting for its lease.

Runs from other hosts, and runs whose event has no host or pid (written before these fields
existed), keep the lease rule alone: another host's process table cannot be read from here.

Limits: where ``/proc`` is missing (not Linux) the start time is unknown, so a reused id makes a
gone run look alive until its lease expires (never the reverse: a live run is never abandoned).
After a reboot an old id may belong to a new process; its start time then differs (ticks restart
at boot), except by a coincidence of both id and tick, where again only the lease rule applies.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Iterable

import attrs
import duckdb


@attrs.frozen(kw_only=True)
class Process:
    """Where a run's process lives, as recorded in its ``RunStarted``."""

    host: str | None
    pid: int | None
    pid_start: int | None


@functools.cache
def host_name() -> str:
    return socket.gethostname()


def start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks after boot; None if there is no such process
    or no ``/proc`` to ask."""
    stat = _stat(pid)
    return stat[1] if stat else None


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start ticks) of ``pid`` from ``/proc/PID/stat``, or None."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ")": split after the last ")".
    fields = text[text.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])  # fields 3 (state) and 22 (starttime)


def current() -> Process:
    """This process, as a new ``RunStarted`` records it."""
    pid = os.getpid()
    return Process(host=host_name(), pid=pid, pid_start=start_ticks(pid))


def is_gone(process: Process) -> bool:
    """True only when ``process`` was on this host and is certainly not running any more."""
    if process.host is None or process.pid is None or process.host != host_name():
        return False
    if process.pid == os.getpid():
        return False  # this process: alive by definition (its own runs are never reaped here)
    if os.path.isdir("/proc"):
        stat = _stat(process.pid)
        if stat is None:
            return not _exists(process.pid)  # no stat file: gone, unless /proc hides it (hidepid)
        state, ticks = stat
        if state in ("Z", "X"):
            return True  # killed, not yet waited for by its parent: it will never write again
        return process.pid_start is not None and ticks != process.pid_start
    return not _exists(process.pid)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    return True


def gone(processes: Iterable[tuple[str, Process]]) -> list[str]:
    """The run ids, among (run id, process) pairs of open runs, whose process is gone."""
    return sorted(run_id for run_id, process in processes if is_gone(process))


def gone_runs(con: duckdb.DuckDBPyConnection, *, keep: Iterable[str] = ()) -> dict[str, str]:
    """Open runs of the ledger on ``con`` started on this host by a process that is gone (but not
    those in ``keep``: the batch's own), with the reason to record. Two small reads: the open runs
    (usually none or a few), then their ``run_started`` events."""
    kept = set(keep)
    open_ids = [r for (r,) in con.execute("SELECT run_id FROM meta.ingestion_runs WHERE status = 'started'").fetchall()
                if r not in kept]
    if not open_ids:
        return {}
    rows = con.execute(
        "SELECT run_id, payload->>'host', TRY_CAST(payload->>'pid' AS BIGINT), "
        "TRY_CAST(payload->>'pid_start' AS BIGINT) FROM meta.events "
        "WHERE event_type = 'run_started' AND run_id IN (SELECT unnest(?::VARCHAR[])) AND payload->>'host' = ?",
        [open_ids, host_name()],
    ).fetchall()
    processes = {r: Process(host=h, pid=p, pid_start=t) for r, h, p, t in rows}
    return {r: f"its process {processes[r].pid} on {processes[r].host} exited without a terminal event"
            for r in gone(processes.items())}


__all__ = ["Process", "current", "gone", "gone_runs", "host_name", "is_gone", "start_ticks"]
