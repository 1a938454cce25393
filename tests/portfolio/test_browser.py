"""The portfolio in headless Debian Chromium: the portal's Portfolio page (``options-helper portal``
in a subprocess) and the dashboard's Portfolio panel (the HTML file opened from disk)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import stages
from tests.portal.test_browser import (
    ARTIFACTS,
    CHROMIUM_FLAGS,
    _cli,
    _free_port,
    _settled,
    _stop,
    _wait_healthy,
)
from tests.portfolio.conftest import NOW, SESSIONS

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt-get when run as root)")
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    home = tmp_path / "home"
    home.mkdir()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_FLAGS,
                              env={**os.environ, "HOME": str(home)})
        try:
            yield b
        finally:
            b.close()


def test_the_dashboard_panel_in_chromium(state: Any, browser: Any) -> None:
    assert stages.run_job("build_dashboard", as_of=SESSIONS[-1], settings=state, now=NOW).ok
    page_path = Path(state.data_root) / "reports" / "dashboard" / f"{SESSIONS[-1]}.html"
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(page_path.as_uri())
    panel = page.locator("section#portfolio")
    panel.wait_for()
    text = panel.inner_text()
    assert "Portfolio" in text and "dec-call" in text and "worst combined" in text
    assert page.locator('section#portfolio tr[data-status="missing"]').count() == 1
    assert page.locator("section#portfolio table.portfolio tbody tr").count() == 4
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-portfolio.png"), full_page=False)


def test_the_portal_page_in_chromium(state: Any, browser: Any, tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "options-helper.toml"
    config.write_text('[watchlists]\ndefault = ["SPY"]\n')
    env = {**os.environ, "HOME": str(tmp_path), "OPTIONS_HELPER_CONFIG": str(config),
           "OPTIONS_HELPER_PROVIDER": "synthetic", "OPTIONS_HELPER_PORTFOLIO": str(state.portfolio)}
    env.pop("OPTIONS_HELPER_DUCKDB_PATH", None)
    log = tmp_path / "portal.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([*_cli(), "--data-root", str(state.data_root), "portal", "--port", str(port),
                                 "--duckdb-path", str(state.duckdb_path)],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(url + "/portfolio")
        _settled(page, [f"Positions ({SESSIONS[-1]})", "Exposure", "Stress (full Black-Scholes repricing)"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "portfolio.png"), full_page=True)
        page.goto(url + f"/portfolio?session={SESSIONS[0]}")
        _settled(page, [f"Positions ({SESSIONS[0]})"])
    finally:
        _stop(proc)
