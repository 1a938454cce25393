"""The runner against a real DuckDB file: idempotent re-runs, one transaction per run, check
links, verify after a full daily, and faults injected in the middle of a stage."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

import ledger
import stages
from ledger.calendar import TradingCalendar
from ledger.config import Settings
from ledger.errors import SymbolNotFoundError
from stages import datastore, registry
from tests.pipeline.conftest import DAY2, NOW, SYMBOLS, FaultyProvider

DATA_TABLES = tuple(datastore.TABLES)


def snapshot_tables(s: Settings) -> dict[str, list[dict[str, Any]]]:
    with ledger.open(s.duckdb_path).reader() as con:
        return {t: datastore.table_rows(con, t).to_pylist() for t in DATA_TABLES}


def count(s: Settings, sql: str, params: list[Any] | None = None) -> int:
    with ledger.open(s.duckdb_path).reader() as con:
        return int(con.execute(sql, params or []).fetchone()[0])


def materializations(s: Settings, asset_key: str, partition: str) -> int:
    return count(s, "SELECT count(*) FROM meta.events WHERE event_type = 'asset_materialized' "
                    "AND asset_key = ? AND partition_key = ?", [asset_key, partition])


def run_rows(s: Settings, run_id: str) -> int:
    with ledger.open(s.duckdb_path).reader() as con:
        return sum(int(con.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0])
                   for t in DATA_TABLES)


def test_full_daily_verifies_and_links_every_check(state: Settings) -> None:
    led = ledger.open(state.duckdb_path)
    report = led.verify()
    assert report.ok, report.problems
    with led.reader() as con:
        statuses = con.execute("SELECT DISTINCT status FROM meta.ingestion_runs").fetchall()
        assert statuses == [("success",)]
        # every check points at the materialization it validated, of the same asset/partition/scope
        unlinked = con.execute(
            "SELECT count(*) FROM meta.asset_checks c LEFT JOIN meta.events e "
            "ON e.event_id = c.materialization_event_id AND e.event_type = 'asset_materialized' "
            "AND e.asset_key = c.asset_key AND e.partition_key = c.partition_key AND e.scope_key = c.scope_key "
            "WHERE e.event_id IS NULL").fetchone()[0]
        assert unlinked == 0
        assert con.execute("SELECT count(*) FROM meta.asset_checks").fetchone()[0] > 50
        # lineage: every data row names a run that exists and succeeded
        for table in DATA_TABLES:
            orphan = con.execute(f"SELECT count(*) FROM {table} d LEFT JOIN meta.ingestion_runs r USING (run_id) "
                                 "WHERE r.status IS DISTINCT FROM 'success'").fetchone()[0]
            assert orphan == 0, table
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table
        files = con.execute("SELECT path, bytes, sha256 FROM options_snapshot_files "
                            "UNION ALL SELECT path, bytes, sha256 FROM report_files").fetchall()
    import hashlib

    for path, size, sha in files:
        data = (state.data_root / path).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha
    assert not list(state.data_root.rglob("*.tmp")), "no temp file may survive a committed run"


def test_each_materialization_records_its_checks_in_one_event_and_each_check_gets_a_row(state: Settings) -> None:
    with ledger.open(state.duckdb_path).reader() as con:
        types = dict(con.execute("SELECT event_type, count(*) FROM meta.events GROUP BY ALL").fetchall())
        listed = con.execute(
            "SELECT e.event_id || '/' || c.check_name, c.status, m.seq FROM meta.events e, "
            "unnest(from_json(e.payload->'checks', '[{\"check_name\":\"VARCHAR\",\"status\":\"VARCHAR\"}]')) AS u(c), "
            "meta.events m WHERE e.event_type = 'checks_evaluated' AND m.event_id = e.payload->>'materialization_id' "
            "ORDER BY 1").fetchall()
        rows = con.execute("SELECT check_id, status, materialization_seq FROM meta.asset_checks ORDER BY 1").fetchall()
    assert "check_evaluated" not in types
    assert types["checks_evaluated"] == types["asset_materialized"]
    assert len(listed) > types["checks_evaluated"]  # several checks per event
    assert rows == listed


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_rerunning_every_stage_changes_nothing_but_run_ids(state: Settings, synthetic: Any) -> None:
    before = snapshot_tables(state)
    page = state.data_root / "reports" / "dashboard" / f"{DAY2}.html"
    html = page.read_text()
    partition = DAY2.isoformat()
    for job in registry.DAILY_ORDER:
        asset = registry.job(job).asset_key
        n = materializations(state, asset, partition)
        result = stages.run_job(job, as_of=DAY2, settings=state, provider=synthetic, now=NOW)
        assert result.ok, result.to_dict()
        scopes = len(SYMBOLS) if registry.asset(asset).per_symbol else 1
        assert materializations(state, asset, partition) == n + scopes, job
        assert run_rows(state, result.run_id) > 0, job
    after = snapshot_tables(state)
    # The reports too are byte for byte the same: stamped with the session's close, and the
    # dashboard's ledger health shows statuses, not run ids.
    assert after == before
    assert page.read_text() == html
    assert not UUID.search(html)
    assert ledger.open(state.duckdb_path).verify().ok


def test_reports_are_stamped_with_the_session_close_unless_told(state: Settings, synthetic: Any) -> None:
    close = TradingCalendar.xnys().session_close(DAY2)
    markdown = state.data_root / "reports" / "briefing" / f"{DAY2}.md"
    assert f"Generated {close.isoformat()}." in markdown.read_text()
    assert close.isoformat() in (state.data_root / "reports" / "dashboard" / f"{DAY2}.html").read_text()
    when = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)
    result = stages.run_job("build_briefing", as_of=DAY2, settings=state, provider=synthetic, now=NOW, generated_at=when)
    assert result.ok and f"Generated {when.isoformat()}." in markdown.read_text()


def test_candles_fetch_only_missing_sessions(settings: Settings, synthetic: Any) -> None:
    spy = FaultyProvider(synthetic)
    first = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=spy, now=NOW)
    assert first.outcomes[0].rows == 90
    again = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=spy, now=NOW)
    assert again.outcomes[0].rows == 1  # the session itself is refreshed; history is not refetched
    later = stages.run_job("ingest_candles", as_of=dt.date(2026, 11, 23), symbols=["SPY"], settings=settings,
                           provider=spy, now=NOW)
    assert later.outcomes[0].rows == 1
    assert count(settings, "SELECT count(*) FROM candles_daily") == 91


def test_resume_skips_materialized_scopes_without_a_run(state: Settings, synthetic: Any) -> None:
    runs = count(state, "SELECT count(*) FROM meta.ingestion_runs")
    result = stages.run_job("compute_derived", as_of=DAY2, settings=state, provider=synthetic, now=NOW, resume=True)
    assert result.run_id is None and result.ok
    assert {o.reason for o in result.outcomes} == {stages.runner.ALREADY_MATERIALIZED}
    assert count(state, "SELECT count(*) FROM meta.ingestion_runs") == runs


def test_a_bug_in_the_middle_of_a_stage_leaves_nothing(state: Settings, synthetic: Any) -> None:
    """A provider that raises an unexpected error on the 2nd symbol fails the run: no rows, no
    materialization, no file for the partition."""
    day = dt.date(2026, 11, 23)
    for job in ("ingest_candles", "snapshot_options"):
        stages.run_job(job, as_of=day, symbols=["SPY"], settings=state, provider=synthetic, now=NOW)
    broken = FaultyProvider(synthetic, fail={"option_chain": {"IWM": RuntimeError("connection reset mid-chain")}})
    result = stages.run_job("snapshot_options", as_of=day, symbols=["QQQ", "IWM"], settings=state,
                            provider=broken, now=NOW)
    assert result.status == "failed" and "connection reset" in result.error
    assert run_rows(state, result.run_id) == 0
    assert count(state, "SELECT count(*) FROM meta.events WHERE run_id = ? AND event_type = 'asset_materialized'",
                 [result.run_id]) == 0
    assert count(state, "SELECT count(*) FROM meta.ingestion_runs WHERE run_id = ? AND status = 'failed'",
                 [result.run_id]) == 1
    lake = state.data_root / "lake" / "options_snapshots"
    assert not (lake / "symbol=QQQ").exists() or not list((lake / "symbol=QQQ").rglob("*.parquet"))
    assert not list(state.data_root.rglob("*.tmp"))
    # the earlier SPY snapshot of that session is untouched
    assert count(state, "SELECT count(*) FROM options_snapshot_files WHERE date = ?", [day]) == 1
    assert ledger.open(state.duckdb_path).verify().ok


def test_a_data_writer_failure_rolls_everything_back(state: Settings, synthetic: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot_tables(state)
    real = datastore.write_all

    def flaky(con: Any, writes: Any, run_id: str) -> int:
        datastore.write(con, writes[0], run_id)  # one partition replaced, then the disk fills up
        raise OSError("disk full while inserting")

    monkeypatch.setattr(datastore, "write_all", flaky)
    n = materializations(state, registry.OPTIONS_SNAPSHOT_FILE, DAY2.isoformat())
    result = stages.run_job("snapshot_options", as_of=DAY2, settings=state, provider=synthetic, now=NOW)
    assert result.status == "failed" and "disk full" in result.error
    monkeypatch.setattr(datastore, "write_all", real)
    assert snapshot_tables(state) == before
    assert materializations(state, registry.OPTIONS_SNAPSHOT_FILE, DAY2.isoformat()) == n
    assert count(state, "SELECT count(*) FROM meta.ingestion_runs WHERE run_id = ? AND status = 'failed'",
                 [result.run_id]) == 1
    assert not list(state.data_root.rglob("*.tmp"))
    # the published files still match what the table records
    with ledger.open(state.duckdb_path).reader() as con:
        rows = datastore.snapshot_files(con, SYMBOLS, [DAY2])
    import hashlib

    for r in rows:
        assert hashlib.sha256((state.data_root / r["path"]).read_bytes()).hexdigest() == r["sha256"]


def test_a_provider_error_fails_one_symbol_only(settings: Settings, synthetic: Any) -> None:
    provider = FaultyProvider(synthetic, fail={"stock_bars": {"NOPE": SymbolNotFoundError("NOPE: symbol not found")}})
    result = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY", "NOPE"], settings=settings,
                            provider=provider, now=NOW)
    assert result.ok
    assert result.outcome("SPY").status == "success"
    nope = result.outcome("NOPE")
    assert nope.status == "failed" and "not found" in nope.error
    assert count(settings, "SELECT count(*) FROM candles_daily WHERE symbol = 'NOPE'") == 0
    assert count(settings, "SELECT count(*) FROM meta.partition_status WHERE scope_key = 'NOPE' AND status = 'failed'") == 1


def test_every_symbol_failing_fails_the_run(settings: Settings, synthetic: Any) -> None:
    provider = FaultyProvider(synthetic, fail={"stock_bars": {"*": SymbolNotFoundError("symbol not found")}})
    result = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY", "IWM"], settings=settings,
                            provider=provider, now=NOW)
    assert result.status == "failed" and "every symbol failed" in result.error
    assert count(settings, "SELECT count(*) FROM meta.ingestion_runs WHERE status = 'failed'") == 1


def test_a_failing_error_check_fails_the_run_but_keeps_the_data(settings: Settings, synthetic: Any) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    def negative_close(table: pa.Table, symbol: str) -> pa.Table:
        i = table.column_names.index("close")
        return table.set_column(i, "close", pc.multiply(table["close"], -1.0))

    provider = FaultyProvider(synthetic, transform={"stock_bars": negative_close})
    result = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=provider, now=NOW)
    assert result.status == "failed" and "candles_no_negative_prices" in result.error
    assert count(settings, "SELECT count(*) FROM candles_daily WHERE run_id = ?", [result.run_id]) == 90
    mat = result.outcome("SPY").materialization_id
    assert count(settings, "SELECT count(*) FROM meta.asset_checks WHERE materialization_event_id = ? "
                           "AND check_name = 'candles_no_negative_prices' AND status = 'fail'", [mat]) == 1


def test_a_check_that_raises_fails_the_run_with_nothing_written(settings: Settings, synthetic: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import stages.analytics.checks as checks

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a check bug")

    monkeypatch.setattr(checks, "run_checks", boom)
    result = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY"], settings=settings, provider=synthetic, now=NOW)
    assert result.status == "failed" and "ZeroDivisionError" in result.error
    assert count(settings, "SELECT count(*) FROM candles_daily") == 0
    assert count(settings, "SELECT count(*) FROM meta.events WHERE event_type = 'asset_materialized'") == 0


def test_daily_skips_downstream_of_a_failed_symbol(settings: Settings, synthetic: Any) -> None:
    provider = FaultyProvider(synthetic, fail={"stock_bars": {"IWM": SymbolNotFoundError("IWM: symbol not found")}})
    day = stages.run_daily(as_of=DAY2, settings=settings, provider=provider, now=NOW)
    assert day.result("ingest_candles").outcome("IWM").status == "failed"
    for job in ("snapshot_options", "compute_flow", "compute_derived"):
        o = day.result(job).outcome("IWM")
        assert o.status == "skipped" and o.reason.startswith(stages.runner.UPSTREAM_FAILED), (job, o)
    assert day.result("snapshot_options").outcome("SPY").status == "success"
    assert day.result("build_briefing").ok and day.result("build_dashboard").ok
    assert day.to_dict()["results"][0]["counts"] == {"success": 1, "failed": 1, "skipped": 0}


def test_job_by_job_skip_failed_upstream_matches_the_daily(settings: Settings, synthetic: Any, tmp_path: Path) -> None:
    """What Dagster does (one ``run_job`` per asset, skips read from the ledger) records what
    ``run_daily`` records: the same outcomes and skip reasons, the same skip list in the run args."""
    from tests.pipeline.conftest import make_settings

    def faulty() -> FaultyProvider:
        return FaultyProvider(synthetic, fail={"stock_bars": {"IWM": SymbolNotFoundError("IWM: symbol not found")}})

    def outcomes(result: Any) -> list[tuple[str, str, str | None]]:
        return [(o.scope_key, o.status, o.reason) for o in result.outcomes]

    day = stages.run_daily(as_of=DAY2, settings=settings, provider=faulty(), now=NOW)
    jobwise = make_settings(tmp_path / "jobwise")
    for job in registry.DAILY_ORDER:
        result = stages.run_job(job, as_of=DAY2, settings=jobwise, provider=faulty(), now=NOW,
                                skip_failed_upstream=True)
        assert outcomes(result) == outcomes(day.result(job)), job
        assert result.status == day.result(job).status, job
    skipped = [o for o in day.result("compute_derived").outcomes if o.status == "skipped"]
    assert [(o.scope_key, o.reason) for o in skipped] == [("IWM", f"{stages.runner.UPSTREAM_FAILED}:options_snapshot_file")]
    args = "SELECT job_name, args_json->>'skip' FROM meta.ingestion_runs WHERE partition_key = ? ORDER BY job_name"
    with ledger.open(settings.duckdb_path).reader() as a, ledger.open(jobwise.duckdb_path).reader() as b:
        assert a.execute(args, [DAY2.isoformat()]).fetchall() == b.execute(args, [DAY2.isoformat()]).fetchall()
    # Without the flag a lone job runs every symbol (the caller decides).
    lone = stages.run_job("compute_derived", as_of=DAY2, settings=jobwise, provider=faulty(), now=NOW)
    assert lone.outcome("IWM").status == "failed"


def test_an_interrupted_publish_is_finished_on_read(settings: Settings, synthetic: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash between commit and rename leaves the temp file; the next reader finishes the rename."""
    from stages.jobs import _files

    for day in (dt.date(2026, 11, 19), DAY2):
        stages.run_job("snapshot_options", as_of=day, symbols=["SPY"], settings=settings, provider=synthetic, now=NOW)
    final = settings.data_root / "lake/options_snapshots/symbol=SPY/date=2026-11-20/chain.parquet"
    final.unlink()
    monkeypatch.setattr(_files, "publish", lambda f: None)
    rerun = stages.run_job("snapshot_options", as_of=DAY2, symbols=["SPY"], settings=settings, provider=synthetic, now=NOW)
    assert rerun.ok and not final.exists() and list(final.parent.glob("*.tmp"))
    monkeypatch.undo()
    flow = stages.run_job("compute_flow", as_of=DAY2, symbols=["SPY"], settings=settings, provider=synthetic, now=NOW)
    assert flow.ok and final.exists() and not list(final.parent.glob("*.tmp"))


def test_stages_import_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, stages; heavy = [m for m in ('pyarrow', 'pandas', 'duckdb', 'scipy') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert out.stdout.strip() == ""
    assert set(stages.__all__) >= {"run_job", "run_daily", "JobResult", "DailyResult", "SymbolOutcome"}


def test_a_daily_opens_the_file_twice_per_job(state: Settings, synthetic: Any,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``Ledger`` for the whole daily; per job one read-only read of its inputs and one
    read-write commit (its data rows, events and end, with the next job's start), plus the first
    job's start: nothing else."""
    from ledger import connection

    ledger.open(state.duckdb_path)  # the process's one migration check of this file, out of the count
    opened: list[bool] = []
    monkeypatch.setattr(connection, "OBSERVERS",
                        [lambda what, read_only, _s: opened.append(read_only) if what == "attach" else None])
    from ledger import api

    opens = []
    real_open = api.open  # Ledger.from_settings opens through it
    monkeypatch.setattr(api, "open", lambda *a, **k: opens.append(a) or real_open(*a, **k))
    day = stages.run_daily(as_of=DAY2, settings=state, provider=synthetic, now=NOW)
    assert day.ok, day.to_dict()
    jobs = len(registry.DAILY_ORDER)
    assert len(opens) == 1
    assert opened.count(True) == jobs and opened.count(False) == jobs + 1


def test_each_daily_run_starts_after_its_predecessor_ended(settings: Settings, synthetic: Any) -> None:
    """The jobs run one after another: each run's ``RunStarted`` comes before any of its events and
    after the previous run's end, and every run ends."""
    day = stages.run_daily(as_of=DAY2, settings=settings, provider=synthetic, now=NOW)
    assert day.ok, day.to_dict()
    with ledger.open(settings.duckdb_path).reader() as con:
        rows = con.execute("SELECT seq, event_type, run_id FROM meta.events ORDER BY seq").fetchall()
        statuses = con.execute("SELECT DISTINCT status FROM meta.ingestion_runs").fetchall()
    assert statuses == [("success",)]
    ids = [r.run_id for r in day.results]
    for run_id in ids:
        assert next(t for _, t, rid in rows if rid == run_id) == "run_started"
    for prev, nxt in itertools.pairwise(ids):
        started = next(seq for seq, t, rid in rows if rid == nxt and t == "run_started")
        ended = next(seq for seq, t, rid in rows if rid == prev and t == "run_succeeded")
        assert started > ended, (prev, nxt)


def test_a_failed_commit_in_a_daily_starts_the_next_job_on_its_own(state: Settings, synthetic: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot run's final commit fails: nothing of it is kept but its failure; the flow run
    then starts and skips every symbol whose snapshot failed; no run stays open."""
    real = datastore.write_all

    def flaky(con: Any, writes: Any, run_id: str) -> int:
        if any(w.table == "options_snapshot_files" for w in writes):
            raise OSError("disk full while inserting")
        return real(con, writes, run_id)

    monkeypatch.setattr(datastore, "write_all", flaky)
    day = stages.run_daily(as_of=DAY2, settings=state, provider=synthetic, now=NOW)
    snap, flow = day.result("snapshot_options"), day.result("compute_flow")
    assert snap.status == "failed" and "disk full" in snap.error
    assert {o.status for o in snap.outcomes} == {"failed"}
    assert flow.run_id is not None and flow.run_id != snap.run_id
    assert {(o.status, o.reason) for o in flow.outcomes} == {("skipped", f"{stages.runner.UPSTREAM_FAILED}:options_snapshot_file")}
    with ledger.open(state.duckdb_path).reader() as con:
        open_runs = con.execute("SELECT count(*) FROM meta.ingestion_runs WHERE status = 'started'").fetchone()[0]
        starts = con.execute("SELECT count(*) FROM meta.events WHERE run_id = ? AND event_type = 'run_started'",
                             [flow.run_id]).fetchone()[0]
        skip = con.execute("SELECT args_json->>'skip' FROM meta.ingestion_runs WHERE run_id = ?", [flow.run_id]).fetchone()[0]
    assert open_runs == 0 and starts == 1
    assert sorted(json.loads(skip)) == sorted(SYMBOLS)
    assert day.result("build_dashboard").ok
    assert ledger.open(state.duckdb_path).verify().ok


def test_a_run_started_in_another_runs_commit_is_not_started_twice(tmp_path: Path) -> None:
    led = ledger.open(tmp_path / "a.duckdb")
    first = led.run("ingest_candles", scope_keys=["SPY"], partition_key="2026-11-20")
    second = led.run("ingest_options_bars", scope_keys=["SPY"], partition_key="2026-11-20")
    with first:
        first.complete([], start=[second])
    assert second.begun and not second.finished
    with second:
        pass
    assert [s.event.EVENT_TYPE for s in led.events()] == ["run_started", "run_succeeded", "run_started", "run_succeeded"]
    elsewhere = ledger.open(tmp_path / "b.duckdb").run("build_briefing")
    with pytest.raises(ValueError), led.run("build_dashboard") as third:
        third.complete([], start=[elsewhere])
    assert not elsewhere.begun
    assert led.runs(status="failed")[0]["job_name"] == "build_dashboard"
