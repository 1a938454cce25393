"""`options-helper health`, `runs`, `runs show RUN_ID`, `events`: read the ledger."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from frontends.cli import render
from frontends.cli.context import settings, start_reading
from frontends.cli.options import AsOfSeqOrTime, DbPath, Json

if TYPE_CHECKING:
    from ledger import Ledger
    from ledger.config import Settings

runs_app = typer.Typer(invoke_without_command=True)


def _parse_as_of(text: str | None) -> tuple[int | None, dt.datetime | None]:
    if not text or text.strip().lower() == "latest":  # latest: the ledger as it stands
        return None, None
    if text.isdigit():
        return int(text), None
    from ledger.errors import UsageError

    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of takes a seq (e.g. 1200) or a timestamp (e.g. 2026-11-25T21:00:00Z), not {text!r}") from None
    return None, when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def empty_health(path: str) -> dict[str, Any]:
    return {"database_path": path, "database_exists": False, "schema_version": 0, "last_seq": 0,
            "latest_runs": [], "recent_failures": [], "watermarks": [], "failed_checks": [],
            "abandoned_runs": [], "hint": "no database yet: run `options-helper db init` or `make demo`"}


def health(
    ctx: typer.Context,
    as_of: AsOfSeqOrTime = None,
    days: Annotated[int, typer.Option(help="Window for failures, failed checks and abandoned runs.")] = 7,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """The health report: latest run per job, failures, freshness, failed checks, abandoned runs.

    Freshness is counted in XNYS sessions behind the latest completed session.
    Example: options-helper health --json    |    options-helper health --as-of 1200
    """
    start_reading(json=json)
    s = settings(ctx, duckdb_path)
    if not s.duckdb_path.exists():
        doc = empty_health(str(s.duckdb_path))
    else:
        seq, when = _parse_as_of(as_of)
        doc = _reader(s).health(as_of_seq=seq, as_of_time=when, days=days)
    if json:
        render.print_json(doc)
        return
    _render_health(doc)


def _reader(s: Settings) -> Ledger:
    """The ledger of ``s``, read-only: these commands never create, migrate or write it."""
    from ledger import Ledger

    return Ledger.from_settings(s, read_only=True)


def _render_health(doc: dict[str, Any]) -> None:
    if not doc.get("database_exists", True):
        render.err.print(f"[yellow]{doc['database_path']}: {doc['hint']}[/yellow]")
        return
    render.out.print(f"[bold]Ledger[/bold] {doc['database_path']}  schema v{doc['schema_version']}  "
                     f"last seq {doc['last_seq']}  latest completed session {doc.get('latest_completed_session')}")
    render.table("Latest run per job", doc["latest_runs"],
                 ["job_name", "status", "triggered_by", "started_at", "duration_ms", "partition_key", "run_id"])
    render.table("Recent failures", doc["recent_failures"], ["started_at", "job_name", "error_type", "error_message", "run_id"])
    render.table("Failures by fingerprint", doc["failure_groups"],
                 ["failures", "jobs", "error_type", "message_template", "latest_at", "latest_run_id"])
    render.table("Freshness (XNYS sessions behind)", doc["watermarks"],
                 ["asset_key", "scope_key", "watermark", "sessions_behind", "freshness", "last_run_id"])
    render.table("Failed checks", doc["failed_checks"], ["checked_at", "asset_key", "partition_key", "scope_key", "check_name", "severity", "message"])
    render.table("Abandoned runs", doc["abandoned_runs"], ["started_at", "job_name", "partition_key", "run_id"])


@runs_app.callback()
def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 50,
    status: Annotated[str | None, typer.Option(help="Only this status: started, success, failed, abandoned.", show_default=False)] = None,
    job: Annotated[str | None, typer.Option(help="Only this job.", show_default=False)] = None,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """List runs, newest first. Example: options-helper runs --status failed --json"""
    if ctx.invoked_subcommand is not None:
        ctx.meta["runs_duckdb_path"] = duckdb_path
        return
    start_reading(json=json)
    s = settings(ctx, duckdb_path)
    rows = [] if not s.duckdb_path.exists() else _reader(s).runs(limit=limit, status=status, job=job)
    if json:
        render.print_json({"database_path": str(s.duckdb_path), "runs": rows})
        return
    render.table("Runs", rows, ["run_id", "job_name", "status", "triggered_by", "partition_key", "started_at", "duration_ms", "error_type"])


@runs_app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run id (see `options-helper runs`).")],
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """One run: its row, its events in order, its assets and checks.

    Example: options-helper runs show 01a2174d-524f-7316-811b-adee99c010f9
    """
    start_reading(json=json)
    s = settings(ctx, duckdb_path or ctx.meta.get("runs_duckdb_path"))
    detail = _reader(s).run_detail(run_id)
    if json:
        render.print_json(detail)
        return
    r = detail["run"]
    render.out.print(f"[bold]{r['job_name']}[/bold] {r['run_id']}  {render._style('status', r['status'])}  "
                     f"triggered by {r['triggered_by']}  partition {r['partition_key']}")
    if r.get("error_message"):
        render.err.print(f"[red]{r['error_type']}: {r['error_message']}[/red]")
    render.table("Events", detail["events"], ["seq", "event_type", "recorded_at", "asset_key", "partition_key", "scope_key"])
    render.table("Assets", detail["assets"], ["asset_key", "partition_key", "scope_key", "status", "rows_inserted", "bytes_written", "path"])
    render.table("Checks", detail["checks"], ["asset_key", "scope_key", "check_name", "severity", "status", "message"])


def events(
    ctx: typer.Context,
    run: Annotated[str | None, typer.Option("--run", help="Only this run's events.", show_default=False)] = None,
    since: Annotated[int, typer.Option(help="Only events after this seq.")] = 0,
    limit: Annotated[int, typer.Option(min=1, help="At most this many events.")] = 200,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """The event log itself, in seq order. Example: options-helper events --since 100 --json"""
    import attrs

    start_reading(json=json)
    s = settings(ctx, duckdb_path)
    stored = [] if not s.duckdb_path.exists() else _reader(s).events(since, limit, run_id=run)
    rows = [{"seq": e.seq, "event_type": e.event_type, "recorded_at": e.recorded_at, "hash": e.hash,
             **{k: v for k, v in attrs.asdict(e.event).items()}} for e in stored]
    if json:
        render.print_json({"events": rows})
        return
    render.table("Events", rows, ["seq", "event_type", "recorded_at", "run_id", "asset_key", "partition_key", "scope_key"])


def register(app: typer.Typer) -> None:
    app.command("health")(health)
    app.command("events")(events)
