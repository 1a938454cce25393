"""What an append must know of the log before it writes, read in one statement or kept between
appends while a store holds its connection.

An append needs the log's head (seq and hash, to chain the batch), the stored rows of the runs the
batch continues (to validate it and merge their projection rows) and, to reap, the runs whose lease
expired. ``read_state`` reads all three in one statement.

Inside ``DuckDBEventStore.session()`` no other process can write the file, so ``SessionCache`` keeps
the head and every open (``started``) run between appends, written through by each append: an
append in a session reads nothing. The cache is only trusted on the connection it was read on, and
each append proves it first: its first write updates the checkpoint row only if the stored head is
still the cached (seq, hash); the hash chain makes that pair name one exact log, of which the open
runs are a function. Any other outcome (another handle of this process appended on the same
database, a commit failed, a run the cache does not hold) drops the cache before anything is
written, and the append reads the state instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import duckdb

from ledger.events import _utf8
from ledger.store import GENESIS_HASH


class StaleCache(Exception):
    """The cached state cannot serve this append: read the state instead."""


def sql_str(value: str | None) -> str:
    """``value`` as a DuckDB string literal (or NULL). Quotes are doubled (DuckDB's standard strings
    take backslashes literally); NUL, which would end the statement's text early, is spliced in with
    ``chr(0)``; lone surrogates are refused as ``to_row`` refuses them."""
    if value is None:
        return "NULL"
    text = _utf8(str(value)).replace("'", "''")
    if "\x00" in text:
        return "(" + " || chr(0) || ".join(f"'{part}'" for part in text.split("\x00")) + ")"
    return f"'{text}'"


def sql_list(values: Iterable[str]) -> str:
    return ", ".join(sql_str(v) for v in values)


def read_state(
    con: duckdb.DuckDBPyConnection, run_ids: Iterable[str], *, open_runs: str | None, now: dt.datetime
) -> tuple[int, str, dict[str, dict[str, Any]]]:
    """(head seq, head hash, run rows by id) in one statement: the rows of ``run_ids``, and of the
    open runs: all of them (``open_runs="all"``), those whose lease expired before ``now``
    (``"expired"``) or none (``None``)."""
    from ledger.duckdb_store import normalise_rows
    from ledger.incremental import timestamp_literal

    where = []
    ids = sql_list(sorted(set(run_ids)))
    if ids:
        where.append(f"run_id IN ({ids})")
    if open_runs == "all":
        where.append("status = 'started'")
    elif open_runs == "expired":
        where.append(f"(status = 'started' AND lease_expires_at < {timestamp_literal(now)})")
    runs = f"SELECT * FROM meta.ingestion_runs WHERE {' OR '.join(where)}" if where else \
        "SELECT * FROM meta.ingestion_runs WHERE false"
    rows = normalise_rows(con.execute(
        "SELECT c.last_seq AS _ledger_head, c.last_hash AS _ledger_hash, r.* FROM (SELECT 1) AS one "
        "LEFT JOIN meta.ledger_checkpoint c ON c.name = 'log' "
        f"LEFT JOIN ({runs}) r ON true"
    ))
    head, head_hash = rows[0]["_ledger_head"], rows[0]["_ledger_hash"]
    if head is None:
        head, head_hash = 0, GENESIS_HASH
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        del row["_ledger_head"], row["_ledger_hash"]
        if row["run_id"] is not None:
            found[row["run_id"]] = row
    return int(head), str(head_hash), found


class SessionCache:
    """The log's head and its open runs, kept while one connection is held (see the module doc)."""

    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.head = 0
        self.head_hash = GENESIS_HASH
        self.open_runs: dict[str, dict[str, Any]] = {}

    def valid_for(self, con: duckdb.DuckDBPyConnection) -> bool:
        # The reference to the connection also keeps its id from being reused by a later one.
        return self.con is not None and self.con is con and self.head > 0

    def drop(self) -> None:
        self.con = None
        self.open_runs = {}

    def fill(self, con: duckdb.DuckDBPyConnection, head: int, head_hash: str,
             open_runs: dict[str, dict[str, Any]]) -> None:
        self.con, self.head, self.head_hash, self.open_runs = con, head, head_hash, open_runs

    def advance(self, head: int, head_hash: str, runs: dict[str, dict[str, Any]]) -> None:
        """Write an append through (before its COMMIT: a failed commit is caught by the next guard)."""
        self.head, self.head_hash = head, head_hash
        for run_id, row in runs.items():
            if row["status_rank"] == 0:
                self.open_runs[run_id] = row
            else:
                self.open_runs.pop(run_id, None)


def check_head(con: duckdb.DuckDBPyConnection, head: int, head_hash: str) -> None:
    """Raise ``StaleCache`` unless the stored head is (``head``, ``head_hash``)."""
    row = con.execute(
        f"SELECT count(*) FROM meta.ledger_checkpoint WHERE name = 'log' AND last_seq = {int(head)} "
        f"AND last_hash = {sql_str(head_hash)}"
    ).fetchone()
    if not row or row[0] != 1:
        raise StaleCache


def write_checkpoint(
    con: duckdb.DuckDBPyConnection, old: tuple[int, str], new: tuple[int, str], now: dt.datetime
) -> bool:
    """Move the checkpoint row from the head ``old`` to ``new`` (an INSERT for an empty log); False,
    with nothing written, if the stored head is not ``old``. Literal SQL: binding parameters costs
    more than the statement here."""
    from ledger.incremental import timestamp_literal

    (old_seq, old_hash), (seq, new_hash) = old, new
    if old_seq == 0:
        con.execute(f"INSERT INTO meta.ledger_checkpoint VALUES ('log', {int(seq)}, {sql_str(new_hash)}, "
                    f"{timestamp_literal(now)})")
        return True
    updated = con.execute(
        f"UPDATE meta.ledger_checkpoint SET last_seq = {int(seq)}, last_hash = {sql_str(new_hash)}, "
        f"updated_at = {timestamp_literal(now)} "
        f"WHERE name = 'log' AND last_seq = {int(old_seq)} AND last_hash = {sql_str(old_hash)}"
    ).fetchone()
    return bool(updated and updated[0] == 1)


__all__ = ["SessionCache", "StaleCache", "check_head", "read_state", "sql_list", "sql_str", "write_checkpoint"]
