"""Schema migrations: ``NNNN_name.sql`` files applied in order, each in one transaction together
with its row in ``meta.schema_migrations`` (version, name, sha256, applied_at).

An applied migration whose file changed, or a database newer than the code, is refused.
The files ship inside the wheel (``ledger/_migrations``) and live in ``migrations/`` in a checkout.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import attrs
import duckdb

from ledger.errors import MigrationError
from ledger.transaction import transaction

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    sha256     VARCHAR NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp
);
"""


@attrs.frozen(kw_only=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str
    sha256: str


def migrations_dir() -> Path:
    packaged = Path(__file__).with_name("_migrations")
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / "migrations"
    if checkout.is_dir():
        return checkout
    raise MigrationError("the migrations folder is missing from this installation; reinstall options-helper")


def load_migrations(folder: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((folder or migrations_dir()).glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name} is not named NNNN_name.sql")
        sql = path.read_text(encoding="utf-8")
        found.append(Migration(version=int(m.group(1)), name=m.group(2), path=path, sql=sql,
                               sha256=hashlib.sha256(sql.encode()).hexdigest()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration versions must be 1..N without gaps, found {versions}")
    return found


def code_schema_version() -> int:
    return len(load_migrations())


def applied(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str, str]]:
    # duckdb_tables() of this connection's database: half the cost of information_schema (every
    # command checks), and blind to other files the process has attached
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'meta' AND table_name = 'schema_migrations'"
    ).fetchone()
    if not exists or not exists[0]:
        return {}
    return {v: (n, s) for v, n, s in con.execute("SELECT version, name, sha256 FROM meta.schema_migrations").fetchall()}


def check(con: duckdb.DuckDBPyConnection, known: list[Migration] | None = None) -> list[Migration]:
    """The migrations still to apply; raises if the database disagrees with the code."""
    known = load_migrations() if known is None else known
    done = applied(con)
    by_version = {m.version: m for m in known}
    newer = sorted(v for v in done if v not in by_version)
    if newer:
        raise MigrationError(
            f"the database schema is at version {max(done)}, newer than this options-helper knows "
            f"({len(known)}); upgrade options-helper before using this database"
        )
    for version, (name, sha) in sorted(done.items()):
        if by_version[version].sha256 != sha:
            raise MigrationError(
                f"migration {version:04d}_{name} was changed after it was applied (checksum mismatch); "
                "restore the original file: migrations are append-only, add a new one instead"
            )
    return [m for m in known if m.version not in done]


def migrate(con: duckdb.DuckDBPyConnection, *, path: str | None = None) -> list[Migration]:
    """Apply every pending migration, each in its own transaction (``ledger.transaction``: a full
    disk or a read-only file is a ``StorageError``, a failing migration a ``MigrationError``).
    ``path`` names the file in messages. Returns what was applied."""
    con.execute(BOOTSTRAP)
    pending = check(con)
    for m in pending:
        try:
            with transaction(con, path or _database_of(con), doing=f"migration {m.path.name}"):
                con.execute(m.sql)
                con.execute(
                    "INSERT INTO meta.schema_migrations (version, name, sha256) VALUES (?, ?, ?)",
                    [m.version, m.name, m.sha256],
                )
        except duckdb.Error as e:
            # Not a file-system failure (those are StorageError): the migration's SQL itself failed.
            raise MigrationError(f"migration {m.path.name} failed: {str(e).splitlines()[0]}; nothing of it was "
                                 "applied. Restore the file as released, or report this") from e
    return pending


def _database_of(con: duckdb.DuckDBPyConnection) -> str:
    """The file behind ``con``'s default catalog, for messages (``:memory:`` for none)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else ":memory:"


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    done = applied(con)
    return max(done) if done else 0


__all__ = ["Migration", "applied", "check", "code_schema_version", "load_migrations", "migrate", "migrations_dir", "schema_version"]
