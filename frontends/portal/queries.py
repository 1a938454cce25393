"""The queries and transforms behind the portal's pages: plain functions of a database path that
return DataFrames and dicts. No Streamlit here, so they are unit-tested on their own.

Each function opens one read-only connection (``db.read_only`` or, for time travel, ``db.as_of``),
runs its queries and closes it before returning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from frontends.portal import db
from ledger import queries as lq
from ledger.fingerprint import message_template
from ledger.redact import known_secret_values, redact, redact_text

RUN_COLUMNS = ["run_id", "job_name", "status", "triggered_by", "partition_key", "started_at", "ended_at",
               "duration_ms", "provider", "error_type", "error_message", "error_fingerprint", "backfill_id",
               "parent_run_id"]
STATUSES = ("started", "success", "failed", "abandoned")
# Heatmap cell statuses, worst last.
CELL_STATUSES = ("ok", "stale", "partial", "skipped", "missing", "failed")


def _frame(rows: list[dict[str, Any]], columns: list[str] | None = None) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if columns is not None:
        for c in columns:
            if c not in df.columns:
                df[c] = pd.Series(dtype="object")
        df = df[columns]
    return df


def _table_exists(con: Any, schema: str, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                      [schema, table]).fetchone()
    return bool(row and row[0])


# -- health -------------------------------------------------------------------------------------
def resolve_as_of(path: str | Path, *, seq: int | None = None, when: dt.datetime | None = None) -> tuple[int | None, dt.datetime | None]:
    """Turn an "as of" choice into (seq, reference time). ``(None, None)`` means now."""
    if seq is None and when is None:
        return None, None
    if seq is None:
        assert when is not None
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return db.seq_at(path, when), when
    with db.read_only(path) as con:
        row = con.execute("SELECT recorded_at FROM meta.events WHERE seq <= ? ORDER BY seq DESC LIMIT 1",
                          [int(seq)]).fetchone()
    recorded = row[0] if row else None
    if isinstance(recorded, dt.datetime) and recorded.tzinfo is None:
        recorded = recorded.replace(tzinfo=dt.UTC)
    return int(seq), recorded


def health(
    path: str | Path,
    *,
    as_of_seq: int | None = None,
    reference: dt.datetime | None = None,
    days: int = 7,
    limit: int = 200,
    close_delay_minutes: int = 30,
) -> dict[str, Any]:
    """Latest run per job, failures grouped by fingerprint, freshness in sessions, failed checks,
    abandoned runs; as the ledger stood at ``as_of_seq`` (``reference`` is that moment)."""
    from ledger.calendar import TradingCalendar

    now = reference or dt.datetime.now(dt.UTC)
    since = now - dt.timedelta(days=days)
    with db.as_of(path, as_of_seq) as con:
        latest = lq.latest_runs(con, limit=limit)
        failures = lq.recent_failures(con, since=since, limit=10_000)
        marks = lq.watermarks(con, limit=100_000)
        checks = lq.failed_checks(con, since=since, limit=limit)
        abandoned = lq.abandoned_runs(con, since=since, limit=limit)
        counts = lq.counts(con)
        row = con.execute("SELECT coalesce(max(last_seq), 0) FROM meta.ledger_checkpoint").fetchone()
        head = int(row[0]) if row else 0
    cal = TradingCalendar.xnys()
    latest_session = cal.latest_completed_session(now, close_delay_minutes)
    fresh = freshness(marks, latest_session=latest_session, calendar=cal)
    latest_df = _frame(latest, RUN_COLUMNS)
    return {
        "database_path": str(path),
        "last_seq": head if as_of_seq is None else min(head, as_of_seq),
        "as_of_seq": as_of_seq,
        "reference": now,
        "latest_completed_session": latest_session,
        "latest_runs": latest_df,
        "failure_groups": failure_groups(failures),
        "freshness": fresh,
        "failed_checks": _frame(checks, ["checked_at", "asset_key", "partition_key", "scope_key", "check_name",
                                         "severity", "message", "current", "run_id"]),
        "abandoned_runs": _frame(abandoned, RUN_COLUMNS),
        "counts": counts,
        "metrics": {
            "jobs": len(latest_df),
            "latest_failed": int((latest_df["status"] == "failed").sum()) if len(latest_df) else 0,
            "behind": int((fresh["sessions_behind"] > 0).sum()) if len(fresh) else 0,
            "failed_checks": len(checks),
            "abandoned": len(abandoned),
        },
    }


def failure_groups(failures: list[dict[str, Any]]) -> pd.DataFrame:
    """Failed runs grouped by their error fingerprint (exception type + message template)."""
    columns = ["error_fingerprint", "failures", "jobs", "error_type", "message_template", "latest_message",
               "first_at", "latest_at", "latest_run_id"]
    if not failures:
        return _frame([], columns)
    df = pd.DataFrame(failures)
    df["error_type"] = df["error_type"].fillna("Error")
    df["error_message"] = df["error_message"].fillna("")
    df["error_fingerprint"] = df["error_fingerprint"].fillna("(none)")
    df = df.sort_values("started_at", ascending=False, kind="stable")
    out = []
    for fp, group in df.groupby("error_fingerprint", sort=False):
        head = group.iloc[0]
        out.append({
            "error_fingerprint": fp,
            "failures": len(group),
            "jobs": ", ".join(sorted(set(group["job_name"].dropna()))),
            "error_type": head["error_type"],
            "message_template": message_template(head["error_message"]),
            "latest_message": head["error_message"],
            "first_at": group["started_at"].min(),
            "latest_at": group["started_at"].max(),
            "latest_run_id": head["run_id"],
        })
    return _frame(out, columns).sort_values(["failures", "latest_at"], ascending=[False, False], kind="stable") \
        .reset_index(drop=True)


def freshness(marks: list[dict[str, Any]], *, latest_session: dt.date, calendar: Any) -> pd.DataFrame:
    """Each (asset, scope) watermark with how many XNYS sessions it is behind ``latest_session``."""
    columns = ["asset_key", "scope_key", "watermark", "sessions_behind", "freshness", "updated_at", "last_run_id"]
    rows = []
    for m in marks:
        ts = m.get("watermark_ts")
        day = ts.date() if isinstance(ts, dt.datetime) else None
        behind = calendar.sessions_behind(day, latest_session) if day else None
        rows.append({
            "asset_key": m["asset_key"], "scope_key": m["scope_key"], "watermark": day,
            "sessions_behind": behind,
            "freshness": "unknown" if behind is None else "current" if behind == 0 else "behind" if behind == 1 else "stale",
            "updated_at": m.get("updated_at"), "last_run_id": m.get("last_run_id"),
        })
    df = _frame(rows, columns)
    if len(df):
        df = df.sort_values(["sessions_behind", "asset_key", "scope_key"], ascending=[False, True, True],
                            kind="stable").reset_index(drop=True)
    return df


# -- runs ---------------------------------------------------------------------------------------
def run_filters(path: str | Path) -> dict[str, list[str]]:
    """The distinct values the runs list can be filtered by (one scan)."""
    with db.read_only(path) as con:
        row = con.execute(
            "SELECT list(DISTINCT job_name ORDER BY job_name) FILTER (WHERE job_name IS NOT NULL), "
            "list(DISTINCT status ORDER BY status), "
            "list(DISTINCT triggered_by ORDER BY triggered_by) FILTER (WHERE triggered_by IS NOT NULL) "
            "FROM meta.ingestion_runs").fetchone()
    jobs, statuses, triggers = row if row else ([], [], [])
    return {"job_name": list(jobs or []), "status": list(statuses or []), "triggered_by": list(triggers or [])}


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
    where, params = ["TRUE"], []
    for column, value in (("status", status), ("job_name", job), ("triggered_by", triggered_by),
                          ("partition_key", partition)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if search and search.strip():
        where.append("(run_id ILIKE ? OR error_message ILIKE ? OR backfill_id ILIKE ?)")
        term = search.strip()
        params += [term + "%", "%" + term + "%", term + "%"]
    with db.read_only(path) as con:
        df = con.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM meta.ingestion_runs WHERE {' AND '.join(where)} "
            "ORDER BY first_seq DESC NULLS LAST LIMIT ?", [*params, int(limit)]).df()
    return df


def run_detail(path: str | Path, run_id: str) -> dict[str, Any] | None:
    """One run: its row, event timeline, assets, checks, redacted arguments and error; None if unknown."""
    run_id = run_id.strip()
    with db.read_only(path) as con:
        row = lq.run_row(con, run_id)
        if row is None:
            return None
        assets = con.execute(
            "SELECT asset_key, partition_key, scope_key, status, rows_inserted, bytes_written, min_event_ts, "
            "max_event_ts, code_version, data_version, path, sha256, duration_ms FROM meta.ingestion_run_assets "
            "WHERE run_id = ? ORDER BY seq", [run_id]).df()
        checks = con.execute(
            "SELECT asset_key, partition_key, scope_key, check_name, severity, status, message, metrics_json, "
            "checked_at, materialization_seq FROM meta.asset_checks WHERE run_id = ? ORDER BY seq", [run_id]).df()
        events = con.execute(
            "SELECT seq, event_type, recorded_at, asset_key, partition_key, scope_key, CAST(payload AS VARCHAR) "
            "AS payload FROM meta.events WHERE run_id = ? ORDER BY seq", [run_id]).df()
    secrets = known_secret_values(os.environ)
    started = row.get("started_at")
    if len(events) and isinstance(started, dt.datetime):
        events.insert(3, "offset_s", [(t - started).total_seconds() if t is not None else None
                                      for t in events["recorded_at"]])
    if len(events):
        events["payload"] = [_redacted_payload(p, secrets) for p in events["payload"]]
    error = None
    if row.get("status") in ("failed", "abandoned"):
        error = {
            "type": row.get("error_type"),
            "message": redact_text(row.get("error_message") or "", secrets),
            "fingerprint": row.get("error_fingerprint"),
            "stack_hash": row.get("error_stack_hash"),
            "template": message_template(row.get("error_message") or ""),
        }
    return {
        "run": {k: v for k, v in row.items() if k != "args_json"},
        "args": redact(row.get("args_json") or {}, secrets),
        "error": error,
        "events": events,
        "assets": assets,
        "checks": checks,
    }


def _redacted_payload(payload: str | None, secrets: list[str]) -> str:
    """The payload with secret-named keys and known secret values masked (again: belt and braces)."""
    try:
        return redact_text(json.dumps(redact(json.loads(payload or "{}"), secrets), sort_keys=True), secrets)
    except ValueError:
        return redact_text(payload or "", secrets)


# -- gaps ---------------------------------------------------------------------------------------
def known_symbols(path: str | Path) -> list[str]:
    """Every symbol the ledger has a cell for (the per-symbol scopes of meta.partition_status)."""
    with db.read_only(path) as con:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT scope_key FROM meta.partition_status WHERE scope_key <> 'ALL' ORDER BY 1").fetchall()]


def partition_range(path: str | Path) -> tuple[dt.date, dt.date] | None:
    with db.read_only(path) as con:
        row = con.execute("SELECT min(partition_key), max(partition_key) FROM meta.partition_status").fetchone()
    if not row or row[0] is None:
        return None
    return dt.date.fromisoformat(row[0]), dt.date.fromisoformat(row[1])


def heatmap(
    path: str | Path,
    *,
    start: dt.date,
    end: dt.date,
    symbol: str | None = None,
    symbols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (asset, session) in [start, end]: the cell status, aggregated over symbols
    (or for one ``symbol``). Statuses: ok, stale (older code version), partial, skipped, missing, failed."""
    from ledger.calendar import TradingCalendar
    from stages import registry

    sessions = [d.isoformat() for d in TradingCalendar.xnys().sessions_in_range(start, end)]
    columns = ["asset_key", "session", "status", "ok", "failed", "skipped", "expected", "detail"]
    if not sessions:
        return _frame([], columns)
    universe = list(symbols) if symbols is not None else known_symbols(path)
    scopes = [symbol] if symbol else universe
    code = registry.code_versions()
    with db.read_only(path) as con:
        return _heatmap(con, sessions, scopes, code)


def _heatmap(con: Any, sessions: list[str], scopes: list[str], code: dict[str, str]) -> pd.DataFrame:
    from stages import registry

    cells = con.execute(
        """
        SELECT asset_key, partition_key AS session,
               count(*) FILTER (WHERE status = 'materialized' OR materialized_seq IS NOT NULL) AS ok,
               count(*) FILTER (WHERE status = 'failed' AND materialized_seq IS NULL) AS failed,
               count(*) FILTER (WHERE status = 'skipped' AND materialized_seq IS NULL) AS skipped,
               list(DISTINCT code_version) FILTER (WHERE code_version IS NOT NULL) AS code_versions
        FROM meta.partition_status
        WHERE partition_key BETWEEN ? AND ? AND (scope_key = 'ALL' OR scope_key IN (SELECT unnest(?)))
        GROUP BY ALL
        """, [sessions[0], sessions[-1], scopes]).df()
    grid = pd.MultiIndex.from_product([list(registry.ASSET_KEYS), sessions], names=["asset_key", "session"])
    df = cells.set_index(["asset_key", "session"]).reindex(grid).reset_index()
    per_symbol = {a.key: a.per_symbol for a in registry.ASSETS}
    df["expected"] = [max(1, len(scopes)) if per_symbol.get(a, True) else 1 for a in df["asset_key"]]
    for c in ("ok", "failed", "skipped"):
        df[c] = df[c].fillna(0).astype(int)

    def status(r: Any) -> str:
        if r.ok >= r.expected:
            versions = r.code_versions if isinstance(r.code_versions, list | tuple) else list(r.code_versions or [])
            return "stale" if any(v != code.get(r.asset_key) for v in versions) else "ok"
        if r.failed:
            return "failed"
        if r.ok:
            return "partial"
        if r.skipped:
            return "skipped"
        return "missing"

    df["status"] = [status(r) for r in df.itertuples()]
    df["detail"] = [f"{r.ok}/{r.expected} ok" + (f", {r.failed} failed" if r.failed else "")
                    + (f", {r.skipped} skipped" if r.skipped else "") for r in df.itertuples()]
    return df[["asset_key", "session", "status", "ok", "failed", "skipped", "expected", "detail"]]


def gaps_inputs(path: str | Path) -> dict[str, Any]:
    """What the Gaps page needs before it draws: the symbols and the span of the ledger's cells."""
    with db.read_only(path) as con:
        symbols = [r[0] for r in con.execute(
            "SELECT DISTINCT scope_key FROM meta.partition_status WHERE scope_key <> 'ALL' ORDER BY 1").fetchall()]
        row = con.execute("SELECT min(partition_key), max(partition_key) FROM meta.partition_status").fetchone()
    span = None if not row or row[0] is None else (dt.date.fromisoformat(row[0]), dt.date.fromisoformat(row[1]))
    return {"symbols": symbols, "span": span}


def heatmap_summary(cells: pd.DataFrame) -> dict[str, int]:
    return {s: int((cells["status"] == s).sum()) for s in CELL_STATUSES} if len(cells) else {}


def gap_plan(settings: Any, *, start: dt.date | None = None, end: dt.date | None = None,
             assets: list[str] | None = None, symbols: list[str] | None = None,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """The gap planner's plan as a dict (``GapPlan.to_dict()``). The planner is part of the core:
    a failing import is a bug and raises.

    The same inputs as ``stages.plan`` (registry graph, provider capabilities, window, universe), but
    planned on a read-only connection of our own: ``stages.plan`` goes through ``ledger.open``, whose
    store opens the file read-write. Display only: the portal never runs a backfill.
    """
    from ledger.calendar import TradingCalendar
    from ledger.planner import default_window, plan_gaps
    from stages import planning, registry

    cal = TradingCalendar.xnys()
    latest = cal.latest_completed_session(now or dt.datetime.now(dt.UTC), settings.session_close_delay_minutes)
    lo, hi = default_window(cal, start=start, end=end, latest=latest, sessions=planning.DEFAULT_SESSIONS)
    try:
        caps = planning.provider_capabilities(settings)
    except Exception:  # no credentials or no extra: plan as if every dataset could be backfilled
        caps = None
    graph = planning.planner_graph(caps)
    universe, explicit = planning.resolve_symbols(settings, symbols)
    keys = planning.resolve_assets(assets)
    if keys is None and explicit:
        keys = [a.key for a in graph if a.per_symbol]
    unrecoverable = {a.key: (None if a.recoverable_before else latest) for a in graph}
    with db.read_only(settings.duckdb_path) as con:
        plan = plan_gaps(con, graph=graph, symbols=universe, start=lo, end=hi, calendar=cal,
                         code_versions=registry.code_versions(), unrecoverable=unrecoverable, assets=keys,
                         universe_option=f"--symbols {','.join(universe)}" if explicit else None)
    return plan.to_dict()


def gap_plan_for(path: str | Path, *, start: dt.date, end: dt.date, symbols: tuple[str, ...]) -> dict[str, Any]:
    """``gap_plan`` for the ledger at ``path`` (cacheable: plain arguments only)."""
    import attrs

    from ledger.config import load_settings

    settings = attrs.evolve(load_settings(), duckdb_path=Path(path))
    return gap_plan(settings, start=start, end=end, symbols=list(symbols) or None)


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
    with db.read_only(path) as con:
        return con.execute(
            """
            SELECT t.table_schema AS schema, t.table_name AS name, lower(t.table_type) AS type,
                   (SELECT count(*) FROM information_schema.columns c
                     WHERE c.table_schema = t.table_schema AND c.table_name = t.table_name) AS columns,
                   d.estimated_size AS rows
            FROM information_schema.tables t
            LEFT JOIN duckdb_tables() d ON d.schema_name = t.table_schema AND d.table_name = t.table_name
                                        AND d.database_name = t.table_catalog
            WHERE t.table_schema NOT IN ('information_schema', 'pg_catalog')
            ORDER BY (t.table_schema = 'meta') DESC, t.table_schema, t.table_name
            """).df()


def table_columns(path: str | Path, schema: str, table: str) -> pd.DataFrame:
    with db.read_only(path) as con:
        return con.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table]).df()


def table_preview(path: str | Path, schema: str, table: str, *, limit: int = 100, order_by: str | None = None,
                  descending: bool = True) -> pd.DataFrame:
    """The first ``limit`` rows of one table; the query is built with sqlglot, never by pasting text."""
    from sqlglot import exp

    cols = table_columns(path, schema, table)
    if not len(cols):
        raise LookupError(f"no table {schema}.{table}")
    query = exp.select("*").from_(exp.table_(table, db=schema, quoted=True)).limit(int(limit))
    if order_by:
        if order_by not in set(cols["column_name"]):
            raise LookupError(f"{schema}.{table} has no column {order_by!r}")
        query = query.order_by(exp.Ordered(this=exp.column(order_by, quoted=True), desc=descending))
    with db.read_only(path) as con:
        df = con.execute(query.sql(dialect="duckdb")).df()
    return _jsonable(df)


def _jsonable(df: pd.DataFrame) -> pd.DataFrame:
    """Columns Arrow cannot show (lists of structs, maps, JSON) as text."""
    for c in df.columns:
        if df[c].dtype == object and len(df) and any(isinstance(v, dict | list | tuple) for v in df[c].head(50)):
            df[c] = df[c].map(lambda v: None if v is None else str(v))
    return df


# -- symbol -------------------------------------------------------------------------------------
def data_symbols(path: str | Path) -> list[str]:
    """Symbols with data in the warehouse tables (falls back to the ledger's scopes)."""
    with db.read_only(path) as con:
        parts = []
        for table in ("candles_daily", "derived_metrics", "options_snapshot_files"):
            if _table_exists(con, "main", table):
                parts.append(f"SELECT DISTINCT symbol FROM main.{table}")
        if parts:
            found = [r[0] for r in con.execute(" UNION ".join(parts) + " ORDER BY 1").fetchall()]
            if found:
                return found
    return known_symbols(path)


def symbol_history(path: str | Path, symbol: str, *, sessions: int = 252) -> pd.DataFrame:
    """Close, ATM IV and the derived metrics of one symbol, one row per session (newest last)."""
    with db.read_only(path) as con:
        have_candles = _table_exists(con, "main", "candles_daily")
        have_derived = _table_exists(con, "main", "derived_metrics")
        if not have_candles and not have_derived:
            return pd.DataFrame(columns=["date", "close"])
        candles = (con.execute("SELECT date, close, volume FROM main.candles_daily WHERE symbol = ? "
                               "ORDER BY date DESC LIMIT ?", [symbol, sessions]).df()
                   if have_candles else pd.DataFrame(columns=["date", "close", "volume"]))
        derived = (con.execute("SELECT * EXCLUDE (symbol, run_id) FROM main.derived_metrics WHERE symbol = ? "
                               "ORDER BY date DESC LIMIT ?", [symbol, sessions]).df()
                   if have_derived else pd.DataFrame(columns=["date"]))
    derived = derived.drop(columns=[c for c in ("updated_at", "spot") if c in derived.columns and c != "date"])
    df = candles.merge(derived, on="date", how="outer") if len(derived.columns) > 1 else candles
    df["date"] = pd.to_datetime(df["date"])
    return df.sort_values("date").reset_index(drop=True)


def latest_flow(path: str | Path, symbol: str) -> tuple[str | None, pd.DataFrame]:
    """The newest session's flow for ``symbol``, summed by strike and option type."""
    columns = ["strike", "option_type", "delta_oi", "delta_oi_notional", "volume_notional", "delta_notional"]
    with db.read_only(path) as con:
        if not _table_exists(con, "main", "options_flow"):
            return None, _frame([], columns)
        row = con.execute("SELECT max(to_date) FROM main.options_flow WHERE symbol = ?", [symbol]).fetchone()
        if not row or row[0] is None:
            return None, _frame([], columns)
        day = row[0]
        df = con.execute(
            """
            SELECT strike, option_type, sum(delta_oi) AS delta_oi, sum(delta_oi_notional) AS delta_oi_notional,
                   sum(volume_notional) AS volume_notional, sum(delta_notional) AS delta_notional
            FROM main.options_flow
            WHERE symbol = ? AND to_date = ? AND strike IS NOT NULL
              AND window_size = (SELECT min(window_size) FROM main.options_flow WHERE symbol = ? AND to_date = ?)
              AND group_by = (SELECT min(group_by) FROM main.options_flow WHERE symbol = ? AND to_date = ?)
            GROUP BY ALL ORDER BY strike, option_type
            """, [symbol, day, symbol, day, symbol, day]).df()
    return str(day)[:10], df


def latest_reports(path: str | Path, data_root: str | Path) -> list[dict[str, Any]]:
    """The newest briefing and dashboard files, with absolute paths and whether they exist."""
    root = Path(data_root).expanduser().resolve()
    with db.read_only(path) as con:
        if not _table_exists(con, "main", "report_files"):
            return []
        rows = con.execute(
            "SELECT kind, date, path, bytes, run_id FROM main.report_files "
            "QUALIFY row_number() OVER (PARTITION BY kind ORDER BY date DESC) = 1 ORDER BY kind").fetchall()
    out = []
    for kind, day, rel, size, run_id in rows:
        p = Path(rel)
        full = p if p.is_absolute() else root / p
        out.append({"kind": kind, "date": str(day)[:10], "path": str(full), "exists": full.is_file(),
                    "bytes": size, "run_id": run_id})
    return out


__all__ = [
    "CELL_STATUSES",
    "RUN_COLUMNS",
    "data_symbols",
    "failure_groups",
    "freshness",
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
