"""The kill harness: a child records runs in a loop and is SIGKILLed at random moments.

After every kill: the file opens read-write (replaying the WAL), ``verify`` passes (hash chain
intact, projections equal a rebuild), every run the child acknowledged is present and succeeded
with its data rows, and no data row exists without its run's events (one transaction for both).
Some kills land during start-up, while the child opens the file and replays the previous WAL.
At the end, runs cut short are abandoned once their lease expires: none stays 'started'.

The default run kills 20 times; ``-m slow`` runs 200.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

import ledger
from ledger.verify import verify_file
from tests.ledger.children import Child

LEASE = 1.0


def _kill_cycles(path: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    acknowledged: set[str] = set()
    for i in range(kills):
        child = Child("_child_writer.py", str(path), "--lease", str(LEASE), "--tag", f"k{i}")
        moment = rng.random()
        if moment < 0.15:
            time.sleep(rng.uniform(0.0, 0.5))  # during start-up: open, migrate, WAL replay
        elif moment < 0.5:
            assert child.wait_for("ready", timeout=60), child.lines
            time.sleep(rng.uniform(0.0, 1.0))  # during the first commits
        else:
            # after a few acknowledged runs, somewhere inside the next ones (a run is two commits)
            assert child.wait_for("committed", timeout=60, count=rng.randint(1, 2)), child.lines
            time.sleep(rng.uniform(0.0, 0.8))
        child.kill()
        assert not [line for line in child.lines if line.startswith("error")], child.lines
        acknowledged |= set(child.values("committed"))
        succeeded = _check_after_kill(path, acknowledged, kill=i)
    figures = {"kills": kills, "acknowledged": len(acknowledged),
               "committed_but_unacknowledged": len(succeeded - acknowledged), "lost": 0}
    print(f"kill harness: {figures}")
    return figures


def _check_after_kill(path: Path, acknowledged: set[str], *, kill: int) -> set[str]:
    led = ledger.open(path, create=False, auto_reap=False)  # opens read-write: WAL replay happens here
    report = verify_file(str(path))
    assert report.ok, f"after kill {kill}: {report.problems}"
    with led.reader() as con:
        runs = dict(con.execute("SELECT run_id, status FROM meta.ingestion_runs").fetchall())
        has_data = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'kill_test_rows'").fetchone()[0]
        rows = dict(con.execute("SELECT run_id, count(*) FROM main.kill_test_rows GROUP BY run_id").fetchall()) \
            if has_data else {}
        materialized = {r for (r,) in con.execute("SELECT DISTINCT run_id FROM meta.ingestion_run_assets").fetchall()}
    lost = sorted(r for r in acknowledged if runs.get(r) != "success")
    assert not lost, f"after kill {kill}: acknowledged runs missing or not succeeded: {lost}"
    assert all(rows.get(r) == 5 for r in acknowledged), f"after kill {kill}: data rows missing"
    # data rows and materialization events commit together: neither exists without the other
    assert set(rows) == materialized, f"after kill {kill}: data and events disagree"
    return {r for r, status in runs.items() if status == "success"}


def _no_run_stays_started(path: Path) -> None:
    time.sleep(LEASE + 0.2)
    led = ledger.open(path, create=False)
    led.reap()
    assert [r for r in led.runs(limit=100_000) if r["status"] == "started"] == []
    assert led.verify().ok


@pytest.mark.timeout(300)
def test_sigkill_never_loses_an_acknowledged_run_and_never_breaks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    ledger.open(path)
    figures = _kill_cycles(path, kills=20, seed=20250306)
    assert figures["acknowledged"] > 0, "no run was committed before any kill: the harness tested nothing"
    _no_run_stays_started(path)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_sigkill_soak_two_hundred_kills(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    ledger.open(path)
    figures = _kill_cycles(path, kills=200, seed=int(time.time()))
    assert figures["acknowledged"] > 0
    _no_run_stays_started(path)
