"""The health report: what ``options-helper health`` prints and the portal's Health page draws.

Built here once, from the read queries (``ledger.queries``) on a live or time-travel connection:
the latest run per job, failures grouped by fingerprint, freshness in XNYS sessions, failed checks
and abandoned runs, with a summary of each. Frontends only render the document.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from ledger import queries
from ledger.fingerprint import message_template

# Freshness labels by sessions behind the latest completed session.
CURRENT, BEHIND, STALE, UNKNOWN = "current", "behind", "stale", "unknown"


def freshness_label(sessions_behind: int | None) -> str:
    if sessions_behind is None:
        return UNKNOWN
    return CURRENT if sessions_behind == 0 else BEHIND if sessions_behind == 1 else STALE


def freshness(marks: list[dict[str, Any]], *, latest_session: dt.date, calendar: Any) -> list[dict[str, Any]]:
    """Each (asset, scope) watermark with how many XNYS sessions its data date is behind
    ``latest_session`` (a weekend or a holiday is not a session behind), most behind first."""
    rows = []
    for m in marks:
        ts = m.get("watermark_ts")
        day = ts.date() if isinstance(ts, dt.datetime) else None
        behind = calendar.sessions_behind(day, latest_session) if day else None
        rows.append({**m, "watermark": day, "sessions_behind": behind, "freshness": freshness_label(behind)})
    rows.sort(key=lambda r: (r["sessions_behind"] is None, -(r["sessions_behind"] or 0), r["asset_key"], r["scope_key"]))
    return rows


def failure_groups(con: duckdb.DuckDBPyConnection, *, since: dt.datetime, limit: int) -> list[dict[str, Any]]:
    """Failed runs grouped by error fingerprint, each with its message template (numbers, dates,
    ids and paths masked)."""
    groups = queries.failure_groups(con, since=since, limit=limit)
    for g in groups:
        g["message_template"] = message_template(g["latest_message"] or "")
    return groups


def report(
    con: duckdb.DuckDBPyConnection,
    *,
    reference: dt.datetime,
    latest_session: dt.date,
    calendar: Any,
    days: int,
    limit: int,
) -> dict[str, Any]:
    """The report's sections, read from ``con`` (live or as of a seq), as the ledger stood at ``reference``."""
    since = reference - dt.timedelta(days=days)
    latest = queries.latest_runs(con, limit=limit)
    checks = queries.failed_checks(con, since=since, limit=limit)
    abandoned = queries.abandoned_runs(con, since=since, limit=limit)
    marks = freshness(queries.watermarks(con, limit=1_000_000), latest_session=latest_session, calendar=calendar)
    return {
        "latest_runs": latest,
        "recent_failures": queries.recent_failures(con, since=since, limit=limit),
        "failure_groups": failure_groups(con, since=since, limit=limit),
        "watermarks": marks,
        "failed_checks": checks,
        "abandoned_runs": abandoned,
        "counts": queries.counts(con),
        "summary": {
            "jobs": len(latest),
            "latest_failed": sum(1 for r in latest if r["status"] == "failed"),
            "behind": sum(1 for m in marks if (m["sessions_behind"] or 0) > 0),
            "failed_checks": len(checks),
            "abandoned": len(abandoned),
        },
    }


__all__ = ["freshness", "freshness_label", "report"]
