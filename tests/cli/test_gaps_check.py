"""`options-helper gaps --check` for cron and CI, and `--watchlist` as the universe of gaps and
backfill."""

from __future__ import annotations

import json

import pytest

import ledger
from frontends.cli.app import main
from frontends.cli.gaps_cmd import GAPS_FOUND

WINDOW = ["--start", "2026-11-23", "--end", "2026-11-25", "--assets", "candles_daily"]


@pytest.fixture
def db(tmp_path, monkeypatch):
    config = tmp_path / "options-helper.toml"
    config.write_text('[watchlists]\nmine = ["QQQ", "SPY"]\n')
    monkeypatch.setenv("OPTIONS_HELPER_CONFIG", str(config))
    path = tmp_path / "l.duckdb"
    ledger.open(path)
    return str(path)


def test_check_exits_with_its_own_code_when_cells_are_missing_and_still_prints_the_plan(db, capsys):
    code = main(["--duckdb-path", db, "gaps", *WINDOW, "--symbols", "AAPL", "--check", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == GAPS_FOUND == 11
    assert doc["cells_missing"] == 3 and doc["cells_expected"] == 3


def test_without_check_gaps_is_a_report_and_exits_zero(db, capsys):
    assert main(["--duckdb-path", db, "gaps", *WINDOW, "--symbols", "AAPL", "--json"]) == 0


def test_check_exits_zero_when_nothing_is_missing(db, capsys):
    # After a backfill of the window there is nothing to fix.
    assert main(["--duckdb-path", db, "backfill", *WINDOW, "--watchlist", "mine", "--json"]) == 0
    capsys.readouterr()
    assert main(["--duckdb-path", db, "gaps", *WINDOW, "--watchlist", "mine", "--check", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["cells_missing"] == 0 and sorted(doc["symbols"]) == ["QQQ", "SPY"]


def test_a_watchlist_is_the_universe_of_the_plan(db, capsys):
    assert main(["--duckdb-path", db, "gaps", *WINDOW, "--watchlist", "mine", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc["symbols"]) == ["QQQ", "SPY"] and doc["cells_expected"] == 6


def test_an_unknown_watchlist_is_a_configuration_error_naming_the_known_ones(db, capsys):
    code = main(["--duckdb-path", db, "gaps", *WINDOW, "--watchlist", "nope"])
    assert code == 3
    assert "mine" in capsys.readouterr().err


def test_symbols_and_a_watchlist_together_are_a_usage_error(db, capsys):
    assert main(["--duckdb-path", db, "gaps", *WINDOW, "--symbols", "AAPL", "--watchlist", "mine"]) == 2
