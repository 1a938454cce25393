"""The Data page's SQL box: one SELECT only, read-only, limited, timed out; no file access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from frontends.portal import sql_guard
from frontends.portal.sql_guard import RefusedQuery

REFUSED = [
    "INSERT INTO meta.events SELECT * FROM meta.events",
    "UPDATE meta.ingestion_runs SET status = 'success'",
    "DELETE FROM meta.events",
    "DROP TABLE meta.events",
    "CREATE TABLE x AS SELECT 1",
    "ATTACH 'other.duckdb' AS o",
    "COPY meta.events TO '/tmp/events.csv'",
    "PRAGMA database_list",
    "SET threads = 1",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CALL pragma_version()",
    "SELECT 1; SELECT 2",
    "SELECT 1; DROP TABLE meta.events",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT content FROM read_text('/etc/passwd')",
    "SELECT read_text('/etc/passwd')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM \"/etc/passwd.csv\"",
    "SELECT * FROM read_parquet('/etc/x.parquet')",
    "SELECT * FROM read_parquet('data/../../etc/x.parquet')",
    "SELECT * FROM read_json('https://example.com/x.json')",
    "SELECT * FROM query('SELECT 1')",
    "SELECT getenv('HOME')",
    "WITH t AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM t",
    "SELECT * FROM meta.events WHERE seq IN (SELECT * FROM glob('*'))",
    "DESCRIBE meta.events",
    "SHOW TABLES",
    "",
    "SELEC 1",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_refused(sql: str, tmp_path: Path) -> None:
    with pytest.raises(RefusedQuery):
        sql_guard.check(sql, data_root=tmp_path)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM meta.events",
    "select job_name, count(*) from meta.ingestion_runs group by all",
    "WITH r AS (SELECT * FROM meta.ingestion_runs) SELECT status, count(*) FROM r GROUP BY 1",
    "SELECT 1 UNION ALL SELECT 2",
    "FROM meta.asset_checks WHERE status = 'fail'",
    "SELECT * FROM range(5)",
    "SELECT * FROM duckdb_tables()",
    "SELECT 1;",
])
def test_accepted(sql: str, tmp_path: Path) -> None:
    sql_guard.check(sql, data_root=tmp_path)


def test_runs_read_only_with_a_row_limit(seeded: dict[str, Any]) -> None:
    r = sql_guard.run(seeded["path"], "SELECT seq FROM meta.events ORDER BY seq", limit=10)
    assert len(r.frame) == 10 and r.truncated and list(r.frame["seq"]) == list(range(1, 11))
    r = sql_guard.run(seeded["path"], "SELECT count(*) AS n FROM meta.events")
    assert not r.truncated and int(r.frame["n"].iloc[0]) == seeded["last_seq"]


def test_a_slow_query_is_stopped(seeded: dict[str, Any]) -> None:
    with pytest.raises(TimeoutError):
        sql_guard.run(seeded["path"], "SELECT count(*) FROM range(100000000000) a", timeout_seconds=0.3)


def test_parquet_under_the_data_root_is_allowed(seeded: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "lake").mkdir(parents=True)
    target = root / "lake" / "x.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 42 AS answer) TO '{target}'")
    con.close()
    r = sql_guard.run(seeded["path"], f"SELECT * FROM read_parquet('{target}')", data_root=root)
    assert int(r.frame["answer"].iloc[0]) == 42
    with pytest.raises(RefusedQuery):
        sql_guard.run(seeded["path"], f"SELECT * FROM read_parquet('{target}')", data_root=tmp_path / "elsewhere")


def test_the_engine_refuses_files_even_past_the_parser(seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: with the parser check disabled, DuckDB still refuses the file read."""
    import sqlglot

    monkeypatch.setattr(sql_guard, "check", lambda sql, data_root=None: sqlglot.parse_one(sql, read="duckdb"))
    with pytest.raises(duckdb.Error):
        sql_guard.run(seeded["path"], "SELECT * FROM read_text('/etc/passwd')")
    with pytest.raises(duckdb.Error):
        sql_guard.run(seeded["path"], "SELECT * FROM read_csv('/etc/passwd')")


def test_messages() -> None:
    assert sql_guard.explain_refusal(RefusedQuery("x")) == "Refused: x"
    assert sql_guard.explain_refusal(TimeoutError("t")).startswith("Stopped")
    assert sql_guard.explain_refusal(ValueError("boom\nmore")) == "Query failed: boom"


def test_the_console_sandbox_stays_in_its_own_database_instance(seeded: dict[str, Any]) -> None:
    """Switching external access off is instance-wide and final: the console must not do it to the
    process's shared connection host, or every later read of the ledger would fail."""
    from frontends.portal import db

    sql_guard.run(seeded["path"], "SELECT count(*) FROM meta.events")
    with db.read_only(seeded["path"]) as con:
        assert con.execute("SELECT current_setting('enable_external_access')").fetchone() == (True,)
        assert con.execute("SELECT last_seq FROM meta.ledger_checkpoint").fetchone() == (seeded["last_seq"],)
