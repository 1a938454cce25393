"""A crashed run on this machine is abandoned at once (ledger.liveness).

``RunStarted`` records the host, the pid and the process's start time. A run still ``started``
whose process is gone from this host is abandoned by ``reap()`` and by the next writer that starts
a run, whatever its lease says; a live run on this host never is, nor a run from another host or
one recorded before these fields existed (they keep the lease rule).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ledger
from ledger import liveness
from ledger.duckdb_store import DuckDBEventStore
from ledger.events import RunStarted

ROOT = Path(__file__).resolve().parents[2]

# A run started by a child process, with a lease of an hour, left open until the child is killed.
STARTER = """
import sys, time
import ledger
led = ledger.open(sys.argv[1])
run = led.run("ingest_candles", lease_seconds=3600).__enter__()
print(run.run_id, flush=True)
time.sleep(600)
"""


def start_child_run(path: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen([sys.executable, "-c", STARTER, str(path)], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    assert run_id, "the child did not start its run"
    return child, run_id


def status(led: ledger.Ledger, run_id: str) -> tuple[str, str | None]:
    row = led.run_detail(run_id)["run"]
    return row["status"], row["error_message"]


@pytest.fixture
def led(tmp_path: Path) -> ledger.Ledger:
    return ledger.open(tmp_path / "l.duckdb")


def test_a_run_records_where_its_process_lives(led: ledger.Ledger) -> None:
    with led.run("j") as run:
        started = led.events(run_id=run.run_id)[0].event
    assert isinstance(started, RunStarted)
    assert (started.host, started.pid) == (liveness.host_name(), os.getpid())
    assert started.pid_start == liveness.start_ticks(os.getpid()) is not None


def test_a_killed_childs_run_is_abandoned_at_once_by_reap(led: ledger.Ledger) -> None:
    child, run_id = start_child_run(led.path)
    try:
        assert led.reap() == [] and status(led, run_id)[0] == "started"  # alive: never reaped
    finally:
        child.kill()
        child.wait()
    t0 = time.monotonic()
    abandoned = led.reap()
    assert [s.event.run_id for s in abandoned] == [run_id]
    state, why = status(led, run_id)
    assert state == "abandoned" and f"process {child.pid}" in (why or "") and "exited" in (why or "")
    assert time.monotonic() - t0 < 60  # not the hour of its lease


def test_a_killed_childs_run_is_abandoned_by_the_next_run_that_starts(led: ledger.Ledger) -> None:
    child, run_id = start_child_run(led.path)
    child.kill()
    child.wait()
    with led.run("j") as run:
        run.heartbeat()
    assert status(led, run_id)[0] == "abandoned"


def test_a_killed_child_not_yet_waited_for_is_gone_too(led: ledger.Ledger) -> None:
    child, run_id = start_child_run(led.path)
    try:
        child.kill()
        deadline = time.monotonic() + 30
        while liveness._stat(child.pid) is not None and liveness._stat(child.pid)[0] not in "ZX":  # type: ignore[index]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert [s.event.run_id for s in led.reap()] == [run_id]  # a zombie never writes again
    finally:
        child.wait()


def test_the_rule_is_looked_at_when_a_run_starts_not_on_every_append(led: ledger.Ledger) -> None:
    with led.run("j") as mine:
        child, run_id = start_child_run(led.path)
        child.kill()
        child.wait()
        mine.heartbeat()  # an append that starts no run: the gone run waits for the next start
        assert status(led, run_id)[0] == "started"
        led.append([RunStarted(run_id="peer", job_name="j")])  # any run's start looks
        assert status(led, run_id)[0] == "abandoned"


def test_a_live_run_on_this_host_is_never_abandoned(led: ledger.Ledger) -> None:
    child, run_id = start_child_run(led.path)
    try:
        for _ in range(3):
            assert led.reap() == []
            with led.run("j"):
                pass
        assert status(led, run_id)[0] == "started"
    finally:
        child.kill()
        child.wait()


def _started(run_id: str, **where: object) -> RunStarted:
    return RunStarted(run_id=run_id, job_name="j", lease_seconds=3600, **where)  # type: ignore[arg-type]


def test_other_hosts_and_old_events_keep_the_lease_rule(tmp_path: Path) -> None:
    now = dt.datetime(2026, 11, 25, 21, tzinfo=dt.UTC)
    store = DuckDBEventStore(tmp_path / "l.duckdb", clock=lambda: now)
    store.append([
        _started("elsewhere", host=liveness.host_name() + "-other", pid=999_999_999, pid_start=1),
        _started("old"),  # written before host and pid existed: they read back as None
        _started("dead-here", host=liveness.host_name(), pid=999_999_999, pid_start=1),
    ])
    assert [s.event.run_id for s in store.reap(now)] == ["dead-here"]
    later = now + dt.timedelta(hours=2)  # the leases of the others have expired
    assert sorted(s.event.run_id for s in store.reap(later)) == ["elsewhere", "old"]


def test_a_reused_pid_is_told_apart_by_the_process_start_time(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "l.duckdb")
    me = liveness.current()
    parent = os.getppid()  # alive, but not the process that started the run
    store.append([_started("reused", host=me.host, pid=parent, pid_start=(liveness.start_ticks(parent) or 0) + 1),
                  _started("same", host=me.host, pid=parent, pid_start=liveness.start_ticks(parent))])
    assert [s.event.run_id for s in store.reap()] == ["reused"]
