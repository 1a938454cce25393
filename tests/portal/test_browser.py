"""The portal in a real browser: `options-helper portal` in a subprocess, every page in headless
Debian Chromium (Playwright), screenshots under test-artifacts/portal/, and a writer that runs to
completion while the pages reload in a loop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.portal.conftest import write_config

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "portal"
DOC_IMAGES = ROOT / "docs" / "images"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("options-helper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "frontends.cli.app"]


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the portal exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the portal did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture
def portal(seeded_copy: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (`make test` installs it with apt-get when run as root)")
    pytest.importorskip("playwright.sync_api")
    home = tmp_path / "home"
    home.mkdir()
    port = _free_port()
    env = {**os.environ, "HOME": str(home), "OPTIONS_HELPER_CONFIG": str(write_config(tmp_path)),
           "OPTIONS_HELPER_PROVIDER": "synthetic"}
    env.pop("OPTIONS_HELPER_DUCKDB_PATH", None)
    log = tmp_path / "portal.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_cli(), "--data-root", seeded_copy["data_root"], "portal", "--port", str(port),
             "--duckdb-path", seeded_copy["path"]],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log)
        yield {**seeded_copy, "url": url, "env": env, "home": home, "log": log, "cwd": tmp_path}
    finally:
        _stop(proc)


def _settled(page: Any, texts: list[str], timeout: float = 60_000) -> None:
    """Wait until the page shows ``texts``, Streamlit stopped running, and charts are drawn."""
    for text in texts:
        page.get_by_text(text).first.wait_for(timeout=timeout)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=timeout)
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    for i in range(charts.count()):
        charts.nth(i).locator("canvas, svg").first.wait_for(timeout=timeout)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)
    assert page.locator('[data-testid="stException"]').count() == 0


def _filter_runs(page: Any, url: str, partition: str, count: int) -> None:
    """The runs list filtered to ``partition`` shows exactly ``count`` runs."""
    page.goto(url + "/runs")
    _settled(page, ["Open run id"])
    box = page.get_by_label("Partition (YYYY-MM-DD)")
    box.fill(partition)
    box.press("Enter")
    _settled(page, [f"{count:,} runs shown"])


def _pages(info: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    rid = info["failed_run_ids"][0]
    return [
        ("health", "/", ["Latest run per job", "Abandoned runs"]),
        ("gaps", "/gaps?plan=1", ["Gap planner", "Cells expected"]),
        ("runs", "/runs", ["Open run id"]),
        ("run", f"/runs?run_id={rid}", [rid, "Event timeline", "TimeoutError"]),
        ("data", "/data", ["Order by"]),
        ("symbol", "/symbol", ["Latest flow by strike", "briefing_markdown", "AAPL"]),
    ]


def test_every_page_in_chromium_while_a_writer_runs(portal: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = _pages(portal)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_FLAGS,
                                    env={**os.environ, "HOME": str(portal["home"])})
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            for name, path, texts in pages:
                page.goto(portal["url"] + path)
                _settled(page, texts)
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            # the SQL box refuses a file read, in the browser too
            page.goto(portal["url"] + "/data")
            _settled(page, ["Order by"])
            page.get_by_role("tab", name="SQL").click()
            page.locator("textarea").first.fill("SELECT * FROM read_csv('/etc/passwd')")
            page.get_by_role("button", name="Run query").click()
            page.locator("textarea").first.press("Control+Enter")
            page.get_by_role("button", name="Run query").click()
            _settled(page, ["Refused: the table function read_csv()"])
            page.screenshot(path=str(ARTIFACTS / "sql-refused.png"), full_page=True)

            # a writer runs to completion while every page reloads in a loop
            from frontends.portal import queries

            session = portal["sessions"][-1]  # the writer's session: the latest completed one
            before = set(queries.runs(portal["path"], partition=session, limit=5000)["run_id"])
            # the runs list for that partition, read (and cached) before the writer starts
            _filter_runs(page, portal["url"], session, len(before))
            writer_out, writer_log = portal["cwd"] / "daily.json", portal["cwd"] / "daily.log"
            with writer_out.open("wb") as wout, writer_log.open("wb") as wlog:
                writer = subprocess.Popen(
                    [*_cli(), "--data-root", portal["data_root"], "daily", "--symbols", "SPY",
                     "--duckdb-path", portal["path"], "--json"],
                    cwd=portal["cwd"], env=portal["env"], stdout=wout, stderr=wlog, start_new_session=True)
            loads = 0
            try:
                deadline = time.monotonic() + 300
                while writer.poll() is None and time.monotonic() < deadline:
                    name, path, texts = pages[loads % len(pages)]
                    page.goto(portal["url"] + path)
                    _settled(page, texts[:1])
                    loads += 1
                writer.wait(timeout=300)
            finally:
                if writer.poll() is None:
                    os.killpg(writer.pid, signal.SIGKILL)
            assert writer.returncode == 0, writer_log.read_text()[-2000:]
            assert loads >= 1
            day = json.loads(writer_out.read_text())
            assert day["as_of"] == session, (day["as_of"], session)
            written = [r["run_id"] for r in day["results"]]
            assert len(written) == len(set(written)) == len(day["results"]) > 0 and not set(written) & before
            # the portal shows the writer's runs at once (the cache is keyed by the ledger's head): the same
            # filter as before the writer now counts its runs too, and its last run opens by id
            _filter_runs(page, portal["url"], session, len(before) + len(written))
            page.get_by_label("Open run id").fill(written[-1])
            page.get_by_label("Open run id").press("Enter")
            _settled(page, [written[-1], "Event timeline", day["results"][-1]["job"]])
        finally:
            browser.close()
    after = queries.runs(portal["path"], partition=session, limit=5000)
    assert set(after["run_id"]) == before | set(written)
    assert set(after[after["run_id"].isin(written)]["triggered_by"]) == {"cli"}
    # Tests never rewrite tracked files: refresh docs/images only when asked (UPDATE_DOCS=1).
    if os.environ.get("UPDATE_DOCS"):
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        for name in ("health", "gaps", "run", "data", "symbol", "sql-refused"):
            shutil.copy(ARTIFACTS / f"{name}.png", DOC_IMAGES / f"portal-{name}.png")
