"""The portfolio in the pipeline: the universe, the run's lineage, the briefing's first section,
the dashboard's panel and ``portfolio show``, on snapshots the real pipeline stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import duckdb
import pytest

import stages
from frontends.cli.app import main as cli
from ledger.config import DEFAULT_PORTFOLIO_FILE, PORTFOLIO_ENV, get_portfolio_path, load_settings
from stages import portfolio
from stages.portfolio.valuation import mark_prices
from tests.portfolio.conftest import DEC, MISSING_STRIKE, NOV, NOW, SESSIONS, evolve, snapshot_rows

LAST = SESSIONS[-1]


# -- where the portfolio comes from, and the universe ---------------------------------------------
def test_the_flag_beats_the_environment_beats_the_config_beats_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / DEFAULT_PORTFOLIO_FILE).write_text("{}")
    env = {PORTFOLIO_ENV: "from-env.json"}
    cfg = {"portfolio": "from-config.json"}
    assert get_portfolio_path("flag.json", environ=env, config=cfg, cwd=tmp_path) == Path("flag.json")
    assert get_portfolio_path(None, environ=env, config=cfg, cwd=tmp_path) == Path("from-env.json")
    assert get_portfolio_path(None, environ={}, config=cfg, cwd=tmp_path) == Path("from-config.json")
    assert get_portfolio_path(None, environ={}, config={}, cwd=tmp_path) == Path(DEFAULT_PORTFOLIO_FILE)
    assert get_portfolio_path(None, environ={}, config={}, cwd=tmp_path / "elsewhere") is None  # a normal state


def test_the_config_file_key(tmp_path: Path) -> None:
    config = tmp_path / "options-helper.toml"
    config.write_text('portfolio = "books/main.json"\n')
    s = load_settings(environ={"OPTIONS_HELPER_CONFIG": str(config)})
    assert s.portfolio == Path("books/main.json")
    assert load_settings(portfolio="cli.json", environ={"OPTIONS_HELPER_CONFIG": str(config)}).portfolio == Path("cli.json")


def test_the_universe_is_the_watchlist_and_the_portfolio_underlyings(state: Any) -> None:
    assert stages.resolve_symbols(None, state) == ("SPY", "AAPL")  # watchlist SPY + portfolio AAPL
    assert stages.resolve_symbols(None, evolve(state, portfolio=None)) == ("SPY",)
    assert stages.resolve_symbols("IWM", state) == ("IWM",)  # --symbols narrows
    assert stages.resolve_symbols(None, state, watchlist="default") == ("SPY",)  # so does --watchlist
    # the gap planner's default universe is the same
    from stages.planning import resolve_symbols as planned

    assert planned(state, None) == (["AAPL", "SPY"], False)


def test_a_run_records_which_portfolio_it_used(state: Any) -> None:
    result = stages.run_job("build_briefing", as_of=LAST, settings=state, now=NOW)
    assert result.ok, result.to_dict()
    sha = hashlib.sha256(Path(state.portfolio).read_bytes()).hexdigest()
    with duckdb.connect(str(state.duckdb_path), read_only=True) as con:
        args, = con.execute("SELECT payload->'args' FROM meta.events WHERE run_id = ? AND event_type = 'run_started'",
                            [result.run_id]).fetchone()
    args = json.loads(args)
    assert args["symbols"] == ["SPY", "AAPL"]
    assert args["portfolio"] == {"path": str(state.portfolio), "sha256": sha, "positions": 4}


# -- the valuation from stored snapshots ----------------------------------------------------------
def _row(rows: list[dict[str, Any]], kind: str, expiry: dt.date, strike: float) -> dict[str, Any]:
    (r,) = [r for r in rows if r["option_type"] == kind and r["expiry"] == expiry and r["strike"] == strike]
    return r


def test_show_values_each_position_from_the_sessions_own_snapshot(state: Any, market: dict[str, Any]) -> None:
    report = portfolio.show(state, as_of=LAST).to_dict()
    assert report["as_of"] == LAST.isoformat()
    by_id = {p["id"]: p for p in report["positions"]}
    spy = snapshot_rows(market["root"], "SPY", LAST)
    dec_strike = market["doc"]["positions"][1]["strike"]
    quote = _row(spy, "call", DEC, dec_strike)
    mark = float(mark_prices([quote["bid"] or 0], [quote["ask"] or 0], [quote["last"] or 0])[0][0])
    dec = by_id["dec-call"]
    assert dec["status"] == "ok" and dec["mark"] == pytest.approx(mark)
    assert dec["pnl"] == pytest.approx(2 * 100 * (mark - 5.0))
    assert dec["delta_shares"] == pytest.approx(200 * quote["delta"])
    assert dec["dte"] == (DEC - LAST).days
    assert dec["spot"] == pytest.approx(quote["spot"])


def test_an_expired_position_shows_its_last_mark(state: Any, market: dict[str, Any]) -> None:
    # The November call expired on 2026-11-20; on 2026-11-23 it shows that session's mark.
    report = portfolio.show(state, as_of=LAST).to_dict()
    nov = next(p for p in report["positions"] if p["id"] == "nov-call")
    quote = _row(snapshot_rows(market["root"], "SPY", NOV), "call", NOV, market["doc"]["positions"][0]["strike"])
    mark = float(mark_prices([quote["bid"] or 0], [quote["ask"] or 0], [quote["last"] or 0])[0][0])
    assert nov["status"] == "expired" and nov["expired"] is True
    assert nov["marks_as_of"] == [NOV.isoformat()]
    assert nov["mark"] == pytest.approx(mark)
    assert nov["delta_shares"] == 0.0


def test_a_leg_missing_from_the_snapshot_is_reported(state: Any) -> None:
    report = portfolio.show(state, as_of=LAST).to_dict()
    ghost = next(p for p in report["positions"] if p["id"] == "ghost")
    assert ghost["status"] == "missing" and ghost["value"] is None and ghost["pnl"] is None
    assert ghost["missing_legs"] == [f"long 1 call {MISSING_STRIKE:g} {DEC.isoformat()}"]
    assert report["exposure"]["legs_missing"] == 1


def test_show_json_is_one_document(state: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(["--duckdb-path", str(state.duckdb_path), "--data-root", str(state.data_root), "--portfolio",
                str(state.portfolio), "portfolio", "show", "--as-of", "latest", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) >= {"positions", "exposure", "stress", "path", "sha256", "as_of"}
    assert doc["as_of"] == LAST.isoformat()
    assert [p["id"] for p in doc["positions"]] == ["nov-call", "dec-call", "aapl-put-spread", "ghost"]
    assert {"id", "symbol", "mark", "pnl", "pnl_pct", "spread_pct", "dte", "delta_shares", "status"} <= set(doc["positions"][0])
    assert [s["name"] for s in doc["stress"]][:5] == ["spot -5%", "spot +5%", "IV -5 pts", "IV +5 pts", "+7 days"]
    # time travel: the same portfolio on the first session, when the November call was live
    assert cli(["--duckdb-path", str(state.duckdb_path), "--data-root", str(state.data_root), "--portfolio",
                str(state.portfolio), "portfolio", "show", "--as-of", SESSIONS[0].isoformat(), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert next(p for p in first["positions"] if p["id"] == "nov-call")["status"] == "ok"


def test_no_portfolio_is_a_normal_state(state: Any, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(PORTFOLIO_ENV, raising=False)
    assert cli(["--duckdb-path", str(state.duckdb_path), "portfolio", "show", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["positions"] == [] and doc["path"] is None and "no portfolio" in doc["notes"][0]
    assert cli(["--duckdb-path", str(state.duckdb_path), "portfolio", "show"]) == 0
    assert "No portfolio" in capsys.readouterr().out
    assert cli(["portfolio", "validate"]) == 2  # nothing to validate: say how to name one


# -- the briefing and the dashboard -----------------------------------------------------------------
def test_the_briefing_opens_with_the_portfolio(state: Any) -> None:
    result = stages.run_job("build_briefing", as_of=LAST, settings=state, now=NOW)
    assert result.ok
    markdown = (Path(state.data_root) / "reports" / "briefing" / f"{LAST}.md").read_text()
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Portfolio"
    section = markdown.split("## Portfolio", 1)[1].split("\n## ", 1)[0]
    for ident in ("nov-call", "dec-call", "aapl-put-spread", "ghost"):
        assert f"| {ident} |" in section
    assert "expired (last mark 2026-11-20)" in section and "missing: long 1 call 1234.5" in section
    assert "**Stress**" in section and "worst combined" in section
    payload = json.loads((Path(state.data_root) / "reports" / "briefing" / f"{LAST}.json").read_text())
    pf = payload["portfolio"]
    assert {"positions", "exposure", "stress", "path", "sha256"} <= set(pf)
    assert pf["sha256"] == hashlib.sha256(Path(state.portfolio).read_bytes()).hexdigest()
    assert [p["id"] for p in pf["positions"]] == ["nov-call", "dec-call", "aapl-put-spread", "ghost"]
    (outcome,) = result.outcomes
    assert outcome.status == "success"


def test_a_briefing_without_a_portfolio_says_so(state: Any) -> None:
    s = evolve(state, portfolio=None)
    assert stages.run_job("build_briefing", as_of=LAST, settings=s, now=NOW).ok
    markdown = (Path(s.data_root) / "reports" / "briefing" / f"{LAST}.md").read_text()
    assert "## Portfolio\n\nNo portfolio:" in markdown


def test_the_dashboard_has_a_portfolio_panel(state: Any) -> None:
    assert stages.run_job("build_dashboard", as_of=LAST, settings=state, now=NOW).ok
    page = (Path(state.data_root) / "reports" / "dashboard" / f"{LAST}.html").read_text()
    panel = page.split('<section id="portfolio">', 1)[1].split("</section>", 1)[0]
    assert '<tr data-position="dec-call" data-status="ok">' in panel
    assert 'data-position="ghost" data-status="missing"' in panel
    assert "Stress (full Black-Scholes repricing)" in panel
    assert page.index('id="portfolio"') < page.index("<h2>SPY</h2>")


def test_the_example_is_what_the_demo_uses() -> None:
    from frontends.cli import demo

    assert demo.EXAMPLE_PORTFOLIO.is_file()
    text = "# b\n\n## Portfolio\n\nrows\n\n| Symbol | Spot |\n## SPY (x)\n"
    assert demo.portfolio_section(text) == "## Portfolio\n\nrows"
    assert os.path.basename(demo.EXAMPLE_PORTFOLIO) == "portfolio.json"


def test_an_underlying_without_a_snapshot_is_reported_missing(state: Any, tmp_path: Path) -> None:
    doc = {"positions": [{"id": "iwm", "symbol": "IWM", "option_type": "put", "expiry": DEC.isoformat(),
                          "strike": 200.0, "contracts": 1, "cost_basis": 3.0}]}
    path = tmp_path / "iwm.json"
    path.write_text(json.dumps(doc))
    report = portfolio.show(evolve(state, portfolio=path), as_of=LAST).to_dict()
    (iwm,) = report["positions"]
    assert iwm["status"] == "missing" and iwm["value"] is None
    assert report["notes"] == [f"no snapshot of IWM for {LAST}: its legs are reported missing; run "
                               f"`options-helper snapshot-options --as-of {LAST} --symbols IWM`"]
    assert all(s["pnl"] is None and s["legs_left_out"] == 1 for s in report["stress"])
