"""Every page under Streamlit's AppTest, on the seeded ledger and on missing or empty databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.portal

APP = str(Path(__file__).resolve().parents[2] / "frontends" / "portal" / "app.py")
PAGES = ("views/health.py", "views/gaps.py", "views/runs.py", "views/data.py", "views/symbol.py", "views/portfolio.py")


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def _texts(at: AppTest) -> str:
    parts: list[str] = []
    for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "error", "success", "code"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(str(m.label) + " " + str(m.value) for m in at.metric)
    return "\n".join(parts)


def _frames(at: AppTest) -> list[Any]:
    return [d.value for d in at.dataframe]


def _page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_health_page(portal_env: dict[str, Any]) -> None:
    at = _app()
    at.run()
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Health"]
    assert [s.value for s in at.subheader] == ["Latest run per job", "Recurring failures", "Freshness",
                                               "Failed checks", "Abandoned runs"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Jobs"] == "7" and metrics["Abandoned runs (7 d)"] == "1"
    frames = _frames(at)
    latest = frames[0].data if hasattr(frames[0], "data") else frames[0]
    assert any(portal_env["abandoned_run_id"] in str(v) for v in latest["run_id"])
    groups = frames[1]
    assert list(groups["failures"]) == [3, 1]
    assert "candles_daily" in set(frames[2].data["asset_key"] if hasattr(frames[2], "data") else frames[2]["asset_key"])


def test_health_time_travel(portal_env: dict[str, Any]) -> None:
    at = _app()
    at.run()
    at.radio(key="asof_mode").set_value("A seq").run()
    at.number_input(key="asof_seq").set_value(portal_env["first_day_seq"]).run()
    assert not at.exception and not at.error
    assert f"As of seq {portal_env['first_day_seq']}" in _texts(at)
    assert "No abandoned runs" in _texts(at) and "No failed runs" in _texts(at)
    at.radio(key="asof_mode").set_value("A moment (UTC)").run()
    assert not at.exception and not at.error


def test_gaps_page(portal_env: dict[str, Any]) -> None:
    import datetime as dt

    at = _page(_app(), "views/gaps.py")
    assert "Gaps" in _texts(at) and "Gap planner" in _texts(at)
    assert len(at.get("vega_lite_chart")) == 1
    at.date_input(key="g_start").set_value(dt.date.fromisoformat(portal_env["sessions"][0])).run()
    at.date_input(key="g_end").set_value(dt.date.fromisoformat(portal_env["sessions"][-1])).run()
    assert "ok: 35" in _texts(at)
    at.selectbox(key="g_symbol").select("MSFT").run()
    assert not at.exception and not at.error and "ok: 35" in _texts(at)
    at.toggle(key="g_plan").set_value(True).run()
    assert not at.exception and not at.error
    assert not at.warning, [w.value for w in at.warning]  # the planner answered
    commands = [line for c in at.code for line in c.value.splitlines() if line.startswith("options-helper ")]
    assert commands and all("--symbols MSFT" in c for c in commands if "--symbols" in c), commands


def test_runs_page_list_filter_and_detail(portal_env: dict[str, Any]) -> None:
    at = _page(_app(), "views/runs.py")
    runs = _frames(at)[0]
    runs = runs.data if hasattr(runs, "data") else runs
    assert len(runs) == len(portal_env["run_ids"]) + len(portal_env["failed_run_ids"]) + 2
    at.selectbox(key="f_status").select("failed").run()
    failed = _frames(at)[0]
    failed = failed.data if hasattr(failed, "data") else failed
    assert len(failed) == 4
    at.text_input(key="open_run").input(portal_env["failed_run_ids"][0]).run()
    text = _texts(at)
    assert "ingest_options_bars · failed" in text and "TimeoutError" in text
    assert portal_env["failed_run_ids"][0] in text


def test_run_detail_by_query_param(portal_env: dict[str, Any]) -> None:
    at = _app()
    at.query_params["run_id"] = portal_env["run_ids"][0]
    at.switch_page("views/runs.py").run()
    assert not at.exception and not at.error
    text = _texts(at)
    assert "ingest_candles · success" in text and "Event timeline" in text
    assert len(at.json) == 1 and "PKTEST1234" not in str(at.json[0].value) and "***" in str(at.json[0].value)
    assert len(_frames(at)) == 3  # timeline, assets, checks
    unknown = _app()
    unknown.query_params["run_id"] = "nope"
    unknown.switch_page("views/runs.py").run()
    assert "No run nope" in _texts(unknown)


def test_data_page_browser_and_sql(portal_env: dict[str, Any]) -> None:
    at = _page(_app(), "views/data.py")
    assert at.selectbox(key="d_table").value == "meta.asset_checks"
    at.selectbox(key="d_table").select("meta.events").run()
    preview = _frames(at)[1]
    assert int(preview["seq"].iloc[0]) == portal_env["last_seq"]
    at.text_area(key="sql_text").input("SELECT job_name, count(*) AS n FROM meta.ingestion_runs GROUP BY ALL ORDER BY 1").run()
    at.button(key="sql_run").click().run()
    assert not at.exception and not at.error
    assert any("7 rows" in s.value for s in at.success)
    for bad in ("DROP TABLE meta.events", "SELECT * FROM read_csv('/etc/passwd')", "SELECT 1; SELECT 2"):
        at.text_area(key="sql_text").input(bad).run()
        at.button(key="sql_run").click().run()
        assert not at.exception
        assert at.error and at.error[0].value.startswith("Refused"), bad


def test_symbol_page(portal_env: dict[str, Any]) -> None:
    at = _page(_app(), "views/symbol.py")
    text = _texts(at)
    assert "AAPL" in text and "Latest flow by strike" in text and "briefing_markdown" in text
    assert len(at.get("vega_lite_chart")) >= 3
    at.selectbox(key="sym").select("SPY").run()
    assert not at.exception and not at.error and "SPY" in [s.value for s in at.subheader]


@pytest.mark.parametrize("page", PAGES)
def test_missing_database_shows_guidance(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTIONS_HELPER_DUCKDB_PATH", str(tmp_path / "none.duckdb"))
    at = _app()
    at.switch_page(page).run()
    assert not at.exception
    assert at.warning and "No database at" in at.warning[0].value
    assert any("options-helper db init" in c.value for c in at.code)
    assert not (tmp_path / "none.duckdb").exists()  # the portal never creates it


@pytest.mark.parametrize("page", PAGES)
def test_empty_ledger_shows_guidance(page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger

    path = tmp_path / "empty.duckdb"
    ledger.open(path)
    monkeypatch.setenv("OPTIONS_HELPER_DUCKDB_PATH", str(path))
    at = _app()
    at.switch_page(page).run()
    assert not at.exception
    assert at.warning and "empty" in at.warning[0].value


def test_foreign_file_shows_guidance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "junk.duckdb"
    path.write_text("this is not a database")
    monkeypatch.setenv("OPTIONS_HELPER_DUCKDB_PATH", str(path))
    at = _app()
    at.run()
    assert not at.exception
    assert at.warning and at.warning[0].value.startswith("Cannot read")
