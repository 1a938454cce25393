"""Errors by type: each failure DuckDB reports is provoked for real (no mock of duckdb) and comes
out as one class of ``ledger.errors``, with the builtin a caller would catch and the CLI's exit code.

The file-system cases mount a small tmpfs (we run as root) to fill it or make it read-only, and
drop to user ``nobody`` for a permission denied; each is skipped with a reason where it cannot be.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from frontends.cli.app import main
from ledger import connection
from ledger.connection import connect, is_lock_error
from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import (
    CommitFailedError,
    ConflictError,
    ConstraintViolationError,
    CorruptDatabaseError,
    DatabaseIsADirectoryError,
    DatabasePermissionError,
    DiskFullError,
    InvalidUnicodeError,
    LedgerLockedError,
    LedgerMemoryError,
    MissingUpcasterError,
    PayloadNotJSONError,
    SchemaMissingError,
    StorageError,
    UnknownEventTypeError,
)
from ledger.events import AssetMaterialized, RunHeartbeat, RunStarted, from_row, to_row
from ledger.transaction import transaction
from tests.ledger.test_connection import held_by_another_process

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> int:
    return main(["--duckdb-path", *args])


# -- opening a file --------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"this is a text file, not a database\n" * 200])
def test_a_file_that_is_not_a_database_is_corrupt_exit_5(tmp_path: Path, content: bytes, capsys) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_bytes(content)
    for read_only in (True, False):
        with pytest.raises(CorruptDatabaseError, match="is not a DuckDB database") as caught, \
                connect(path, read_only=read_only, timeout_seconds=1):
            pass
        assert isinstance(caught.value.__cause__, duckdb.IOException)
    assert cli(str(path), "db", "status") == CorruptDatabaseError.exit_code == 5
    assert "not a DuckDB database" in capsys.readouterr().err
    assert path.read_bytes() == content  # never overwritten


def test_a_directory_is_not_a_corrupt_database_exit_12(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "warehouse"
    folder.mkdir()
    with pytest.raises(DatabaseIsADirectoryError, match="is a directory") as caught:
        DuckDBEventStore(folder)
    assert isinstance(caught.value, IsADirectoryError) and not isinstance(caught.value, CorruptDatabaseError)
    assert cli(str(folder), "db", "migrate") == DatabaseIsADirectoryError.exit_code == 12
    assert "is a directory" in capsys.readouterr().err


# Root's Python cannot be run by nobody (it lives under /root): the child starts as root, imports
# everything it needs, then drops to nobody before it opens the file.
CHILD_OPEN = """
import os, sys
from ledger.connection import connect
from ledger.errors import OptionsHelperError
import ledger.transaction, tempfile, duckdb
os.setgid(65534)
os.setuid(65534)
try:
    with connect(sys.argv[1], read_only=sys.argv[2] == "ro", timeout_seconds=1):
        pass
    print("opened")
except OptionsHelperError as e:
    print(type(e).__name__, isinstance(e, PermissionError), e.exit_code)
"""


@pytest.mark.skipif(not hasattr(os, "setuid") or os.geteuid() != 0, reason="needs root to drop to user nobody")
def test_a_file_this_user_may_not_read_is_permission_denied_exit_12() -> None:
    folder = Path(tempfile.mkdtemp(prefix="oh-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "ledger.duckdb"
        DuckDBEventStore(path)
        path.chmod(0o600)  # root's; nobody may not read it
        for mode in ("ro", "rw"):
            out = subprocess.run([sys.executable, "-c", CHILD_OPEN, str(path), mode], cwd=ROOT,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                                 timeout=60)
            assert out.stdout.split() == ["DatabasePermissionError", "True", "12"], out.stderr[-2000:]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    point = Path(tempfile.mkdtemp(prefix="oh-tmpfs-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        point.rmdir()
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield point
    finally:
        connection._forget_host()  # a failed checkpoint may leave the file attached: let it go
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
        point.rmdir()


def test_a_read_only_file_system_is_permission_denied_for_writers_only(capsys) -> None:
    with tmpfs("8m") as point:
        path = point / "ledger.duckdb"
        DuckDBEventStore(path).append([RunStarted(run_id="r", job_name="j")])
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(point)], capture_output=True, text=True)
        assert remounted.returncode == 0, remounted.stderr
        with pytest.raises(DatabasePermissionError, match="read-only file system") as caught, \
                connect(path, read_only=False, timeout_seconds=1):
            pass
        assert isinstance(caught.value, PermissionError)
        with connect(path, read_only=True) as con:  # readers still read
            assert con.execute("SELECT count(*) FROM meta.events").fetchone() == (1,)
        assert cli(str(path), "db", "reap") == 12
        assert "read-only file system" in capsys.readouterr().err


def _fill(folder: Path) -> None:
    """Take every free byte of ``folder``'s file system."""
    with (folder / "filler").open("wb") as f:
        chunk = b"\0" * (1 << 16)
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
                f.flush()


def test_a_full_disk_at_commit_is_disk_full_and_nothing_is_written(capsys) -> None:
    with tmpfs("16m") as point:
        path = point / "ledger.duckdb"
        store = DuckDBEventStore(path)
        store.append([RunStarted(run_id="r", job_name="j")])
        _fill(point)
        big = [AssetMaterialized(run_id="r", asset_key="a", partition_key="2026-01-02", scope_key=f"S{i}",
                                 extra={"blob": uuid.uuid4().hex * 200}) for i in range(400)]
        with pytest.raises(DiskFullError, match="no space left") as caught:
            store.append(big)
        assert isinstance(caught.value, StorageError) and isinstance(caught.value, OSError)
        assert isinstance(caught.value.__cause__, duckdb.Error)
        (point / "filler").unlink()
        assert store.last_seq() == 1  # the failed batch left nothing
        store.append([RunHeartbeat(run_id="r")])  # and the ledger goes on once there is space
        assert store.last_seq() == 2


def test_a_new_database_on_a_full_disk_is_disk_full_exit_12(capsys) -> None:
    with tmpfs("4m") as point:
        _fill(point)
        assert cli(str(point / "new.duckdb"), "db", "init") == DiskFullError.exit_code == 12
        assert "no space left" in capsys.readouterr().err


# -- another process's lock: the one error recognised by its words -----------------------------------
def test_duckdb_still_words_a_held_lock_as_this_module_expects(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    duckdb.connect(str(path)).close()
    with held_by_another_process(path, 3) as child:
        try:
            duckdb.connect(str(path))
        except duckdb.Error as e:
            assert type(e) is duckdb.IOException  # no type of its own: hence is_lock_error's text check
            assert is_lock_error(e)
            assert connection.lock_holder(e).endswith(f"(PID {child.pid})")
        else:
            pytest.fail("the file opened although another process holds it")
    assert not is_lock_error(duckdb.IOException('IO Error: Could not read from file "x": Is a directory'))


def test_a_lock_held_past_the_budget_is_locked_exit_6(tmp_path: Path, monkeypatch, capsys) -> None:
    path = tmp_path / "held.duckdb"
    DuckDBEventStore(path)
    monkeypatch.setenv("OPTIONS_HELPER_LOCK_TIMEOUT", "0.3")
    with held_by_another_process(path, 4) as child:
        with pytest.raises(LedgerLockedError, match=f"PID {child.pid}"), connect(path, read_only=False,
                                                                                  timeout_seconds=0.3):
            pass
        assert cli(str(path), "db", "reap") == LedgerLockedError.exit_code == 6
    assert "is locked by" in capsys.readouterr().err


# -- inside a transaction ---------------------------------------------------------------------------
def test_a_row_that_collides_with_a_stored_key_is_a_constraint_violation_exit_4(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "l.duckdb")
    started = RunStarted(run_id="r", job_name="j")
    store.append([started])
    with pytest.raises(ConstraintViolationError, match="already stored") as caught:
        store.append([RunStarted(run_id="other", job_name="j"), RunHeartbeat(event_id=started.event_id, run_id="r")])
    assert isinstance(caught.value, ConflictError) and caught.value.exit_code == 4
    assert isinstance(caught.value.__cause__, duckdb.ConstraintException)
    assert store.last_seq() == 1


def test_a_missing_table_is_schema_missing_exit_5(tmp_path: Path, capsys) -> None:
    path = tmp_path / "l.duckdb"
    DuckDBEventStore(path)
    with connect(path, read_only=False) as con:
        con.execute("DROP TABLE meta.ingestion_runs")
    with pytest.raises(SchemaMissingError, match="db migrate") as caught:
        DuckDBEventStore(path).reap()
    assert isinstance(caught.value.__cause__, duckdb.CatalogException)
    assert cli(str(path), "db", "reap") == SchemaMissingError.exit_code == 5


def test_a_transaction_duckdb_aborts_is_a_failed_commit_and_rolls_back() -> None:
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE t (x INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    first, second = con.cursor(), con.cursor()
    first.execute("BEGIN TRANSACTION")
    first.execute("UPDATE t SET x = 2")
    with pytest.raises(CommitFailedError, match="nothing of this test was written") as caught, \
            transaction(second, ":memory:", doing="test"):
        second.execute("UPDATE t SET x = 3")  # a write-write conflict DuckDB refuses
    assert isinstance(caught.value.__cause__, duckdb.TransactionException)
    first.execute("COMMIT")
    assert con.execute("SELECT x FROM t").fetchall() == [(2,)]


def test_duckdb_out_of_memory_in_a_transaction_is_a_memory_error_and_rolls_back() -> None:
    con = duckdb.connect(":memory:")
    con.execute("SET memory_limit = '20MB'")
    con.execute("SET threads = 1")
    con.execute("SET temp_directory = ''")  # nowhere to spill
    with pytest.raises(LedgerMemoryError, match="ran out of memory") as caught, \
            transaction(con, ":memory:", doing="test"):
        con.execute("CREATE TABLE big AS SELECT range AS i, repeat('x', 100) AS s FROM range(3000000)")
        con.execute("SELECT list(s) FROM big").fetchall()
    assert isinstance(caught.value, MemoryError) and caught.value.exit_code == 4
    assert isinstance(caught.value.__cause__, duckdb.OutOfMemoryException)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'big'").fetchone() == (0,)


def test_a_bug_in_our_sql_is_not_disguised_as_a_ledger_error() -> None:
    con = duckdb.connect(":memory:")
    with pytest.raises(duckdb.ParserException), transaction(con, ":memory:", doing="test"):
        con.execute("SELEKT 1")


# -- events that cannot be stored or read -------------------------------------------------------------
def test_events_that_cannot_be_stored_or_read_have_their_own_classes() -> None:
    not_json = RunStarted(run_id="r", job_name="j", args={"x": object()})
    with pytest.raises(PayloadNotJSONError) as caught:
        to_row(not_json)
    assert isinstance(caught.value, TypeError) and not isinstance(caught.value, ConflictError)
    with pytest.raises(InvalidUnicodeError) as bad_text:
        to_row(RunStarted(run_id="r", job_name="bad \udcff bytes"))
    assert isinstance(bad_text.value, UnicodeError) and bad_text.value.exit_code == 4
    row = dict(event_id="e", run_id="r", asset_key=None, partition_key=None, scope_key=None, payload="{}")
    with pytest.raises(UnknownEventTypeError) as unknown:
        from_row(event_type="from_the_future", schema_version=1, **row)
    assert isinstance(unknown.value, LookupError) and unknown.value.exit_code == 5
    with pytest.raises(MissingUpcasterError) as old:
        from_row(event_type="run_heartbeat", schema_version=0, **row)
    assert old.value.exit_code == 5 and not isinstance(old.value, ConflictError)


def test_the_probe_names_a_full_and_a_read_only_file_system_by_errno() -> None:
    from ledger.transaction import probe_write

    with tmpfs("1m") as point:
        assert probe_write(point) is None
        _fill(point)
        assert probe_write(point) == errno.ENOSPC
        (point / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        assert probe_write(point) == errno.EROFS
