"""docs/cli.md is generated from the commands' --help and must match them.

Regenerate after changing a command: UPDATE_DOCS=1 .venv/bin/pytest tests/cli/test_docs.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from frontends.cli.app import app
from ledger.errors import EXIT_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"

HEADER = """# Command line reference

Generated from `options-helper ... --help` by `tests/cli/test_docs.py`
(`UPDATE_DOCS=1 .venv/bin/pytest tests/cli/test_docs.py` rewrites it; the test fails when it is stale).

Every command that takes `--json` prints exactly one JSON document on stdout; human output goes to
stdout as tables, messages and progress bars to stderr (progress only when stderr is a terminal).

## Exit codes

Each is the `exit_code` of an error class in `ledger/errors.py` (its docstring draws the tree).

| code | meaning |
|---|---|
""" + "".join(f"| {code} | {meaning} |\n" for code, meaning in EXIT_CODES.items())


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
