"""docs/cli.md is generated from the commands' --help and must match them.

Regenerate after changing a command: UPDATE_DOCS=1 .venv/bin/pytest tests/cli/test_docs.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from frontends.cli.app import app

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

HEADER = """# Command line reference

Generated from `options-helper ... --help` by `tests/cli/test_docs.py`
(`UPDATE_DOCS=1 .venv/bin/pytest tests/cli/test_docs.py` rewrites it; the test fails when it is stale).

Every command that takes `--json` prints exactly one JSON document on stdout; human output goes to
stdout as tables, messages and progress bars to stderr (progress only when stderr is a terminal).

## Exit codes

| code | meaning |
|---|---|
| 0 | success |
| 1 | internal error (a bug: rerun with `--debug` for the traceback and report it) |
| 2 | usage error: a bad option, date, symbol, or a date that is not a trading session |
| 3 | configuration error (`options-helper.toml`, environment) |
| 4 | ledger error: missing database, unknown run, conflicting append |
| 5 | the file is not a DuckDB database, is damaged, or its schema does not match the code |
| 6 | the database stayed locked by another process beyond the retry budget |
| 7 | `db verify` found a broken hash chain or a drifted projection |
| 8 | market data provider error (credentials, rate limits past the budget, bad payloads) |
| 9 | a stage or job failed (see `options-helper runs show RUN_ID`) |
| 10 | an optional extra is not installed (the message gives the `pip install` command) |
| 11 | `gaps --check` found cells to fix |
| 12 | `lineage export` could not send an event (the endpoint refused it or was unreachable; rerun to continue) |
| 130 | interrupted |
"""


def _walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    """Every command under ``command``, depth first, subcommands in sorted order. Groups are told
    apart by ``list_commands``: typer bundles its own click, whose classes are not ``click``'s."""
    out = [(path, command)]
    if hasattr(command, "list_commands"):
        ctx = command.context_class(command, info_name=" ".join(["options-helper", *path]))
        for name in sorted(command.list_commands(ctx)):
            out.extend(_walk(command.get_command(ctx, name), [*path, name]))
    return out


def render() -> str:
    root = typer.main.get_command(app)
    parts = [HEADER]
    for path, command in _walk(root, []):
        name = " ".join(["options-helper", *path])
        with command.context_class(command, info_name=name, terminal_width=100, max_content_width=100) as ctx:
            text = command.get_help(ctx)
        parts.append(f"\n## `{name}`\n\n```text\n{text.rstrip()}\n```\n")
    return "".join(parts)


def test_cli_reference_matches_the_commands() -> None:
    text = render()
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(text)
    assert DOC.exists(), "docs/cli.md is missing: run UPDATE_DOCS=1 pytest tests/cli/test_docs.py"
    assert DOC.read_text() == text, "docs/cli.md is stale: run UPDATE_DOCS=1 pytest tests/cli/test_docs.py"


def test_every_command_has_help_with_an_example() -> None:
    root = typer.main.get_command(app)
    walked = _walk(root, [])
    missing = [" ".join(p) for p, c in walked if p and not hasattr(c, "list_commands")
               and "options-helper" not in (c.help or "")]
    assert missing == []
    assert len(walked) > 20  # every group was walked into
