"""A Hypothesis state machine over the ledger.

The system under test is two writers (two ``DuckDBEventStore`` handles on one file, taking turns
at random); the model is ``InMemoryEventStore`` with its Python fold. Rules start runs, record
materializations, failures, skips and checks, send heartbeats, finish runs, crash runs (the run
just stops: no terminal event), move the clock, reap, rebuild, travel in time and try batches that
must be refused. After every step:

- both logs have the same length and the same (seq, event type, run) sequence;
- every projection in the file equals the model's fold, row for row;
- ``verify_file`` passes: the hash chain is intact and a full rebuild equals the stored projections.

Budget: HYPOTHESIS_PROFILE=default|ci|nightly (see helpers.py).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, precondition, rule

from ledger.duckdb_store import DuckDBEventStore, normalise_rows
from ledger.errors import ConflictError
from ledger.events import (
    AssetFailed,
    AssetMaterialized,
    AssetSkipped,
    CheckEvaluated,
    Event,
    RunFailed,
    RunHeartbeat,
    RunStarted,
    RunSucceeded,
)
from ledger.projections import PROJECTION_TABLES
from ledger.verify import verify_file
from tests.ledger.helpers import STATEFUL, FixedClock, keyed, snapshot
from tests.ledger.python_fold import InMemoryEventStore

ASSETS = ("candles_daily", "options_snapshot_file", "options_flow")
DAYS = ("2025-03-04", "2025-03-05", "2025-03-06")
SCOPES = ("AAPL", "MSFT", "ALL")

cells = st.tuples(st.sampled_from(ASSETS), st.sampled_from(DAYS), st.sampled_from(SCOPES))
asset_kinds = st.sampled_from(["materialized", "materialized", "failed", "skipped"])
data_times = st.one_of(st.none(), st.sampled_from(DAYS).map(lambda d: f"{d}T00:00:00+00:00"),
                       st.sampled_from(["2025-03-05T20:00:00.123456-05:00", "2025-03-06T12:30:00"]))


class LedgerMachine(RuleBasedStateMachine):
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-sm-"))
        self.path = self.dir / "ledger.duckdb"
        self.clock = FixedClock()
        self.model = InMemoryEventStore(clock=self.clock)
        self.writers = [DuckDBEventStore(self.path, clock=self.clock, lock_timeout_seconds=30) for _ in range(2)]
        self.counter = 0
        self.materializations: dict[str, list[str]] = {}  # run_id -> its materialization event ids

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- applying a batch to model and system ---------------------------------------------------
    def _apply(self, writer: int, events: list[Event], **kwargs: Any) -> bool:
        outcomes = []
        for store in (self.model, self.writers[writer]):
            try:
                outcomes.append([(s.seq, s.event_type, s.event.run_id) for s in store.append(events, **kwargs)])
            except ConflictError as e:
                outcomes.append(type(e))
        assert outcomes[0] == outcomes[1], f"model {outcomes[0]} != duckdb {outcomes[1]}"
        return outcomes[0] is not ConflictError

    # -- rules -----------------------------------------------------------------------------------
    @rule(target=runs, writer=st.integers(0, 1), lease=st.sampled_from([1.0, 2.0, 30.0]),
          job=st.sampled_from(["ingest_candles", "snapshot_options", "compute_flow"]))
    def start_run(self, writer: int, lease: float, job: str) -> str:
        self.counter += 1
        run_id = f"run-{self.counter:03d}"
        self._apply(writer, [RunStarted(run_id=run_id, job_name=job, lease_seconds=lease, triggered_by="cli",
                                        partition_key=DAYS[-1], scope_keys=["AAPL"], args={"n": self.counter})])
        return run_id

    @rule(writer=st.integers(0, 1), run=runs, outcomes=st.lists(st.tuples(asset_kinds, cells, data_times),
                                                               min_size=1, max_size=4),
          check_each=st.booleans())
    def record_assets(self, writer: int, run: str, outcomes: list[Any], check_each: bool) -> None:
        events: list[Event] = []
        mats = []
        for kind, (asset, day, scope), data_time in outcomes:
            if kind == "materialized":
                e: Event = AssetMaterialized(run_id=run, asset_key=asset, partition_key=day, scope_key=scope,
                                             rows=len(events), max_data_time=data_time, min_data_time=data_time,
                                             data_version=f"v{self.counter}", extra={"k": len(events)})
                mats.append(e)
            elif kind == "failed":
                e = AssetFailed(run_id=run, asset_key=asset, partition_key=day, scope_key=scope,
                                error_type="HTTPError", error_message="503")
            else:
                e = AssetSkipped(run_id=run, asset_key=asset, partition_key=day, scope_key=scope, reason="holiday")
            events.append(e)
        if check_each:
            events += [CheckEvaluated(run_id=run, asset_key=m.asset_key, partition_key=m.partition_key,
                                      scope_key=m.scope_key, check_name="non_empty", severity="error",
                                      status="pass", materialization_id=m.event_id) for m in mats]
        if self._apply(writer, events):
            self.materializations.setdefault(run, []).extend(m.event_id for m in mats)

    @rule(writer=st.integers(0, 1), run=runs, status=st.sampled_from(["pass", "fail", "skip"]), data=st.data())
    def check_earlier_materialization(self, writer: int, run: str, status: str, data: st.DataObject) -> None:
        earlier = self.materializations.get(run) or [None]
        target = data.draw(st.sampled_from(earlier))
        self._apply(writer, [CheckEvaluated(run_id=run, asset_key="candles_daily", partition_key=None,
                                            scope_key="ALL", check_name="fresh", severity="warn", status=status,
                                            metrics={"lag": 1.5}, materialization_id=target)])

    @rule(writer=st.integers(0, 1), run=runs, lease=st.sampled_from([1.0, 2.0]))
    def heartbeat(self, writer: int, run: str, lease: float) -> None:
        self._apply(writer, [RunHeartbeat(run_id=run, lease_seconds=lease)])

    @rule(writer=st.integers(0, 1), run=consumes(runs), ok=st.booleans())
    def finish(self, writer: int, run: str, ok: bool) -> None:
        end = RunSucceeded(run_id=run) if ok else RunFailed(run_id=run, error_type="StageError",
                                                             error_message="no data", stack_hash="abc")
        self._apply(writer, [end])

    @rule(run=consumes(runs))
    def crash(self, run: str) -> None:
        """The process running ``run`` dies: nothing more is ever recorded for it."""

    @rule(micros=st.integers(0, 2_500_000))
    def advance_clock(self, micros: int) -> None:
        self.clock.advance(micros / 1_000_000)

    @rule(writer=st.integers(0, 1))
    def reap(self, writer: int) -> None:
        model = [(s.seq, s.event.run_id) for s in self.model.reap()]
        system = [(s.seq, s.event.run_id) for s in self.writers[writer].reap()]
        assert model == system

    @rule(writer=st.integers(0, 1))
    def rebuild(self, writer: int) -> None:
        self.writers[writer].rebuild()

    @rule(writer=st.integers(0, 1), run=runs, data=st.data())
    def refused_batch(self, writer: int, run: str, data: st.DataObject) -> None:
        """A batch with one conflicting member is refused by both, and changes nothing."""
        good = AssetSkipped(run_id=run, asset_key="options_flow", partition_key=DAYS[0], scope_key="ALL")
        bad = data.draw(st.sampled_from([
            AssetSkipped(run_id="never-started", asset_key="options_flow", partition_key=DAYS[0], scope_key="ALL"),
            RunStarted(run_id=run, job_name="again"),
            good,  # the same event twice in one batch
        ]))
        assert not self._apply(writer, [good, bad] if data.draw(st.booleans()) else [bad, good])

    @precondition(lambda self: self.model.last_seq() > 0)
    @rule(data=st.data())
    def time_travel(self, data: st.DataObject) -> None:
        """``as_of(k)`` folds the log up to k: it equals the model folded up to k."""
        k = data.draw(st.integers(0, self.model.last_seq()))
        with self.writers[0].as_of(k) as con:
            got = {t: keyed(t, normalise_rows(con.execute(f"SELECT * FROM meta.{t}"))) for t in PROJECTION_TABLES}
        assert got == snapshot(self.model, as_of_seq=k)

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def logs_agree(self) -> None:
        model = [(s.seq, s.event_type, s.event.run_id) for s in self.model.read()]
        system = [(s.seq, s.event_type, s.event.run_id) for s in self.writers[1].read()]
        assert system == model

    @invariant()
    def projections_equal_the_model_fold(self) -> None:
        with self.writers[0].reader() as con:
            got = {t: keyed(t, normalise_rows(con.execute(f"SELECT * FROM meta.{t}"))) for t in PROJECTION_TABLES}
        want = snapshot(self.model)
        for table in PROJECTION_TABLES:
            assert got[table] == want[table], table

    @invariant()
    def a_full_rebuild_equals_the_projections_and_the_chain_holds(self) -> None:
        report = verify_file(str(self.path))
        assert report.ok, report.problems
        assert report.last_seq == self.model.last_seq()


LedgerMachine.TestCase.settings = STATEFUL
TestLedgerStateMachine = pytest.mark.timeout(900)(LedgerMachine.TestCase)
