"""Incremental projection maintenance for an append: the batch folded in Python, merged in SQL.

An append folds only its own events (``fold_batch``), with the merge rules of ``ledger.fold``
(the same rules as the SQL fold in ``ledger.projections``), and writes each projection with one
statement (``write``), so it reads no projection row:

- ``meta.asset_checks``: a plain ``INSERT`` (a check's key is its event id, unique in the log).
- ``meta.ingestion_run_assets``, ``meta.asset_watermarks``, ``meta.partition_status``: an
  ``INSERT ... ON CONFLICT DO UPDATE`` whose ``SET`` is the fold's merge of the stored row with the
  batch's row. Every event of a batch has a higher seq than anything stored, which makes each merge
  a short rule: the batch's latest asset event wins a run asset and a cell's status, its latest
  materialization wins the cell's materialization columns, its newest data date wins a watermark
  unless the stored one is newer (``watermark_ts >= stored``).
- ``meta.ingestion_runs``: runs started in the batch are a plain ``INSERT`` (the key refuses a
  second start); runs started earlier are merged in Python with their stored rows, which the store
  reads anyway to validate the batch, and upserted.

Columns whose value is the batch's ``recorded_at`` or a constant are SQL literals; the rest cross
into DuckDB as one Arrow table per statement, JSON columns typed ``arrow.json`` (the text comes from
Python's JSON encoder, so DuckDB need not parse it again). Rebuilds, time travel and ``db verify``
use the SQL fold; the tests check that both give the same rows, JSON text included.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

from ledger import fold as _fold
from ledger.events import Event, _payload_fields, canonical_json

_ASSET_STATUS = {"asset_materialized": "success", "asset_failed": "failed", "asset_skipped": "skipped"}
_CELL_STATUS = {"asset_materialized": "materialized", "asset_failed": "failed", "asset_skipped": "skipped"}
_RUN_TYPES = frozenset(("run_started", "run_heartbeat", "run_succeeded", "run_failed", "run_abandoned"))

# Columns of each projection in table order (migrations only add columns at the end; a column
# added later keeps its default here until the fold learns it).
RUN_COLUMNS = (
    "run_id", "parent_run_id", "job_name", "triggered_by", "status", "started_at", "ended_at", "duration_ms",
    "provider", "storage_backend", "args_json", "git_sha", "app_version", "error_type", "error_message",
    "error_stack_hash", "status_rank", "last_heartbeat_at", "lease_expires_at", "partition_key", "scope_keys",
    "code_version", "backfill_id", "error_fingerprint", "first_seq", "last_seq",
)
# The fold writes these two as constants (see ledger.fold._fold_run and projections.RUNS).
_RUN_LITERALS = {"storage_backend": "'duckdb'", "git_sha": "NULL"}
_RUN_ARROW = tuple(c for c in RUN_COLUMNS if c not in _RUN_LITERALS)

ASSET_COLUMNS = (
    "run_id", "asset_key", "asset_kind", "partition_key", "status", "rows_inserted", "rows_updated", "rows_deleted",
    "bytes_written", "min_event_ts", "max_event_ts", "extra_json", "started_at", "ended_at", "duration_ms",
    "scope_key", "code_version", "data_version", "path", "sha256", "seq",
)
_ASSET_ARROW = ("run_id", "asset_key", "asset_kind", "partition_key", "status", "rows_inserted", "bytes_written",
                "min_event_ts", "max_event_ts", "extra_json", "scope_key", "code_version", "data_version", "path",
                "sha256", "seq")
_ASSET_KEY = ("run_id", "asset_key", "partition_key", "scope_key")

CHECK_COLUMNS = (
    "check_id", "asset_key", "partition_key", "check_name", "severity", "status", "checked_at", "metrics_json",
    "message", "run_id", "scope_key", "materialization_event_id", "materialization_seq", "seq",
)
_CHECK_ARROW = tuple(c for c in CHECK_COLUMNS if c != "checked_at")

MARK_COLUMNS = ("asset_key", "scope_key", "watermark_ts", "updated_at", "last_run_id", "seq")
_MARK_ARROW = ("asset_key", "scope_key", "watermark_ts", "last_run_id", "seq")

CELL_COLUMNS = (
    "asset_key", "partition_key", "scope_key", "status", "run_id", "last_seq", "updated_at", "materialized_seq",
    "materialized_at", "materialized_run_id", "code_version", "data_version", "rows", "bytes", "path", "sha256",
)
_CELL_ARROW = tuple(c for c in CELL_COLUMNS if c not in ("updated_at", "materialized_at"))
_CELL_MATERIALIZED = ("materialized_seq", "materialized_at", "materialized_run_id", "code_version", "data_version",
                      "rows", "bytes", "path", "sha256")

@functools.lru_cache(maxsize=4096)
def _ts(value: str | None) -> dt.datetime | None:
    # A batch repeats a few data dates many times: parse each once.
    return _fold._ts(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class BatchDelta:
    """The projection rows one batch writes: rows of the batch alone, except runs started before it,
    which are merged with their stored rows (``known_runs``)."""

    __slots__ = ("assets", "cells", "checks", "marks", "merged_runs", "new_runs", "now", "runs")

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.runs: dict[str, dict[str, Any]] = {}
        self.new_runs: list[str] = []
        self.merged_runs: list[str] = []
        self.assets: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.marks: dict[tuple[Any, ...], list[Any]] = {}
        self.cells: dict[tuple[Any, ...], list[Any]] = {}
        self.checks: list[tuple[Any, ...]] = []


class _At:
    """What ``ledger.fold._fold_run`` reads of a stored event and its row."""

    __slots__ = ("event_type", "partition_key", "recorded_at", "run_id", "seq")

    def __init__(self, seq: int, recorded_at: dt.datetime, event: Event) -> None:
        self.seq, self.recorded_at, self.event_type = seq, recorded_at, event.EVENT_TYPE
        self.run_id, self.partition_key = event.run_id, getattr(event, "partition_key", None)


def fold_batch(
    first_seq: int, events: Sequence[Event], known_runs: dict[str, dict[str, Any]], now: dt.datetime
) -> BatchDelta:
    """Fold one batch (seqs from ``first_seq``, all recorded at ``now``) for ``write``; ``known_runs``
    are the stored rows of the runs the batch continues, keyed by run id (they are not modified).

    Payload fields are read from the events, as they read back from the log: JSON scalars as they
    are, anything else through a JSON round trip (``payload``), without parsing the stored payloads
    again. Call it after ``to_row`` has accepted every payload of the batch."""
    delta = BatchDelta(now)
    state = _fold.ProjectionState()
    run_table = state.tables["ingestion_runs"]
    assets, marks, cells, checks = delta.assets, delta.marks, delta.cells, delta.checks
    seq = first_seq - 1
    e: Any  # each family of events is read by its own fields
    for e in events:
        seq += 1
        t = e.EVENT_TYPE
        if t == "asset_materialized":
            _fold_asset(assets, marks, cells, seq, e, t)
        elif t == "check_evaluated":
            values = _CHECK_GET(e)
            metrics_text: str | None
            if _all_scalars(values):
                metrics_text = canonical_json(e.metrics)  # the field's own text in the payload
            else:
                p = payload(e)
                values = tuple(p.get(n) for n in _CHECK_FIELDS)
                metrics = p.get("metrics")
                metrics_text = None if metrics is None else _dumps(metrics)
            name, severity, status, message, mat_id, mat_seq = values
            checks.append((str(e.event_id), e.asset_key, e.partition_key, name, severity, status, metrics_text,
                           message, e.run_id, e.scope_key, _str(mat_id), _int(mat_seq), seq))
        elif t in _RUN_TYPES:
            run_id = str(e.run_id)
            if run_id not in run_table and run_id in known_runs:
                run_table[run_id] = dict(known_runs[run_id])
            at = _At(seq, now, e)
            _fold._fold_run(state, at, at, payload(e))  # type: ignore[arg-type]
        elif t in _ASSET_STATUS:
            _fold_asset(assets, marks, cells, seq, e, t)
    delta.runs = run_table  # type: ignore[assignment]  # keyed by run id
    for run_id in delta.runs:
        (delta.merged_runs if run_id in known_runs else delta.new_runs).append(run_id)
    return delta


_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))


def _all_scalars(values: tuple[Any, ...]) -> bool:
    # Exact types only: a JSON round trip returns these unchanged (a subclass comes back as its base).
    return all(type(v) in _SCALAR_TYPES for v in values)


def payload(event: Event) -> dict[str, Any]:
    """The event's payload as it reads back from the log (``json.loads`` of its stored payload),
    without encoding the scalar fields and parsing them again."""
    out = {}
    for name in _payload_fields(event.__class__):  # type: ignore[arg-type]
        value = getattr(event, name)
        if type(value) not in _SCALAR_TYPES:
            value = json.loads(canonical_json(value))
        out[name] = value
    return out


_CHECK_FIELDS = ("check_name", "severity", "status", "message", "materialization_id", "materialization_seq")
_CHECK_GET = operator.attrgetter(*_CHECK_FIELDS)
_ASSET_FIELDS = ("asset_kind", "rows", "bytes", "min_data_time", "max_data_time", "code_version", "data_version",
                 "path", "sha256")
_ASSET_GET = operator.attrgetter(*_ASSET_FIELDS)


def _fold_asset(
    assets: dict[tuple[Any, ...], tuple[Any, ...]],
    marks: dict[tuple[Any, ...], list[Any]],
    cells: dict[tuple[Any, ...], list[Any]],
    seq: int,
    e: Any,
    t: str,
) -> None:
    values = _ASSET_GET(e) if t == "asset_materialized" else None
    extra_text: str | None
    if values is not None and _all_scalars(values):
        extra_text = canonical_json(e.extra)  # the field's own text in the payload
    else:
        # asset_failed / asset_skipped patch ``extra`` in JSON's key order, as the fold does.
        p = payload(e)
        values = tuple(p.get(n) for n in _ASSET_FIELDS)
        extra = p.get("extra")
        if t == "asset_failed":
            extra = _fold._merge_patch(extra, {"error_type": p.get("error_type"), "error": p.get("error_message")})
        elif t == "asset_skipped":
            extra = _fold._merge_patch(extra, {"reason": p.get("reason")})
        extra_text = None if extra is None else _dumps(extra)
    kind, n_rows, n_bytes, min_time, max_time, code_version, data_version, path, sha256 = values
    run_id, asset_key, partition_key, scope_key = e.run_id, e.asset_key, e.partition_key, e.scope_key
    n_rows, n_bytes = _int(n_rows), _int(n_bytes)
    # Later events of the batch have higher seqs: the last one seen wins, as in the fold.
    assets[(run_id, asset_key, partition_key, scope_key)] = (
        run_id, asset_key, kind, partition_key, _ASSET_STATUS[t], n_rows, n_bytes, _ts(min_time), _ts(max_time),
        extra_text, scope_key, code_version, data_version, path, sha256, seq,
    )
    mat = t == "asset_materialized"
    if mat and max_time is not None:
        wm = _ts(max_time)
        prev = marks.get((asset_key, scope_key))
        if prev is None or wm >= prev[2]:  # type: ignore[operator]
            marks[(asset_key, scope_key)] = [asset_key, scope_key, wm, run_id, seq]
    key = (asset_key, partition_key, scope_key)
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = [asset_key, partition_key, scope_key, None, None, None,
                             None, None, None, None, None, None, None, None]
    cell[3], cell[4], cell[5] = _CELL_STATUS[t], run_id, seq
    if mat:
        cell[6:] = [seq, run_id, code_version, data_version, n_rows, n_bytes, path, sha256]


# -- writing ------------------------------------------------------------------------------------
def timestamp_literal(value: dt.datetime) -> str:
    return f"TIMESTAMPTZ '{value.astimezone(dt.UTC).isoformat(timespec='microseconds')}'"


@functools.cache
def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    types = {
        "seq": pa.int64(), "last_seq": pa.int64(), "first_seq": pa.int64(), "materialized_seq": pa.int64(),
        "materialization_seq": pa.int64(),
        "rows_inserted": pa.int64(), "bytes_written": pa.int64(), "rows": pa.int64(), "bytes": pa.int64(),
        "duration_ms": pa.int64(), "status_rank": pa.int32(), "schema_version": pa.int32(),
        "started_at": ts, "ended_at": ts, "last_heartbeat_at": ts, "lease_expires_at": ts, "min_event_ts": ts,
        "max_event_ts": ts, "watermark_ts": ts,
        "args_json": pa.json_(), "extra_json": pa.json_(), "metrics_json": pa.json_(), "payload": pa.json_(),
        "scope_keys": pa.list_(pa.string()),
    }
    return {
        name: pa.schema([(c, types.get(c, pa.string())) for c in columns])
        for name, columns in (("runs", _RUN_ARROW), ("assets", _ASSET_ARROW), ("checks", _CHECK_ARROW),
                              ("marks", _MARK_ARROW), ("cells", _CELL_ARROW))
    }


def _table(schema: Any, rows: Sequence[Sequence[Any]]) -> Any:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
                                schema=schema)


@functools.cache
def _statements() -> dict[str, str]:
    """The statements of ``write`` with ``{now}`` for the batch's recorded_at literal."""
    def select(columns: Sequence[str], literals: dict[str, str]) -> str:
        return ", ".join(literals.get(c, c) for c in columns)

    def merge(table: str, source: str, columns: Sequence[str], key: Sequence[str], literals: dict[str, str],
              matched: Sequence[tuple[str, Sequence[str]]]) -> str:
        # MERGE plans cheaper than ON CONFLICT DO UPDATE, which DuckDB rewrites to a MERGE with a
        # GROUP BY over the source (to refuse duplicate keys, which a folded batch cannot have).
        on = " AND ".join(f"t.{k} = s.{k}" for k in key)
        whens = " ".join(
            f"WHEN MATCHED{f' AND {cond}' if cond else ''} THEN UPDATE SET {', '.join(f'{c} = s.{c}' for c in cols)}"
            for cond, cols in matched
        )
        return (f"MERGE INTO meta.{table} t USING (SELECT {select(columns, literals)} FROM {source}) s ON {on} "
                f"{whens} WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) "
                f"VALUES ({', '.join(f's.{c}' for c in columns)})")

    def insert(table: str, source: str, columns: Sequence[str], literals: dict[str, str]) -> str:
        return f"INSERT INTO meta.{table} ({', '.join(columns)}) SELECT {select(columns, literals)} FROM {source}"

    # Aliases in the merge's source: a column's literal must keep the column's name.
    def named(literals: dict[str, str]) -> dict[str, str]:
        return {c: f"{v} AS {c}" for c, v in literals.items()}

    asset_literals = {"rows_updated": "NULL", "rows_deleted": "NULL", "started_at": "NULL", "ended_at": "{now}",
                      "duration_ms": "NULL"}
    cell_literals = {"updated_at": "{now}", "materialized_at": "CASE WHEN materialized_seq IS NOT NULL THEN {now} END"}
    mark_literals = {"updated_at": "{now}"}
    return {
        "runs": insert("ingestion_runs", "_ledger_src", RUN_COLUMNS, _RUN_LITERALS),
        "runs_merge": merge("ingestion_runs", "_ledger_src", RUN_COLUMNS, ("run_id",), named(_RUN_LITERALS),
                            [("", [c for c in RUN_COLUMNS if c != "run_id"])]),
        "assets": insert("ingestion_run_assets", "_ledger_src", ASSET_COLUMNS, asset_literals),
        # A later event of a run asset always has the higher seq: it replaces the stored row.
        "assets_merge": merge("ingestion_run_assets", "_ledger_src", ASSET_COLUMNS, _ASSET_KEY,
                              named(asset_literals), [("", [c for c in ASSET_COLUMNS if c not in _ASSET_KEY])]),
        "checks": insert("asset_checks", "_ledger_src", CHECK_COLUMNS, {"checked_at": "{now}"}),
        # The newest data date wins; on a tie the later event (the batch's).
        "marks": merge("asset_watermarks", "_ledger_src", MARK_COLUMNS, ("asset_key", "scope_key"),
                       named(mark_literals),
                       [("s.watermark_ts >= t.watermark_ts", ("watermark_ts", "updated_at", "last_run_id", "seq"))]),
        # The batch's latest asset event sets the status; its latest materialization, if any, the rest.
        "cells": merge("partition_status", "_ledger_src", CELL_COLUMNS, ("asset_key", "partition_key", "scope_key"),
                       named(cell_literals),
                       [("s.materialized_seq IS NULL", ("status", "run_id", "last_seq", "updated_at")),
                        ("", ("status", "run_id", "last_seq", "updated_at", *_CELL_MATERIALIZED))]),
    }


def run_values(row: dict[str, Any]) -> tuple[Any, ...]:
    values = []
    for c in _RUN_ARROW:
        v = row.get(c)
        if c == "args_json" and v is not None:
            v = _dumps(v)  # the fold's value of the payload's field, in the payload's key order
        values.append(v)
    return tuple(values)


def statements(delta: BatchDelta, started_here: set[str]) -> Iterator[tuple[str, Any]]:
    """One (statement, Arrow table) per projection the batch touches, each table built when asked
    for: ``execute`` runs them, in one transaction with the events."""
    sql = _statements()
    schemas = _schemas()
    now = timestamp_literal(delta.now)
    if delta.new_runs:
        yield sql["runs"], _table(schemas["runs"], [run_values(delta.runs[r]) for r in delta.new_runs])
    if delta.merged_runs:
        yield sql["runs_merge"], _table(schemas["runs"], [run_values(delta.runs[r]) for r in delta.merged_runs])
    if delta.assets:
        # Run assets of runs started in this batch cannot exist yet; others may be replaced.
        fresh = all(key[0] in started_here for key in delta.assets)
        yield sql["assets" if fresh else "assets_merge"].replace("{now}", now), \
            _table(schemas["assets"], list(delta.assets.values()))
    if delta.checks:
        yield sql["checks"].replace("{now}", now), _table(schemas["checks"], delta.checks)
    if delta.marks:
        yield sql["marks"].replace("{now}", now), _table(schemas["marks"], list(delta.marks.values()))
    if delta.cells:
        yield sql["cells"].replace("{now}", now), _table(schemas["cells"], list(delta.cells.values()))


def execute(con: duckdb.DuckDBPyConnection, sql: str, table: Any) -> None:
    """Run ``sql`` over ``table``, which it reads as ``_ledger_src``."""
    # DuckDB's replacement scan reads the local by name: no register/unregister (~0.9 ms each).
    _ledger_src = table
    con.execute(sql)


def write(con: duckdb.DuckDBPyConnection, delta: BatchDelta, started_here: set[str]) -> None:
    """Every projection statement of the batch, one after the other."""
    for sql, table in statements(delta, started_here):
        execute(con, sql, table)


class ProjectionWriter:
    """Per-store state of the incremental writer: what an append knows of the log between appends
    while its store holds the connection (``ledger.append_session``)."""

    def __init__(self) -> None:
        from ledger.append_session import SessionCache

        self.cache = SessionCache()


__all__ = ["BatchDelta", "ProjectionWriter", "fold_batch", "timestamp_literal", "write"]
