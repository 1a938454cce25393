"""The state every command receives: ``ctx.obj`` is the one frozen ``Settings``, built by the root
callback from the global flags, the environment and the config file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ledger.config import Settings


def settings(ctx: typer.Context, duckdb_path: str | None = None) -> Settings:
    """The Settings; a command-level ``--duckdb-path`` overrides the global one."""
    import attrs

    from ledger.config import Settings, get_duckdb_path

    root = ctx.find_root()
    base = root.obj if isinstance(root.obj, Settings) else Settings()
    if duckdb_path:
        return attrs.evolve(base, duckdb_path=get_duckdb_path(duckdb_path))
    return base


def start_reading(*, json: bool, tables: bool = True) -> None:
    """The start of a command that reads the ledger: DuckDB builds this process's instance on
    another thread (it releases the GIL while it does, ~30 ms) while this one imports what the
    output needs (rich's console, and its tables if ``tables``: ~30 ms), or whatever the command
    imports next: 11-31 ms off each read command (docs/performance.md). ``json``: the output is one
    JSON document, which needs no rich."""
    from frontends.cli import render
    from ledger.connection import warm_up

    warm_up()
    if not json:
        render.load_rich(tables=tables)


def debug(ctx: typer.Context) -> bool:
    return bool(ctx.find_root().meta.get("debug"))


__all__ = ["debug", "settings", "start_reading"]
