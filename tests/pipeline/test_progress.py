"""Progress on a terminal: one bar per stage with symbols done/total, failures so far, time taken
and left; nothing on stderr when it is not a terminal, and ``--json`` stays one document."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

import stages
from frontends.cli import render
from frontends.cli.pipeline_cmd import _progress_callback
from ledger.errors import SymbolNotFoundError
from tests.pipeline.conftest import DAY1, NOW
from tests.pipeline.test_parallel import SYMBOLS, ForkableFaulty, settings_in


def test_a_terminal_sees_each_stage_with_done_total_and_failures(tmp_path: Path, synthetic: Any) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    provider = ForkableFaulty(synthetic, fail={"option_chain": {"MSFT": SymbolNotFoundError("MSFT is not listed")}})
    s = settings_in(tmp_path, workers=2)
    with render.progress(console=console) as bar:
        stages.run_job("ingest_candles", as_of=DAY1, settings=s, provider=synthetic, now=NOW,
                       progress=_progress_callback(bar))
        stages.run_job("snapshot_options", as_of=DAY1, settings=s, provider=provider, now=NOW,
                       progress=_progress_callback(bar))
    text = screen.getvalue()
    total = len(SYMBOLS)
    assert "ingest_candles: committing" in text and f"{total}/{total}" in text
    assert "snapshot_options: committing (1 failed)" in text
    assert "left" in text  # the time-left column


def test_no_terminal_no_progress_and_json_is_one_document(tmp_path: Path) -> None:
    env = {**os.environ, "OPTIONS_HELPER_DUCKDB_PATH": str(tmp_path / "o.duckdb"),
           "OPTIONS_HELPER_DATA_ROOT": str(tmp_path / "data"), "OPTIONS_HELPER_PROVIDER": "synthetic"}
    done = subprocess.run([sys.executable, "-m", "frontends.cli.app", "ingest", "candles", "--as-of", DAY1.isoformat(),
                           "--symbols", "SPY,IWM", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["status"] == "success"
