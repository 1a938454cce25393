"""How the portal reaches the ledger: read-only connections opened per query and closed at once.

Nothing here caches a connection. A writer (``options-helper daily``) may take the file between two
queries; a reader that finds it locked retries with backoff (``ledger.connection.connect``).

``ledger.open()`` is not used: constructing its store opens the file read-write to migrate it,
which a read-only portal must never do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import duckdb

from ledger import migrate, projections
from ledger.connection import attach_read_only, connect

# How long a page waits for a writer to release the file before it says so.
LOCK_TIMEOUT_SECONDS = 15.0
_META_TABLES = ("events", "ingestion_runs", "ingestion_run_assets", "asset_watermarks", "asset_checks",
                "partition_status", "ledger_checkpoint")


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


@contextmanager
def read_only(
    path: str | Path, *, timeout_seconds: float = LOCK_TIMEOUT_SECONDS, isolated: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One read-only connection for one query; closed when the block ends. ``isolated``: in a
    DuckDB instance of its own, for a session that changes instance-wide settings."""
    with connect(path, read_only=True, timeout_seconds=timeout_seconds, isolated=isolated) as con:
        yield con


def state(path: str | Path) -> DbState:
    """Does the path hold a ledger with events? Never raises for a missing, empty or foreign file."""
    target = str(path)
    p = Path(target)
    if not p.exists():
        return DbState(path=target, exists=False, ready=False, commands=BOOTSTRAP_COMMANDS,
                       guidance=f"No database at {target}. Create one and run the pipeline:")
    if p.is_dir():
        return DbState(path=target, exists=True, ready=False,
                       guidance=f"{target} is a directory; point --duckdb-path at a ledger file.")
    try:
        with read_only(target) as con:
            tables = {r[0] for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'meta'").fetchall()}
            missing = [t for t in _META_TABLES if t not in tables]
            if missing:
                return DbState(path=target, exists=True, ready=False, commands=BOOTSTRAP_COMMANDS,
                               guidance=f"{target} has no ledger tables yet (missing meta.{missing[0]}). "
                               "Initialise it and run the pipeline:")
            row = con.execute("SELECT last_seq FROM meta.ledger_checkpoint WHERE name = 'log'").fetchone()
            version = migrate.schema_version(con)
    except Exception as e:  # a foreign or damaged file, or a lock held too long: say so, never a traceback
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return DbState(path=target, exists=True, ready=False,
                       guidance=f"Cannot read {target}: {first}")
    last_seq = int(row[0]) if row else 0
    if last_seq == 0:
        return DbState(path=target, exists=True, ready=False, schema_version=version, commands=BOOTSTRAP_COMMANDS[1:],
                       guidance=f"The ledger at {target} is empty: no run has been recorded yet. Run the pipeline:")
    return DbState(path=target, exists=True, ready=True, last_seq=last_seq, schema_version=version)


def last_seq(path: str | Path) -> int:
    """The ledger's head; the cache key of every page query (0 when unreadable)."""
    try:
        with read_only(path) as con:
            row = con.execute("SELECT last_seq FROM meta.ledger_checkpoint WHERE name = 'log'").fetchone()
    except Exception:
        return 0
    return int(row[0]) if row else 0


def seq_at(path: str | Path, when: dt.datetime) -> int:
    """The last seq recorded at or before ``when``."""
    with read_only(path) as con:
        row = con.execute("SELECT max(seq) FROM meta.events WHERE recorded_at <= ?", [when]).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@contextmanager
def as_of(path: str | Path, seq: int | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Projections as the ledger stood at ``seq`` (``None``: the live, read-only file).

    The time-travel fold runs in an in-memory database; the file is attached read-only only while
    its events are folded, then detached, so a writer is held up for the fold and no longer.
    """
    if seq is None:
        with read_only(path) as con:
            yield con
        return
    with connect(":memory:", read_only=False) as mem:
        migrate.migrate(mem)
        attach_read_only(mem, path, "src", timeout_seconds=LOCK_TIMEOUT_SECONDS)
        try:
            projections.fold(mem, f"(SELECT * FROM src.meta.events WHERE seq <= {int(seq)})")
            mem.execute("INSERT INTO meta.ledger_checkpoint SELECT name, least(last_seq, ?), last_hash, updated_at "
                        "FROM src.meta.ledger_checkpoint", [int(seq)])
        finally:
            mem.execute("DETACH src")
        yield mem


__all__ = ["BOOTSTRAP_COMMANDS", "LOCK_TIMEOUT_SECONDS", "DbState", "as_of", "last_seq", "read_only", "seq_at", "state"]
