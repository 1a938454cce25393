"""The whole graph through Dagster's ``materialize()`` for two sessions, against the real runner,
DuckDB file and data root; then the same sessions through the runner the CLI uses into another
database: identical data and projections apart from run ids, trigger and parent."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

dg = pytest.importorskip("dagster")

import duckdb  # noqa: E402

from stages import registry  # noqa: E402
from tests.dagster.conftest import SESSIONS, SYMBOLS, make_env  # noqa: E402

pytestmark = pytest.mark.dagster

DATA_TABLES = ("candles_daily", "option_contracts", "options_bars", "options_snapshot_files", "options_flow",
               "derived_metrics", "report_files")
PROJECTIONS = ("ingestion_runs", "ingestion_run_assets", "asset_watermarks", "asset_checks", "partition_status")
# Columns that differ between two runs of the same work by construction: ids, clocks, log positions,
# and (between the CLI and Dagster) the trigger and the parent.
VOLATILE = {"run_id", "parent_run_id", "triggered_by", "last_run_id", "materialized_run_id", "check_id",
            "materialization_event_id", "started_at", "ended_at", "duration_ms", "checked_at", "updated_at",
            "materialized_at", "last_heartbeat_at", "lease_expires_at", "seq", "first_seq", "last_seq",
            "materialized_seq", "materialization_seq"}
# The reports embed their generation time, and the dashboard the ledger's latest runs (trigger,
# run id, duration): their content hashes and sizes differ; their text is compared normalised.
REPORT_ASSETS = {registry.BRIEFING_MARKDOWN, registry.DASHBOARD_VIEWS}
REPORT_VOLATILE = {"sha256", "bytes", "bytes_written", "data_version", "metrics_json", "extra_json"}
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)")
RUN_ROW = re.compile(r"<td>(cli|dagster)</td>\s*<td>[0-9a-f-]{36}</td>(\s*<td>\d+</td>)?")


def normalized_report(text: str) -> str:
    return ISO_TIME.sub("<time>", RUN_ROW.sub("<run>", text))


def _is_report(row: dict[str, Any]) -> bool:
    return row.get("asset_key") in REPORT_ASSETS or "kind" in row  # report_files rows have a kind


class Side:
    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.env = make_env(root, name=name)
        self.db = Path(self.env["OPTIONS_HELPER_DUCKDB_PATH"])
        self.data = Path(self.env["OPTIONS_HELPER_DATA_ROOT"])

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            return con.execute(sql, list(params)).fetchall()

    def table(self, schema: str, name: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.db), read_only=True) as con:
            cols = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                "order by ordinal_position", [schema, name]).fetchall()]
            keep = [c for c in cols if c not in VOLATILE]
            assert keep, f"{schema}.{name} has no columns"
            rows = [dict(zip(keep, r, strict=True))
                    for r in con.execute(f"select {', '.join(keep)} from {schema}.{name}").fetchall()]
        out = []
        for row in rows:
            if _is_report(row):
                row = {k: (None if k in REPORT_VOLATILE else v) for k, v in row.items()}
            out.append(tuple(row.values()))
        return sorted(out, key=repr)


@pytest.fixture(scope="module")
def dagster_side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, list[Any]]]:
    side = Side(tmp_path_factory.mktemp("dagster_side"), "dagster")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in side.env.items():
            mp.setenv(key, value)
        from frontends.dagster.defs.assets import ASSETS
        from frontends.dagster.defs.resources import RESOURCES

        instance = dg.DagsterInstance.get()  # DAGSTER_HOME = the temporary directory
        assert instance.root_directory == side.env["DAGSTER_HOME"]
        results = [dg.materialize(ASSETS, partition_key=key, instance=instance, resources=RESOURCES)
                   for key in SESSIONS]
        yield side, results


def test_materialize_writes_the_ledger_like_the_cli(dagster_side) -> None:
    side, results = dagster_side
    assert all(r.success for r in results)
    for session, result in zip(SESSIONS, results, strict=True):
        runs = side.query("select job_name, triggered_by, parent_run_id, status from meta.ingestion_runs "
                          "where partition_key = ? order by first_seq", session)
        # One ledger run per stage, in the seed's daily order, each a child of the Dagster run.
        assert [r[0] for r in runs] == list(registry.DAILY_ORDER)
        assert {(r[1], r[2], r[3]) for r in runs} == {("dagster", result.run_id, "success")}
        cells = {(a, s): (st, rows, size) for a, s, st, rows, size in side.query(
            "select asset_key, scope_key, status, rows, bytes from meta.partition_status where partition_key = ?",
            session)}
        # Every cell materialized, except flow on the first session: no earlier snapshot to compare with.
        expected = {(a.key, s): ("skipped" if a.key == registry.OPTIONS_FLOW and session == SESSIONS[0]
                                 else "materialized")
                    for a in registry.ASSETS for s in (SYMBOLS if a.per_symbol else (registry.ALL_SCOPE,))}
        assert {cell: st for cell, (st, _, _) in cells.items()} == expected
        assert all(rows > 0 for st, rows, _ in cells.values() if st == "materialized")
        [(reasons,)] = side.query(
            "select coalesce(list(distinct json_extract_string(payload, '$.reason')), []) from meta.events e "
            "join meta.ingestion_runs r using (run_id) where e.event_type = 'asset_skipped' and r.partition_key = ?",
            session)
        assert reasons == (["no_previous_snapshot"] if session == SESSIONS[0] else [])

        # Metadata: the ledger run id, rows and bytes; path and sha256 for the single-file assets.
        by_asset = {m.asset_key.to_user_string(): m.materialization.metadata
                    for m in result.get_asset_materialization_events()}
        assert set(by_asset) == set(registry.ASSET_KEYS)
        for key, meta in by_asset.items():
            run_id = meta["ledger_run_id"].value
            [(job, parent)] = side.query("select job_name, parent_run_id from meta.ingestion_runs where run_id = ?", run_id)
            assert job == registry.job_for_asset(key).name and parent == result.run_id
            # Rows and bytes: the sums over the asset's cells in the ledger; scopes counted by outcome.
            mine = [v for (a, _), v in cells.items() if a == key]
            assert meta["rows"].value == sum(rows or 0 for _, rows, _ in mine)
            assert meta["bytes"].value == sum(size or 0 for _, _, size in mine)
            assert (meta["scopes_succeeded"].value, meta["scopes_skipped"].value, meta["scopes_failed"].value) == (
                sum(st == "materialized" for st, _, _ in mine), sum(st == "skipped" for st, _, _ in mine), 0)
        for spec in registry.ASSETS:
            if spec.kind == "file" and not spec.per_symbol:
                meta = by_asset[spec.key]
                path = Path(meta["path"].value)
                assert path.is_file() and path.is_relative_to(side.data)
                [(sha,)] = side.query("select sha256 from meta.partition_status where asset_key = ? and partition_key = ?",
                                      spec.key, session)
                assert meta["sha256"].value == sha
        assert by_asset[registry.OPTIONS_SNAPSHOT_FILE]["bytes"].value > 0


def test_each_check_is_recorded_once(dagster_side) -> None:
    side, results = dagster_side
    for result in results:
        evaluations = result.get_asset_check_evaluations()
        # One Dagster evaluation per check spec of each asset, none of them failed on synthetic data.
        from stages.analytics.checks import checks_for

        assert sorted((e.asset_key.to_user_string(), e.check_name) for e in evaluations) == sorted(
            (a, c.name) for a in registry.ASSET_KEYS for c in checks_for(a))
        assert all(e.passed for e in evaluations)
        for e in evaluations:
            scopes = e.metadata["by_scope"].value
            rows = side.query(
                "select c.scope_key, c.status from meta.asset_checks c join meta.ingestion_runs r using (run_id) "
                "where r.parent_run_id = ? and c.asset_key = ? and c.check_name = ?",
                result.run_id, e.asset_key.to_user_string(), e.check_name)
            # The ledger holds exactly the runner's results (once), which Dagster reports aggregated.
            assert sorted(rows) == sorted((s, d["status"]) for s, d in scopes.items())
    [(total, distinct)] = side.query(
        "select count(*), count(distinct (run_id, asset_key, check_name, scope_key)) from meta.asset_checks")
    assert total == distinct > 0


def test_consumer_parity_with_the_cli_runner(dagster_side, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stages
    from ledger.config import load_settings

    dag, _ = dagster_side
    cli = Side(tmp_path / "cli_side", "cli")
    for key, value in cli.env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    for session in SESSIONS:
        day = stages.run_daily(as_of=dt.date.fromisoformat(session), settings=settings, triggered_by="cli")
        assert day.ok, day.to_dict()

    for table in DATA_TABLES:
        assert cli.table("main", table) == dag.table("main", table), table
    for table in PROJECTIONS:
        assert cli.table("meta", table) == dag.table("meta", table), table
    assert {r[0] for r in cli.query("select distinct triggered_by from meta.ingestion_runs")} == {"cli"}
    # The files themselves are byte for byte the same (reports: apart from time, run ids, trigger).
    for asset_key, path in cli.query("select asset_key, path from meta.partition_status where path is not null"):
        if asset_key in REPORT_ASSETS:
            assert normalized_report((cli.data / path).read_text()) == normalized_report((dag.data / path).read_text())
        else:
            assert (cli.data / path).read_bytes() == (dag.data / path).read_bytes(), path
    for (path,) in cli.query("select path from main.report_files"):
        assert normalized_report((cli.data / path).read_text()) == normalized_report((dag.data / path).read_text())
