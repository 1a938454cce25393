"""The append path: what it computes equals what the reference code computes, and every append
is judged on the stored state.

- ``payload_json`` is ``canonical_json`` of the payload byte for byte; ``chain`` is ``event_hash``
  link by link.
- JSON columns written by an append hold the text a rebuild writes.
- Another handle writing the same database (this process), a failed commit, a rebuild or a
  conflict leave every rule intact; any text crosses into SQL as a bound value.
"""

from __future__ import annotations

import datetime as dt
import enum
from pathlib import Path
from typing import Any

import attrs
import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import projections
from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import ConflictError, LedgerError, PayloadNotJSONError
from ledger.events import (
    AssetMaterialized,
    CheckEvaluated,
    Event,
    RunStarted,
    RunSucceeded,
    _payload_fields,
    canonical_json,
    payload_json,
    to_row,
)
from ledger.projections import PROJECTION_TABLES
from ledger.store import GENESIS_HASH, chain, event_hash
from ledger.verify import verify_file
from tests.fuzz.test_event_payloads import ALL_EVENTS
from tests.ledger.helpers import PURE, FixedClock, log_tail, realistic_run, snapshot
from tests.ledger.model import ModelLedger, replay
from tests.ledger.test_rebuild import fill, mixed_batches


def _reference_payload(event: Event) -> str:
    return canonical_json({name: getattr(event, name) for name in _payload_fields(event.__class__)})


def _outcome(fn: Any, *args: Any) -> tuple[str, str]:
    try:
        return "ok", fn(*args)
    except Exception as e:
        return type(e).__name__, str(e)


class Level(enum.IntEnum):
    HIGH = 3


class Tag(str):
    pass


ODD_VALUES = st.sampled_from([
    Level.HIGH, Tag("x"), True, False, 1.0, -0.0, 1e300, 2**70, float("nan"), float("inf"), (1, ("a", None)),
    {"b": 1, "a": {"d": [1.5, None], "c": "é\u2028\n"}}, {3: "int key"}, {1: "x", "1": "y"}, object(),
])


@PURE
@given(ALL_EVENTS, st.data())
def test_payload_json_is_canonical_json_of_the_payload(event: Event, data: st.DataObject) -> None:
    assert _outcome(payload_json, event) == _outcome(_reference_payload, event)
    # Values the attrs types do not promise, but a caller may pass: the same text or the same error.
    fields = list(_payload_fields(event.__class__))
    if fields:
        name = data.draw(st.sampled_from(fields))
        odd = attrs.evolve(event)
        object.__setattr__(odd, name, data.draw(ODD_VALUES))
        assert _outcome(payload_json, odd) == _outcome(_reference_payload, odd)


@pytest.mark.parametrize("field, value", [("rows", float("nan")), ("bytes", float("inf")), ("extra", {"x": object()}),
                                          ("sha256", float("-inf")), ("code_version", {1: float("nan")})])
def test_a_payload_the_log_refuses_is_reported_as_not_json(field: str, value: Any) -> None:
    store = DuckDBEventStore(":memory:")
    batch = realistic_run("a")
    bad = batch[3]
    object.__setattr__(bad, field, value)
    batch.insert(1, AssetMaterialized(run_id="a", asset_key="x", partition_key="2025-03-05", scope_key="S",
                                      max_data_time="not a time"))  # fails the fold before the bad payload
    with pytest.raises(PayloadNotJSONError, match="not JSON-serialisable"):
        store.append(batch)
    assert store.last_seq() == 0


def test_chain_is_event_hash_link_by_link() -> None:
    rows = [to_row(e) for e in realistic_run("r1") + realistic_run("r2")]
    now = dt.datetime(2025, 3, 6, 21, tzinfo=dt.UTC)
    expected, prev = [], GENESIS_HASH
    for seq, row in enumerate(rows, start=41):
        prev = event_hash(prev, seq, now, row)
        expected.append(prev)
    assert chain(GENESIS_HASH, 41, now, rows) == expected


def _json_text(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in PROJECTION_TABLES:
        cols = [c for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'meta' AND table_name = ? "
            "AND data_type = 'JSON'", [table]).fetchall()]
        if cols:
            keys = {"ingestion_runs": "run_id", "ingestion_run_assets": "run_id, asset_key, partition_key, scope_key",
                    "asset_checks": "check_id"}[table]
            out[table] = con.execute(
                f"SELECT {keys}, {', '.join(f'CAST({c} AS VARCHAR)' for c in cols)} FROM meta.{table} ORDER BY {keys}"
            ).fetchall()
    return out


def test_json_columns_hold_the_text_a_rebuild_writes(tmp_path: Path) -> None:
    clock = FixedClock()
    store = DuckDBEventStore(tmp_path / "ledger.duckdb", clock=clock)
    odd = {"z": 1, "a": {"y": [1, 2.5, None], "b": "é\n\u2028"}, "m": True}
    batches = [*mixed_batches(), [RunStarted(run_id="j", job_name="x", args=odd), AssetMaterialized(run_id="j", asset_key="a", partition_key="2025-03-05", scope_key="S", extra=odd), CheckEvaluated(run_id="j", asset_key="a", partition_key=None, scope_key="S", check_name="c", severity="warn", status="pass", metrics=odd), RunSucceeded(run_id="j")]]
    fill(store, clock, batches)
    with store.reader() as con:
        appended = _json_text(con)
    store.rebuild()
    with store.reader() as con:
        assert _json_text(con) == appended


# -- appends against the stored state ------------------------------------------------------------
def _model_of(store: DuckDBEventStore) -> ModelLedger:
    """The model's fold of ``store``'s own log."""
    return replay(store.read())


def _assert_sound(store: DuckDBEventStore) -> None:
    seqs = [seq for seq, _ in log_tail(store)]
    assert seqs == list(range(1, len(seqs) + 1))
    if store.path != ":memory:":
        report = verify_file(store.path)
        assert report.ok, report.problems
    assert snapshot(store) == snapshot(_model_of(store))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


def test_two_handles_of_one_process_append_in_turn(path: Path, clock: FixedClock) -> None:
    # Two handles of one process share DuckDB's database instance: each append reads the state the
    # other left, and reaps what the other started.
    ours, theirs = DuckDBEventStore(path, clock=clock), DuckDBEventStore(path, clock=clock)
    ours.append(realistic_run("a", finish=False))
    theirs.append(realistic_run("b", finish=False))
    clock.advance(400)  # both leases expire
    stored = ours.append([RunSucceeded(run_id="a")])
    assert [(s.event_type, s.event.run_id) for s in stored] == [("run_abandoned", "b"), ("run_succeeded", "a")]
    theirs.append(realistic_run("c"))
    _assert_sound(ours)


def test_a_failed_commit_writes_nothing_and_the_next_append_goes_on(clock: FixedClock) -> None:
    store = DuckDBEventStore(":memory:", clock=clock)

    class FailingCommit:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con, self.fail = con, True

        def execute(self, sql: str, *args: Any) -> Any:
            if sql == "COMMIT" and self.fail:
                self.fail = False
                raise duckdb.IOException("disk full (simulated)")
            return self.con.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

    store.append(realistic_run("a"))
    real = store._memory_con
    store._memory_con = FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(LedgerError, match="nothing of this append was written"):
        store.append(realistic_run("b"))
    store._memory_con = real
    store.append(realistic_run("c"))
    assert not store.read(run_id="b")
    _assert_sound(store)


def test_a_rebuild_changes_nothing_for_the_next_append(path: Path, clock: FixedClock) -> None:
    store = DuckDBEventStore(path, clock=clock)
    store.append(realistic_run("a", finish=False))
    store.append(realistic_run("b"))
    store.rebuild()
    store.append([RunSucceeded(run_id="a"), *realistic_run("c", partition_key="2025-03-05")])
    _assert_sound(store)


def test_conflicts_are_judged_on_the_stored_state(path: Path, clock: FixedClock) -> None:
    store = DuckDBEventStore(path, clock=clock)
    store.append(realistic_run("open", finish=False) + realistic_run("done"))
    head = store.last_seq()
    for batch, words in (
        ([RunStarted(run_id="open", job_name="j")], "already started"),
        ([RunStarted(run_id="done", job_name="j")], "already started"),
        ([RunSucceeded(run_id="done")], "already finished"),
        ([RunSucceeded(run_id="nobody")], "never started"),
    ):
        with pytest.raises(ConflictError, match=words):
            store.append(batch)
    with pytest.raises(ConflictError, match="expected the log to end"):
        store.append(realistic_run("x"), expected_last_seq=head - 1)
    assert store.last_seq() == head
    stored = store.append([*realistic_run("x"), RunSucceeded(run_id="open")], expected_last_seq=head)
    assert stored[0].seq == head + 1
    # A duplicate event id is refused by the log's key.
    with pytest.raises(ConflictError):
        store.append([RunStarted(run_id="y", job_name="j"), RunSucceeded(event_id=stored[-1].event.event_id,
                                                                         run_id="y")])
    store.append(realistic_run("z"))
    _assert_sound(store)


def test_reaping_abandons_expired_runs_and_never_the_batch_s_own(path: Path, clock: FixedClock) -> None:
    store = DuckDBEventStore(path, clock=clock)
    store.append(realistic_run("old", finish=False, lease_seconds=10))
    store.append(realistic_run("a", finish=False, lease_seconds=100))
    clock.advance(50)
    assert [s.event.run_id for s in store.reap()] == ["old"]
    clock.advance(100)
    stored = store.append([RunSucceeded(run_id="a"), *realistic_run("b")])
    # a's lease expired, but a appends now: it is alive
    assert stored[0].event_type == "run_succeeded" and stored[0].event.run_id == "a"
    assert store.reap() == []
    _assert_sound(store)


@pytest.mark.parametrize("odd", ["it's", "nul\x00inside", "é\u2028\n", "'; DROP TABLE meta.events; --", "a" * 300])
def test_any_text_crosses_into_sql_as_a_bound_value(path: Path, clock: FixedClock, odd: str) -> None:
    # Run ids, event ids and the head's hash are bound parameters: no text is spliced into SQL.
    store = DuckDBEventStore(path, clock=clock)
    first = realistic_run(odd, finish=False)
    store.append(first)
    check = CheckEvaluated(run_id=odd, asset_key=odd, partition_key=None, scope_key=odd, check_name=odd,
                           severity="warn", status="pass", message=odd, materialization_id=first[1].event_id)
    stored = store.append([check, RunSucceeded(run_id=odd)])
    assert stored[0].event.materialization_seq == 2
    assert [r["status"] for r in store.projection("ingestion_runs")] == ["success"]
    _assert_sound(store)


def test_a_file_and_memory_give_the_same_log_and_projections(tmp_path: Path) -> None:
    results = []
    batches = mixed_batches() + [realistic_run(f"r{i}", partition_key="2025-03-05") for i in range(3)]
    for where in ("ledger.duckdb", ":memory:"):
        clock = FixedClock()
        store = DuckDBEventStore(where if where == ":memory:" else tmp_path / where, clock=clock)
        fill(store, clock, batches)
        # (reaping makes new RunAbandoned events, whose ids, hence hashes, differ from store to store)
        results.append(([(s.seq, s.event_type, s.event.run_id) for s in store.read()], snapshot(store)))
    assert results[0] == results[1]


def test_a_new_projection_column_is_one_migration_and_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                 clock: FixedClock) -> None:
    """The worked example of docs/ledger.md: appends and a rebuild both follow the one new line."""
    line = ("asset_kind", projections.From("{asset_kind}", "latest"))
    extended = attrs.evolve(projections.PARTITIONS, columns=(*projections.PARTITIONS.columns, line))
    monkeypatch.setattr(projections, "PROJECTIONS", tuple(
        extended if p.table == "partition_status" else p for p in projections.PROJECTIONS))
    for cached in (projections.batch_statement, projections._family_fields):
        cached.cache_clear()
    try:
        store = DuckDBEventStore(":memory:", clock=clock)
        store._memory_con.execute(  # type: ignore[union-attr]
            "ALTER TABLE meta.partition_status ADD COLUMN asset_kind VARCHAR")  # the migration
        fill(store, clock, [*mixed_batches(), [RunStarted(run_id="k", job_name="j"), AssetMaterialized(
            run_id="k", asset_key="a", partition_key="2025-03-05", scope_key="S", asset_kind="file")]])
        appended = store.projection("partition_status")
        assert {r["asset_kind"] for r in appended} == {"table", "file"}
        store.rebuild()
        assert store.projection("partition_status") == appended
    finally:
        for cached in (projections.batch_statement, projections._family_fields):
            cached.cache_clear()
