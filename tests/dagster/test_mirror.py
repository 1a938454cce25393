"""The ``ledger_mirror`` sensor, evaluated with Dagster's ``build_sensor_context`` on a real ledger
file: CLI runs become asset events with the ledger's metadata, Dagster-triggered runs are not
reported, the cursor is the last seq handled (a second tick reports nothing), a long history is
caught up in bounded pages, and a cursor past the end of the file is said out loud."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

dg = pytest.importorskip("dagster")

import duckdb  # noqa: E402

from stages import registry  # noqa: E402
from tests.dagster.conftest import SESSIONS, SYMBOLS, make_env  # noqa: E402

pytestmark = pytest.mark.dagster


def tick(path: Path, data_root: Path, cursor: str | None) -> Any:
    from frontends.dagster.defs.resources import LedgerResource
    from frontends.dagster.defs.sensors import ledger_mirror

    context = dg.build_sensor_context(
        cursor=cursor, resources={"ledger": LedgerResource(duckdb_path=str(path), data_root=str(data_root))}
    )
    return ledger_mirror(context)


def materializations(result: Any) -> list[Any]:
    return [e for e in result.asset_events if isinstance(e, dg.AssetMaterialization)]


def check_evaluations(result: Any) -> list[Any]:
    return [e for e in result.asset_events if isinstance(e, dg.AssetCheckEvaluation)]


def query(path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CLI daily for the first session, then a Dagster-triggered candles run for the second,
    written by the runner the CLI and the Dagster assets call."""
    import stages
    from ledger.config import load_settings

    root = tmp_path_factory.mktemp("mirror")
    env = make_env(root)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
        day = stages.run_daily(as_of=dt.date.fromisoformat(SESSIONS[0]), settings=settings, triggered_by="cli")
        assert day.ok, day.to_dict()
        dagster_run = stages.run_job(registry.INGEST_CANDLES, as_of=dt.date.fromisoformat(SESSIONS[1]),
                                     settings=settings, triggered_by="dagster", parent_run_id="a-dagster-run-id")
        assert dagster_run.ok
    db = Path(env["OPTIONS_HELPER_DUCKDB_PATH"])
    return {"db": db, "data": Path(env["OPTIONS_HELPER_DATA_ROOT"]), "dagster_run_id": dagster_run.run_id,
            "first": tick(db, Path(env["OPTIONS_HELPER_DATA_ROOT"]), None)}


def test_a_cli_daily_becomes_one_materialization_per_asset_with_the_ledgers_metadata(history) -> None:
    db, first = history["db"], history["first"]
    mats = materializations(first)
    materialized = {a for (a,) in query(db, "select distinct asset_key from meta.partition_status "
                                            "where partition_key = ? and status = 'materialized'", SESSIONS[0])}
    assert {m.asset_key.to_user_string() for m in mats} == materialized
    assert {m.partition for m in mats} == {SESSIONS[0]}
    for m in mats:
        key, meta = m.asset_key.to_user_string(), m.metadata
        run_id = meta["ledger_run_id"].value
        [(job, trigger)] = query(db, "select job_name, triggered_by from meta.ingestion_runs where run_id = ?", run_id)
        assert job == registry.job_for_asset(key).name and meta["job"].value == job
        assert trigger == meta["triggered_by"].value == "cli"
        assert m.tags["dagster/code_version"] == registry.job_for_asset(key).code_version
        cells = query(db, "select scope_key, rows_inserted, coalesce(bytes_written, 0) from meta.ingestion_run_assets "
                          "where run_id = ? and status = 'success' order by scope_key", run_id)
        assert meta["rows"].value == sum(r for _, r, _ in cells) == meta["dagster/row_count"].value
        assert meta["bytes"].value == sum(b for _, _, b in cells)
        assert sorted(meta["symbols"].value.split(", ")) == [s for s, _, _ in cells]
        spec = registry.asset(key)
        if not spec.per_symbol:
            assert meta["scope_key"].value == registry.ALL_SCOPE
        if spec.kind == "file" and not spec.per_symbol:
            path = Path(meta["path"].value)
            assert path.is_file() and path.is_relative_to(history["data"])
            assert meta["sha256"].value == hashlib.sha256(path.read_bytes()).hexdigest()
        if spec.kind == "file" and spec.per_symbol:
            assert set(SYMBOLS) <= set(meta["symbols"].value.split(", "))
            assert "paths" in meta and len(meta["sha256"].value) == 64
    assert materializations(first)[0].asset_key.to_user_string() == registry.CANDLES_DAILY  # seq order


def test_checks_are_aggregated_per_asset_session_and_check_as_the_assets_report_them(history) -> None:
    from stages.analytics.checks import checks_for

    db, first = history["db"], history["first"]
    evaluations = check_evaluations(first)
    mirrored_assets = {m.asset_key.to_user_string() for m in materializations(first)}
    # One evaluation per check spec of every mirrored asset, as MaterializeResult(check_results=...) gives.
    assert Counter((e.asset_key.to_user_string(), e.check_name) for e in evaluations) == Counter(
        (a, c.name) for a in mirrored_assets for c in checks_for(a))
    severity = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}
    for e in evaluations:
        asset = e.asset_key.to_user_string()
        assert e.partition == SESSIONS[0]
        check = next(c for c in checks_for(asset) if c.name == e.check_name)
        assert e.severity == severity[check.severity]
        rows = query(db, "select c.scope_key, c.status from meta.asset_checks c join meta.ingestion_runs r using (run_id) "
                         "where r.triggered_by = 'cli' and c.asset_key = ? and c.check_name = ? and c.partition_key = ?",
                     asset, e.check_name, SESSIONS[0])
        assert sorted(rows) == sorted((s, d["status"]) for s, d in e.metadata["by_scope"].value.items())
        assert e.passed == all(status != "fail" for _, status in rows)


def test_a_dagster_triggered_run_is_not_reported(history) -> None:
    first = history["first"]
    assert history["dagster_run_id"] not in {m.metadata["ledger_run_id"].value for m in materializations(first)}
    assert SESSIONS[1] not in {e.partition for e in first.asset_events}
    assert "1 Dagster-triggered run(s)" in first.skip_reason.skip_message


def test_the_cursor_is_the_last_seq_and_a_second_tick_reports_nothing(history) -> None:
    db, first = history["db"], history["first"]
    [(head,)] = query(db, "select max(seq) from meta.events")
    assert first.cursor == str(head)
    again = tick(db, history["data"], first.cursor)
    assert again.asset_events == [] and again.cursor == first.cursor
    assert "no new ledger events" in again.skip_reason.skip_message
    # The same cursor again, once more: still nothing (idempotent, no state besides the cursor).
    assert tick(db, history["data"], first.cursor).asset_events == []


def test_new_runs_after_the_cursor_are_reported_once(history, tmp_path: Path) -> None:
    import shutil

    import ledger

    db = tmp_path / "copy.duckdb"
    shutil.copy(history["db"], db)
    led = ledger.open(db)
    with led.run(registry.INGEST_CANDLES, triggered_by="python", partition_key=SESSIONS[1], scope_keys=["AAPL"]) as run:
        run.complete([run.materialized(registry.CANDLES_DAILY, SESSIONS[1], "AAPL", rows=3)])
    result = tick(db, history["data"], history["first"].cursor)
    [mat] = materializations(result)
    assert (mat.asset_key.to_user_string(), mat.partition) == (registry.CANDLES_DAILY, SESSIONS[1])
    assert mat.metadata["triggered_by"].value == "python" and mat.metadata["scope_key"].value == "AAPL"
    assert int(result.cursor) == led.last_seq()
    assert tick(db, history["data"], result.cursor).asset_events == []


def test_a_cursor_past_the_end_of_the_file_is_a_skip_reason_not_silence(history) -> None:
    db = history["db"]
    [(head,)] = query(db, "select max(seq) from meta.events")
    result = tick(db, history["data"], str(head + 100))
    assert result.asset_events == [] and result.cursor == str(head + 100)
    message = result.skip_reason.skip_message
    assert f"ends at seq {head}" in message and "different or restored file" in message and "cursor" in message


def test_a_missing_ledger_is_reported_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    result = tick(missing, tmp_path, None)
    assert result.asset_events == [] and "no ledger at" in result.skip_reason.skip_message
    assert not missing.exists()


def test_a_bad_cursor_fails_with_the_reset_command(history) -> None:
    from ledger.errors import ConfigError

    with pytest.raises(ConfigError, match="sensor cursor ledger_mirror --delete"):
        tick(history["db"], history["data"], "not-a-seq")


# -- a long history --------------------------------------------------------------------------------
def seed(path: Path, *, runs: int, scopes: int, dagster_every: int = 5) -> list[tuple[str, str, str]]:
    """``runs`` runs of candles for consecutive sessions, each one commit of a start, ``scopes``
    materializations with one check each, and its success; every ``dagster_every``-th run is
    Dagster-triggered. Returns the (run_id, session, trigger) of each run."""
    from ledger.calendar import TradingCalendar
    from ledger.duckdb_store import DuckDBEventStore
    from ledger.events import AssetMaterialized, CheckEvaluated, RunStarted, RunSucceeded
    from ledger.ids import new_uuid7

    sessions = TradingCalendar.xnys().sessions_in_range(dt.date(2025, 1, 2), dt.date(2026, 11, 25))[:runs]
    store = DuckDBEventStore(path, auto_reap=False)
    out = []
    for i, day in enumerate(sessions):
        run_id, session = new_uuid7(), day.isoformat()
        trigger = "dagster" if i % dagster_every == dagster_every - 1 else "cli"
        batch: list[Any] = [RunStarted(run_id=run_id, job_name=registry.INGEST_CANDLES, triggered_by=trigger,
                                       partition_key=session)]
        for s in range(scopes):
            mat = AssetMaterialized(run_id=run_id, asset_key=registry.CANDLES_DAILY, partition_key=session,
                                    scope_key=f"S{s:03d}", rows=1, code_version="1")
            batch += [mat, CheckEvaluated(run_id=run_id, asset_key=registry.CANDLES_DAILY, partition_key=session,
                                          scope_key=mat.scope_key, check_name="candles_unique_symbol_date",
                                          severity="error", status="fail" if s == 7 and i % 2 else "pass",
                                          materialization_id=mat.event_id)]
        store.append([*batch, RunSucceeded(run_id=run_id)])
        out.append((run_id, session, trigger))
    return out


@pytest.fixture(scope="module")
def long_history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str, str]]]:
    path = tmp_path_factory.mktemp("long") / "long.duckdb"
    runs = seed(path, runs=100, scopes=100)  # 100 commits of 202 events: 20,200 events
    return path, runs


def test_a_long_history_is_caught_up_in_bounded_ticks_each_run_once(long_history, tmp_path: Path) -> None:
    from frontends.dagster.defs.mirror import PAGE_EVENTS

    path, runs = long_history
    [(head,)] = query(path, "select max(seq) from meta.events")
    assert head == 20_200
    terminal = {s for (s,) in query(path, "select seq from meta.events where event_type = 'run_succeeded'")}
    cursor, ticks, seen = None, [], Counter()
    while True:
        result = tick(path, tmp_path, cursor)
        if not result.asset_events:
            break
        before = int(cursor or 0)
        ticks.append(int(result.cursor) - before)
        assert int(result.cursor) - before <= PAGE_EVENTS
        # Every tick ends on a whole commit: its last event is a run's success.
        assert int(result.cursor) in terminal
        for m in materializations(result):
            seen[(m.metadata["ledger_run_id"].value, m.partition)] += 1
            assert m.metadata["scopes_materialized"].value == 100
        seeded = [e for e in check_evaluations(result) if e.check_name == "candles_unique_symbol_date"]
        assert len(seeded) == len(materializations(result))
        for e in seeded:  # aggregated over the run's 100 symbols; S007 fails in every other run
            assert e.metadata["scopes_passed"].value + e.metadata["scopes_failed"].value == 100
            assert e.passed == (e.metadata["scopes_failed"].value == 0)
        assert {e.passed for e in seeded} == {True, False}
        cursor = result.cursor
        assert len(ticks) < 10
    assert int(cursor) == head and len(ticks) == 5  # 24 commits (4,848 events) per tick, then the rest
    expected = {(run_id, session) for run_id, session, trigger in runs if trigger != "dagster"}
    assert set(seen) == expected and set(seen.values()) == {1}


def test_a_page_cut_inside_a_commit_resumes_at_that_commit(long_history, tmp_path: Path) -> None:
    from frontends.dagster.defs.mirror import mirror_tick
    from ledger.follow import open_follower

    path, _ = long_history
    source = open_follower(path)
    # A page of 300 events: the first commit (202) whole, the second cut: left for the next page.
    first = mirror_tick(source, 0, data_root=tmp_path, has_partition=lambda _: True, limit=300)
    assert first.cursor == 202 and first.materializations == 1
    second = mirror_tick(source, first.cursor, data_root=tmp_path, has_partition=lambda _: True, limit=300)
    assert second.cursor == 404 and second.materializations == 1
    # A commit larger than the page is reported in parts rather than never.
    small = mirror_tick(source, 0, data_root=tmp_path, has_partition=lambda _: True, limit=50)
    assert small.cursor == 50 and small.materializations == 1


def test_sessions_outside_the_partitions_are_not_reported(tmp_path: Path) -> None:
    import ledger

    led = ledger.open(tmp_path / "old.duckdb")
    with led.run(registry.INGEST_CANDLES, triggered_by="cli", partition_key="2024-12-31", scope_keys=["AAPL"]) as run:
        run.complete([run.materialized(registry.CANDLES_DAILY, "2024-12-31", "AAPL", rows=1)])
    result = tick(tmp_path / "old.duckdb", tmp_path, None)
    assert result.asset_events == [] and result.cursor == str(led.last_seq())


# -- the definition ----------------------------------------------------------------------------------
def test_the_sensor_is_registered_running_every_30_seconds() -> None:
    from frontends.dagster.defs import defs

    sensor = defs.get_repository_def().get_sensor_def("ledger_mirror")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30


def test_interval_and_switch_come_from_the_environment() -> None:
    from frontends.dagster.defs.sensors import mirror_interval, mirror_status
    from ledger.errors import ConfigError

    assert mirror_interval({}) == 30 and mirror_interval({"OPTIONS_HELPER_DAGSTER_MIRROR_INTERVAL": "5"}) == 5
    with pytest.raises(ConfigError):
        mirror_interval({"OPTIONS_HELPER_DAGSTER_MIRROR_INTERVAL": "0"})
    assert mirror_status({}) == dg.DefaultSensorStatus.RUNNING
    assert mirror_status({"OPTIONS_HELPER_DAGSTER_MIRROR": "off"}) == dg.DefaultSensorStatus.STOPPED
