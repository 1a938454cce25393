"""A Hypothesis state machine over the ledger.

The system under test is two writers (two ``DuckDBEventStore`` handles on one file, taking turns
at random); the model is ``tests.ledger.model.ModelLedger``, a list of events folded by rules
written for the tests (it shares no code with the production folds). Rules start runs, record
materializations, failures, skips and checks, send heartbeats, finish runs, crash runs (the run
just stops: no terminal event), move the clock, reap, rebuild, travel in time and try batches that
must be refused.

The rules are weighted towards what the projections' merges can get wrong: several rules write
asset events (random mixes, which may fail or skip cells materialized earlier or bring data dates
older than the watermark; and the two sequences "materialized, then failed or skipped by a later
batch" and "a newer data date, then an older one", each under two names), with few cells and data
times so that batches keep meeting the cells of earlier ones. After every step:

- both logs have the same length and the same (seq, event type, run) sequence;
- every projection in the file equals the model's, row for row.

``verify_file`` (the hash chain, and a full rebuild equal to the stored projections) is a rule of
its own, as are rebuilds and time travel (the SQL fold of a prefix against the model's).

Budget: HYPOTHESIS_PROFILE=default|ci|nightly (``STATEFUL`` in helpers.py).
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import ConflictError
from ledger.events import (
    AssetFailed,
    AssetMaterialized,
    AssetSkipped,
    CheckEvaluated,
    ChecksEvaluated,
    Event,
    RunFailed,
    RunHeartbeat,
    RunStarted,
    RunSucceeded,
)
from ledger.queries import normalise_rows
from ledger.verify import verify_file
from tests.ledger.helpers import STATEFUL, FixedClock, differences, keyed, snapshot
from tests.ledger.model import TABLES, ModelLedger, timestamp

# Few cells, so that later batches meet the cells of earlier ones.
ASSETS = ("candles_daily", "options_flow")
DAYS = ("2025-03-04", "2025-03-05", "2025-03-06")
SCOPES = ("AAPL", "ALL")
# Data times in the spellings stages write (offsets, naive = UTC, microseconds), in no fixed
# order against each other's text; None: a materialization without a data period.
DATA_TIMES = ("2025-03-04T00:00:00+00:00", "2025-03-04T21:00:00+00:00", "2025-03-05T20:00:00.123456-05:00",
              "2025-03-05T21:00:00", "2025-03-06T21:00:00+00:00", "2025-03-06T12:30:00")

cells = st.tuples(st.sampled_from(ASSETS), st.sampled_from(DAYS), st.sampled_from(SCOPES))
# "failed again"/"skipped again": the event goes to a cell materialized earlier, if any; "older": a
# materialization whose data time is older than its asset's watermark, if one is.
asset_kinds = st.sampled_from(["materialized", "materialized", "failed", "skipped", "failed again", "skipped again",
                               "older"])
data_times = st.one_of(st.sampled_from(DATA_TIMES), st.none())
outcomes = st.lists(st.tuples(asset_kinds, cells, data_times), min_size=1, max_size=4)


class LedgerMachine(RuleBasedStateMachine):
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="ledger-sm-"))
        self.path = self.dir / "ledger.duckdb"
        self.clock = FixedClock()
        self.model = ModelLedger(clock=self.clock)
        self.writers = [DuckDBEventStore(self.path, clock=self.clock, lock_timeout_seconds=30) for _ in range(2)]
        self.counter = 0
        self.materializations: dict[str, list[str]] = {}  # run_id -> its materialization event ids
        self.materialized: set[tuple[str, str, str]] = set()  # cells with a materialization in the log
        self.newest: dict[tuple[str, str], dt.datetime] = {}  # (asset, scope) -> newest data time logged

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- applying a batch to model and system ---------------------------------------------------
    def _apply(self, writer: int, events: list[Event], **kwargs: Any) -> bool:
        outcomes = []
        for store in (self.model, self.writers[writer]):
            try:
                outcomes.append([(s.seq, s.event_type, s.event.run_id) for s in store.append(events, **kwargs)])
            except ConflictError:
                outcomes.append(ConflictError)  # a subclass may say more (ConstraintViolationError)
        assert outcomes[0] == outcomes[1], f"model {outcomes[0]} != duckdb {outcomes[1]}"
        if outcomes[0] is ConflictError:
            return False
        for e in events:
            if isinstance(e, AssetMaterialized):
                self.materialized.add((e.asset_key, e.partition_key, e.scope_key))
                self.materializations.setdefault(e.run_id, []).append(e.event_id)
                if e.max_data_time is not None:
                    when, key = timestamp(e.max_data_time), (e.asset_key, e.scope_key)
                    self.newest[key] = max(self.newest.get(key, when), when)  # type: ignore[type-var, arg-type]
        return True

    def _assets(self, run: str, outcomes: list[Any], check_each: bool) -> list[Event]:
        events: list[Event] = []
        mats = []
        materialized = sorted(self.materialized)
        for i, (kind, (asset, day, scope), data_time) in enumerate(outcomes):
            if kind.endswith(" again") and materialized:
                asset, day, scope = materialized[i % len(materialized)]
            if kind == "older":
                newest = self.newest.get((asset, scope))
                older = [t for t in DATA_TIMES if newest is not None and timestamp(t) < newest]  # type: ignore[operator]
                data_time = older[-1] if older else data_time
            if kind in ("materialized", "older"):
                e: Event = AssetMaterialized(run_id=run, asset_key=asset, partition_key=day, scope_key=scope,
                                             rows=len(events), max_data_time=data_time, min_data_time=data_time,
                                             data_version=f"v{self.counter}", extra={"k": len(events)})
                mats.append(e)
            elif kind.startswith("failed"):
                e = AssetFailed(run_id=run, asset_key=asset, partition_key=day, scope_key=scope,
                                error_type="HTTPError", error_message="503")
            else:
                e = AssetSkipped(run_id=run, asset_key=asset, partition_key=day, scope_key=scope, reason="holiday")
            events.append(e)
        if check_each:  # a check event, or one event for two checks (what the runner records), in turn
            events += [CheckEvaluated(run_id=run, asset_key=m.asset_key, partition_key=m.partition_key,
                                      scope_key=m.scope_key, check_name="non_empty", severity="error",
                                      status="pass", materialization_id=m.event_id) if i % 2 else
                       ChecksEvaluated(run_id=run, asset_key=m.asset_key, partition_key=m.partition_key,
                                       scope_key=m.scope_key, materialization_id=m.event_id, checks=[
                                           {"check_name": "non_empty", "severity": "error", "status": "pass",
                                            "metrics": {"rows": len(events)}},
                                           {"check_name": "fresh", "severity": "warn", "status": "fail",
                                            "message": "a day late"}])
                       for i, m in enumerate(mats)]
        return events

    # -- rules: runs -----------------------------------------------------------------------------
    @initialize(target=runs)
    def a_run_is_open(self) -> str:
        """Every example starts with a run, so that its first steps can already record assets."""
        return self.start_run(writer=0, lease=30.0, job="ingest_candles")

    @rule(target=runs, writer=st.integers(0, 1), lease=st.sampled_from([1.0, 2.0, 30.0]),
          job=st.sampled_from(["ingest_candles", "snapshot_options", "compute_flow"]))
    def start_run(self, writer: int, lease: float, job: str) -> str:
        self.counter += 1
        run_id = f"run-{self.counter:03d}"
        self._apply(writer, [RunStarted(run_id=run_id, job_name=job, lease_seconds=lease, triggered_by="cli",
                                        partition_key=DAYS[-1], scope_keys=["AAPL"], args={"n": self.counter})])
        return run_id

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

    # -- rules: assets and checks (several, so that they are most of the steps) ------------------
    @rule(writer=st.integers(0, 1), run=runs, outcomes=outcomes, check_each=st.booleans())
    def record_assets(self, writer: int, run: str, outcomes: list[Any], check_each: bool) -> None:
        self._apply(writer, self._assets(run, outcomes, check_each))

    @rule(writer=st.integers(0, 1), run=runs, outcomes=outcomes, check_each=st.booleans())
    def record_more_assets(self, writer: int, run: str, outcomes: list[Any], check_each: bool) -> None:
        """The same as ``record_assets``: a second rule doubles the odds of an asset batch."""
        self._apply(writer, self._assets(run, outcomes, check_each))

    @rule(writers=st.tuples(st.integers(0, 1), st.integers(0, 1)), first=runs, second=runs, cell=cells,
          data_time=data_times, failed=st.booleans())
    def materialize_then_fail_or_skip_in_a_later_batch(self, writers: tuple[int, int], first: str, second: str,
                                                        cell: tuple[str, str, str], data_time: str | None,
                                                        failed: bool) -> None:
        """The sequence behind a drift once missed: a cell materialized, then failed or skipped by a
        later batch (of the same run or another)."""
        asset, day, scope = cell
        self._apply(writers[0], self._assets(first, [("materialized", cell, data_time)], check_each=True))
        later: Event = (AssetFailed(run_id=second, asset_key=asset, partition_key=day, scope_key=scope,
                                    error_type="Timeout", error_message="read timed out") if failed
                        else AssetSkipped(run_id=second, asset_key=asset, partition_key=day, scope_key=scope,
                                          reason="market closed"))
        self._apply(writers[1], [later])

    @rule(writers=st.tuples(st.integers(0, 1), st.integers(0, 1)), first=runs, second=runs,
          asset=st.sampled_from(ASSETS), scope=st.sampled_from(SCOPES),
          times=st.lists(st.sampled_from(DATA_TIMES), min_size=2, max_size=2, unique=True))
    def newer_then_older_data_date(self, writers: tuple[int, int], first: str, second: str, asset: str, scope: str,
                                   times: list[str]) -> None:
        """A data date older than the watermark arrives in a later batch: the watermark stays."""
        newer, older = sorted(times, key=timestamp, reverse=True)  # type: ignore[arg-type, return-value]
        for writer, run, when in ((writers[0], first, newer), (writers[1], second, older)):
            self._apply(writer, [AssetMaterialized(run_id=run, asset_key=asset, partition_key=when[:10],
                                                   scope_key=scope, rows=3, max_data_time=when,
                                                   min_data_time=when, data_version=f"dv-{when}")])

    # The two sequences again under other names: each rule is one more chance to be drawn (and
    # Hypothesis's swarm testing switches some rules off in each example).
    @rule(writers=st.tuples(st.integers(0, 1), st.integers(0, 1)), first=runs, second=runs, cell=cells,
          data_time=data_times, failed=st.booleans())
    def a_later_batch_fails_or_skips_a_materialized_cell(self, **kw: Any) -> None:
        self.materialize_then_fail_or_skip_in_a_later_batch(**kw)

    @rule(writers=st.tuples(st.integers(0, 1), st.integers(0, 1)), first=runs, second=runs,
          asset=st.sampled_from(ASSETS), scope=st.sampled_from(SCOPES),
          times=st.lists(st.sampled_from(DATA_TIMES), min_size=2, max_size=2, unique=True))
    def a_backfill_after_the_daily_run(self, **kw: Any) -> None:
        self.newer_then_older_data_date(**kw)

    @rule(writer=st.integers(0, 1), run=runs, status=st.sampled_from(["pass", "fail", "skip"]), data=st.data())
    def check_earlier_materialization(self, writer: int, run: str, status: str, data: st.DataObject) -> None:
        earlier = self.materializations.get(run) or [None]
        target = data.draw(st.sampled_from(earlier))
        self._apply(writer, [CheckEvaluated(run_id=run, asset_key="candles_daily", partition_key=None,
                                            scope_key="ALL", check_name="fresh", severity="warn", status=status,
                                            metrics={"lag": 1.5}, materialization_id=target)])

    # -- rules: time, maintenance, refusals ------------------------------------------------------
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

    @rule()
    def verify(self) -> None:
        """``db verify``: the hash chain is intact and a full rebuild equals the stored projections
        (a rule, not an invariant: it costs as much as ten appends)."""
        report = verify_file(str(self.path))
        assert report.ok, report.problems
        assert report.last_seq == self.model.last_seq()

    @precondition(lambda self: self.model.last_seq() > 0)
    @rule(data=st.data())
    def time_travel(self, data: st.DataObject) -> None:
        """``as_of(k)`` folds the log up to k: it equals the model folded up to k."""
        k = data.draw(st.integers(0, self.model.last_seq()))
        with self.writers[0].as_of(k) as con:
            got = {t: keyed(t, normalise_rows(con.execute(f"SELECT * FROM meta.{t}"))) for t in TABLES}
        diff = differences(got, snapshot(self.model, as_of_seq=k))
        assert not diff, "\n".join([f"as of seq {k}:", *diff])

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def logs_agree(self) -> None:
        model = [(s.seq, s.event_type, s.event.run_id) for s in self.model.read()]
        system = [(s.seq, s.event_type, s.event.run_id) for s in self.writers[1].read()]
        assert system == model

    @invariant()
    def projections_equal_the_model(self) -> None:
        with self.writers[0].reader() as con:
            got = {t: keyed(t, normalise_rows(con.execute(f"SELECT * FROM meta.{t}"))) for t in TABLES}
        diff = differences(got, snapshot(self.model))
        assert not diff, "\n".join(diff)

LedgerMachine.TestCase.settings = STATEFUL
TestLedgerStateMachine = pytest.mark.timeout(900)(LedgerMachine.TestCase)
