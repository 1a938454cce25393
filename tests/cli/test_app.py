"""The root app loads a command's module only when that command is used: the root --help lists
the commands from ``COMMANDS``, which must say what the commands themselves say."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from frontends.cli.app import COMMANDS, LazyGroup, _load, app


def _fresh_root() -> LazyGroup:
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    return root


def test_the_listing_matches_every_command() -> None:
    root = _fresh_root()
    ctx = root.context_class(root, info_name="options-helper")
    assert root.list_commands(ctx) == [name for name, *_ in COMMANDS]
    for name, _module, _attribute, listed in COMMANDS:
        real = _load(name)[name]
        stub = typer.core.TyperCommand(name=name, help=listed)
        for width in (20, 45, 60, 74, 94, 200):
            assert stub.get_short_help_str(width) == real.get_short_help_str(width), (name, width)


def test_a_command_is_built_on_first_use_only() -> None:
    root = _fresh_root()
    ctx = root.context_class(root, info_name="options-helper")
    root.get_help(ctx)
    built = [name for name, *_ in COMMANDS if root.commands.built(name)]  # type: ignore[attr-defined]
    assert built == []
    assert root.get_command(ctx, "daily") is not None
    # a module is converted once: its other commands come with it
    assert [name for name, *_ in COMMANDS if root.commands.built(name)] == [  # type: ignore[attr-defined]
        "snapshot-options", "derived", "briefing", "dashboard", "daily"]  # flow has its own module
    assert root.get_command(ctx, "no-such-command") is None
    # read as a mapping, the commands are all there (building every one)
    assert {c.name for c in root.commands.values()} == {name for name, *_ in COMMANDS}


@pytest.mark.parametrize("args", [["--help"], []])
def test_the_root_help_imports_no_command_module(args: list[str]) -> None:
    probe = (
        "import sys\n"
        "from frontends.cli.app import main\n"
        f"main({args!r})\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split("\n")[-2].split())
    ours = sorted(m for m in loaded if m.split(".")[0] in ("frontends", "ledger", "stages"))
    # ledger.errors (which imports nothing) names the exit code of the usage error that no arguments are
    assert [m for m in ours if m not in ("ledger", "ledger.errors")] == ["frontends", "frontends.cli", "frontends.cli.app"]
    assert not loaded & {"attr", "attrs", "json", "rich"}
    shown = done.stdout + done.stderr  # no arguments: the help goes to stderr
    assert "Commands:" in shown and "backfill" in shown
