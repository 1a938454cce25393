"""What the portal's pages show, as DataFrames and dicts: plain functions of a database path.

Nothing is computed here: health (with freshness in sessions), time travel, runs and run detail,
partition status and the catalog come from the read-only ``Ledger`` (``db.ledger_at``); cell
statuses and the gap plan from ``stages.planning``; one symbol's history from ``stages.datastore``.
This module turns their rows into frames for Streamlit. No Streamlit here, so it is tested on its
own; no SQL here either (the SQL console is ``sql_guard``'s).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from frontends.portal import db

RUN_COLUMNS = ["run_id", "job_name", "status", "triggered_by", "partition_key", "started_at", "ended_at",
               "duration_ms", "provider", "error_type", "error_message", "error_fingerprint", "backfill_id",
               "parent_run_id"]
STATUSES = ("started", "success", "failed", "abandoned")
# Heatmap cell statuses, worst last (stages.planning.CELL_STATUSES).
CELL_STATUSES = ("ok", "stale", "partial", "skipped", "missing", "failed")
FRESHNESS_COLUMNS = ["asset_key", "scope_key", "watermark", "sessions_behind", "freshness", "updated_at", "last_run_id"]
FAILURE_GROUP_COLUMNS = ["error_fingerprint", "failures", "jobs", "error_type", "message_template", "latest_message",
                         "first_at", "latest_at", "latest_run_id"]


def _frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if columns is not None:
        for c in columns:
            if c not in df.columns:
                df[c] = pd.Series(dtype="object")
        df = df[columns]
    return df


# -- health -------------------------------------------------------------------------------------
def resolve_as_of(path: str | Path, *, seq: int | None = None, when: dt.datetime | None = None) -> tuple[int | None, dt.datetime | None]:
    """Turn an "as of" choice into (seq, reference time). ``(None, None)`` means now."""
    return db.ledger_at(path).resolve_as_of(seq=seq, time=when)


def health(
    path: str | Path,
    *,
    as_of_seq: int | None = None,
    reference: dt.datetime | None = None,
    days: int = 7,
    limit: int = 200,
    close_delay_minutes: int | None = None,
) -> dict[str, Any]:
    """The ledger's health report (``Ledger.health``) with its sections as frames, as the ledger
    stood at ``as_of_seq`` (``reference`` is that moment)."""
    doc = db.ledger_at(path).health(as_of_seq=as_of_seq, as_of_time=reference, days=days, limit=limit,
                                    close_delay_minutes=close_delay_minutes)
    return {
        "database_path": doc["database_path"],
        "last_seq": doc["last_seq"],
        "as_of_seq": doc["as_of"]["seq"],
        "reference": doc["reference"],
        "latest_completed_session": dt.date.fromisoformat(doc["latest_completed_session"]),
        "latest_runs": _frame(doc["latest_runs"], RUN_COLUMNS),
        "failure_groups": _frame(doc["failure_groups"], FAILURE_GROUP_COLUMNS),
        "freshness": _frame(doc["watermarks"], FRESHNESS_COLUMNS),
        "failed_checks": _frame(doc["failed_checks"], ["checked_at", "asset_key", "partition_key", "scope_key",
                                                       "check_name", "severity", "message", "current", "run_id"]),
        "abandoned_runs": _frame(doc["abandoned_runs"], RUN_COLUMNS),
        "counts": doc["counts"],
        "metrics": doc["summary"],
    }


# -- runs ---------------------------------------------------------------------------------------
def run_filters(path: str | Path) -> dict[str, list[str]]:
    """The distinct values the runs list can be filtered by."""
    return db.ledger_at(path).run_filters()


def runs(
    path: str | Path,
    *,
    status: str | None = None,
    job: str | None = None,
    triggered_by: str | None = None,
    partition: str | None = None,
    search: str | None = None,
    limit: int = 200,
) -> pd.DataFrame:
    """Runs, newest first, filtered; ``search`` matches a run id prefix or an error message."""
    rows = db.ledger_at(path).runs(status=status or None, job=job or None, triggered_by=triggered_by or None,
                                   partition=partition or None, search=search, limit=int(limit))
    return _frame(rows, RUN_COLUMNS)


def run_detail(path: str | Path, run_id: str) -> dict[str, Any] | None:
    """One run (``Ledger.run_detail``): its row, event timeline, assets, checks, redacted arguments
    and error; None if unknown."""
    from ledger.errors import UnknownRunError

    try:
        d = db.ledger_at(path).run_detail(run_id)
    except UnknownRunError:
        return None
    fixed = ["seq", "event_type", "recorded_at", "offset_s", "asset_key", "partition_key", "scope_key"]
    timeline = [{**{k: e.get(k) for k in fixed},
                 "payload": json.dumps({k: v for k, v in e.items() if k not in fixed and k not in ("event_id", "run_id")},
                                       sort_keys=True, default=str)} for e in d["events"]]
    return {
        "run": {k: v for k, v in d["run"].items() if k != "args_json"},
        "args": d["args"],
        "error": d["error"],
        "events": _frame(timeline, [*fixed, "payload"]),
        "assets": _frame(d["assets"], ["asset_key", "partition_key", "scope_key", "status", "rows_inserted",
                                       "bytes_written", "min_event_ts", "max_event_ts", "code_version", "data_version",
                                       "path", "sha256", "duration_ms"]),
        "checks": _jsonable(_frame(d["checks"], ["asset_key", "partition_key", "scope_key", "check_name", "severity",
                                                 "status", "message", "metrics_json", "checked_at",
                                                 "materialization_seq"])),
    }


# -- gaps ---------------------------------------------------------------------------------------
def known_symbols(path: str | Path) -> list[str]:
    """Every symbol the ledger has a cell for (the per-symbol scopes of its partition status)."""
    return list(db.ledger_at(path).partition_overview()["scopes"])


def partition_range(path: str | Path) -> tuple[dt.date, dt.date] | None:
    o = db.ledger_at(path).partition_overview()
    return None if o["first"] is None else (o["first"], o["last"])


def gaps_inputs(path: str | Path) -> dict[str, Any]:
    """What the Gaps page needs before it draws: the symbols and the span of the ledger's cells."""
    o = db.ledger_at(path).partition_overview()
    return {"symbols": o["scopes"], "span": None if o["first"] is None else (o["first"], o["last"])}


def heatmap(
    path: str | Path,
    *,
    start: dt.date,
    end: dt.date,
    symbol: str | None = None,
    symbols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (asset, session) in [start, end]: the cell status (``stages.planning.cell_statuses``),
    aggregated over ``symbols`` (default: every symbol the ledger knows) or for one ``symbol``."""
    from stages.planning import cell_statuses

    led = db.ledger_at(path)
    scopes = [symbol] if symbol else (list(symbols) if symbols is not None else led.partition_overview()["scopes"])
    return _frame(cell_statuses(led, start=start, end=end, scopes=scopes),
                  ["asset_key", "session", "status", "ok", "failed", "skipped", "expected", "detail"])


def heatmap_summary(cells: pd.DataFrame) -> dict[str, int]:
    return {s: int((cells["status"] == s).sum()) for s in CELL_STATUSES} if len(cells) else {}


def gap_plan(settings: Any, *, start: dt.date | None = None, end: dt.date | None = None,
             assets: list[str] | None = None, symbols: list[str] | None = None,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """The gap planner's plan as a dict: ``stages.plan`` (read-only). Display only: the portal
    never runs a backfill."""
    import stages

    return stages.plan(settings, start=start, end=end, assets=assets, symbols=symbols, now=now).to_dict()


def gap_plan_for(path: str | Path, *, start: dt.date, end: dt.date, symbols: tuple[str, ...]) -> dict[str, Any]:
    """``gap_plan`` for the ledger at ``path`` (cacheable: plain arguments only)."""
    return gap_plan(db.settings_for(path), start=start, end=end, symbols=list(symbols) or None)


def plan_commands(plan: dict[str, Any]) -> list[str]:
    """The shell commands of a plan's steps, in order (whatever key each step names them by)."""
    out: list[str] = []
    for step in plan.get("steps", []) or []:
        if isinstance(step, str):
            out.append(step)
            continue
        cmd = step.get("command") or step.get("cli") or step.get("commands")
        if isinstance(cmd, list | tuple):
            out.extend(str(c) for c in cmd)
        elif isinstance(cmd, str):
            out.append(cmd)
    return out


# -- data ---------------------------------------------------------------------------------------
def tables(path: str | Path) -> pd.DataFrame:
    """Every table and view, with its column count and (for tables) its row count estimate."""
    return _frame(db.ledger_at(path).tables(), ["schema", "name", "type", "columns", "rows"])


def table_columns(path: str | Path, schema: str, table: str) -> pd.DataFrame:
    return _frame(db.ledger_at(path).table_columns(schema, table), ["column_name", "data_type", "is_nullable"])


def table_preview(path: str | Path, schema: str, table: str, *, limit: int = 100, order_by: str | None = None,
                  descending: bool = True) -> pd.DataFrame:
    """The first ``limit`` rows of one table (``LookupError`` for an unknown table or column)."""
    rows = db.ledger_at(path).table_preview(schema, table, limit=int(limit), order_by=order_by, descending=descending)
    return _jsonable(pd.DataFrame(rows))


def _jsonable(df: pd.DataFrame) -> pd.DataFrame:
    """Columns Arrow cannot show (lists of structs, maps, JSON) as text."""
    for c in df.columns:
        if df[c].dtype == object and len(df) and any(isinstance(v, dict | list | tuple) for v in df[c].head(50)):
            df[c] = df[c].map(lambda v: None if v is None else str(v))
    return df


# -- symbol -------------------------------------------------------------------------------------
def data_symbols(path: str | Path) -> list[str]:
    """Symbols with data in the warehouse tables (falls back to the ledger's scopes)."""
    from stages import datastore

    with db.ledger_at(path).reader() as con:
        found = datastore.symbols_with_data(con)
    return found or known_symbols(path)


def symbol_history(path: str | Path, symbol: str, *, sessions: int = 252) -> pd.DataFrame:
    """Close, ATM IV and the derived metrics of one symbol, one row per session (newest last)."""
    from stages import datastore

    with db.ledger_at(path).reader() as con:
        candles = datastore.symbol_candles(con, symbol, sessions=sessions).to_pandas()
        derived = datastore.symbol_derived(con, symbol, sessions=sessions).to_pandas()
    derived = derived.drop(columns=[c for c in ("updated_at", "spot") if c in derived.columns])
    df = candles.merge(derived, on="date", how="outer") if len(derived.columns) > 1 else candles
    df["date"] = pd.to_datetime(df["date"])
    return df.sort_values("date").reset_index(drop=True)


def latest_flow(path: str | Path, symbol: str) -> tuple[str | None, pd.DataFrame]:
    """The newest session's flow for ``symbol``, summed by strike and option type."""
    from stages import datastore

    with db.ledger_at(path).reader() as con:
        day, flow = datastore.latest_flow_by_strike(con, symbol)
    return (str(day)[:10] if day is not None else None), flow.to_pandas()


def latest_reports(path: str | Path, data_root: str | Path) -> list[dict[str, Any]]:
    """The newest file of each report kind, with its absolute path and whether it exists."""
    from stages import datastore

    root = Path(data_root).expanduser().resolve()
    with db.ledger_at(path).reader() as con:
        rows = datastore.report_files(con)  # newest first
    newest: dict[str, dict[str, Any]] = {}
    for r in rows:
        newest.setdefault(r["kind"], r)
    out = []
    for kind in sorted(newest):
        r = newest[kind]
        p = Path(r["path"])
        full = p if p.is_absolute() else root / p
        out.append({"kind": kind, "date": str(r["date"])[:10], "path": str(full), "exists": full.is_file(),
                    "bytes": r["bytes"], "run_id": r["run_id"]})
    return out


__all__ = [
    "CELL_STATUSES",
    "RUN_COLUMNS",
    "data_symbols",
    "gap_plan",
    "gap_plan_for",
    "gaps_inputs",
    "health",
    "heatmap",
    "heatmap_summary",
    "known_symbols",
    "latest_flow",
    "latest_reports",
    "partition_range",
    "plan_commands",
    "resolve_as_of",
    "run_detail",
    "run_filters",
    "runs",
    "symbol_history",
    "table_columns",
    "table_preview",
    "tables",
]
