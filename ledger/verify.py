"""Integrity: recompute the hash chain, and rebuild the projections aside and compare.

An edited, deleted or inserted event breaks the chain at (or right after) its seq; a drifted
projection differs from its rebuild. Either is reported with the first bad seq or key.
"""

from __future__ import annotations

from typing import Any

import attrs
import duckdb

from ledger import migrate, projections
from ledger.connection import attach_read_only, connect
from ledger.duckdb_store import stored_row_of
from ledger.store import GENESIS_HASH, event_hash


@attrs.frozen(kw_only=True)
class VerifyReport:
    ok: bool
    events_checked: int
    last_seq: int
    first_bad_seq: int | None = None
    problems: tuple[str, ...] = ()
    projections_checked: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def check_chain(con: duckdb.DuckDBPyConnection, batch_rows: int = 50_000) -> tuple[int, int, int | None, list[str]]:
    """(events checked, last seq, first bad seq, problems) over ``meta.events`` in seq order."""
    problems: list[str] = []
    prev = GENESIS_HASH
    expected = 1
    first_bad: int | None = None
    checked = 0
    cur = con.execute(
        "SELECT seq, event_id, event_type, schema_version, recorded_at, run_id, asset_key, partition_key, "
        "scope_key, CAST(payload AS VARCHAR), prev_hash, hash FROM meta.events ORDER BY seq"
    )
    while True:
        rows = cur.fetchmany(batch_rows)
        if not rows:
            break
        for r in rows:
            seq, prev_hash, stored_hash = int(r[0]), r[10], r[11]
            checked += 1
            if first_bad is None:
                if seq != expected:
                    first_bad = min(seq, expected)
                    problems.append(f"seq {expected} is missing (next stored seq is {seq}): an event was deleted")
                elif prev_hash != prev:
                    first_bad = seq
                    problems.append(f"seq {seq}: prev_hash does not link to seq {seq - 1}: an event was removed or inserted")
                elif event_hash(prev, seq, r[4], stored_row_of(r)) != stored_hash:
                    first_bad = seq
                    problems.append(f"seq {seq}: hash mismatch: the event was edited after it was committed")
            prev = stored_hash
            expected = seq + 1
    head = con.execute("SELECT last_seq, last_hash FROM meta.ledger_checkpoint WHERE name = 'log'").fetchone()
    last = expected - 1
    if head is not None and (int(head[0]) != last or head[1] != prev):
        problems.append(f"the checkpoint says the log ends at seq {head[0]}, the log ends at {last}")
        if first_bad is None:
            first_bad = min(int(head[0]), last) + 1
    return checked, last, first_bad, problems


def compare_projections(mem: duckdb.DuckDBPyConnection, stored: str) -> list[str]:
    """Differences between the rebuilt ``meta`` projections and those in schema ``stored``."""
    problems = []
    for table in projections.PROJECTION_TABLES:
        keys = ", ".join(projections.PROJECTION_KEYS[table])
        # JSON columns are compared as values (re-serialised by DuckDB on both sides), not as text.
        columns = ", ".join(
            f"json({name}) AS {name}" if dtype == "JSON" else name
            for name, dtype in mem.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_catalog = current_database() "
                "AND table_schema = 'meta' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        )
        for a, b, what in (("meta", stored, "absent from the stored projection"),
                           (stored, "meta", "in the stored projection but not in a rebuild")):
            row = mem.execute(
                f"SELECT {keys} FROM (SELECT {columns} FROM {a}.{table} EXCEPT ALL SELECT {columns} FROM {b}.{table}) "
                f"ORDER BY {keys} LIMIT 1"
            ).fetchone()
            if row is not None:
                problems.append(f"{table}: projection drifted at key {tuple(row)} ({what})")
                break
    return problems


def verify_file(path: str, *, timeout_seconds: float = 60.0) -> VerifyReport:
    with connect(path, read_only=True, timeout_seconds=timeout_seconds) as con:
        checked, last, first_bad, problems = check_chain(con)
    with connect(":memory:", read_only=False) as mem:
        migrate.migrate(mem)
        attach_read_only(mem, path, "src", timeout_seconds=timeout_seconds)
        try:
            projections.fold(mem, "src.meta.events")
            drift = compare_projections(mem, "src.meta")
        except duckdb.Error as e:  # a tampered log may violate the projections' constraints
            drift = [f"the projections cannot be rebuilt from the log: {str(e).splitlines()[0]}"]
        finally:
            mem.execute("DETACH src")
    problems.extend(drift)
    return VerifyReport(
        ok=not problems, events_checked=checked, last_seq=last, first_bad_seq=first_bad,
        problems=tuple(problems), projections_checked=projections.PROJECTION_TABLES,
    )


__all__ = ["VerifyReport", "check_chain", "compare_projections", "verify_file"]
