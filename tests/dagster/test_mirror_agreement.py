"""Dagster and the ledger agree on what is materialized: CLI dailies for three sessions and one
partition launched by Dagster, the mirror's events stored in a Dagster instance as the daemon
stores them; then Dagster's materialized partitions per asset are exactly the sessions
``meta.partition_status`` holds as materialized, nothing is recorded twice, and
``options-helper gaps --dagster`` proposes no Dagster range over them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dg = pytest.importorskip("dagster")

import duckdb  # noqa: E402

from stages import registry  # noqa: E402
from tests.dagster.conftest import make_env  # noqa: E402

pytestmark = pytest.mark.dagster

# The first session of a history has no flow (no previous snapshot), so the planner rightly calls
# what depends on its flow stale: a CLI daily the session before is the history's start.
HISTORY_START = "2026-11-18"
CLI_SESSIONS = ("2026-11-19", "2026-11-20", "2026-11-23")
DAGSTER_SESSION = "2026-11-24"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from frontends.cli.app import main

    root = tmp_path_factory.mktemp("agree")
    env = make_env(root)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for key in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
            mp.delenv(key, raising=False)
        for session in (HISTORY_START, *CLI_SESSIONS):
            assert main(["daily", "--as-of", session, "--json"]) == 0, session
        from frontends.dagster.defs.assets import ASSETS
        from frontends.dagster.defs.resources import RESOURCES, LedgerResource
        from frontends.dagster.defs.sensors import ledger_mirror

        instance = dg.DagsterInstance.get()  # DAGSTER_HOME: the temporary directory
        launched = dg.materialize(ASSETS, partition_key=DAGSTER_SESSION, instance=instance, resources=RESOURCES)
        assert launched.success
        # The daemon's part: evaluate the sensor until it is caught up, storing what it reports.
        cursor, ticks = None, 0
        while True:
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"ledger": LedgerResource()})
            result = ledger_mirror(context)
            for event in result.asset_events:
                instance.report_runless_asset_event(event)
            ticks += 1
            if result.cursor == cursor:
                break
            cursor = result.cursor
        yield {"env": env, "instance": instance, "launched": launched, "cursor": cursor, "ticks": ticks,
               "db": Path(env["OPTIONS_HELPER_DUCKDB_PATH"])}
        instance.dispose()


def ledger_materialized(db: Path, asset_key: str) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select distinct partition_key from meta.partition_status "
                           "where asset_key = ? and status = 'materialized'", [asset_key]).fetchall()
    return {r[0] for r in rows}


def test_dagster_materialized_partitions_equal_the_ledgers(world) -> None:
    instance = world["instance"]
    for key in registry.ASSET_KEYS:
        in_ledger = ledger_materialized(world["db"], key)
        assert DAGSTER_SESSION in in_ledger and set(CLI_SESSIONS) & in_ledger, key
        assert instance.get_materialized_partitions(dg.AssetKey(key)) == in_ledger, key


def test_each_partition_is_recorded_once_by_whoever_ran_it(world) -> None:
    instance, launched = world["instance"], world["launched"]
    for key in registry.ASSET_KEYS:
        for session in ledger_materialized(world["db"], key):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[session]), limit=10).records
            assert len(records) == 1, (key, session)
            event = records[0].event_log_entry
            if session == DAGSTER_SESSION:
                assert event.run_id == launched.run_id  # Dagster's own record; the mirror added none
            else:
                meta = event.asset_materialization.metadata
                assert meta["triggered_by"].value == "cli"


def test_check_evaluations_are_stored_per_session_once(world) -> None:
    from stages.analytics.checks import checks_for

    instance = world["instance"]
    for key in (registry.CANDLES_DAILY, registry.DASHBOARD_VIEWS):
        for check in checks_for(key):
            history = instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(dg.AssetKey(key), check.name), limit=50)
            mirrored = sorted(r.partition for r in history if not r.run_id)
            own = [r.run_id for r in history if r.run_id]
            # Every CLI session once from the mirror; the Dagster session once, from Dagster's own run.
            assert mirrored == sorted(ledger_materialized(world["db"], key) - {DAGSTER_SESSION}), (key, check.name)
            assert set(own) == {world["launched"].run_id}, (key, check.name)
            assert {r.status.value for r in history if not r.run_id} == {"SUCCEEDED"}


def test_the_mirror_caught_up_and_a_further_tick_reports_nothing(world) -> None:
    from frontends.dagster.defs.resources import LedgerResource
    from frontends.dagster.defs.sensors import ledger_mirror

    with duckdb.connect(str(world["db"]), read_only=True) as con:
        head = con.execute("select max(seq) from meta.events").fetchone()[0]
    assert world["cursor"] == str(head)
    context = dg.build_sensor_context(instance=world["instance"], cursor=world["cursor"],
                                      resources={"ledger": LedgerResource(duckdb_path=str(world["db"]))})
    assert ledger_mirror(context).asset_events == []


def test_gaps_dagster_proposes_no_range_over_materialized_sessions(world, monkeypatch, capsys) -> None:
    from frontends.cli.app import main
    from ledger.calendar import TradingCalendar

    for key, value in world["env"].items():
        monkeypatch.setenv(key, value)
    code = main(["gaps", "--start", CLI_SESSIONS[0], "--end", DAGSTER_SESSION, "--dagster", "--json"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    cal = TradingCalendar.xnys()
    assert doc["sessions"] == len(CLI_SESSIONS) + 1
    for rng in doc["dagster_ranges"]:
        sessions = {d.isoformat() for d in cal.sessions_in_range(dt.date.fromisoformat(rng["start"]),
                                                                 dt.date.fromisoformat(rng["end"]))}
        assert not sessions & ledger_materialized(world["db"], rng["asset_key"]), rng
    proposed = {(r["asset_key"], s) for r in doc["dagster_ranges"] for s in (r["start"], r["end"])}
    assert not {s for _, s in proposed} & {*CLI_SESSIONS, DAGSTER_SESSION}
