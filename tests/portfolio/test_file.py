"""The portfolio file: the older tool's format read unchanged, and every bad file refused with a
message naming the position and field, exit code 13, and nothing written."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from frontends.cli.app import main as cli
from ledger.errors import InvalidPortfolioError, PortfolioError, PortfolioNotFoundError
from stages.portfolio import load_portfolio
from stages.portfolio.model import MultiLegPosition, Portfolio, SingleLegPosition

OLDER = Path(__file__).with_name("fixtures") / "older_tool_portfolio.json"
EXIT_PORTFOLIO = 13


def test_the_older_tools_file_is_read_byte_for_byte() -> None:
    data = OLDER.read_bytes()
    loaded = load_portfolio(OLDER)
    p = loaded.portfolio
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()
    assert (p.base_currency, p.cash) == ("USD", 12500.0)
    assert p.risk_profile["earnings_warn_days"] == 21 and p.risk_profile["tolerance"] == "medium"
    assert [type(x) for x in p.positions] == [SingleLegPosition, SingleLegPosition, MultiLegPosition, MultiLegPosition]
    call = p.positions[0]
    assert (call.symbol, call.option_type, call.expiry, call.strike, call.contracts, call.cost_basis, call.side) == (
        "AAPL", "call", dt.date(2026, 1, 16), 200.0, 1, 12.35, "long")
    assert call.cost == pytest.approx(1235.0)  # premium paid = cost_basis x 100 x contracts
    condor = p.positions[2]
    assert [leg.signed_contracts for leg in condor.legs] == [1, -1, -1, 1]
    assert condor.net_debit == -215.0
    assert p.positions[3].legs[1].ratio == 2.0 and p.positions[3].net_debit is None
    assert p.symbols == ("AAPL", "MSFT", "SPY", "QQQ")
    # everything in the file is kept: it writes back to the same document
    assert p.to_dict() == json.loads(data)


def test_validate_accepts_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["portfolio", "validate", str(OLDER), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"path": str(OLDER), "sha256": hashlib.sha256(OLDER.read_bytes()).hexdigest(), "valid": True,
                   "positions": 4, "legs": 8, "symbols": ["AAPL", "MSFT", "SPY", "QQQ"]}


def test_the_repository_example_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "portfolio.json"
    assert len(load_portfolio(example).portfolio.positions) == 5


def _single(**changes: Any) -> dict[str, Any]:
    base = {"id": "p1", "symbol": "SPY", "option_type": "call", "expiry": "2026-12-18", "strike": 450.0,
            "contracts": 1, "cost_basis": 5.0}
    return {k: v for k, v in {**base, **changes}.items() if v is not ...}


def _multi(legs: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    leg = {"side": "long", "option_type": "put", "expiry": "2026-12-18", "strike": 400.0, "contracts": 1}
    return {"id": "m1", "symbol": "SPY", "legs": legs if legs is not None else [leg, {**leg, "side": "short",
                                                                                     "strike": 390.0}],
            "net_debit": 100.0, **changes}


# (document, position named, field named, words in the message)
BAD = {
    "unknown top-level field": ({"positions": [], "cash_balance": 1}, None, "cash_balance", "not a known field"),
    "unknown position field": ({"positions": [_single(qty=3)]}, "'p1' (#1)", "qty", "not a known field"),
    "unknown leg field": ({"positions": [_multi(legs=[{"side": "long", "option_type": "put", "expiry": "2026-12-18",
                                                       "strike": 1.0, "contracts": 1, "price": 2},
                                                      {"side": "short", "option_type": "put", "expiry": "2026-12-18",
                                                       "strike": 1.0, "contracts": 1}])]},
                          "'m1' (#1)", "legs[0].price", "not a known field"),
    "unknown risk profile field": ({"risk_profile": {"max_loss": 1}, "positions": []}, None, "risk_profile.max_loss",
                                   "not a known field"),
    "duplicate id": ({"positions": [_single(), _single(strike=460.0)]}, "'p1' (#2)", "id", "duplicates position #1"),
    "unparseable expiry": ({"positions": [_single(expiry="12/18/2026")]}, "'p1' (#1)", "expiry", "YYYY-MM-DD"),
    "compact date": ({"positions": [_single(expiry="20261218")]}, "'p1' (#1)", "expiry", "YYYY-MM-DD"),
    "impossible date": ({"positions": [_single(expiry="2026-02-30")]}, "'p1' (#1)", "expiry", "YYYY-MM-DD"),
    "unparseable opened_at": ({"positions": [_single(opened_at="yesterday")]}, "'p1' (#1)", "opened_at", "YYYY-MM-DD"),
    "zero strike": ({"positions": [_single(strike=0)]}, "'p1' (#1)", "strike", "greater than 0"),
    "negative strike": ({"positions": [_single(strike=-5.0)]}, "'p1' (#1)", "strike", "greater than 0"),
    "zero contracts": ({"positions": [_single(contracts=0)]}, "'p1' (#1)", "contracts", "greater than 0"),
    "negative leg contracts": ({"positions": [_multi(legs=[
        {"side": "long", "option_type": "put", "expiry": "2026-12-18", "strike": 400.0, "contracts": -1},
        {"side": "short", "option_type": "put", "expiry": "2026-12-18", "strike": 390.0, "contracts": 1}])]},
        "'m1' (#1)", "legs[0].contracts", "greater than 0"),
    "fractional contracts": ({"positions": [_single(contracts=1.5)]}, "'p1' (#1)", "contracts", "whole number"),
    "one-leg multi-leg": ({"positions": [_multi(legs=[{"side": "long", "option_type": "put",
                                                       "expiry": "2026-12-18", "strike": 400.0, "contracts": 1}])]},
                          "'m1' (#1)", "legs", "at least 2 legs"),
    "bad option type": ({"positions": [_single(option_type="straddle")]}, "'p1' (#1)", "option_type", "call, put"),
    "bad side": ({"positions": [_single(side="sideways")]}, "'p1' (#1)", "side", "long, short"),
    "missing strike": ({"positions": [_single(strike=...)]}, "'p1' (#1)", "strike", "required"),
    "missing id": ({"positions": [_single(id=...)]}, "#1", "id", "non-empty string"),
    "bad ticker": ({"positions": [_single(symbol="not a ticker")]}, "'p1' (#1)", "symbol", "not a valid ticker"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_names_the_position_and_field(case: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    doc, position, field, words = BAD[case]
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidPortfolioError) as err:
        load_portfolio(path)
    assert (err.value.position, err.value.field) == (position, field)
    message = str(err.value)
    assert str(path) in message and words in message and f"'{field}'" in message
    if position:
        assert f"position {position}" in message
    assert "options-helper portfolio validate" in message  # what to do next
    assert cli(["portfolio", "validate", str(path)]) == EXIT_PORTFOLIO == err.value.exit_code
    printed = capsys.readouterr().err
    assert printed.startswith("error: ") and f"'{field}'" in printed


def test_not_json_and_not_found(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"positions": [')
    with pytest.raises(InvalidPortfolioError, match="not valid JSON"):
        load_portfolio(broken)
    with pytest.raises(PortfolioNotFoundError, match="no portfolio file at"):
        load_portfolio(tmp_path / "absent.json")
    assert issubclass(PortfolioNotFoundError, FileNotFoundError) and issubclass(PortfolioError, ValueError)
    assert cli(["portfolio", "validate", str(tmp_path / "absent.json")]) == EXIT_PORTFOLIO
    with pytest.raises(InvalidPortfolioError, match="top level must be a JSON object"):
        Portfolio.from_json("[]")


def test_a_bad_portfolio_stops_a_run_before_anything_is_written(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "portfolio.json"
    bad.write_text(json.dumps({"positions": [_single(strike=-1)]}))
    monkeypatch.chdir(tmp_path)  # ./portfolio.json is picked up when nothing else names one
    db, data = tmp_path / "w" / "x.duckdb", tmp_path / "data"
    code = cli(["--duckdb-path", str(db), "--data-root", str(data), "daily", "--as-of", "2026-11-20"])
    assert code == EXIT_PORTFOLIO
    assert not db.exists() and not data.exists()
