"""How the portal reaches the ledger: a read-only ``Ledger``, opened for each page query.

A read-only ``Ledger`` never creates or migrates the file and opens it read-only
for the length of each query only, so a writer (``options-helper daily``) may take it between two
queries; a reader that finds it locked retries with backoff within the configured lock timeout.

The only connection the portal opens itself is the SQL console's (``read_only(..., isolated=True)``,
used by ``sql_guard``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import duckdb

    from ledger import Ledger
    from ledger.config import Settings


@attrs.frozen(kw_only=True)
class DbState:
    """What the portal can show for a database path: ``ready``, or guidance for a person."""

    path: str
    exists: bool
    ready: bool
    last_seq: int = 0
    schema_version: int = 0
    guidance: str | None = None
    commands: tuple[str, ...] = ()


BOOTSTRAP_COMMANDS = (
    "options-helper db init",
    "options-helper daily            # the whole pipeline on the synthetic provider",
    "options-helper health",
)


def settings_for(path: str | Path) -> Settings:
    """The portal's settings (flags reach it as environment variables) for the ledger at ``path``."""
    from ledger.config import load_settings

    return attrs.evolve(load_settings(), duckdb_path=Path(path))


def ledger_at(path: str | Path) -> Ledger:
    """The ledger at ``path``, read-only, with the configured lock timeout. A Ledger holds no
    connection, so one is kept per file (by its identity: a file replaced at the same path, or
    created there since, is opened and checked again)."""
    try:
        st = Path(path).stat()
    except OSError:
        return _open(str(path), None)  # raises DatabaseNotFoundError
    return _open(str(path), (st.st_dev, st.st_ino))


@functools.lru_cache(maxsize=16)
def _open(path: str, file_id: tuple[int, int] | None) -> Ledger:
    from ledger import Ledger

    del file_id  # part of the cache key only
    return Ledger.from_settings(settings_for(path), read_only=True)


@contextmanager
def read_only(path: str | Path, *, isolated: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The SQL console's connection: read-only, for one statement, closed when the block ends.
    ``isolated``: in a DuckDB instance of its own, for a session that changes instance-wide settings."""
    from ledger.connection import connect

    with connect(path, read_only=True, timeout_seconds=settings_for(path).lock_timeout_seconds,
                 isolated=isolated) as con:
        yield con


def state(path: str | Path) -> DbState:
    """Does the path hold a ledger with events? Never raises for a missing, empty or foreign file."""
    import ledger

    target = str(path)
    p = Path(target)
    if not p.exists():
        return DbState(path=target, exists=False, ready=False, commands=BOOTSTRAP_COMMANDS,
                       guidance=f"No database at {target}. Create one and run the pipeline:")
    if p.is_dir():
        return DbState(path=target, exists=True, ready=False,
                       guidance=f"{target} is a directory; point --duckdb-path at a ledger file.")
    try:
        doc = ledger.status(target, lock_timeout_seconds=settings_for(target).lock_timeout_seconds)
    except Exception as e:  # a foreign or damaged file, or a lock held too long: say so, never a traceback
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return DbState(path=target, exists=True, ready=False, guidance=f"Cannot read {target}: {first}")
    version = doc["schema_version"]
    if version == 0:
        return DbState(path=target, exists=True, ready=False, commands=BOOTSTRAP_COMMANDS,
                       guidance=f"{target} has no ledger tables yet. Initialise it and run the pipeline:")
    if doc["pending"]:
        return DbState(path=target, exists=True, ready=False, schema_version=version,
                       commands=("options-helper db migrate",),
                       guidance=f"The ledger at {target} is at schema version {version}; this portal needs "
                       f"{doc['code_schema_version']}. Apply the migrations (the portal never writes):")
    if doc["last_seq"] == 0:
        return DbState(path=target, exists=True, ready=False, schema_version=version, commands=BOOTSTRAP_COMMANDS[1:],
                       guidance=f"The ledger at {target} is empty: no run has been recorded yet. Run the pipeline:")
    return DbState(path=target, exists=True, ready=True, last_seq=doc["last_seq"], schema_version=version)


def last_seq(path: str | Path) -> int:
    """The ledger's head; the cache key of every page query (0 when unreadable)."""
    try:
        return ledger_at(path).last_seq()
    except Exception:
        return 0


__all__ = ["BOOTSTRAP_COMMANDS", "DbState", "last_seq", "ledger_at", "read_only", "settings_for", "state"]
