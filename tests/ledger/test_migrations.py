"""Migrations: linted with sqlglot, the resulting schema pinned by a golden file, and the runner's
refusals (changed checksum, database newer than the code, failed migration rolled back).

Regenerate the golden file after adding a migration:

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/ledger/test_migrations.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from ledger import migrate
from ledger.errors import MigrationError

GOLDEN = Path(__file__).with_name("golden") / "schema.txt"
PROTECTED = ("meta", "events")  # the log: nothing may drop, delete, update or truncate it


# -- lint -------------------------------------------------------------------------------------
def lint(sql: str) -> list[str]:
    """Problems sqlglot finds in one migration's text (DuckDB executes the original text)."""
    problems = []
    try:
        statements = sqlglot.parse(sql, read="duckdb")
    except sqlglot.errors.ParseError as e:
        return [f"sqlglot cannot parse it: {e}"]
    for statement in statements:
        if statement is None:
            continue
        if isinstance(statement, exp.Command):  # sqlglot's fallback for text it could not model
            problems.append(f"sqlglot cannot model: {statement.sql(dialect='duckdb')[:80]}")
            continue
        destructive = isinstance(statement, exp.Drop | exp.Delete | exp.Update | exp.TruncateTable) or (
            isinstance(statement, exp.Alter) and any(isinstance(a, exp.Drop) for a in statement.args.get("actions") or [])
        )
        if destructive and any(_is_protected(t) for t in statement.find_all(exp.Table)):
            problems.append(f"touches meta.events: {statement.sql(dialect='duckdb')[:80]}")
    return problems


def _is_protected(table: exp.Table) -> bool:
    return (table.db or "").lower() == PROTECTED[0] and table.name.lower() == PROTECTED[1]


@pytest.mark.parametrize("migration", migrate.load_migrations(), ids=lambda m: m.path.name)
def test_every_migration_parses_and_never_rewrites_the_log(migration: migrate.Migration) -> None:
    assert lint(migration.sql) == []


@pytest.mark.parametrize("sql", [
    "DELETE FROM meta.events WHERE seq > 10",
    "UPDATE meta.events SET payload = '{}'",
    "DROP TABLE meta.events",
    "TRUNCATE meta.events",
    "ALTER TABLE meta.events DROP COLUMN hash",
])
def test_the_lint_rejects_statements_that_rewrite_the_log(sql: str) -> None:
    assert any("meta.events" in p for p in lint(sql))


def test_the_lint_allows_rewriting_projections() -> None:
    assert lint("DELETE FROM meta.partition_status; ALTER TABLE meta.events ADD COLUMN note VARCHAR;") == []


# -- golden schema ----------------------------------------------------------------------------
def schema_text(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute(
        "SELECT table_schema, table_name, ordinal_position, column_name, data_type, is_nullable "
        "FROM information_schema.columns ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall()
    lines = [f"{s}.{t} {pos:>3} {col} {typ}{'' if nullable == 'YES' else ' NOT NULL'}"
             for s, t, pos, col, typ, nullable in rows]
    return "\n".join(lines) + "\n"


def test_schema_matches_the_golden_file() -> None:
    con = duckdb.connect(":memory:")
    migrate.migrate(con)
    actual = schema_text(con)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(actual)
    assert GOLDEN.exists(), "no golden file: run UPDATE_GOLDEN=1 pytest tests/ledger/test_migrations.py"
    assert actual == GOLDEN.read_text(), (
        "the migrated schema changed; if that is intended (a new migration), regenerate with "
        "UPDATE_GOLDEN=1 pytest tests/ledger/test_migrations.py and review the diff"
    )


def test_the_seed_tables_keep_the_original_columns_first() -> None:
    con = duckdb.connect(":memory:")
    migrate.migrate(con)
    original = {
        "ingestion_runs": ["run_id", "parent_run_id", "job_name", "triggered_by", "status", "started_at",
                           "ended_at", "duration_ms", "provider", "storage_backend", "args_json", "git_sha",
                           "app_version", "error_type", "error_message", "error_stack_hash"],
        "ingestion_run_assets": ["run_id", "asset_key", "asset_kind", "partition_key", "status", "rows_inserted",
                                 "rows_updated", "rows_deleted", "bytes_written", "min_event_ts", "max_event_ts",
                                 "extra_json", "started_at", "ended_at", "duration_ms"],
        "asset_watermarks": ["asset_key", "scope_key", "watermark_ts", "updated_at", "last_run_id"],
        "asset_checks": ["check_id", "asset_key", "partition_key", "check_name", "severity", "status",
                         "checked_at", "metrics_json", "message", "run_id"],
    }
    for table, columns in original.items():
        got = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'meta' AND table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall()]
        assert got[: len(columns)] == columns, table


# -- the runner's refusals --------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the shipped migrations, used by ``migrate`` for this test."""
    target = tmp_path / "migrations"
    target.mkdir()
    for m in migrate.load_migrations():
        shutil.copy(m.path, target / m.path.name)
    monkeypatch.setattr(migrate, "migrations_dir", lambda: target)
    return target


def _next_name(folder: Path, name: str) -> Path:
    return folder / f"{len(list(folder.glob('*.sql'))) + 1:04d}_{name}.sql"


def test_migrating_twice_applies_nothing_the_second_time(folder: Path) -> None:
    con = duckdb.connect(":memory:")
    assert len(migrate.migrate(con)) == len(list(folder.glob("*.sql")))
    assert migrate.migrate(con) == []


def test_a_changed_checksum_of_an_applied_migration_is_refused(folder: Path) -> None:
    con = duckdb.connect(":memory:")
    migrate.migrate(con)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match="checksum"):
        migrate.migrate(con)


def test_a_database_newer_than_the_code_is_refused(folder: Path, tmp_path: Path) -> None:
    con = duckdb.connect(":memory:")
    extra = _next_name(folder, "future_table")
    extra.write_text("CREATE TABLE meta.future (x INTEGER);\n")
    migrate.migrate(con)
    extra.unlink()  # the code goes back to an older release
    with pytest.raises(MigrationError, match="newer"):
        migrate.migrate(con)


def test_a_failing_migration_rolls_back_entirely(folder: Path) -> None:
    con = duckdb.connect(":memory:")
    migrate.migrate(con)
    applied = migrate.schema_version(con)
    bad = _next_name(folder, "half_done")
    bad.write_text("CREATE TABLE meta.half (x INTEGER);\nINSERT INTO meta.no_such_table VALUES (1);\n")
    with pytest.raises(MigrationError, match="half_done"):
        migrate.migrate(con)
    assert migrate.schema_version(con) == applied
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'half'").fetchone()[0] == 0


def test_a_new_additive_migration_applies_to_an_existing_database(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate.migrate(con)
    con.execute("INSERT INTO meta.ledger_checkpoint VALUES ('log', 0, 'x', now())")
    _next_name(folder, "add_note").write_text("ALTER TABLE meta.ledger_checkpoint ADD COLUMN note VARCHAR;\n")
    assert [m.name for m in migrate.migrate(con)] == ["add_note"]
    assert con.execute("SELECT last_hash, note FROM meta.ledger_checkpoint").fetchone() == ("x", None)


def test_migration_files_must_be_numbered_without_gaps(folder: Path) -> None:
    (folder / "0009_skipped_ahead.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="without gaps"):
        migrate.load_migrations(folder)
