"""The portal's Portfolio page under Streamlit's AppTest, on stored snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from tests.portfolio.conftest import SESSIONS

pytestmark = pytest.mark.portal

APP = str(Path(__file__).resolve().parents[2] / "frontends" / "portal" / "app.py")


@pytest.fixture
def env(state: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    config = tmp_path / "options-helper.toml"
    config.write_text('[watchlists]\ndefault = ["SPY"]\n')
    monkeypatch.setenv("OPTIONS_HELPER_DUCKDB_PATH", str(state.duckdb_path))
    monkeypatch.setenv("OPTIONS_HELPER_DATA_ROOT", str(state.data_root))
    monkeypatch.setenv("OPTIONS_HELPER_CONFIG", str(config))
    monkeypatch.setenv("OPTIONS_HELPER_PORTFOLIO", str(state.portfolio))
    monkeypatch.setenv("OPTIONS_HELPER_PROVIDER", "synthetic")
    return state


def _open(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    at.switch_page("views/portfolio.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _positions(at: AppTest) -> Any:
    frame = at.dataframe[0].value
    return frame.data if hasattr(frame, "data") else frame


def test_the_page_shows_the_positions_exposure_and_stress(env: Any) -> None:
    at = _open()
    assert [t.value for t in at.title] == ["Portfolio"]
    assert [s.value for s in at.subheader] == [f"Positions ({SESSIONS[-1]})", "Exposure",
                                               "Stress (full Black-Scholes repricing)"]
    positions = _positions(at)
    assert list(positions["id"]) == ["nov-call", "dec-call", "aapl-put-spread", "ghost"]
    statuses = dict(zip(positions["id"], positions["status"], strict=True))
    assert statuses["dec-call"] == "ok" and statuses["ghost"] == "missing" and statuses["nov-call"] == "expired"
    assert {m.label for m in at.metric} >= {"Delta (shares)", "Theta ($/day)", "Vega ($/vol pt)"}
    stress = at.dataframe[-1].value
    assert "worst combined" in " ".join(stress["name"])
    missing = dict(zip(positions["id"], positions["missing_legs"], strict=True))
    assert missing["ghost"] == "long 1 call 1234.5 2026-12-18" and missing["dec-call"] == ""


def test_time_travel_by_session(env: Any) -> None:
    at = _open({"session": SESSIONS[0].isoformat()})
    assert at.selectbox[0].value == SESSIONS[0].isoformat()
    assert at.subheader[0].value == f"Positions ({SESSIONS[0]})"
    positions = _positions(at)
    assert dict(zip(positions["id"], positions["status"], strict=True))["nov-call"] == "ok"
    at.selectbox[0].set_value(SESSIONS[-1].isoformat()).run()
    assert at.subheader[0].value == f"Positions ({SESSIONS[-1]})"


def test_without_a_portfolio_the_page_says_so(env: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPTIONS_HELPER_PORTFOLIO")
    monkeypatch.chdir(tmp_path)
    at = _open()
    assert any("No portfolio" in i.value for i in at.info)
