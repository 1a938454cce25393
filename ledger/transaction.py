"""The one boundary between DuckDB's exceptions and ours: transactions, and opening a file.

``transaction(con, path, doing=...)`` wraps every write the ledger makes (append, reap, rebuild,
each migration): BEGIN, the block, COMMIT; on any failure a ROLLBACK and DuckDB's exception mapped
by its *type* onto ``ledger.errors`` (``raise ... from`` the driver's):

    duckdb.ConstraintException    ConstraintViolationError   a row collides with a stored key
                                  (IntegrityError in a rebuild: the stored log does not fold)
    duckdb.CatalogException       SchemaMissingError         a table the code needs is not there
    duckdb.IOException,           StorageError, refined by   the write failed: which one is asked
    duckdb.TransactionException,    asking the file system   of the file system (probe_write), not
    duckdb.FatalException           (DiskFullError,          read from DuckDB's message
                                    DatabasePermissionError,
                                    CommitFailedError)
    duckdb.OutOfMemoryException   LedgerMemoryError          DuckDB ran out of memory

Other DuckDB errors (a parser or binder error: a bug in our SQL) are raised unchanged, and the CLI
reports them as internal errors. Errors that are already ours pass through.

``open_error(path, read_only, e)`` names why DuckDB could not open a file, again by asking the file
system: a directory, no permission, a read-only file system, no space for a new file or its WAL,
a file without DuckDB's header (``CorruptDatabaseError``). The one failure DuckDB reports only in
words, another process's lock, is recognised in ``ledger.connection.is_lock_error``.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from ledger.errors import (
    CommitFailedError,
    ConstraintViolationError,
    CorruptDatabaseError,
    DatabaseIsADirectoryError,
    DatabasePermissionError,
    DiskFullError,
    IntegrityError,
    LedgerError,
    LedgerMemoryError,
    OptionsHelperError,
    SchemaMissingError,
    StorageError,
)

# DuckDB's file header: an 8-byte checksum, then the magic bytes.
_MAGIC = b"DUCK"
_MAGIC_AT = 8
_PROBE_BYTES = 1 << 20  # a write of 1 MiB: a block and a WAL record fit in it
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


@contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection, path: str, *, doing: str, folding_the_log: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction on ``con`` (a ledger at ``path``); ``doing`` names it in messages ("append").
    ``folding_the_log``: the block writes only what the stored log folds to (a rebuild), so a
    constraint it breaks is the log's fault (``IntegrityError``), not a conflict of the caller's."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException as e:
        rollback(con)
        mapped = translate(e, path, doing=doing, folding_the_log=folding_the_log) if isinstance(e, duckdb.Error) else None
        if mapped is None:
            raise
        raise mapped from e


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open. After a failed COMMIT (a full disk, say) DuckDB
    has already rolled back, and a second ROLLBACK would hide the original error."""
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


def translate(
    e: duckdb.Error, path: str, *, doing: str, folding_the_log: bool = False
) -> OptionsHelperError | None:
    """Our error for DuckDB's ``e`` raised while ``doing`` something to ``path``; None: a bug, let it be."""
    first = _first_line(e)
    if isinstance(e, duckdb.ConstraintException) and folding_the_log:
        return IntegrityError(
            f"{doing} failed: the log holds events the projections refuse ({first}); nothing was changed. "
            "Run `options-helper db verify` to find the bad seq"
        )
    if isinstance(e, duckdb.ConstraintException):
        return ConstraintViolationError(
            f"{doing} refused by the database: {first}; a row with that key is already stored (was this "
            "batch appended before?). Nothing of it was written"
        )
    if isinstance(e, duckdb.CatalogException):
        return SchemaMissingError(
            f"{path} lacks what {doing} needs ({first}); run `options-helper db migrate`, or point "
            "--duckdb-path at a ledger file"
        )
    if isinstance(e, duckdb.IOException | duckdb.TransactionException | duckdb.FatalException):
        return storage_error(path, first, doing=doing)
    if isinstance(e, duckdb.OutOfMemoryException):
        return LedgerMemoryError(f"DuckDB ran out of memory during {doing} on {path} ({first}); nothing was written. "
                           "Close other programs or raise DuckDB's memory_limit, then rerun")
    return None


def storage_error(path: str, first: str, *, doing: str) -> StorageError:
    """Why a write to ``path`` failed, asked of the file system: no space, no permission, or else."""
    failed = probe_write(Path(path).parent)
    tail = f"nothing of this {doing} was written ({first})"
    if failed == errno.EROFS or _read_only_fs(Path(path).parent):
        return DatabasePermissionError(f"{path} is on a read-only file system: {tail}. Remount it read-write")
    if failed in _NO_SPACE:
        return DiskFullError(f"no space left on the device of {path}: {tail}. Free disk space, then rerun")
    if failed in _NO_PERMISSION:
        return DatabasePermissionError(
            f"cannot write {path} (a read-only file system, or no permission on its folder): {tail}. "
            "Fix the permissions or mount, then rerun"
        )
    if Path(path).exists() and not os.access(path, os.W_OK):
        return DatabasePermissionError(f"no permission to write {path}: {tail}. Fix its permissions, then rerun")
    return CommitFailedError(f"could not commit to {path}: {tail}. Check the disk and the file, then rerun")


def probe_write(folder: Path) -> int | None:
    """Try to write ``_PROBE_BYTES`` in ``folder``: None if the file system lets us, else its errno."""
    try:
        fd, name = tempfile.mkstemp(prefix=".options-helper-probe-", dir=folder)
    except OSError as e:
        return e.errno
    try:
        try:
            os.posix_fallocate(fd, 0, _PROBE_BYTES)
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                return e.errno
            os.write(fd, b"\0" * _PROBE_BYTES)  # a file system without fallocate
        return None
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)
        with suppress(OSError):
            os.unlink(name)


def open_error(path: str, read_only: bool, e: duckdb.Error) -> LedgerError:
    """Why DuckDB could not open ``path`` (not for a lock: see ``connection.is_lock_error``).
    The file system is asked first (a new file that could not be written is not a corrupt one)."""
    first = _first_line(e)
    p = Path(path)
    if p.is_dir():
        return DatabaseIsADirectoryError(f"{path} is a directory; point --duckdb-path at a database file inside it")
    if p.exists() and not os.access(p, os.R_OK):
        return DatabasePermissionError(f"no permission to read {path}; fix its permissions ({first})")
    if not read_only:
        if not p.parent.is_dir():
            return StorageError(f"cannot create {path}: the folder {p.parent} does not exist ({first})")
        if _read_only_fs(p.parent):
            return DatabasePermissionError(
                f"{path} is on a read-only file system: it can be read, not written ({first}); remount it "
                "read-write, or copy the file elsewhere to write to it"
            )
        if p.exists() and not os.access(p, os.W_OK):
            return DatabasePermissionError(f"no permission to write {path}; fix its permissions ({first})")
        failed = probe_write(p.parent)
        if failed in _NO_SPACE:
            return DiskFullError(f"no space left to open {path} for writing ({first}); free disk space, then rerun")
        if failed in _NO_PERMISSION:
            return DatabasePermissionError(
                f"cannot write in {p.parent} (no permission on the folder), which opening {path} for writing "
                f"needs ({first}); fix the folder's permissions"
            )
    if p.exists() and not _has_duckdb_header(p):
        return CorruptDatabaseError(
            f"{path} is not a DuckDB database ({first}); point --duckdb-path at a ledger file, or move this "
            "file away"
        )
    if isinstance(e, duckdb.SerializationException | duckdb.InternalException):
        return CorruptDatabaseError(
            f"{path} is damaged: DuckDB cannot read it ({first}); restore it from a backup, or move it away "
            "and start again with `options-helper db init`"
        )
    return StorageError(f"cannot open {path}: {first}")


def _read_only_fs(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _has_duckdb_header(p: Path) -> bool:
    try:
        with p.open("rb") as f:
            head = f.read(_MAGIC_AT + len(_MAGIC))
    except OSError:
        return True  # unreadable here: let the other checks say why
    return head[_MAGIC_AT:] == _MAGIC


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


__all__ = ["open_error", "probe_write", "rollback", "storage_error", "transaction", "translate"]
