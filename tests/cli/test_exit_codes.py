"""Exit codes come only from error classes, and options are declared once.

Commands raise an ``OptionsHelperError``; the root group turns it into one red line and the class's
``exit_code``. No command exits with a number of its own, and docs/cli.md's table (written from
``ledger.errors.EXIT_CODES``) names exactly the codes the classes carry.
"""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ledger.errors as errors
from frontends.cli.app import app, main

CLI = Path(__file__).resolve().parents[2] / "frontends" / "cli"


def _calls(name: str, attribute: str) -> list[tuple[str, int, ast.Call]]:
    found = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attribute
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == name):
                found.append((path.name, node.lineno, node))
    return found


def test_no_command_exits_with_a_number_of_its_own() -> None:
    exits = [(f, line, ast.unparse(call)) for f, line, call in _calls("typer", "Exit")]
    # the one place: the root group, with the code of the error class it caught
    assert [text for _, _, text in exits] == ["typer.Exit(e.exit_code)"], exits
    assert exits[0][0] == "app.py"


def test_shared_options_are_declared_once_in_the_options_module() -> None:
    shared = {"--duckdb-path", "--json", "--as-of", "--symbols", "--watchlist", "--start", "--end", "--assets",
              "--resume"}
    declared = [(f, line, call.args[0].value) for f, line, call in _calls("typer", "Option")
                if call.args and isinstance(call.args[0], ast.Constant) and call.args[0].value in shared]
    elsewhere = [d for d in declared if d[0] not in ("options.py", "app.py")]  # app.py: the root's own --duckdb-path
    assert elsewhere == []
    assert {name for f, _, name in declared if f == "options.py"} == shared


def _classes() -> list[type[errors.OptionsHelperError]]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.OptionsHelperError)]


def test_the_exit_code_table_names_exactly_the_codes_of_the_error_classes() -> None:
    assert set(errors.EXIT_CODES) == {0} | {c.exit_code for c in _classes()}
    doc = (CLI.parents[1] / "docs" / "cli.md").read_text()
    for code, meaning in errors.EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in doc


@pytest.mark.parametrize("error", [errors.StageError("a job failed"), errors.DiskFullError("no space left"),
                                   errors.GapsFoundError("3 cells to fix")])
def test_an_error_raised_by_a_command_exits_with_its_class_code_however_the_app_is_run(
    error: errors.OptionsHelperError, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import ledger.config

    def fail(**_kw: object) -> None:
        raise error

    monkeypatch.setattr(ledger.config, "load_settings", fail)  # the root callback raises it
    assert main(["--duckdb-path", str(tmp_path / "x.duckdb"), "db", "status"]) == error.exit_code
    assert capsys.readouterr().err.strip() == f"error: {error}"
    result = CliRunner().invoke(app, ["db", "status"])
    assert result.exit_code == error.exit_code and f"error: {error}" in result.stderr


def test_a_failing_stage_prints_its_json_then_exits_9(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # flow needs the previous session's snapshot: with none, the job fails for every symbol
    code = main(["--duckdb-path", str(tmp_path / "l.duckdb"), "--data-root", str(tmp_path), "--provider", "synthetic",
                 "flow", "--as-of", "2026-11-20", "--symbols", "SPY", "--json"])
    out = capsys.readouterr()
    assert code == errors.StageError.exit_code == 9
    assert json.loads(out.out)["status"] == "failed"
    assert out.err.startswith("error: ")
