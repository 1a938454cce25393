"""Integrity and time travel.

``verify_file`` recomputes the hash chain and rebuilds the projections aside. Tampering is done
with raw DuckDB on a copy of a ledger file (the only place anything UPDATEs or DELETEs
``meta.events``): each kind is reported with the right first bad seq and problem.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ledger.duckdb_store import DuckDBEventStore, stored_row_of
from ledger.events import RunStarted, StoredRow, canonical_json
from ledger.store import event_hash
from ledger.verify import verify_file
from tests.ledger.conftest import build_store
from tests.ledger.helpers import FixedClock, realistic_run, snapshot
from tests.ledger.model import ModelLedger

N_RUNS = 3
EVENTS = 12 * N_RUNS


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clock = FixedClock()
    path = tmp_path_factory.mktemp("verify") / "clean.duckdb"
    store = DuckDBEventStore(path, clock=clock)
    for i in range(N_RUNS):
        store.append(realistic_run(f"r{i}", partition_key=f"2025-03-0{4 + i}"))
        clock.advance(61.000123)
    return path


@pytest.fixture
def copy(clean_file: Path, tmp_path: Path) -> Path:
    target = tmp_path / "tampered.duckdb"
    shutil.copy(clean_file, target)
    return target


def tamper(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def test_a_clean_file_passes(clean_file: Path) -> None:
    report = verify_file(str(clean_file))
    assert report.ok and report.problems == () and report.first_bad_seq is None
    assert (report.events_checked, report.last_seq) == (EVENTS, EVENTS)
    assert set(report.projections_checked) == {"ingestion_runs", "ingestion_run_assets", "asset_watermarks",
                                               "asset_checks", "partition_status"}


def test_json_columns_written_by_an_append_match_a_rebuild_whatever_the_key_order(tmp_path: Path) -> None:
    # The append folds the events' own dicts (insertion order); a rebuild parses the canonical,
    # key-sorted payload. Verify compares the JSON columns as text, so the orders must agree.
    from ledger.events import AssetFailed, CheckEvaluated, RunFailed

    path = tmp_path / "order.duckdb"
    store = DuckDBEventStore(path, clock=FixedClock())
    run = RunStarted(run_id="r-order", job_name="j", triggered_by="cli", partition_key="2025-03-04",
                     lease_seconds=60.0, args={"z": 1, "a": {"y": [{"q": 1, "b": 2}], "b": 3}, "m": None})
    store.append([run])
    store.append([
        AssetFailed(run_id="r-order", asset_key="candles_daily", partition_key="2025-03-04", scope_key="SPY",
                    error_type="Boom", error_message="no", extra={"zeta": 1, "alpha": {"d": 1, "c": 2}}),
        CheckEvaluated(run_id="r-order", asset_key="candles_daily", partition_key="2025-03-04", scope_key="SPY",
                       check_name="c", severity="warn", status="fail", metrics={"z": 2.5, "a": 1, "k": [3, 1]}),
        RunFailed(run_id="r-order", error_type="Boom", error_message="no"),
    ])
    report = verify_file(str(path))
    assert report.ok, report.problems


def test_an_edited_event_is_found_at_its_seq(copy: Path) -> None:
    tamper(copy, "UPDATE meta.events SET payload = json_object('rows', 999999) WHERE seq = 5")
    report = verify_file(str(copy))
    assert not report.ok and report.first_bad_seq == 5
    assert any("seq 5: hash mismatch" in p and "edited" in p for p in report.problems)


def test_an_edit_that_keeps_the_payload_but_moves_the_time_is_found(copy: Path) -> None:
    tamper(copy, "UPDATE meta.events SET recorded_at = recorded_at - INTERVAL 1 DAY WHERE seq = 20")
    assert verify_file(str(copy)).first_bad_seq == 20


def test_a_deleted_event_is_found_at_the_missing_seq(copy: Path) -> None:
    tamper(copy, "DELETE FROM meta.events WHERE seq = 7")
    report = verify_file(str(copy))
    assert not report.ok and report.first_bad_seq == 7
    assert any("seq 7 is missing" in p and "deleted" in p for p in report.problems)


def test_a_deleted_last_event_is_found_by_the_checkpoint(copy: Path) -> None:
    tamper(copy, f"DELETE FROM meta.events WHERE seq = {EVENTS}")
    report = verify_file(str(copy))
    assert not report.ok and report.first_bad_seq == EVENTS
    assert any("checkpoint" in p for p in report.problems)


def _forged(con: duckdb.DuckDBPyConnection, seq: int, prev_hash: str) -> list[Any]:
    """A well-formed event row with a correct hash over its predecessor: the forger's best try."""
    row = StoredRow(event_id=f"forged-{seq}", event_type="run_started", schema_version=1, run_id="forged",
                    asset_key=None, partition_key=None, scope_key=None,
                    payload=canonical_json({"job_name": "forged", "lease_seconds": 300.0}))
    at = dt.datetime(2025, 3, 6, 22, 0, tzinfo=dt.UTC)
    return [seq, row.event_id, row.event_type, 1, at, row.run_id, None, None, None, row.payload, prev_hash,
            event_hash(prev_hash, seq, at, row)]


def test_an_event_inserted_in_the_middle_is_found_right_after_it(copy: Path) -> None:
    k = 10
    con = duckdb.connect(str(copy))
    try:
        con.execute("SET TimeZone = 'UTC'")
        prev = con.execute("SELECT hash FROM meta.events WHERE seq = ?", [k - 1]).fetchone()[0]
        con.execute("CREATE TEMP TABLE shifted AS SELECT * REPLACE (seq + 1 AS seq) FROM meta.events WHERE seq >= ?",
                    [k])
        con.execute("DELETE FROM meta.events WHERE seq >= ?", [k])
        con.execute("INSERT INTO meta.events SELECT * FROM shifted")
        con.execute("INSERT INTO meta.events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _forged(con, k, prev))
    finally:
        con.close()
    report = verify_file(str(copy))
    assert not report.ok and report.first_bad_seq == k + 1
    assert any(f"seq {k + 1}: prev_hash does not link" in p for p in report.problems)


def test_an_event_appended_behind_the_ledgers_back_is_found_by_the_checkpoint(copy: Path) -> None:
    con = duckdb.connect(str(copy))
    try:
        con.execute("SET TimeZone = 'UTC'")
        last = con.execute("SELECT hash FROM meta.events WHERE seq = ?", [EVENTS]).fetchone()[0]
        con.execute("INSERT INTO meta.events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    _forged(con, EVENTS + 1, last))
    finally:
        con.close()
    report = verify_file(str(copy))
    assert not report.ok and report.first_bad_seq == EVENTS + 1
    assert any("checkpoint" in p for p in report.problems)


def test_a_log_that_cannot_be_folded_is_reported_not_raised(copy: Path) -> None:
    # a run_started without a run_id: the rebuild itself fails; verify says so instead of crashing
    tamper(copy, "UPDATE meta.events SET run_id = NULL WHERE seq = 1")
    report = verify_file(str(copy))
    assert not report.ok and report.first_bad_seq == 1
    assert any("cannot be rebuilt" in p for p in report.problems)


@pytest.mark.parametrize(("table", "sql"), [
    ("ingestion_runs", "UPDATE meta.ingestion_runs SET status = 'failed' WHERE run_id = 'r1'"),
    ("partition_status", "DELETE FROM meta.partition_status WHERE scope_key = 'MSFT'"),
    ("asset_watermarks", "UPDATE meta.asset_watermarks SET watermark_ts = watermark_ts + INTERVAL 1 DAY"),
    ("asset_checks", "INSERT INTO meta.asset_checks SELECT * REPLACE ('extra' AS check_id) FROM meta.asset_checks LIMIT 1"),
    ("ingestion_run_assets", "UPDATE meta.ingestion_run_assets SET rows_inserted = 0 WHERE run_id = 'r0'"),
])
def test_a_drifted_projection_is_found_with_its_table_and_key(copy: Path, table: str, sql: str) -> None:
    tamper(copy, sql)
    report = verify_file(str(copy))
    assert not report.ok
    assert report.first_bad_seq is None  # the log itself is intact
    assert [p.split(":")[0] for p in report.problems] == [table]
    assert "projection drifted at key" in report.problems[0]


def test_the_chain_of_a_clean_file_recomputes_from_the_stored_rows(clean_file: Path) -> None:
    con = duckdb.connect(str(clean_file), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        rows = con.execute("SELECT seq, event_id, event_type, schema_version, recorded_at, run_id, asset_key, "
                           "partition_key, scope_key, CAST(payload AS VARCHAR), prev_hash, hash FROM meta.events "
                           "ORDER BY seq").fetchall()
    finally:
        con.close()
    for r in rows:
        assert event_hash(r[10], r[0], r[4], stored_row_of(r)) == r[11]


# -- time travel ------------------------------------------------------------------------------
def test_projection_as_of_every_seq_equals_the_model_folded_up_to_it(backend: str, tmp_path: Path) -> None:
    clock = FixedClock()
    store = build_store(backend, clock, tmp_path)
    model = ModelLedger(clock=clock)
    batches = [
        realistic_run("a", n_materializations=2, n_checks=1),
        [RunStarted(run_id="b", job_name="compute_flow", lease_seconds=1.0)],
        realistic_run("c", n_materializations=2, n_checks=2, partition_key="2025-03-07", finish=False),
    ]
    for batch in batches:
        store.append(batch)
        model.append(batch)
        clock.advance(1.25)
    store.reap()  # "b" is abandoned
    model.reap()
    head = store.last_seq()
    assert head == model.last_seq() == 5 + 1 + 5 + 1
    for k in [*range(0, head + 1, 2), head]:  # every other seq: each as_of is a full fold
        assert snapshot(store, as_of_seq=k) == snapshot(model, as_of_seq=k), f"as of seq {k}"
    # and the projection() API agrees with the fold it is built on
    assert store.projection("ingestion_runs", as_of_seq=6) == model.projection("ingestion_runs", as_of_seq=6)
