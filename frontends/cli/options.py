"""The options commands share, declared once: a command imports them from here instead of spelling
its own ``typer.Option``. Importing this module costs typer only (``--help`` stays fast).

    from frontends.cli.options import AsOf, DbPath, Json, Symbols, Watchlist

    def daily(ctx: typer.Context, as_of: AsOf = None, symbols: Symbols = None, ...,
              duckdb_path: DbPath = None, json: Json = False) -> None: ...
"""

from __future__ import annotations

from typing import Annotated

import typer

DbPath = Annotated[str | None, typer.Option(
    "--duckdb-path", help="Database file (overrides the global option).", show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

# -- which sessions and symbols ------------------------------------------------------------------
AsOf = Annotated[str | None, typer.Option(
    "--as-of", help="Session YYYY-MM-DD, or latest (the default: the latest completed XNYS session).",
    show_default=False)]
AsOfStored = Annotated[str, typer.Option(
    "--as-of", help="A session YYYY-MM-DD, or latest (the default): the newest session with stored option "
    "snapshots of the symbols concerned (for commands that read stored data only).")]
Start = Annotated[str | None, typer.Option(
    "--start", help="First session (YYYY-MM-DD; default: 20 sessions before --end).", show_default=False)]
End = Annotated[str | None, typer.Option(
    "--end", help="Last session (default: the latest completed XNYS session).", show_default=False)]
Symbols = Annotated[str | None, typer.Option(
    "--symbols", help="Comma-separated tickers, e.g. SPY,AAPL (default: the default watchlist and the portfolio's "
    "underlyings).", show_default=False)]
Watchlist = Annotated[str | None, typer.Option(
    "--watchlist", help="A watchlist from options-helper.toml instead of --symbols.", show_default=False)]
Assets = Annotated[list[str] | None, typer.Option(
    "--assets", help="Assets (comma-separated or repeated; default: all).", show_default=False)]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Skip symbols already materialized for the session by this code version.")]

# -- reading the ledger as it stood ----------------------------------------------------------------
AsOfSeqOrTime = Annotated[str | None, typer.Option(
    "--as-of", help="Answer as the ledger stood at a seq or timestamp (latest: now, the default).",
    show_default=False)]

__all__ = ["AsOf", "AsOfSeqOrTime", "AsOfStored", "Assets", "DbPath", "End", "Json", "Resume", "Start", "Symbols", "Watchlist"]
