"""`options-helper portal`: the Streamlit command line, loopback by default, and the install hint."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from frontends.cli import portal_cmd
from frontends.cli.app import main


def test_portal_execs_streamlit_headless_on_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_exec(exe: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(exe=exe, argv=argv, env=env)

    monkeypatch.setattr(portal_cmd.os, "execve", fake_exec)
    code = main(["portal", "--duckdb-path", str(tmp_path / "x.duckdb"), "--port", "8765"])
    assert code == 0
    argv = seen["argv"]
    opts = dict(zip(argv[5::2], argv[6::2], strict=False))
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("frontends/portal/app.py")
    assert opts["--server.address"] == "127.0.0.1" and opts["--server.port"] == "8765"
    assert opts["--server.headless"] == "true" and opts["--browser.gatherUsageStats"] == "false"
    assert opts["--server.fileWatcherType"] == "none"
    assert seen["env"]["OPTIONS_HELPER_DUCKDB_PATH"] == str((tmp_path / "x.duckdb").resolve())
    assert not (tmp_path / "x.duckdb").exists()  # starting the portal creates nothing


def test_portal_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "streamlit" else real(name, *a))
    monkeypatch.setattr(portal_cmd.os, "execve", lambda *a: pytest.fail("must not start"))
    code = main(["portal"])
    assert code == 10
    assert 'pip install "options-helper[portal]"' in capsys.readouterr().err


def test_portal_help_has_an_example() -> None:
    from typer.testing import CliRunner

    from frontends.cli.app import app

    result = CliRunner().invoke(app, ["portal", "--help"])
    assert result.exit_code == 0 and "--host" in result.output and "Example" in result.output
