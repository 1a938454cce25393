"""The ``options-helper`` command line: thin commands over the Python API.

One error boundary (``main``) maps errors to the exit codes documented in docs/cli.md.
Heavy modules (duckdb, pyarrow, dagster, streamlit, alpaca) are imported inside commands, and a
command's module only when that command runs or shows its help: ``options-helper --help`` lists
the commands from ``COMMANDS`` and imports none of them (start-up is typer plus this module).
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

# Every command of the root, in the order the root --help lists them: (name, module, attribute,
# help). ``attribute`` is a command group (a ``typer.Typer``) or a ``register(app)`` function adding
# single commands. ``help`` is the group's help, or the command's first paragraph: what the root
# --help lists without importing the module (tests/cli/test_app.py checks it against the command).
COMMANDS: tuple[tuple[str, str, str, str], ...] = (
    ("health", "frontends.cli.ledger_cmd", "register",
     "The health report: latest run per job, failures, freshness, failed checks, abandoned runs."),
    ("events", "frontends.cli.ledger_cmd", "register",
     "The event log itself, in seq order. Example: options-helper events --since 100 --json"),
    ("snapshot-options", "frontends.cli.pipeline_cmd", "register",
     "Snapshot full option chains to Parquet (one file per symbol and session)."),
    ("flow", "frontends.cli.flow_cmd", "register",
     "Compute open-interest and volume flow, then show building and unwinding zones per symbol."),
    ("derived", "frontends.cli.pipeline_cmd", "register",
     "Compute derived metrics (put/call, walls, ATM IV, expected move, skew, RV, IV rank)."),
    ("briefing", "frontends.cli.pipeline_cmd", "register",
     "Write the session's briefing: data/reports/briefing/YYYY-MM-DD.md and .json."),
    ("dashboard", "frontends.cli.pipeline_cmd", "register",
     "Write the session's self-contained HTML dashboard with a ledger health summary."),
    ("daily", "frontends.cli.pipeline_cmd", "register",
     "Run every stage for a session: candles, options bars, snapshots, flow, derived, briefing, dashboard."),
    ("portfolio", "frontends.cli.portfolio_cmd", "portfolio_app",
     "Check the portfolio file and value it from the stored snapshots: positions, exposure, stress."),
    ("gaps", "frontends.cli.gaps_cmd", "register",
     "Report missing, failed, stale and unrecoverable cells (asset x session x symbol) and the\n"
     "commands that fix them, upstream first. Weekends and XNYS holidays are never gaps."),
    ("portal", "frontends.cli.portal_cmd", "register",
     "Start the read-only Streamlit portal: Health, Gaps, Runs, Data, Symbol, Portfolio."),
    ("db", "frontends.cli.db_cmd", "db_app", "Create, migrate, verify, rebuild and reap the ledger database."),
    ("runs", "frontends.cli.ledger_cmd", "runs_app", "List runs, or show one run's timeline."),
    ("provider", "frontends.cli.provider_cmd", "provider_app", "Check the market data provider."),
    ("ingest", "frontends.cli.pipeline_cmd", "ingest_app", "Ingest candles or option bars."),
    ("backfill", "frontends.cli.gaps_cmd", "backfill_app", "Fill gaps: plan, run, resume, status."),
    ("lineage", "frontends.cli.lineage_cmd", "lineage_app", "Export the ledger's runs as OpenLineage events."),
)
_BY_NAME = {c[0]: c for c in COMMANDS}


class _Commands(MutableMapping[str, Any]):
    """The root's commands by name, in ``COMMANDS`` order; reading one builds it (imports its
    module) on first use. Listing the names imports nothing."""

    def __init__(self, given: Mapping[str, Any]) -> None:
        self._built: dict[str, Any] = dict(given)
        self._missing: set[str] = set()  # names whose module is not there

    def built(self, name: str) -> bool:
        return name in self._built

    def __getitem__(self, name: str) -> Any:
        if name not in self._built and name in _BY_NAME and name not in self._missing:
            self._built.update(_load(name))
            if name not in self._built:
                self._missing.add(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        names = [n for n in _BY_NAME if n not in self._missing]
        return iter([*names, *(n for n in self._built if n not in _BY_NAME)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class LazyGroup(TyperGroup):
    """The root group: its ``commands`` mapping builds a command when it is read (to run it, or
    to show its own help); the root --help lists the commands from ``COMMANDS`` only."""

    _listing = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _Commands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        commands = self.commands
        if self._listing and isinstance(commands, _Commands) and not commands.built(cmd_name) and cmd_name in _BY_NAME:
            return TyperCommand(name=cmd_name, help=_BY_NAME[cmd_name][3])
        return commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False

    def invoke(self, ctx: Any) -> Any:
        """The error boundary for every command, however the app is run (``main``, a test's
        CliRunner): an ``OptionsHelperError`` becomes one red line and its class's exit code."""
        try:
            return super().invoke(ctx)
        except Exception as e:
            from ledger.errors import OptionsHelperError  # here: --help imports nothing of ours

            if not isinstance(e, OptionsHelperError):
                raise
            _report(e, debug=bool(ctx.meta.get("debug")))
            raise typer.Exit(e.exit_code) from None


def _optional_module(name: str):  # type: ignore[no-untyped-def]
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name == name:
            return None
        raise


def _load(name: str) -> dict[str, Any]:
    """The click command(s) that ``name``'s module defines: a group, or every command its
    ``register`` adds (so a module is converted once)."""
    _, module, attribute, help_text = _BY_NAME[name]
    mod = _optional_module(module)
    if mod is None or not hasattr(mod, attribute):
        return {}
    target = getattr(mod, attribute)
    holder = typer.Typer(rich_markup_mode=None, add_completion=False)  # the root's settings (plain help)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name, help=help_text)
    else:
        target(holder)
    return dict(typer.main.get_group(holder).commands)


app = typer.Typer(
    name="options-helper",
    help="A local-first daily options market-data pipeline with an append-only run ledger in DuckDB.\n\n"
    "Example: options-helper daily --as-of 2026-11-25   then   options-helper health",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def root(
    ctx: typer.Context,
    duckdb_path: Annotated[str | None, typer.Option("--duckdb-path", help="Ledger/warehouse file (default: $OPTIONS_HELPER_DUCKDB_PATH, options-helper.toml, data/warehouse/options.duckdb).", show_default=False)] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="Market data provider: synthetic or alpaca (default: $OPTIONS_HELPER_PROVIDER, config file, synthetic).", show_default=False)] = None,
    data_root: Annotated[str | None, typer.Option("--data-root", help="Root of the data lake and reports (default: data).", show_default=False)] = None,
    portfolio: Annotated[str | None, typer.Option("--portfolio", help="The portfolio file (default: $OPTIONS_HELPER_PORTFOLIO, options-helper.toml, ./portfolio.json if present).", show_default=False)] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    from ledger.config import load_settings

    ctx.meta["debug"] = debug
    ctx.obj = load_settings(duckdb_path=duckdb_path, provider=provider, data_root=data_root, portfolio=portfolio)


def _masked(text: str) -> str:
    """``text`` with every known secret value masked: a message or a traceback may quote a key it
    was given, whoever raised it."""
    import os

    from ledger.redact import known_secret_values, redact_text

    return redact_text(text, known_secret_values(os.environ))


def _print_traceback(e: BaseException) -> None:
    import traceback

    sys.stderr.write(_masked("".join(traceback.format_exception(e))))


def _report(e: BaseException, *, debug: bool) -> None:
    if debug:
        _print_traceback(e)
    typer.secho(f"error: {_masked(str(e))}", fg="red", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI. Every exit code but 0 is an error class's ``exit_code`` (``ledger.errors``;
    docs/cli.md lists them): commands raise, they never exit with a number. Errors of ours are
    reported by the root group (``LazyGroup.invoke``); here are click's usage errors, interrupts
    and bugs. (``ledger.errors`` is imported only on the way out: --help imports nothing of ours.)"""
    from typer.exceptions import TyperException

    command = typer.main.get_command(app)
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # Without standalone mode click returns a typer.Exit's code instead of raising it.
        result = command.main(args=args, prog_name="options-helper", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except typer.Exit as e:  # --help (0), or the code LazyGroup.invoke took from an error class
        return int(e.exit_code or 0)
    except (typer.Abort, KeyboardInterrupt) as e:
        from ledger.errors import Interrupted

        typer.secho("aborted" if isinstance(e, typer.Abort) else "interrupted", fg="red", err=True)
        return Interrupted.exit_code
    except TyperException as e:  # typer's bundled click: usage errors, bad parameters
        from ledger.errors import UsageError

        show = getattr(e, "show", None)
        if show is not None:
            show()
        else:
            typer.secho(f"error: {e}", fg="red", err=True)
        return UsageError.exit_code
    except Exception as e:
        from ledger.errors import OptionsHelperError

        if isinstance(e, OptionsHelperError):  # raised before a command ran (parsing its options)
            _report(e, debug=debug)
            return e.exit_code
        if debug:
            _print_traceback(e)
        # a bug: say so, and how to see more
        typer.secho(f"internal error: {type(e).__name__}: {_masked(str(e))} (rerun with --debug for the traceback)",
                    fg="red", err=True)
        return OptionsHelperError.exit_code


def entrypoint() -> None:
    code = main()
    # The interpreter's shutdown collects garbage over every object still alive (typer's, DuckDB's,
    # rich's and our modules: ~35 ms of CPU, a ninth of `options-helper health`). Frozen, they are
    # left to the end of the process, which frees them all at once. (Every command has closed its
    # files and connections by now; atexit handlers and finalizers still run.)
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entrypoint()
