"""Rebuild: the rows it writes equal the incremental projections and the model's fold, and the
schema it leaves is the migrations' own, byte for byte (DDL text, constraints in their order,
keys enforced), however often it runs, and untouched when it fails.

Two sequences an append's merge into stored rows can get wrong are spelled out batch by batch: a
cell materialized, then failed or skipped by a later batch (its materialization stays), and an
older data date after a newer one (the watermark does not move back).

The SQL fold re-creates the tables keyed on several columns without their key and adds the key
after the rows (``ledger.projections._drop_key``); these tests pin that this changes nothing a
reader of the catalog can see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from ledger import migrate
from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import IntegrityError
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
from tests.ledger import test_migrations
from tests.ledger.helpers import FixedClock, differences, realistic_run, snapshot
from tests.ledger.model import ModelLedger


def schema(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a reader of the catalog sees of ``meta``: DDL text, constraints in order, indexes, columns."""
    return {
        "tables": con.execute(
            "SELECT table_name, sql FROM duckdb_tables() WHERE schema_name = 'meta' ORDER BY table_name").fetchall(),
        "constraints": con.execute(
            "SELECT table_name, constraint_type, constraint_text, constraint_name, constraint_column_names, expression "
            "FROM duckdb_constraints() WHERE schema_name = 'meta' ORDER BY table_name, constraint_index").fetchall(),
        "indexes": con.execute(
            "SELECT table_name, index_name, is_unique, is_primary, expressions, sql FROM duckdb_indexes() "
            "WHERE schema_name = 'meta' ORDER BY table_name, index_name").fetchall(),
        "columns": test_migrations.schema_text(con),
    }


def fresh_schema() -> dict[str, Any]:
    con = duckdb.connect(":memory:")
    try:
        migrate.migrate(con)
        return schema(con)
    finally:
        con.close()


def _mat(run: str, scope: str, day: str, **kw: Any) -> AssetMaterialized:
    return AssetMaterialized(run_id=run, asset_key="candles_daily", partition_key=day, scope_key=scope, rows=10,
                             bytes=100, min_data_time=f"{day}T00:00:00+00:00", max_data_time=f"{day}T00:00:00+00:00",
                             code_version="1", data_version=f"dv-{run}-{scope}", **kw)


def mixed_batches() -> list[list[Event] | None]:
    """Every event family and merge rule: heartbeats, a failed run, an abandoned run that succeeds
    late, an asset event superseded in its run, failed and skipped assets, equal watermarks (the
    later event wins), checks linked to their materialization. ``None``: reap."""
    m1 = _mat("a", "AAPL", "2025-03-04")
    return [
        [RunStarted(run_id="a", job_name="ingest_candles", triggered_by="cli",
                    partition_key="2025-03-04", lease_seconds=60.0, args={"symbols": "AAPL,MSFT"},
                    code_version="7", app_version="0.1")],
        [RunHeartbeat(run_id="a", lease_seconds=600.0)],
        [m1, CheckEvaluated(run_id="a", asset_key="candles_daily", partition_key="2025-03-04", scope_key="AAPL",
                            check_name="rows", severity="error", status="pass", metrics={"n": 10, "z": [1, 2]},
                            materialization_id=m1.event_id),
         AssetFailed(run_id="a", asset_key="candles_daily", partition_key="2025-03-04", scope_key="MSFT",
                     error_type="HTTPError", error_message="429", extra={"attempt": 3})],
        # the same cell again in the same run: the later event is the run's row
        [_mat("a", "MSFT", "2025-03-04", extra={"retry": True}), RunSucceeded(run_id="a")],
        [RunStarted(run_id="b", job_name="ingest_candles", partition_key="2025-03-04", lease_seconds=1.0)],
        [_mat("b", "AAPL", "2025-03-04"),  # the same watermark as run a's: the later event wins
         AssetSkipped(run_id="b", asset_key="options_flow", partition_key="2025-03-04", scope_key="ALL",
                      reason="holiday", extra={"k": "v"})],
        [RunFailed(run_id="b", error_type="StageError", error_message="boom", error_fingerprint="fp",
                   stack_hash="sh")],
        [RunStarted(run_id="c", job_name="compute_flow", parent_run_id="a", provider="synthetic",
                    backfill_id="bf", lease_seconds=1.0)],
        None,  # c's lease ran out: the reaper abandons it
        [_mat("c", "ALL", "2025-03-05"), RunSucceeded(run_id="c")],  # ...and it succeeds after all
        realistic_run("d", partition_key="2025-03-05"),
    ]


def fill(store: Any, clock: FixedClock, batches: list[list[Event] | None]) -> None:
    for batch in batches:
        clock.advance(3)
        if batch is None:
            store.reap()
        else:
            store.append(batch)


@pytest.fixture
def batches() -> list[list[Event] | None]:
    return mixed_batches()


@pytest.fixture
def filled(tmp_path: Path, batches: list[list[Event] | None]) -> DuckDBEventStore:
    clock = FixedClock()
    store = DuckDBEventStore(tmp_path / "ledger.duckdb", clock=clock)
    fill(store, clock, batches)
    return store


def test_a_rebuild_equals_the_incremental_projections_and_the_model(
    filled: DuckDBEventStore, batches: list[list[Event] | None]
) -> None:
    clock = FixedClock()
    model = ModelLedger(clock=clock)
    fill(model, clock, batches)
    incremental = snapshot(filled)
    assert incremental == snapshot(model)
    assert filled.rebuild() == filled.last_seq()
    assert snapshot(filled) == incremental
    for seq in range(filled.last_seq() + 1):
        assert snapshot(filled, as_of_seq=seq) == snapshot(model, as_of_seq=seq), seq


# -- sequences an incremental merge can get wrong, batch by batch ---------------------------------
def _row(store: DuckDBEventStore, table: str, **key: str) -> dict[str, Any]:
    rows = [r for r in snapshot(store)[table] if all(r[k] == v for k, v in key.items())]
    assert len(rows) == 1, rows
    return rows[0]


def _append_each(batches: list[list[Event]], tmp_path: Path) -> DuckDBEventStore:
    """Append each batch (a commit of its own) to a file and to the model; after every one the
    projections equal the model's and ``db verify`` passes."""
    clock = FixedClock()
    store, model = DuckDBEventStore(tmp_path / "ledger.duckdb", clock=clock), ModelLedger(clock=clock)
    for batch in batches:
        clock.advance(1)
        store.append(batch)
        model.append(batch)
        diff = differences(snapshot(store), snapshot(model))
        assert not diff, "\n".join(diff)
        report = verify_file(str(store.path))
        assert report.ok, report.problems
    return store


@pytest.mark.parametrize("later_run", ["same run", "another run"])
@pytest.mark.parametrize("later", ["failed", "skipped"])
def test_a_cell_materialized_then_failed_or_skipped_in_a_later_batch_keeps_its_materialization(
    later: str, later_run: str, tmp_path: Path
) -> None:
    day, cell = "2025-03-04", {"asset_key": "candles_daily", "partition_key": "2025-03-04", "scope_key": "AAPL"}
    mat = _mat("a", "AAPL", day)
    run = "a" if later_run == "same run" else "b"
    then: Event = (AssetFailed(run_id=run, **cell, error_type="HTTPError", error_message="503") if later == "failed"
                   else AssetSkipped(run_id=run, **cell, reason="holiday"))
    store = _append_each([
        [RunStarted(run_id="a", job_name="ingest_candles", lease_seconds=600.0),
         RunStarted(run_id="b", job_name="ingest_candles", lease_seconds=600.0)],
        [mat, CheckEvaluated(run_id="a", **cell, check_name="rows", severity="error", status="pass",
                             materialization_id=mat.event_id)],
        [then],
    ], tmp_path)
    row = _row(store, "partition_status", **cell)
    assert (row["status"], row["run_id"], row["last_seq"]) == (later, run, 5)
    assert (row["materialized_seq"], row["materialized_run_id"], row["data_version"], row["rows"], row["bytes"],
            row["code_version"]) == (3, "a", "dv-a-AAPL", 10, 100, "1")
    assert row["materialized_at"] < row["updated_at"]
    assert _row(store, "ingestion_run_assets", run_id=run, **cell)["status"] == later
    assert _row(store, "asset_watermarks", asset_key="candles_daily", scope_key="AAPL")["seq"] == 3


@pytest.mark.parametrize("in_one_batch", [False, True])
def test_an_older_data_date_after_a_newer_one_leaves_the_watermark_where_it_was(
    in_one_batch: bool, tmp_path: Path
) -> None:
    newer = _mat("a", "AAPL", "2025-03-06")
    older = [_mat("b", "AAPL", "2025-03-04"), _mat("b", "AAPL", "2025-03-05")]
    batches: list[list[Event]] = [
        [RunStarted(run_id="a", job_name="ingest_candles", lease_seconds=600.0)],
        [newer],
        [RunStarted(run_id="b", job_name="backfill", triggered_by="backfill", lease_seconds=600.0)],
        older if in_one_batch else older[:1],
    ]
    if not in_one_batch:
        batches.append(older[1:])
    store = _append_each(batches, tmp_path)
    mark = _row(store, "asset_watermarks", asset_key="candles_daily", scope_key="AAPL")
    assert (str(mark["watermark_ts"]), mark["last_run_id"], mark["seq"]) == ("2025-03-06 00:00:00+00:00", "a", 2)
    # the older data dates are materialized all the same, each in its own cell
    assert _row(store, "partition_status", asset_key="candles_daily", partition_key="2025-03-04",
                scope_key="AAPL")["materialized_run_id"] == "b"


def test_an_equal_data_date_later_moves_the_watermark_to_the_later_event(tmp_path: Path) -> None:
    store = _append_each([
        [RunStarted(run_id="a", job_name="ingest_candles", lease_seconds=600.0),
         RunStarted(run_id="b", job_name="ingest_candles", lease_seconds=600.0)],
        [_mat("a", "AAPL", "2025-03-06")],
        [_mat("b", "AAPL", "2025-03-06")],
    ], tmp_path)
    mark = _row(store, "asset_watermarks", asset_key="candles_daily", scope_key="AAPL")
    assert (mark["last_run_id"], mark["seq"]) == ("b", 4)


def test_a_rebuild_leaves_the_migrations_schema_byte_for_byte(filled: DuckDBEventStore) -> None:
    expected = fresh_schema()
    assert expected["columns"] == test_migrations.GOLDEN.read_text()
    for _ in range(2):  # the second rebuild starts from the DDL the first one left
        filled.rebuild()
        with filled.reader() as con:
            assert schema(con) == expected


def test_a_rebuilt_projection_enforces_its_primary_key(filled: DuckDBEventStore) -> None:
    filled.rebuild()
    con = duckdb.connect(filled.path)
    try:
        for table in PROJECTION_TABLES:
            with pytest.raises(duckdb.ConstraintException):
                con.execute(f"INSERT INTO meta.{table} SELECT * FROM meta.{table} LIMIT 1")
    finally:
        con.close()


def test_a_rebuild_folds_with_duckdbs_default_threads_and_memory_and_writes_after_it_keep_their_budget(
    filled: DuckDBEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger import connection, projections

    def settings(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
        return con.execute("SELECT current_setting('threads'), current_setting('memory_limit')").fetchone() or ()

    with connection.connect(":memory:", read_only=False) as fresh:
        defaults = settings(fresh)
        fresh.execute(f"SET threads = 1; SET memory_limit = '{connection.WRITE_MEMORY_LIMIT}'")
        budget = settings(fresh)
    seen: list[tuple[Any, ...]] = []
    real_fold = projections.fold
    monkeypatch.setattr(projections, "fold", lambda con, source: (seen.append(settings(con)), real_fold(con, source)))
    filled.rebuild()
    assert seen == [defaults]  # a commit's budget would make the fold of the whole log spill
    with connection.connect(filled.path, read_only=False) as con:
        assert settings(con) == budget != defaults


def test_a_failed_rebuild_leaves_the_projections_and_the_schema_as_they_were(filled: DuckDBEventStore) -> None:
    before = snapshot(filled)
    with filled.reader() as con:
        expected = schema(con)
    # An asset event without a scope cannot be folded into ingestion_run_assets (NOT NULL), a
    # table the fold re-creates without its key: the rebuild fails after that re-creation.
    con = duckdb.connect(filled.path)
    try:
        con.execute("UPDATE meta.events SET scope_key = NULL WHERE seq = "
                    "(SELECT max(seq) FROM meta.events WHERE event_type = 'asset_materialized')")
    finally:
        con.close()
    with pytest.raises(IntegrityError, match="db verify") as refused:
        filled.rebuild()
    assert isinstance(refused.value.__cause__, duckdb.ConstraintException)
    assert snapshot(filled) == before
    with filled.reader() as con:
        assert schema(con) == expected


def test_time_travel_keys_its_projections_too(batches: list[list[Event] | None]) -> None:
    clock = FixedClock()
    store = DuckDBEventStore(":memory:", clock=clock)
    fill(store, clock, batches)
    with store.as_of(store.last_seq()) as con:
        assert schema(con)["constraints"] == fresh_schema()["constraints"]


def test_a_rebuild_puts_the_sessions_insertion_order_back(batches: list[list[Event] | None]) -> None:
    clock = FixedClock()
    store = DuckDBEventStore(":memory:", clock=clock)  # one connection for the store's life
    fill(store, clock, batches)
    store.rebuild()
    with store.reader() as con:
        assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone() == (True,)
