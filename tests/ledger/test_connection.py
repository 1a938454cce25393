"""Connections: a file is attached to the process's in-memory DuckDB only for the length of a use,
a locked file is retried with backoff and then named, and one use never leaks into the next."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from ledger import connection
from ledger.connection import connect
from ledger.errors import LedgerLockedError

HOLDER = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "c.duckdb"
    with connect(path, read_only=False) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1)")
    return path


@contextmanager
def held_by_another_process(path: Path, seconds: float) -> Iterator[subprocess.Popen[str]]:
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        yield child
    finally:
        child.wait(timeout=30)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    seen: list[tuple[str, bool]] = []
    monkeypatch.setattr(connection, "OBSERVERS", [lambda what, read_only, _s: seen.append((what, read_only))])
    return seen


def test_a_write_use_leaves_the_file_checkpointed_and_unlocked(db: Path) -> None:
    with connect(db, read_only=False) as con:
        con.execute("INSERT INTO t VALUES (2)")
        assert Path(f"{db}.wal").exists()  # committed to the WAL while attached
    assert not Path(f"{db}.wal").exists()  # detaching checkpointed it
    other = subprocess.run([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                            "print(c.execute('SELECT sum(x) FROM t').fetchone()[0])", str(db)],
                           capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == "3"


def test_sql_reads_the_attached_file_by_its_own_names(db: Path) -> None:
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (1,)
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_nested_uses_share_one_attachment(db: Path, opened: list[tuple[str, bool]]) -> None:
    with connect(db, read_only=False) as outer:
        outer.execute("INSERT INTO t VALUES (5)")
        with connect(db, read_only=True) as inner:  # a read inside this process's write
            assert inner.execute("SELECT sum(x) FROM t").fetchone() == (6,)
    assert opened == [("attach", False), ("detach", False)]


def test_writing_while_this_process_reads_the_file_is_refused_with_guidance(db: Path) -> None:
    with (connect(db, read_only=True), pytest.raises(LedgerLockedError, match="finish reading before writing"),
          connect(db, read_only=False)):
        pass
    with connect(db, read_only=False) as con:  # and the file is usable again afterwards
        con.execute("INSERT INTO t VALUES (1)")


def test_temp_tables_and_open_transactions_end_with_the_use(db: Path) -> None:
    with connect(db, read_only=False) as con:
        con.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS y")
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO t VALUES (100)")  # never committed
    with connect(db, read_only=False) as con:
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (1,)


def test_a_failed_detach_drops_the_host_and_the_next_use_gets_a_new_one(db: Path) -> None:
    with connect(db, read_only=True) as con:
        con.execute("SELECT 1")
    first = connection._host()
    with connect(db, read_only=True) as con:
        connection._forget_host()  # as after a failed DETACH
    assert connection._host() is not first
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (1,)


def test_a_file_locked_by_another_process_is_retried_then_named(db: Path) -> None:
    with held_by_another_process(db, 30) as child:
        t0 = time.monotonic()
        with pytest.raises(LedgerLockedError) as info, connect(db, read_only=True, timeout_seconds=0.5):
            pass
        assert 0.5 <= time.monotonic() - t0 < 10
        assert f"PID {child.pid}" in str(info.value) and "OPTIONS_HELPER_LOCK_TIMEOUT" in str(info.value)
        child.kill()


def test_a_lock_released_during_the_wait_lets_the_use_proceed(db: Path) -> None:
    waits: list[float] = []
    with held_by_another_process(db, 0.6), \
            connect(db, read_only=False, timeout_seconds=30, on_wait=waits.append) as con:
        con.execute("INSERT INTO t VALUES (2)")
    assert waits and waits[0] > 0.1
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT sum(x) FROM t").fetchone() == (3,)


def test_an_isolated_connection_has_its_own_instance_settings(db: Path) -> None:
    with connect(db, read_only=True, isolated=True) as con:
        con.execute("SET enable_external_access = false")
    with connect(db, read_only=True) as con:
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (True,)


def test_memory_connections_are_fresh_databases() -> None:
    with connect(":memory:", read_only=False) as a:
        a.execute("CREATE TABLE only_here (x INTEGER)")
    with connect(":memory:", read_only=False) as b, pytest.raises(duckdb.CatalogException):
        b.execute("SELECT * FROM only_here")


MARK_WAITING = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_SH)
print("waiting", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_a_process_about_to_open_gives_way_to_one_already_waiting(db: Path) -> None:
    """Waiters first: while another process is marked waiting for the file, a newcomer steps back
    (bounded), so a writer that has just released the file cannot take it straight back."""
    turn = connection._Turn(str(db))
    assert not turn.others_waiting()
    child = subprocess.Popen([sys.executable, "-c", MARK_WAITING, turn.path, "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "waiting"
        assert turn.others_waiting()
        t0 = time.monotonic()
        turn.let_waiters_in_first(time.monotonic() + 60, time.sleep)
        assert time.monotonic() - t0 >= connection._GIVE_WAY_SECONDS * 0.9  # bounded: then it tries anyway
    finally:
        child.kill()
        child.wait(timeout=30)
    assert not turn.others_waiting()


def test_writes_run_within_a_memory_budget_and_spill_beside_the_file_never_into_the_working_directory(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(connection, "_HOST", None)  # a host of this test's own (its spill folder stays with it)
    monkeypatch.setattr(connection, "WRITE_MEMORY_LIMIT", "32MiB")  # so a small temp table must spill
    spill = Path(f"{db}.tmp")
    with connect(db, read_only=True) as con:
        default = con.execute("SELECT current_setting('memory_limit')").fetchone()
    with connect(db, read_only=False) as con:
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == ("32.0 MiB",)
        assert con.execute("SELECT current_setting('temp_directory')").fetchone() == (str(spill),)
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE TEMP TABLE big AS SELECT range AS i, repeat('x', 100) || range AS s FROM range(600000)")
        assert con.execute("SELECT count(*) FROM big").fetchone() == (600_000,)
        assert any(p.name.endswith(".tmp") for p in spill.iterdir())  # ~70 MiB went to disk, beside the file
        con.execute("INSERT INTO t SELECT count(*) FROM big")
        con.execute("COMMIT")
    assert not any(p.name.endswith(".tmp") for p in spill.iterdir())  # the spilled blocks end with the use
    with connect(db, read_only=True) as con:  # readers: DuckDB's defaults again
        assert con.execute("SELECT current_setting('memory_limit')").fetchone() == default
        assert con.execute("SELECT max(x) FROM t").fetchone() == (600_000,)
    connection._host().con.close()  # DuckDB removes the folder with the host that used it
    assert not spill.exists()
    assert list(cwd.iterdir()) == []  # nothing was written to the working directory


WARM_UP = """
import sys
from ledger import connection
thread = connection.warm_up()
thread.join()
host = connection._HOST
with connection.connect(sys.argv[1], read_only=True) as con:
    x = con.execute("SELECT x FROM t").fetchone()[0]
print(host is not None, x, connection._HOST is host, connection.warm_up())
"""


def test_a_warm_up_builds_the_one_instance_the_first_use_then_takes(db: Path) -> None:
    done = subprocess.run([sys.executable, "-c", WARM_UP, str(db)], capture_output=True, text=True, check=True)
    # built on the thread, used by the connection, and not built twice
    assert done.stdout.split() == ["True", "1", "True", "None"], done.stdout + done.stderr
    assert done.stderr == ""
