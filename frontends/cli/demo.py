"""`make demo`: the real pipeline on a fresh machine, offline.

Runs ``daily`` on the synthetic provider for the default watchlist and the example portfolio's
underlyings (``examples/portfolio.json``, unless a portfolio is configured) over the last 20 XNYS
sessions, one session at a time, into the default database and data root (``data/``), after
taking the candles and option snapshots of the session before the first (the first session's
flow compares with them, so ``options-helper gaps`` over the demo's window finds nothing to
fix); then prints the health report, the paths of the latest briefing and dashboard, the
briefing's opening Portfolio section, and the result of ``db verify``. Re-running it is cheap:
partitions already materialized by the current code are skipped (``resume``), so only missing
or failed cells are redone.

    python -m frontends.cli.demo [--sessions 20] [--as-of YYYY-MM-DD|latest] [--symbols A,B] [--duckdb-path PATH] [--data-root DIR]
                                 [--portfolio PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

EXAMPLE_PORTFOLIO = Path(__file__).resolve().parents[2] / "examples" / "portfolio.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m frontends.cli.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="how many sessions, ending at --as-of (default 20)")
    p.add_argument("--as-of", default=None, help="the last session, or latest (default: the latest completed XNYS session)")
    p.add_argument("--symbols", default=None, help="comma-separated tickers (default: the default watchlist and the portfolio's underlyings)")
    p.add_argument("--duckdb-path", default=None, help="database file (default: data/warehouse/options.duckdb)")
    p.add_argument("--data-root", default=None, help="data lake and reports (default: data)")
    p.add_argument("--portfolio", default=None,
                   help="portfolio file (default: the configured one, else examples/portfolio.json)")
    return p


def portfolio_section(markdown: str) -> str:
    """The briefing's ``## Portfolio`` section (up to the next heading or the symbols' summary table)."""
    lines = markdown.splitlines()
    if "## Portfolio" not in lines:
        return ""
    start = lines.index("## Portfolio")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("## ", "| Symbol |"))), len(lines))
    return "\n".join(lines[start:end]).rstrip()


def main(argv: list[str] | None = None) -> int:
    import attrs

    import ledger
    import stages
    from frontends.cli import render
    from frontends.cli.app import main as cli
    from ledger.calendar import TradingCalendar
    from ledger.config import load_settings
    from ledger.errors import OptionsHelperError
    from stages import datastore

    args = _parser().parse_args(argv)
    try:
        settings = attrs.evolve(load_settings(duckdb_path=args.duckdb_path, data_root=args.data_root,
                                              portfolio=args.portfolio), provider="synthetic")
        if settings.portfolio is None and EXAMPLE_PORTFOLIO.is_file():
            settings = attrs.evolve(settings, portfolio=EXAMPLE_PORTFOLIO)
        from stages.inputs import parse_as_of

        end = parse_as_of(args.as_of, settings)
        calendar = TradingCalendar.xnys()
        sessions = calendar.last_sessions(args.sessions, end)
        symbols = stages.resolve_symbols(args.symbols, settings)
    except OptionsHelperError as e:
        render.err.print(f"[red]error: {e}[/red]")
        return e.exit_code
    render.err.print(
        f"[bold]options-helper demo[/bold]: synthetic provider, {len(symbols)} symbols ({', '.join(symbols)}), "
        f"{len(sessions)} sessions {sessions[0]} .. {sessions[-1]}\n"
        f"  database {settings.duckdb_path}   data root {settings.data_root}   portfolio {settings.portfolio}"
    )
    started = time.perf_counter()
    failed: list[str] = []
    # The session before the window: what its first session's flow (and the planner's lookback) needs.
    before = calendar.previous_session(sessions[0])
    from stages.registry import INGEST_CANDLES, SNAPSHOT_OPTIONS

    for job in (INGEST_CANDLES, SNAPSHOT_OPTIONS):
        first = stages.run_job(job, as_of=before, symbols=symbols, settings=settings, triggered_by="cli", resume=True)
        if not first.ok:
            failed += [f"{before} {job}: {o.error}" for o in first.outcomes if o.status == "failed"]
    render.err.print(f"took the candles and snapshots of {before}, the session before the first")
    with render.progress() as bar:
        task = bar.add_task("sessions", total=len(sessions))
        for day in sessions:
            bar.update(task, description=f"daily {day}")
            result = stages.run_daily(as_of=day, symbols=symbols, settings=settings, triggered_by="cli", resume=True)
            ran = sum(r.run_id is not None for r in result.results)
            if not result.ok:
                failed += [f"{day} {r.job}: {r.error}" for r in result.results if not r.ok]
            if not bar.console.is_terminal:
                render.err.print(f"daily {day}: {result.status} ({ran} job runs, {result.seconds:.1f} s)")
            bar.advance(task)
    render.err.print(f"ran {len(sessions)} sessions in {time.perf_counter() - started:.1f} s")

    cli(["--duckdb-path", str(settings.duckdb_path), "health"])

    led = ledger.open(settings.duckdb_path, lock_timeout_seconds=settings.lock_timeout_seconds)
    with led.reader() as con:
        reports = datastore.report_files(con)
    latest: dict[str, str] = {}
    for row in reports:  # newest first
        latest.setdefault(row["kind"], str(Path(settings.data_root) / row["path"]))
    render.out.print("")
    for kind, label in (("briefing_markdown", "briefing"), ("briefing_json", "briefing (JSON)"),
                        ("dashboard_views", "dashboard")):
        render.out.print(f"latest {label}: {latest.get(kind, '(none)')}")
    briefing = Path(latest.get("briefing_markdown", ""))
    if briefing.is_file():
        section = portfolio_section(briefing.read_text(encoding="utf-8"))
        if section:
            sys.stdout.write(f"\nThe latest briefing opens with:\n\n{section}\n\n")
            sys.stdout.flush()
    report = led.verify()
    status = "OK" if report.ok else "FAILED: " + "; ".join(report.problems)
    render.out.print(f"db verify: {status} ({report.events_checked} events, last seq {report.last_seq})")
    for line in failed:
        render.err.print(f"[red]{line}[/red]")
    return 0 if report.ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
