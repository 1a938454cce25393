"""Regressions found by `make soak` (tests/soak), small enough for `make test`."""

from __future__ import annotations

import datetime as dt

from ledger.duckdb_store import DuckDBEventStore
from ledger.events import RunStarted, RunSucceeded
from ledger.verify import verify_file


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 6, 1, 20, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_run_reaped_while_alive_then_succeeding_verifies(tmp_path):
    clock = Clock()
    path = tmp_path / "l.duckdb"
    store = DuckDBEventStore(path, clock=clock)
    store.append([RunStarted(run_id="r1", job_name="slow", lease_seconds=1.0)])
    clock.now += dt.timedelta(seconds=5)  # the lease expires while the run is still working
    store.append([RunSucceeded(run_id="r1")])  # its own append reaps it first, then succeeds
    report = verify_file(str(path))
    assert report.ok, report.problems
