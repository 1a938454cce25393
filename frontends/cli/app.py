"""The ``options-helper`` command line: thin commands over the Python API.

One error boundary (``main``) maps errors to the exit codes documented in docs/cli.md.
Heavy modules (duckdb, pyarrow, dagster, streamlit, alpaca) are imported inside commands.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from ledger.errors import OptionsHelperError

app = typer.Typer(
    name="options-helper",
    help="A local-first daily options market-data pipeline with an append-only run ledger in DuckDB.\n\n"
    "Example: options-helper daily --as-of 2026-11-25   then   options-helper health",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)

EXIT_OK, EXIT_BUG, EXIT_USAGE = 0, 1, 2


@app.callback()
def root(
    ctx: typer.Context,
    duckdb_path: Annotated[str | None, typer.Option("--duckdb-path", help="Ledger/warehouse file (default: $OPTIONS_HELPER_DUCKDB_PATH, options-helper.toml, data/warehouse/options.duckdb).", show_default=False)] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Market data provider: synthetic or alpaca (default: $OPTIONS_HELPER_PROVIDER, config file, synthetic).", show_default=False)] = None,
    data_root: Annotated[str | None, typer.Option("--data-root", help="Root of the data lake and reports (default: data).", show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    from ledger.config import load_settings

    ctx.meta["debug"] = debug
    ctx.obj = load_settings(duckdb_path=duckdb_path, provider=provider, data_root=data_root)


# Command groups, each in its own module (name, module, attribute, help).
_GROUPS = (
    ("db", "frontends.cli.db_cmd", "db_app", "Create, migrate, verify, rebuild and reap the ledger database."),
    ("runs", "frontends.cli.ledger_cmd", "runs_app", "List runs, or show one run's timeline."),
    ("provider", "frontends.cli.provider_cmd", "provider_app", "Check the market data provider."),
    ("ingest", "frontends.cli.pipeline_cmd", "ingest_app", "Ingest candles or option bars."),
    ("backfill", "frontends.cli.gaps_cmd", "backfill_app", "Fill gaps: plan, run, resume, status."),
)
# Single commands registered by modules: (module, attribute) with a `register(app)` function.
_COMMAND_MODULES = (
    "frontends.cli.ledger_cmd",
    "frontends.cli.pipeline_cmd",
    "frontends.cli.gaps_cmd",
    "frontends.cli.portal_cmd",
)


def _optional_module(name: str):  # type: ignore[no-untyped-def]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


for _name, _module, _attr, _help in _GROUPS:
    _mod = _optional_module(_module)
    if _mod is not None and hasattr(_mod, _attr):
        app.add_typer(getattr(_mod, _attr), name=_name, help=_help)
for _module in _COMMAND_MODULES:
    _mod = _optional_module(_module)
    if _mod is not None and hasattr(_mod, "register"):
        _mod.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the one error boundary."""
    from typer.exceptions import TyperException

    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Without standalone mode click returns a typer.Exit's code instead of raising it.
        result = command.main(args=args, prog_name="options-helper", standalone_mode=False)
        return result if isinstance(result, int) else EXIT_OK
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        typer.secho("aborted", fg="red", err=True)
        return 130
    except TyperException as e:  # typer's bundled click: usage errors, bad parameters
        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            typer.secho(f"error: {e}", fg="red", err=True)
        return int(getattr(e, "exit_code", EXIT_USAGE) or EXIT_USAGE)
    except OptionsHelperError as e:
        if debug:
            import traceback

            traceback.print_exc()
        typer.secho(f"error: {e}", fg="red", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.secho("interrupted", fg="red", err=True)
        return 130
    except Exception as e:  # a bug: say so, and how to see more
        if debug:
            import traceback

            traceback.print_exc()
        import os

        from ledger.redact import known_secret_values, redact_text

        message = redact_text(str(e), known_secret_values(os.environ))
        typer.secho(f"internal error: {type(e).__name__}: {message} (rerun with --debug for the traceback)",
                    fg="red", err=True)
        return EXIT_BUG


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
