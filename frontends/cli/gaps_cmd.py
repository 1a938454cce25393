"""`options-helper gaps` and `options-helper backfill [resume ID | status ID]`: thin over
``stages.planning.plan`` and ``stages.backfills``."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Annotated, Any

import typer

from frontends.cli import render
from frontends.cli.context import settings, start_reading
from frontends.cli.options import Assets, DbPath, End, Json, Start, Symbols, Watchlist
from ledger.errors import GapsFoundError, StageError

GAPS_FOUND = GapsFoundError.exit_code  # `gaps --check`: there are cells to fix (docs/cli.md)

MAX_ROWS = 40

backfill_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)


def _symbols(ctx: typer.Context, text: str | None, watchlist: str | None, duckdb_path: str | None) -> list[str] | None:
    """The universe: --symbols or --watchlist (validated), else None (the default watchlist)."""
    if watchlist is None:
        return [s for s in text.split(",") if s.strip()] if text else None
    import stages

    return list(stages.resolve_symbols(text, settings(ctx, duckdb_path), watchlist=watchlist))


def gaps(
    ctx: typer.Context,
    start: Start = None,
    end: End = None,
    assets: Assets = None,
    symbols: Symbols = None,
    watchlist: Watchlist = None,
    duckdb_path: DbPath = None,
    dagster: Annotated[bool, typer.Option("--dagster", help="Also give the equivalent Dagster partition ranges and backfill commands per asset.")] = False,
    check: Annotated[bool, typer.Option("--check", help=f"Exit {GAPS_FOUND} when there are cells to fix (for cron and CI).")] = False,
    json: Json = False,
) -> None:
    """Report missing, failed, stale and unrecoverable cells (asset x session x symbol) and the
    commands that fix them, upstream first. Weekends and XNYS holidays are never gaps.

    Example: options-helper gaps    |    options-helper gaps --start 2026-11-02 --symbols AAPL,MSFT --json    |    options-helper gaps --watchlist default --check
    """
    # The planner does no linear algebra: left alone, numpy's import starts OpenBLAS's pool of a
    # spinning thread per core (~30 ms of CPU, and more wall time on a busy machine).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    start_reading(json=json, tables=False)  # tables only if there are gaps
    from stages.planning import parse_window, plan  # numpy and the planner, while DuckDB starts

    s = settings(ctx, duckdb_path)
    lo, hi = parse_window(start, end)
    the_plan = plan(s, start=lo, end=hi, assets=assets, symbols=_symbols(ctx, symbols, watchlist, duckdb_path))
    doc = the_plan.to_dict()
    if dagster:
        from frontends.dagster.ranges import dagster_partition_ranges  # no dagster import

        doc["dagster_ranges"] = dagster_partition_ranges(doc)
    if json:
        render.print_json(doc)
    else:
        _render_plan(doc)
        if dagster:
            render.table("Dagster partition ranges", doc["dagster_ranges"],
                         ["asset_key", "partition_range", "sessions", "command"])
    if check and doc["cells_missing"]:
        raise GapsFoundError(f"{doc['cells_missing']:,} cells to fix in {doc['start']} .. {doc['end']}; "
                             "run the plan's commands, or all at once with `options-helper backfill`")


def _render_plan(doc: dict[str, Any]) -> None:
    reasons = ", ".join(f"{k} {v:,}" for k, v in doc["reasons"].items()) or "none"
    render.out.print(
        f"{doc['start']} .. {doc['end']}: {doc['sessions']} sessions, {len(doc['symbols'])} symbols, "
        f"{len(doc['assets'])} assets: {doc['cells_expected']:,} cells expected, "
        f"[bold]{doc['cells_missing']:,}[/bold] to fix, {doc['cells_unrecoverable']:,} unrecoverable ({reasons})")
    if not doc["ranges"]:
        render.out.print("[green]no gaps[/green]")
        return
    grouped: dict[tuple[str, str, str, str, int], list[str]] = defaultdict(list)
    for r in doc["ranges"]:
        grouped[(r["asset_key"], r["reason"], r["start"], r["end"], r["sessions"])].append(r["scope_key"])
    rows = [{"asset": a, "reason": why, "symbols": scopes, "start": lo, "end": hi, "sessions": n}
            for (a, why, lo, hi, n), scopes in grouped.items()]
    render.table("Gaps", rows[:MAX_ROWS], ["asset", "reason", "symbols", "start", "end", "sessions"])
    if len(rows) > MAX_ROWS:
        render.out.print(f"… {len(rows) - MAX_ROWS:,} more rows (use --json)")
    steps = [{"step": st["step"], "command": st["command"]} for st in doc["steps"]]
    render.table("Plan (run in order, or all at once with `options-helper backfill`)", steps[:MAX_ROWS], ["step", "command"])
    if len(steps) > MAX_ROWS:
        render.out.print(f"… {len(steps) - MAX_ROWS:,} more steps (use --json)")


def _progress_callback(bar: Any) -> Any:
    task = bar.add_task("backfill", total=None)

    def update(message: str, done: int, total: int) -> None:
        bar.update(task, description=message[:60], completed=done, total=total)

    return update


@backfill_app.callback()
def backfill(
    ctx: typer.Context,
    start: Start = None,
    end: End = None,
    assets: Assets = None,
    symbols: Symbols = None,
    watchlist: Watchlist = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only: show what would run.")] = False,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Fill the gaps of a window through the runner, upstream first, recorded as one backfill
    (its id is on every run it starts). Subcommands: `resume ID`, `status ID`.

    Example: options-helper backfill --start 2026-11-02 --end 2026-11-25    |    options-helper backfill --dry-run
    """
    if ctx.invoked_subcommand is not None:
        return
    from stages.backfills import backfill as run_backfill
    from stages.planning import parse_window

    s = settings(ctx, duckdb_path)
    lo, hi = parse_window(start, end)
    with render.progress(enabled=None if not json else False) as bar:
        result = run_backfill(s, start=lo, end=hi, assets=assets, symbols=_symbols(ctx, symbols, watchlist, duckdb_path),
                              dry_run=dry_run,
                              progress=_progress_callback(bar))
    _finish(result.to_dict(), json)
    if not result.ok:
        raise _failed(result.to_dict())


@backfill_app.command("resume")
def resume(
    ctx: typer.Context,
    backfill_id: Annotated[str, typer.Argument(help="The backfill id printed by `options-helper backfill`.")],
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Resume an interrupted backfill: run its cells not finished since it was planned.

    Example: options-helper backfill resume 0193a6c2-...
    """
    from stages.backfills import backfill_resume

    s = settings(ctx, duckdb_path)
    with render.progress(enabled=None if not json else False) as bar:
        result = backfill_resume(s, backfill_id, progress=_progress_callback(bar))
    _finish(result.to_dict(), json)
    if not result.ok:
        raise _failed(result.to_dict())


@backfill_app.command("status")
def status(
    ctx: typer.Context,
    backfill_id: Annotated[str, typer.Argument(help="The backfill id.")],
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Show a backfill's progress: cells done, failed and pending, per asset, and its runs.

    Example: options-helper backfill status 0193a6c2-... --json
    """
    from stages.backfills import backfill_status

    doc = backfill_status(settings(ctx, duckdb_path), backfill_id)
    if json:
        render.print_json(doc)
        return
    render.out.print(f"backfill {doc['backfill_id']}: [bold]{doc['status']}[/bold], planned {render.fmt(doc['planned_at'])}; "
                     f"{doc['cells_done']:,}/{doc['cells_total']:,} cells done, {doc['cells_failed']:,} failed, "
                     f"{doc['cells_pending']:,} pending; {doc['runs_total']} runs {dict(doc['runs'])}")
    rows = [{"asset": a, **c} for a, c in doc["by_asset"].items()]
    render.table("Cells per asset", rows, ["asset", "done", "failed", "pending"])
    if doc["resume_command"]:
        render.out.print(f"resume with: {doc['resume_command']}")


def _finish(doc: dict[str, Any], json: bool) -> None:
    if json:
        render.print_json(doc)
        return
    if doc["plan"] is not None and (doc["dry_run"] or doc["status"] == "nothing_to_do"):
        _render_plan(doc["plan"])
    if doc["dry_run"]:
        render.out.print(f"dry run: {doc['cells_total']:,} cells would run; nothing was recorded")
        return
    if doc["status"] == "nothing_to_do":
        return
    colour = "green" if doc["status"] == "success" else "red"
    render.out.print(
        f"backfill {doc['backfill_id']}: [{colour}]{doc['status']}[/{colour}]: {doc['cells_done']:,}/{doc['cells_total']:,} "
        f"cells done, {doc['cells_failed']:,} failed, {doc['cells_blocked']:,} blocked by a failed upstream, "
        f"{len(doc['jobs'])} runs in {doc['seconds']:.1f}s")
    if doc["status"] != "success":
        render.out.print(f"see: options-helper backfill status {doc['backfill_id']}; "
                         f"retry: options-helper backfill resume {doc['backfill_id']}")


def _failed(doc: dict[str, Any]) -> StageError:
    return StageError(
        f"backfill {doc['backfill_id']} {doc['status']}: {doc['cells_failed']:,} cells failed; see "
        f"`options-helper backfill status {doc['backfill_id']}`, retry with "
        f"`options-helper backfill resume {doc['backfill_id']}`"
    )


def register(app: typer.Typer) -> None:
    app.command("gaps")(gaps)


__all__ = ["backfill_app", "register"]
