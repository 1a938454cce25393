"""Backfills: the plan is recorded, runs carry the id, a killed backfill resumes without re-running
finished cells, and the CLI speaks JSON. The runner is replaced by ``fake_runner`` (events only)
except in the one end-to-end test."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ledger
from ledger.config import Settings
from stages.backfills import backfill, backfill_resume, backfill_status
from stages.planning import plan
from tests.planner import fake_runner

D = dt.date
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # Monday after the Friday 2026-11-27 early close
START, END = D(2026, 11, 25), D(2026, 11, 27)
ROOT = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, **kw) -> Settings:
    s = Settings(duckdb_path=tmp_path / "l.duckdb", data_root=tmp_path / "data",
                 watchlists={"default": ("AAPL", "MSFT")}, **kw)
    ledger.open(s.duckdb_path)
    return s


def _materializations(s: Settings, backfill_id: str) -> list[tuple[str, str, str]]:
    with ledger.open(s.duckdb_path).reader() as con:
        return [tuple(r) for r in con.execute(
            "SELECT e.asset_key, e.partition_key, e.scope_key FROM meta.events e JOIN meta.ingestion_runs r "
            "USING (run_id) WHERE e.event_type = 'asset_materialized' AND r.backfill_id = ?", [backfill_id]).fetchall()]


def test_backfill_fills_every_gap_and_records_itself(tmp_path: Path):
    s = _settings(tmp_path)
    before = plan(s, start=START, end=END, now=NOW)
    assert before.cells_missing == before.cells_expected
    dry = backfill(s, start=START, end=END, now=NOW, dry_run=True, job_runner=fake_runner.run_job)
    assert dry.status == "planned" and dry.cells_total == before.cells_missing
    assert ledger.open(s.duckdb_path).last_seq() == 0  # a dry run records nothing
    seen = []
    result = backfill(s, start=START, end=END, now=NOW, job_runner=fake_runner.run_job,
                      progress=lambda m, d, n: seen.append((d, n)))
    assert result.status == "success" and result.cells_done == result.cells_total == before.cells_missing
    assert seen[-1] == (result.cells_total, result.cells_total)
    assert plan(s, start=START, end=END, now=NOW).cells_missing == 0
    runs = ledger.open(s.duckdb_path).runs(limit=1000, backfill_id=result.backfill_id)
    assert runs and {r["status"] for r in runs} == {"success"}
    assert all(r["backfill_id"] == result.backfill_id for r in runs)
    status = backfill_status(s, result.backfill_id)
    assert status["status"] == "finished" and status["cells_done"] == status["cells_total"]
    # upstream first: within a session, runs follow the graph; flow never precedes its snapshots
    order = [(r["partition_key"], r["job_name"]) for r in reversed(runs)]
    assert order == sorted(order, key=lambda x: (x[0], ["ingest_candles", "ingest_options_bars", "snapshot_options",
                                                         "compute_flow", "compute_derived", "build_briefing",
                                                         "build_dashboard"].index(x[1])))
    assert ledger.open(s.duckdb_path).verify().ok
    again = backfill(s, start=START, end=END, now=NOW, job_runner=fake_runner.run_job)
    assert again.status == "nothing_to_do"


def test_a_failed_cell_blocks_its_dependents_and_resume_retries_it(tmp_path: Path, monkeypatch):
    s = _settings(tmp_path)
    monkeypatch.setenv("FAKE_RUNNER_FAIL", "ingest_candles:2026-11-27:AAPL")
    result = backfill(s, start=START, end=END, now=NOW, job_runner=fake_runner.run_job)
    assert result.status == "failed" and result.cells_failed == 1 and result.cells_blocked > 0
    status = backfill_status(s, result.backfill_id)
    assert status["status"] == "failed" and status["cells_failed"] == 1 and status["cells_pending"] > 0
    monkeypatch.delenv("FAKE_RUNNER_FAIL")
    resumed = backfill_resume(s, result.backfill_id, now=NOW, job_runner=fake_runner.run_job)
    assert resumed.status == "success"
    assert plan(s, start=START, end=END, now=NOW).cells_missing == 0


_KILL_SCRIPT = """
import datetime as dt, sys
from pathlib import Path
from ledger.config import Settings
from stages.backfills import backfill
from tests.planner import fake_runner
s = Settings(duckdb_path=Path(sys.argv[1]), data_root=Path(sys.argv[2]), watchlists={"default": ("AAPL", "MSFT")},
             lease_seconds=0.5)
backfill(s, start=dt.date(2026, 11, 25), end=dt.date(2026, 11, 27),
         now=dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC), job_runner=fake_runner.run_job)
"""


def test_a_killed_backfill_resumes_and_runs_no_finished_cell_again(tmp_path: Path):
    s = _settings(tmp_path, lease_seconds=0.5)
    env = {**os.environ, "FAKE_RUNNER_KILL_AFTER": "9", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(s.duckdb_path), str(s.data_root)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    led = ledger.open(s.duckdb_path)
    with led.reader() as con:
        (backfill_id,) = con.execute("SELECT payload->>'backfill_id' FROM meta.events "
                                     "WHERE event_type = 'backfill_planned'").fetchall()[0]
    before = _materializations(s, backfill_id)
    assert before and backfill_status(s, backfill_id)["cells_pending"] > 0
    time.sleep(0.6)  # the killed run's lease expires; resume reaps it
    result = backfill_resume(s, backfill_id, now=NOW, job_runner=fake_runner.run_job)
    assert result.status == "success" and result.cells_skipped_before == len(before)
    after = _materializations(s, backfill_id)
    assert len(after) == len(set(after)), "a finished cell was run again"
    assert set(before) <= set(after)
    assert backfill_status(s, backfill_id)["status"] == "finished"
    assert "abandoned" in {r["status"] for r in led.runs(limit=1000, backfill_id=backfill_id)}
    assert plan(s, start=START, end=END, now=NOW).cells_missing == 0
    assert led.verify().ok


def test_cli_gaps_and_backfill_json(tmp_path: Path):
    s = _settings(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "frontends.cli.app", "--duckdb-path", str(s.duckdb_path)]
    out = subprocess.run([*base, "gaps", "--start", "2026-11-24", "--end", "2026-11-25", "--json"],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {"start", "end", "sessions", "cells_expected", "cells_missing", "ranges", "steps"} <= set(doc)
    assert doc["sessions"] == 2 and doc["cells_missing"] == doc["cells_expected"]
    assert set(doc["ranges"][0]) == {"asset_key", "scope_key", "start", "end", "sessions", "reason"}
    assert set(doc["steps"][0]) >= {"step", "job", "asset_key", "symbols", "start", "end", "command"}
    dry = subprocess.run([*base, "backfill", "--start", "2026-11-24", "--end", "2026-11-25", "--assets",
                          "candles_daily", "--symbols", "AAPL,MSFT", "--dry-run", "--json"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["cells_total"] == 4
    bad = subprocess.run([*base, "backfill", "status", "nope"], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "no backfill" in bad.stderr


def test_end_to_end_with_the_real_runner(tmp_path: Path):
    """The synthetic provider through the real runner: after `backfill`, `gaps` is empty and
    `db verify` passes. One symbol, one session: seven jobs."""
    s = _settings(tmp_path)
    result = backfill(s, start=END, end=END, symbols=["AAPL"], now=NOW)
    assert result.status == "success", result.jobs
    assert plan(s, start=END, end=END, symbols=["AAPL"], now=NOW).cells_missing == 0
    assert ledger.open(s.duckdb_path).verify().ok
