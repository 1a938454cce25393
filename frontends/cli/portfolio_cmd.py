"""`options-helper portfolio validate [PATH]` and `portfolio show`: render ``stages.portfolio``.

The portfolio file is found by ``--portfolio PATH`` > ``OPTIONS_HELPER_PORTFOLIO`` >
``portfolio = "..."`` in options-helper.toml > ``./portfolio.json`` (see docs/portfolio.md).
A bad file exits with code 13 and one line naming the position and the field.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from frontends.cli import render
from frontends.cli.context import settings
from frontends.cli.options import AsOfStored, DbPath, Json

PortfolioPath = Annotated[str | None, typer.Option(
    "--portfolio", help="The portfolio file (default: $OPTIONS_HELPER_PORTFOLIO, options-helper.toml, ./portfolio.json).",
    show_default=False)]

portfolio_app = typer.Typer(no_args_is_help=True)


def _chosen(ctx: typer.Context, path: str | None) -> str:
    from ledger.errors import UsageError

    if path:
        return path
    configured = settings(ctx).portfolio
    if configured is None:
        from stages.portfolio.report import NO_PORTFOLIO

        raise UsageError(f"{NO_PORTFOLIO}; or name the file: options-helper portfolio validate PATH")
    return str(configured)


@portfolio_app.command("validate")
def validate(
    ctx: typer.Context,
    path: Annotated[str | None, typer.Argument(help="The file to check (default: the configured portfolio).",
                                               show_default=False)] = None,
    json: Json = False,
) -> None:
    """Check a portfolio file: exit 0 when it is valid, else 13 with the position and field at fault.

    Example: options-helper portfolio validate examples/portfolio.json
    """
    from stages.portfolio import load_portfolio

    loaded = load_portfolio(_chosen(ctx, path))
    p = loaded.portfolio
    doc = {"path": str(loaded.path), "sha256": loaded.sha256, "valid": True, "positions": len(p.positions),
           "legs": sum(len(x.legs) for x in p.positions), "symbols": list(p.symbols)}
    if json:
        render.print_json(doc)
        return
    render.err.print(f"[green]ok[/green]: {loaded.path} holds {doc['positions']} position(s), {doc['legs']} leg(s) on "
                     f"{', '.join(p.symbols) or 'no underlyings'} (sha256 {loaded.sha256[:12]})")


@portfolio_app.command("show")
def show(
    ctx: typer.Context,
    as_of: AsOfStored = "latest",
    portfolio: PortfolioPath = None,
    duckdb_path: DbPath = None,
    json: Json = False,
) -> None:
    """Value the portfolio from the session's stored chain snapshots: positions, exposure, stress.

    Marks, P&L, P&L %, spread %, DTE and Greeks per position; delta, gamma, theta and vega totals;
    spot +/-5 %, IV +/-5 points, +7 days and the combined worst case by full repricing.
    Example: options-helper portfolio show --as-of 2026-11-25 --json
    """
    import attrs

    from ledger.calendar import parse_date
    from ledger.config import get_portfolio_path
    from stages import portfolio as pf
    from stages.analytics import portfolio_view

    s = settings(ctx, duckdb_path)
    if portfolio:
        s = attrs.evolve(s, portfolio=get_portfolio_path(portfolio))
    day = None if as_of.strip().lower() == "latest" else parse_date(as_of)
    report = pf.show(s, as_of=day)
    doc = report.to_dict()
    if json:
        render.print_json(doc)
        return
    sys.stdout.write("\n".join(portfolio_view.markdown(doc)).rstrip() + "\n")
    sys.stdout.flush()


__all__ = ["portfolio_app"]
