"""`options-helper portal`: the read-only Streamlit portal, headless, on loopback by default."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from frontends.cli.context import settings
from frontends.cli.options import DbPath


def streamlit_command(app_path: Path, *, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, no file watcher."""
    return [
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.headless", "true",
        "--server.address", host,
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", host,
        "--global.developmentMode", "false",
        "--client.toolbarMode", "viewer",
        "--theme.base", "light",
    ]


def portal(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to bind; keep the default (loopback) unless you mean to share it.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8501,
    duckdb_path: DbPath = None,
) -> None:
    """Start the read-only Streamlit portal: Health, Gaps, Runs, Data, Symbol, Portfolio.

    Needs the portal extra (pip install "options-helper[portal]"). The portal opens the ledger
    read-only per query, so pipeline runs can write while it is open.
    Example: options-helper portal --port 8502 --duckdb-path data/warehouse/options.duckdb
    """
    from ledger.errors import MissingExtraError

    for module in ("streamlit", "altair"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError.for_extra("portal", module)
    s = settings(ctx, duckdb_path)
    app_path = Path(__file__).resolve().parent.parent / "portal" / "app.py"
    env = dict(os.environ)
    env["OPTIONS_HELPER_DUCKDB_PATH"] = str(Path(s.duckdb_path).expanduser().resolve())
    env["OPTIONS_HELPER_DATA_ROOT"] = str(Path(s.data_root).expanduser().resolve())
    env["OPTIONS_HELPER_PROVIDER"] = s.provider
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env["STREAMLIT_SERVER_HEADLESS"] = "true"
    command = streamlit_command(app_path, host=host, port=port)
    typer.echo(f"portal: http://{host}:{port}/  (ledger {env['OPTIONS_HELPER_DUCKDB_PATH']}; Ctrl-C to stop)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Replace this process with Streamlit: signals (Ctrl-C, kill) reach the server directly.
    os.execve(sys.executable, command, env)


def register(app: typer.Typer) -> None:
    app.command("portal")(portal)


__all__ = ["portal", "register", "streamlit_command"]
