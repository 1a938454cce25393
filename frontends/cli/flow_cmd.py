"""`options-helper flow`: compute the session's flow if needed, then print the flow console of the
older tool (reference 2.4): per symbol a header line, the top building and unwinding zones by
|net ΔOI$| and the line of what expired, over a window of session pairs and a grouping."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from frontends.cli import render
from frontends.cli.context import settings
from frontends.cli.options import AsOf, DbPath, Json, Resume, Symbols, Watchlist
from frontends.cli.pipeline_cmd import _progress_callback, _render_job
from stages.analytics.briefing import short_money

HELP = "Compute open-interest and volume flow, then show building and unwinding zones per symbol."


def _count(value: Any) -> str:
    return "—" if value is None else f"{float(value):+,.0f}"


def header(s: Any) -> str:
    """The original's header: ``SYM flow FROM → TO | calls ΔOI$=… | puts ΔOI$=…`` (window 1), or
    ``SYM flow net window=N (FROM → TO) | group-by=G | …``; then the span when it is not one session."""
    calls, puts = short_money(s.calls_delta_oi_notional), short_money(s.puts_delta_oi_notional)
    span = f"{s.from_date} → {s.to_date}"
    if s.window == 1:
        line = f"{s.symbol} flow {span} | calls ΔOI$={calls} | puts ΔOI$={puts}"
    else:
        line = f"{s.symbol} flow net window={s.window} ({span}) | group-by={s.group_by} | calls ΔOI$={calls} | puts ΔOI$={puts}"
    if s.gap_sessions != s.pairs:
        line += f" | {s.gap_sessions} sessions"
    return line


def expired_line(s: Any) -> str:
    if not s.expired_contracts:
        line = "expired: none"
    else:
        line = (f"expired: {s.expired_contracts:,} contract{'s' if s.expired_contracts != 1 else ''}, open interest {s.expired_oi or 0:,.0f} rolled off "
                f"({short_money(-(s.expired_notional or 0.0)).lstrip('-')}); not counted as flow")
    if s.disappeared_contracts:
        n = s.disappeared_contracts
        line += f"; {n:,} contract{'s' if n != 1 else ''} vanished before expiry (unknown change, not counted)"
    return line


_ZONE_COLUMNS = {
    "contract": ["expiry", "type", "strike", "contract", "ΔOI", "OI", "ΔOI$", "class"],
    "strike": ["type", "strike", "ΔOI", "OI", "ΔOI$", "class"],
    "expiry": ["type", "expiry", "ΔOI", "OI", "ΔOI$", "class"],
    "expiry-strike": ["type", "expiry", "strike", "ΔOI", "OI", "ΔOI$", "class"],
}


def _zone_rows(rows: Any) -> list[dict[str, Any]]:
    return [{"expiry": r["expiry"], "type": r["option_type"], "strike": r["strike"], "contract": r["contract_symbol"],
             "ΔOI": _count(r["delta_oi"]), "OI": "—" if r["oi_end"] is None else f"{r['oi_end']:,.0f}",
             "ΔOI$": short_money(r["delta_oi_notional"]), "class": r["flow_class"]} for r in rows]


def render_view(view: Any) -> None:
    """The human console: header, building zones, unwinding zones, the expired line, per symbol."""
    out = render.out
    for s in view.symbols:
        if not s.pairs:
            out.print(f"[yellow]{s.note}[/yellow]")
            continue
        out.print(header(s), style="bold", markup=False)
        if s.note:
            out.print(f"[yellow]{s.note}[/yellow]")
        columns = _ZONE_COLUMNS[s.group_by]
        render.table(f"building zones (top {view.top} by |net ΔOI$|)", _zone_rows(s.building), columns)
        render.table(f"unwinding zones (top {view.top} by |net ΔOI$|)", _zone_rows(s.unwinding), columns)
        out.print(expired_line(s))
        out.print("")


def flow(
    ctx: typer.Context,
    as_of: AsOf = None,
    symbols: Symbols = None,
    watchlist: Watchlist = None,
    window: Annotated[int, typer.Option("--window", help="Net this many session pairs ending at --as-of (1-30).")] = 1,
    group_by: Annotated[str, typer.Option("--group-by", help="contract, strike, expiry or expiry-strike.")] = "contract",
    top: Annotated[int, typer.Option("--top", help="Rows per zone (1-100).")] = 10,
    resume: Resume = False,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Compute open-interest and volume flow, then show building and unwinding zones per symbol.

    Flow for a session compares its snapshot with the latest earlier one (the previous session's,
    or after a missed session one at most flow_max_gap_sessions back). Contracts that expired
    are not flow: they are left out of every zone and total and shown on the "expired" line.
    The session's flow is computed first (with --resume, only for symbols not yet materialized by
    this code); windows over 1 are netted from the stored one-session rows, computing the earlier
    pairs that are not stored. Exit code 9 if a computation failed for a symbol.
    Example: options-helper flow --as-of 2026-11-23 --symbols SPY --window 5 --group-by strike --top 5
    """
    import stages
    from ledger.errors import StageError
    from stages.flow_view import check_options, flow_view

    check_options(window, group_by, top)
    s = settings(ctx, duckdb_path)
    from stages.inputs import parse_as_of

    session = parse_as_of(as_of, s)
    names = stages.resolve_symbols(symbols, s, watchlist=watchlist)
    with render.progress() as bar:
        view = flow_view(s, as_of=session, symbols=names, window=window, group_by=group_by, top=top,
                         refresh=True, resume=resume, triggered_by="cli", progress=_progress_callback(bar))
    if json:
        render.print_json(view.to_dict())
    else:
        for run in view.runs:
            if run.run_id is not None:
                _render_job(run)
        render_view(view)
    if not view.ok:
        failures = [f"flow {run.as_of} {o.scope_key}: {o.error}" for run in view.runs for o in run.outcomes
                    if o.status == "failed"]
        raise StageError("; ".join(failures) or "the flow computation failed")


def register(app: typer.Typer) -> None:
    app.command("flow")(flow)


__all__ = ["HELP", "expired_line", "flow", "header", "register", "render_view"]
