"""The pipeline's CLI: typer's CliRunner on the app, parsing --json; the error boundary's exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from frontends.cli.app import app, main
from ledger.config import Settings
from ledger.errors import StageError

runner = CliRunner()


def cli(s: Settings, *args: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, ["--duckdb-path", str(s.duckdb_path), "--data-root", str(s.data_root),
                                 "--provider", "synthetic", *args])
    out = result.stdout
    doc = json.loads(out) if "--json" in args and out.strip() else None
    return result.exit_code, doc, out


def test_ingest_candles_json(settings: Settings) -> None:
    code, doc, _ = cli(settings, "ingest", "candles", "--as-of", "2026-11-20", "--symbols", "spy,IWM", "--json")
    assert code == 0, doc
    assert doc["job"] == "ingest_candles" and doc["status"] == "success" and doc["as_of"] == "2026-11-20"
    assert [o["scope_key"] for o in doc["outcomes"]] == ["SPY", "IWM"]
    assert doc["counts"] == {"success": 2, "failed": 0, "skipped": 0}
    assert all(o["rows"] == 90 for o in doc["outcomes"])
    assert {c["check_name"] for c in doc["checks"]} >= {"candles_unique_symbol_date", "candles_fresh"}


def test_a_failed_job_exits_9_and_still_prints_its_json(settings: Settings) -> None:
    code, doc, _ = cli(settings, "flow", "--as-of", "2026-11-20", "--symbols", "SPY", "--json")
    assert code == StageError.exit_code == 9
    assert doc["runs"][0]["status"] == "failed" and doc["symbols"][0]["pairs"] == 0
    assert "snapshot-options" in doc["runs"][0]["outcomes"][0]["error"]


def test_watchlists_come_from_the_config_file(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "options-helper.toml"
    config.write_text('[watchlists]\nmine = ["iwm"]\n')
    monkeypatch.setenv("OPTIONS_HELPER_CONFIG", str(config))
    code, doc, _ = cli(settings, "ingest", "candles", "--as-of", "2026-11-20", "--watchlist", "mine", "--json")
    assert code == 0 and [o["scope_key"] for o in doc["outcomes"]] == ["IWM"]


def test_bad_dates_and_symbols_exit_2_with_one_line(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--duckdb-path", str(settings.duckdb_path), "--data-root", str(settings.data_root)]
    assert main([*base, "snapshot-options", "--as-of", "2026-11-21", "--symbols", "SPY"]) == 2
    err = capsys.readouterr().err
    assert "not an XNYS trading session" in err and "2026-11-20 and 2026-11-23" in err
    assert main([*base, "derived", "--as-of", "2026-13-01"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    assert main([*base, "ingest", "candles", "--as-of", "2026-11-20", "--symbols", "BAD TICKER"]) == 2
    assert "invalid symbol" in capsys.readouterr().err
    assert not settings.duckdb_path.exists()


def test_daily_json_for_one_symbol(settings: Settings) -> None:
    code, doc, _ = cli(settings, "daily", "--as-of", "2026-11-20", "--symbols", "SPY", "--json")
    assert code == 0, doc
    assert doc["status"] == "success"
    assert [r["job"] for r in doc["results"]] == ["ingest_candles", "ingest_options_bars", "snapshot_options",
                                                  "compute_flow", "compute_derived", "build_briefing", "build_dashboard"]
    briefing = doc["results"][5]["outcomes"][0]
    assert briefing["path"] == "reports/briefing/2026-11-20.md"
    assert (settings.data_root / briefing["path"]).read_text().startswith("# Daily options briefing: 2026-11-20")
    dashboard = doc["results"][6]["outcomes"][0]["path"]
    assert (settings.data_root / dashboard).read_text().lstrip().lower().startswith("<!doctype html>")
    # a resumed re-run has nothing left to do except the flow that had no previous session
    code, again, _ = cli(settings, "daily", "--as-of", "2026-11-20", "--symbols", "SPY", "--resume", "--json")
    assert code == 0
    assert [r["run_id"] is None for r in again["results"]] == [True, True, True, False, True, True, True]
