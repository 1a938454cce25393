"""The pipeline's commands: `ingest candles`, `ingest options-bars`, `snapshot-options`, `flow`,
`derived`, `briefing`, `dashboard` and `daily`. Each parses its options, calls
``stages.run_job`` / ``stages.run_daily`` and renders the result; exit code 9 when a job failed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import typer

from frontends.cli import render
from frontends.cli.context import settings
from frontends.cli.options import AsOf, DbPath, Json, Resume, Symbols, Watchlist
from stages.registry import (
    BUILD_BRIEFING,
    BUILD_DASHBOARD,
    COMPUTE_DERIVED,
    INGEST_CANDLES,
    INGEST_OPTIONS_BARS,
    SNAPSHOT_OPTIONS,
)

ingest_app = typer.Typer(no_args_is_help=True)


def _session(text: str | None, s: Any) -> dt.date:
    from stages.inputs import parse_as_of

    return parse_as_of(text, s)


def _progress_callback(bar: Any) -> Callable[[str, int, int], None]:
    tasks: dict[str, Any] = {}

    def update(message: str, done: int, total: int) -> None:
        job = message.split(":", 1)[0]
        if job not in tasks:
            tasks[job] = bar.add_task(job, total=max(total, 1))
        bar.update(tasks[job], description=message, completed=done if total else 1, total=max(total, 1))

    return update


def _render_job(result: Any) -> None:
    rows = [{"symbol": o.scope_key, "status": o.status, "rows": o.rows, "path": o.path,
             "note": o.reason or o.error or ""} for o in result.outcomes]
    render.table(f"{result.job} {result.as_of} (run {result.run_id or 'none: nothing to do'})", rows,
                 ["symbol", "status", "rows", "path", "note"])
    failed_checks = [c for c in result.checks if c.status == "fail"]
    for c in failed_checks:
        colour = "red" if c.severity == "error" else "yellow"
        render.err.print(f"[{colour}]check {c.check_name} ({c.severity}) failed for {c.scope_key}: {c.message}[/{colour}]")


def _finish(result: Any, *, json: bool) -> None:
    from ledger.errors import StageError

    if json:
        render.print_json(result.to_dict())
    if not result.ok:
        raise StageError(result.error if hasattr(result, "error") else
                         "; ".join(f"{r.job}: {r.error}" for r in result.results if not r.ok))


def _run(ctx: typer.Context, job: str, *, as_of: str | None, symbols: str | None, watchlist: str | None,
         resume: bool, duckdb_path: str | None, json: bool) -> None:
    import stages

    s = settings(ctx, duckdb_path)
    session = _session(as_of, s)
    names = stages.resolve_symbols(symbols, s, watchlist=watchlist) if symbols or watchlist else None
    with render.progress() as bar:
        result = stages.run_job(job, as_of=session, symbols=names, settings=s, triggered_by="cli",
                                progress=_progress_callback(bar), resume=resume)
    if not json:
        _render_job(result)
    _finish(result, json=json)


def _job_command(job: str, doc: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        as_of: AsOf = None,
        symbols: Symbols = None,
        watchlist: Watchlist = None,
        resume: Resume = False,
        duckdb_path: DbPath = None,
        json: Json = False,
    ) -> None:
        _run(ctx, job, as_of=as_of, symbols=symbols, watchlist=watchlist, resume=resume,
             duckdb_path=duckdb_path, json=json)

    command.__doc__ = doc
    command.__name__ = job
    return command


_DOCS = {
    INGEST_CANDLES: "Ingest daily candles (OHLCV, vwap, trade count) for a session; backfills missing history.\n\n"
                    "Example: options-helper ingest candles --as-of 2026-11-25 --symbols SPY,AAPL",
    INGEST_OPTIONS_BARS: "Discover contracts and ingest the session's daily bars of those near the money.\n\n"
                         "Example: options-helper ingest options-bars --as-of 2026-11-25 --watchlist default",
    SNAPSHOT_OPTIONS: "Snapshot full option chains to Parquet (one file per symbol and session).\n\n"
                      "Example: options-helper snapshot-options --as-of 2026-11-25 --symbols SPY --json",
    COMPUTE_DERIVED: "Compute derived metrics (put/call, walls, ATM IV, expected move, skew, RV, IV rank).\n\n"
                     "Example: options-helper derived --as-of 2026-11-25 --symbols SPY",
    BUILD_BRIEFING: "Write the session's briefing: data/reports/briefing/YYYY-MM-DD.md and .json.\n\n"
                    "Example: options-helper briefing --as-of 2026-11-25",
    BUILD_DASHBOARD: "Write the session's self-contained HTML dashboard with a ledger health summary.\n\n"
                     "Example: options-helper dashboard --as-of 2026-11-25",
}

ingest_app.command("candles")(_job_command(INGEST_CANDLES, _DOCS[INGEST_CANDLES]))
ingest_app.command("options-bars")(_job_command(INGEST_OPTIONS_BARS, _DOCS[INGEST_OPTIONS_BARS]))


def daily(
    ctx: typer.Context,
    as_of: AsOf = None,
    symbols: Symbols = None,
    watchlist: Watchlist = None,
    resume: Resume = False,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Run every stage for a session: candles, options bars, snapshots, flow, derived, briefing, dashboard.

    A symbol whose upstream stage failed is skipped downstream. Exit code 9 if any job failed.
    Example: options-helper daily --as-of 2026-11-25 --json
    """
    import stages

    s = settings(ctx, duckdb_path)
    session = _session(as_of, s)
    names = stages.resolve_symbols(symbols, s, watchlist=watchlist) if symbols or watchlist else None
    with render.progress() as bar:
        result = stages.run_daily(as_of=session, symbols=names, settings=s, triggered_by="cli",
                                  progress=_progress_callback(bar), resume=resume)
    if not json:
        rows = [{"job": r.job, "status": r.status, "success": len(r.scopes("success")),
                 "failed": len(r.scopes("failed")), "skipped": len(r.scopes("skipped")),
                 "seconds": round(r.seconds, 2), "error": r.error or ""} for r in result.results]
        render.table(f"daily {result.as_of}", rows, ["job", "status", "success", "failed", "skipped", "seconds", "error"])
        for r in result.results:
            for o in r.outcomes:
                if o.status == "failed":
                    render.err.print(f"[red]{r.job} {o.scope_key}: {o.error}[/red]")
    _finish(result, json=json)


def register(app: typer.Typer) -> None:
    for job, name in ((SNAPSHOT_OPTIONS, "snapshot-options"), (COMPUTE_DERIVED, "derived"),
                      (BUILD_BRIEFING, "briefing"), (BUILD_DASHBOARD, "dashboard")):
        app.command(name)(_job_command(job, _DOCS[job]))
    app.command("daily")(daily)


__all__ = ["daily", "ingest_app", "register"]
