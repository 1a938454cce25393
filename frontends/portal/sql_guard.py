"""The Data page's SQL box: one SELECT, checked with sqlglot, run read-only with a row limit and a timeout.

Two layers. sqlglot refuses anything but a single SELECT (or a set operation of SELECTs), any
table function not on a short allow-list, file paths used as tables, and functions that read files
or URLs; ``read_parquet`` is allowed only for literal paths inside the data root. Then DuckDB runs
it on a read-only connection with external access switched off (``allowed_directories`` = the data
root), so a file read that slipped past the parser still fails.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import attrs
import pandas as pd
import sqlglot
from sqlglot import exp

from frontends.portal import db

DEFAULT_ROW_LIMIT = 1000
MAX_ROW_LIMIT = 100_000
DEFAULT_TIMEOUT_SECONDS = 10.0

# Table functions that only compute or describe the database.
ALLOWED_TABLE_FUNCTIONS = frozenset({
    "range", "generate_series", "unnest", "duckdb_tables", "duckdb_columns", "duckdb_views",
    "duckdb_schemas", "duckdb_indexes", "duckdb_constraints", "duckdb_functions", "duckdb_types",
})
# Functions that read files or URLs; read_parquet is checked separately (data root only).
FILE_FUNCTIONS = frozenset({
    "read_csv", "read_csv_auto", "csv_scan", "sniff_csv", "read_text", "read_blob", "glob", "read_json",
    "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson", "read_ndjson_auto",
    "read_ndjson_objects", "json_scan", "parquet_metadata", "parquet_schema", "parquet_file_metadata",
    "parquet_kv_metadata", "read_xlsx", "st_read", "iceberg_scan", "delta_scan", "sqlite_scan",
    "sqlite_attach", "postgres_scan", "postgres_attach", "mysql_scan", "query", "query_table", "getenv",
    "load_aws_credentials", "read_avro", "httpfs", "http_get",
})
PARQUET_FUNCTIONS = frozenset({"read_parquet", "parquet_scan"})


class RefusedQuery(ValueError):
    """The SQL box refused a statement; the message says why and what is allowed."""


@attrs.frozen(kw_only=True)
class QueryResult:
    frame: pd.DataFrame
    truncated: bool
    seconds: float
    sql: str


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return ""


def _glob_prefix(text: str) -> str:
    cut = len(text)
    for ch in "*?[{":
        i = text.find(ch)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _inside(path_text: str, root: Path) -> bool:
    if "://" in path_text:
        return False
    prefix = Path(_glob_prefix(path_text)).expanduser()
    full = Path(os.path.normpath(prefix if prefix.is_absolute() else Path.cwd() / prefix))
    try:
        full = full.resolve()
    except OSError:
        return False
    return full == root or root in full.parents


def _check_parquet(node: exp.Expr, data_root: Path | None) -> None:
    args = [a for a in node.iter_expressions()]
    paths = []
    for a in args[:1]:
        if isinstance(a, exp.Array):
            paths.extend(a.expressions)
        else:
            paths.append(a)
    if data_root is None or not paths:
        raise RefusedQuery("read_parquet is refused here: no data root is configured")
    for p in paths:
        if not (isinstance(p, exp.Literal) and p.is_string):
            raise RefusedQuery("read_parquet takes a literal path under the data root only")
        if not _inside(p.this, data_root):
            raise RefusedQuery(f"read_parquet is allowed only under the data root ({data_root}), not {p.this!r}")


def check(sql: str, *, data_root: str | Path | None = None) -> exp.Query:
    """The parsed SELECT, or ``RefusedQuery`` saying why not."""
    text = (sql or "").strip()
    if not text:
        raise RefusedQuery("type one SELECT statement")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as e:
        raise RefusedQuery(f"cannot parse this as SQL: {str(e).splitlines()[0]}") from None
    if len(statements) != 1:
        raise RefusedQuery(f"one statement at a time, please: found {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.Union | exp.Intersect | exp.Except):
        kind = tree.key.upper() if not isinstance(tree, exp.Command) else str(tree.this).upper()
        raise RefusedQuery(f"only SELECT is allowed here (read-only); refused: {kind}")
    query: exp.Query = tree
    root = Path(data_root).expanduser().resolve() if data_root else None
    for node in tree.walk():
        if isinstance(node, exp.DDL | exp.DML | exp.Command | exp.Set | exp.Pragma | exp.Transaction
                      | exp.Attach | exp.Detach | exp.Copy | exp.Install):
            raise RefusedQuery(f"only SELECT is allowed here; refused: {node.key.upper()}")
        if isinstance(node, exp.Into):
            raise RefusedQuery("SELECT ... INTO is refused: the SQL box is read-only")
        if isinstance(node, exp.Table):
            target = node.this
            if isinstance(target, exp.Literal):
                raise RefusedQuery(f"reading files is refused: FROM {target.sql(dialect='duckdb')}")
            if isinstance(target, exp.Identifier) and any(c in target.name for c in "/\\:."):
                raise RefusedQuery(f"reading files is refused: FROM {target.sql(dialect='duckdb')}")
            if isinstance(target, exp.Func):
                name = _function_name(target)
                if name in PARQUET_FUNCTIONS:
                    _check_parquet(target, root)
                elif name not in ALLOWED_TABLE_FUNCTIONS:
                    raise RefusedQuery(f"the table function {name}() is refused; query tables and views, "
                                       f"or one of: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))}")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name in FILE_FUNCTIONS or name.startswith(("read_", "pragma")):
                if name in PARQUET_FUNCTIONS:
                    continue
                raise RefusedQuery(f"{name}() reads files, URLs or settings and is refused here")
            if name in PARQUET_FUNCTIONS:
                _check_parquet(node, root)
    return query


def run(
    path: str | Path,
    sql: str,
    *,
    data_root: str | Path | None = None,
    limit: int = DEFAULT_ROW_LIMIT,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> QueryResult:
    """Check ``sql`` and run it on a fresh read-only connection; at most ``limit`` rows.

    Raises ``RefusedQuery`` (refused), ``TimeoutError`` (interrupted) or ``duckdb.Error``.
    """
    tree = check(sql, data_root=data_root)
    limit = max(1, min(int(limit), MAX_ROW_LIMIT))
    wrapped = exp.select("*").from_(tree.subquery("q", copy=True)).limit(limit + 1)
    final = wrapped.sql(dialect="duckdb")
    root = Path(data_root).expanduser().resolve() if data_root else None
    started = time.monotonic()
    # Its own DuckDB instance: switching external access off is instance-wide and cannot be undone.
    with db.read_only(path, isolated=True) as con:
        if root is not None:
            con.execute("SET allowed_directories = ?", [[str(root) + os.sep]])
        con.execute("SET enable_external_access = false")
        timed_out = threading.Event()

        def interrupt() -> None:
            timed_out.set()
            con.interrupt()

        timer = threading.Timer(timeout_seconds, interrupt)
        timer.start()
        try:
            frame = con.execute(final).df()
        except Exception as e:
            if timed_out.is_set():
                raise TimeoutError(f"the query ran longer than {timeout_seconds:g} s and was stopped") from None
            raise e
        finally:
            timer.cancel()
    truncated = len(frame) > limit
    if truncated:
        frame = frame.iloc[:limit]
    from frontends.portal.queries import _jsonable

    return QueryResult(frame=_jsonable(frame), truncated=truncated, seconds=time.monotonic() - started, sql=final)


def explain_refusal(exc: BaseException) -> str:
    """A one-line message for the page."""
    if isinstance(exc, RefusedQuery):
        return f"Refused: {exc}"
    if isinstance(exc, TimeoutError):
        return f"Stopped: {exc}"
    text: Any = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"Query failed: {text}"


__all__ = ["DEFAULT_ROW_LIMIT", "DEFAULT_TIMEOUT_SECONDS", "QueryResult", "RefusedQuery", "check", "explain_refusal", "run"]
