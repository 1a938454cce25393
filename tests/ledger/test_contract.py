"""The event-store contract, run on every backend: in-memory, DuckDB in memory, DuckDB file.

Each test names the rule it checks. ``store`` is parametrised over the three backends by conftest.
"""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import ConflictError, InvalidEventError
from ledger.events import (
    AssetFailed,
    AssetMaterialized,
    AssetSkipped,
    CheckEvaluated,
    ChecksEvaluated,
    Event,
    RunAbandoned,
    RunFailed,
    RunHeartbeat,
    RunStarted,
    RunSucceeded,
)
from ledger.store import GENESIS_HASH
from tests.ledger.conftest import build_store
from tests.ledger.helpers import DB_PROPERTY, SESSION, FixedClock, log_tail, realistic_run, snapshot


def _mat(run_id: str, scope: str = "AAPL", day: str = SESSION, **kw: Any) -> AssetMaterialized:
    return AssetMaterialized(run_id=run_id, asset_key="candles_daily", partition_key=day, scope_key=scope,
                             rows=1, max_data_time=f"{day}T00:00:00+00:00", **kw)


# -- order and identity -----------------------------------------------------------------------
def test_seq_starts_at_one_and_is_gap_free_across_batches(store: Any) -> None:
    for i in range(3):
        store.append(realistic_run(f"r{i}"))
    seqs = [s.seq for s in store.read()]
    assert seqs == list(range(1, 3 * 12 + 1))
    assert store.last_seq() == 36


def test_append_returns_the_stored_events_in_seq_order(store: Any) -> None:
    events = realistic_run("r1")
    stored = store.append(events)
    assert [s.seq for s in stored] == list(range(1, len(events) + 1))
    assert [s.event.event_id for s in stored] == [e.event_id for e in events]


def test_read_gives_back_the_events_appended(store: Any) -> None:
    events = realistic_run("r1")
    store.append(events)
    back = [s.event for s in store.read()]
    # checks come back with materialization_seq resolved; everything else is identical
    for before, after in zip(events, back, strict=True):
        if isinstance(before, CheckEvaluated | ChecksEvaluated):
            assert after.materialization_seq is not None
            after = type(after)(**{**_fields(after), "materialization_seq": None})
        assert after == before


def _fields(e: Event) -> dict[str, Any]:
    import attrs

    return attrs.asdict(e, recurse=False)


def test_read_filters_by_seq_range_run_and_limit(store: Any) -> None:
    store.append(realistic_run("r1"))
    store.append(realistic_run("r2"))
    assert [s.seq for s in store.read(since_seq=10, until_seq=14)] == [11, 12, 13, 14]
    assert {s.event.run_id for s in store.read(run_id="r2")} == {"r2"}
    assert len(store.read(run_id="r2")) == 12
    assert [s.seq for s in store.read(limit=3)] == [1, 2, 3]


def test_hash_chain_links_every_event_to_the_previous_one(store: Any) -> None:
    store.append(realistic_run("r1"))
    store.append(realistic_run("r2"))
    log = store.read()
    assert log[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(log):
        assert after.prev_hash == before.hash
    assert len({s.hash for s in log}) == len(log)


def test_recorded_at_is_the_injected_clock(store: Any, clock: FixedClock) -> None:
    store.append(realistic_run("r1"))
    clock.advance(90)
    store.append(realistic_run("r2"))
    times = {s.recorded_at for s in store.read(run_id="r2")}
    assert times == {clock.now}


# -- atomic batches ---------------------------------------------------------------------------
def _conflicting_member(kind: str, store: Any) -> tuple[list[Event], dict[str, Any]]:
    """A batch member that must be rejected, given a log holding run 'done' (succeeded) and run
    'open' (started); and the append kwargs that go with it."""
    if kind == "duplicate_id_in_batch":
        e = _mat("open", scope="X")
        return [e, e], {}
    if kind == "duplicate_id_in_log":
        first = store.read(run_id="done")[1].event
        return [first], {}
    if kind == "run_never_started":
        return [_mat("ghost")], {}
    if kind == "run_started_twice":
        return [RunStarted(run_id="open", job_name="ingest_candles")], {}
    if kind == "run_already_succeeded":
        return [RunHeartbeat(run_id="done")], {}
    if kind == "finished_twice_in_batch":
        return [RunSucceeded(run_id="open"), RunFailed(run_id="open", error_type="E", error_message="m")], {}
    if kind == "check_of_unknown_materialization":
        return [CheckEvaluated(run_id="open", asset_key="candles_daily", partition_key=SESSION, scope_key="AAPL",
                               check_name="c", severity="warn", status="pass", materialization_id="nope")], {}
    if kind == "payload_not_json":
        return [RunStarted(run_id="other", job_name="j", args={"x": object()})], {}
    if kind == "stale_expected_last_seq":
        return [], {"expected_last_seq": store.last_seq() - 1}
    raise ValueError(kind)


CONFLICTS = ("duplicate_id_in_batch", "duplicate_id_in_log", "run_never_started", "run_started_twice",
             "run_already_succeeded", "finished_twice_in_batch", "check_of_unknown_materialization",
             "payload_not_json", "stale_expected_last_seq")


def _refusal(kind: str) -> type[Exception]:
    """What refuses the batch: a conflict with the log, or (a payload JSON cannot hold) the event itself."""
    return InvalidEventError if kind == "payload_not_json" else ConflictError


def _seed_done_and_open(store: Any) -> None:
    store.append(realistic_run("done"))
    store.append([RunStarted(run_id="open", job_name="ingest_candles")])


@pytest.mark.parametrize("kind", CONFLICTS)
def test_a_batch_with_one_conflicting_member_writes_nothing(store: Any, kind: str) -> None:
    _seed_done_and_open(store)
    before_log, before = log_tail(store), snapshot(store)
    valid = [_mat("open", scope="AAPL"), RunStarted(run_id="fresh", job_name="j"), _mat("fresh", scope="MSFT")]
    bad, kwargs = _conflicting_member(kind, store)
    with pytest.raises(_refusal(kind)):
        store.append([valid[0], *bad, *valid[1:]], **kwargs)
    assert log_tail(store) == before_log
    assert snapshot(store) == before
    # the store is still usable, and the valid members go in on their own
    store.append(valid)
    assert store.last_seq() == len(before_log) + 3


@given(data=st.data())
@DB_PROPERTY
def test_property_batches_with_a_conflict_anywhere_leave_log_and_projections_unchanged(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    backend = "duckdb_memory"
    store = build_store(backend, FixedClock(), tmp_path_factory.mktemp("p"))
    _seed_done_and_open(store)
    before_log, before = log_tail(store), snapshot(store)
    n_valid = data.draw(st.integers(0, 8))
    valid: list[Event] = [_mat("open", scope=f"S{i}") for i in range(n_valid)]
    kind = data.draw(st.sampled_from([k for k in CONFLICTS if k != "stale_expected_last_seq"]))
    bad, _ = _conflicting_member(kind, store)
    at = data.draw(st.integers(0, len(valid)))
    with pytest.raises(_refusal(kind)):
        store.append(valid[:at] + bad + valid[at:])
    assert log_tail(store) == before_log
    assert snapshot(store) == before


def test_expected_last_seq_equal_to_the_head_is_accepted(store: Any) -> None:
    store.append(realistic_run("r1"))
    stored = store.append(realistic_run("r2"), expected_last_seq=12)
    assert stored[0].seq == 13


def test_data_rows_commit_with_the_events_or_not_at_all(duckdb_store: Any) -> None:
    def create(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE IF NOT EXISTS main.candles (run_id VARCHAR, symbol VARCHAR)")

    duckdb_store.append([RunStarted(run_id="r1", job_name="ingest_candles")], data_writer=create)

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO main.candles VALUES ('r1', 'AAPL'), ('r1', 'MSFT')")

    with pytest.raises(ConflictError):
        duckdb_store.append([_mat("r1"), _mat("never-started")], data_writer=write)
    with pytest.raises(RuntimeError):
        duckdb_store.append([_mat("r1")], data_writer=_raising)
    with duckdb_store.reader() as con:
        assert con.execute("SELECT count(*) FROM main.candles").fetchone()[0] == 0
    assert duckdb_store.last_seq() == 1
    duckdb_store.append([_mat("r1"), RunSucceeded(run_id="r1")], data_writer=write)
    with duckdb_store.reader() as con:
        assert con.execute("SELECT count(*) FROM main.candles WHERE run_id = 'r1'").fetchone()[0] == 2
    assert duckdb_store.last_seq() == 3


def _raising(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("INSERT INTO main.candles VALUES ('r1', 'AAPL')")
    raise RuntimeError("the stage's writer failed half way")


def test_the_in_memory_store_is_duckdb_running_the_same_code(clock: FixedClock, tmp_path: Path) -> None:
    # ":memory:" is the in-memory backend: it takes a data writer like a file does.
    store = build_store("duckdb_memory", clock, tmp_path)
    store.append([RunStarted(run_id="r1", job_name="j")], data_writer=lambda con: con.execute(
        "CREATE TABLE main.t AS SELECT 1 AS x"))
    assert store.last_seq() == 1
    with store.reader() as con:
        assert con.execute("SELECT x FROM main.t").fetchall() == [(1,)]


# -- run lifecycle ----------------------------------------------------------------------------
def test_run_status_follows_started_then_terminal(store: Any) -> None:
    store.append([RunStarted(run_id="ok", job_name="j"), RunStarted(run_id="bad", job_name="j")])
    runs = {r["run_id"]: r for r in store.projection("ingestion_runs")}
    assert {r["status"] for r in runs.values()} == {"started"}
    store.append([RunSucceeded(run_id="ok"),
                  RunFailed(run_id="bad", error_type="ValueError", error_message="boom", stack_hash="h")])
    runs = {r["run_id"]: r for r in store.projection("ingestion_runs")}
    assert runs["ok"]["status"] == "success" and runs["ok"]["error_type"] is None
    assert runs["bad"]["status"] == "failed"
    assert (runs["bad"]["error_type"], runs["bad"]["error_message"]) == ("ValueError", "boom")


def test_duration_is_the_time_between_start_and_end(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="r", job_name="j")])
    clock.advance(2.5)
    store.append([RunSucceeded(run_id="r")])
    (run,) = store.projection("ingestion_runs")
    assert run["duration_ms"] == 2500
    assert run["ended_at"] - run["started_at"] == dt.timedelta(seconds=2.5)


def test_expired_lease_is_abandoned_by_the_next_append(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="crashed", job_name="j", lease_seconds=1.0)])
    clock.advance(1.5)
    stored = store.append([RunStarted(run_id="next", job_name="j")])
    assert [s.event_type for s in stored] == ["run_abandoned", "run_started"]
    runs = {r["run_id"]: r for r in store.projection("ingestion_runs")}
    assert runs["crashed"]["status"] == "abandoned"
    assert runs["crashed"]["error_type"] == "Abandoned"
    assert runs["next"]["status"] == "started"


def test_heartbeat_extends_the_lease(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="alive", job_name="j", lease_seconds=1.0)])
    clock.advance(0.9)
    store.append([RunHeartbeat(run_id="alive", lease_seconds=1.0)])
    clock.advance(0.9)
    assert store.reap() == []
    clock.advance(0.2)
    assert [s.event.run_id for s in store.reap()] == ["alive"]


def test_reap_abandons_only_runs_past_their_lease(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="short", job_name="j", lease_seconds=1.0),
                  RunStarted(run_id="long", job_name="j", lease_seconds=60.0),
                  RunStarted(run_id="done", job_name="j", lease_seconds=1.0), RunSucceeded(run_id="done")])
    assert store.reap() == []
    clock.advance(5)
    reaped = store.reap()
    assert [(s.event_type, s.event.run_id) for s in reaped] == [("run_abandoned", "short")]
    assert store.reap() == []


def test_reap_with_an_explicit_now(store: Any) -> None:
    store.append([RunStarted(run_id="r", job_name="j", lease_seconds=10.0)])
    later = store.read()[0].recorded_at + dt.timedelta(seconds=11)
    assert [s.event.run_id for s in store.reap(later)] == ["r"]


def test_a_late_terminal_event_outranks_abandoned(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="slow", job_name="j", lease_seconds=1.0)])
    clock.advance(2)
    store.reap()
    store.append([RunFailed(run_id="slow", error_type="Timeout", error_message="late")])
    (run,) = store.projection("ingestion_runs")
    assert run["status"] == "failed" and run["error_type"] == "Timeout"


def test_events_for_a_finished_run_are_refused(store: Any) -> None:
    store.append(realistic_run("r"))
    with pytest.raises(ConflictError, match="already finished"):
        store.append([RunSucceeded(run_id="r")])


def test_auto_reap_can_be_turned_off(make_store: Any, clock: FixedClock) -> None:
    store = make_store(auto_reap=False)
    store.append([RunStarted(run_id="r", job_name="j", lease_seconds=1.0)])
    clock.advance(5)
    store.append([RunStarted(run_id="s", job_name="j")])
    assert {r["run_id"]: r["status"] for r in store.projection("ingestion_runs")} == {"r": "started", "s": "started"}
    assert len(store.reap()) == 1


# -- assets, watermarks, checks, partitions ---------------------------------------------------
def test_latest_asset_event_per_run_and_cell_wins(store: Any) -> None:
    store.append([RunStarted(run_id="r", job_name="j"), _mat("r"),
                  AssetFailed(run_id="r", asset_key="candles_daily", partition_key=SESSION, scope_key="AAPL",
                              error_type="HTTPError", error_message="503")])
    (asset,) = store.projection("ingestion_run_assets")
    assert asset["status"] == "failed"
    assert asset["extra_json"] == {"error_type": "HTTPError", "error": "503"}
    (cell,) = store.projection("partition_status")
    assert cell["status"] == "failed"
    assert cell["materialized_seq"] == 2  # the earlier success is still remembered


def test_skipped_asset_records_its_reason(store: Any) -> None:
    store.append([RunStarted(run_id="r", job_name="j"),
                  AssetSkipped(run_id="r", asset_key="options_flow", partition_key=SESSION, scope_key="ALL",
                               reason="no_symbols", extra={"n": 0})])
    (asset,) = store.projection("ingestion_run_assets")
    assert asset["status"] == "skipped" and asset["extra_json"] == {"n": 0, "reason": "no_symbols"}


def test_watermark_only_moves_forward(store: Any) -> None:
    store.append([RunStarted(run_id="a", job_name="j"), _mat("a", day="2025-03-06")])
    store.append([RunStarted(run_id="b", job_name="j"), _mat("b", day="2025-03-04")])
    (mark,) = store.projection("asset_watermarks")
    assert mark["watermark_ts"] == dt.datetime(2025, 3, 6, tzinfo=dt.UTC)
    assert mark["last_run_id"] == "a"
    store.append([RunStarted(run_id="c", job_name="j"), _mat("c", day="2025-03-07")])
    (mark,) = store.projection("asset_watermarks")
    assert (mark["watermark_ts"].day, mark["last_run_id"]) == (7, "c")


def test_a_materialization_without_data_time_sets_no_watermark(store: Any) -> None:
    store.append([RunStarted(run_id="a", job_name="j"),
                  AssetMaterialized(run_id="a", asset_key="briefing_markdown", partition_key=SESSION, scope_key="ALL")])
    assert store.projection("asset_watermarks") == []
    assert len(store.projection("partition_status")) == 1


def test_checks_link_to_the_materialization_they_validated(store: Any) -> None:
    store.append([RunStarted(run_id="r", job_name="j")])
    earlier = _mat("r", scope="MSFT")
    store.append([earlier])
    same_batch = _mat("r", scope="AAPL")
    checks = [
        CheckEvaluated(run_id="r", asset_key="candles_daily", partition_key=SESSION, scope_key=m.scope_key,
                       check_name="non_empty", severity="error", status="pass", materialization_id=m.event_id)
        for m in (earlier, same_batch)
    ]
    store.append([same_batch, *checks])
    by_scope = {c["scope_key"]: c for c in store.projection("asset_checks")}
    assert by_scope["MSFT"]["materialization_seq"] == 2
    assert by_scope["AAPL"]["materialization_seq"] == 3
    assert by_scope["AAPL"]["materialization_event_id"] == same_batch.event_id
    assert by_scope["AAPL"]["check_id"] == checks[1].event_id


def test_abandoned_event_names_the_expired_lease(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="r", job_name="j", lease_seconds=1.0)])
    clock.advance(3)
    (reaped,) = store.reap()
    assert isinstance(reaped.event, RunAbandoned)
    assert reaped.event.lease_expired_at is not None
    assert dt.datetime.fromisoformat(reaped.event.lease_expired_at) == store.read()[0].recorded_at + dt.timedelta(seconds=1)


# -- rebuild and time travel ------------------------------------------------------------------
def test_rebuild_equals_the_incremental_projections(store: Any, clock: FixedClock) -> None:
    for i in range(4):
        store.append(realistic_run(f"r{i}", partition_key=f"2025-03-0{3 + i}"))
        clock.advance(7)
    store.append([RunStarted(run_id="x", job_name="j", lease_seconds=1.0)])
    clock.advance(2)
    store.reap()
    before = snapshot(store)
    store.rebuild()
    assert snapshot(store) == before


def test_projection_as_of_seq_is_the_state_after_that_event(store: Any, clock: FixedClock) -> None:
    store.append([RunStarted(run_id="r", job_name="j")])
    clock.advance(1)
    store.append([_mat("r"), RunSucceeded(run_id="r")])
    assert store.projection("ingestion_runs", as_of_seq=0) == []
    assert [r["status"] for r in store.projection("ingestion_runs", as_of_seq=1)] == ["started"]
    assert store.projection("partition_status", as_of_seq=1) == []
    assert len(store.projection("partition_status", as_of_seq=2)) == 1
    assert [r["status"] for r in store.projection("ingestion_runs", as_of_seq=3)] == ["success"]
