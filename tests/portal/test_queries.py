"""The query functions behind the pages, without Streamlit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pytest

from frontends.portal import db, queries


def test_state_of_a_missing_empty_and_foreign_file(tmp_path: Path) -> None:
    missing = db.state(tmp_path / "nope.duckdb")
    assert not missing.ready and not missing.exists
    assert "options-helper db init" in "\n".join(missing.commands)

    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    s = db.state(empty)
    assert s.exists and not s.ready and "no ledger tables" in (s.guidance or "")

    import ledger

    fresh = tmp_path / "fresh.duckdb"
    ledger.open(fresh)
    s = db.state(fresh)
    assert not s.ready and "empty" in (s.guidance or "")

    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    s = db.state(junk)
    assert not s.ready and s.guidance and s.guidance.startswith("Cannot read")
    assert db.last_seq(junk) == 0


def test_state_of_the_seeded_ledger(seeded: dict[str, Any]) -> None:
    s = db.state(seeded["path"])
    assert s.ready and s.last_seq == seeded["last_seq"] and s.schema_version >= 1
    assert db.last_seq(seeded["path"]) == seeded["last_seq"]


def test_health_latest_runs_failures_freshness_checks_abandoned(seeded: dict[str, Any]) -> None:
    h = queries.health(seeded["path"])
    latest = h["latest_runs"]
    assert len(latest) == 7 and latest["job_name"].is_unique
    assert h["last_seq"] == seeded["last_seq"]
    groups = h["failure_groups"]
    # three timeouts with different numbers and dates share one fingerprint; the ValueError is another
    assert list(groups["failures"]) == [3, 1]
    assert groups.iloc[0]["message_template"] == "provider timed out after <n> s fetching SPY bars for <date>"
    assert groups.iloc[0]["jobs"] == "ingest_options_bars"
    fresh = h["freshness"]
    assert set(fresh["freshness"]) == {"current"} and (fresh["sessions_behind"] == 0).all()
    assert {"candles_daily", "briefing_markdown"} <= set(fresh["asset_key"])
    checks = h["failed_checks"]
    assert list(checks["check_name"]) == ["spot_matches_candle"] and list(checks["scope_key"]) == ["MSFT"]
    assert list(h["abandoned_runs"]["run_id"]) == [seeded["abandoned_run_id"]]
    assert h["metrics"] == {"jobs": 7, "latest_failed": 2, "behind": 0, "failed_checks": 1, "abandoned": 1}


def test_health_time_travel(seeded: dict[str, Any]) -> None:
    seq, when = queries.resolve_as_of(seeded["path"], seq=seeded["first_day_seq"])
    assert seq == seeded["first_day_seq"] and when is not None
    past = queries.health(seeded["path"], as_of_seq=seq, reference=when)
    assert past["last_seq"] == seq
    assert past["counts"]["ingestion_runs"] < queries.health(seeded["path"])["counts"]["ingestion_runs"]
    assert len(past["abandoned_runs"]) == 0 and len(past["failure_groups"]) == 0
    # watermarks then were on the first session: current as of that moment
    assert set(past["freshness"]["watermark"].astype(str)) <= {seeded["sessions"][0]}
    # the live file was not touched by the fold
    assert db.last_seq(seeded["path"]) == seeded["last_seq"]


def test_resolve_as_of_a_time(seeded: dict[str, Any]) -> None:
    assert queries.resolve_as_of(seeded["path"]) == (None, None)
    seq, when = queries.resolve_as_of(seeded["path"], when=dt.datetime(2000, 1, 1))
    assert seq == 0 and when is not None and when.tzinfo is not None


def test_freshness_counts_sessions_not_days() -> None:
    from ledger.calendar import TradingCalendar

    cal = TradingCalendar.xnys()
    marks = [{"asset_key": "candles_daily", "scope_key": "AAPL",
              "watermark_ts": dt.datetime(2025, 1, 3, tzinfo=dt.UTC)},  # a Friday
             {"asset_key": "candles_daily", "scope_key": "SPY",
              "watermark_ts": dt.datetime(2024, 12, 27, tzinfo=dt.UTC)}]
    df = queries.freshness(marks, latest_session=dt.date(2025, 1, 6), calendar=cal)  # the Monday after
    by = dict(zip(df["scope_key"], df["sessions_behind"], strict=True))
    assert by == {"AAPL": 1, "SPY": 5}  # 30 Dec, 31 Dec, 2 Jan, 3 Jan, 6 Jan (1 Jan is a holiday)
    assert list(df["freshness"]) == ["stale", "behind"]


def test_runs_filters_and_search(seeded: dict[str, Any]) -> None:
    all_runs = queries.runs(seeded["path"], limit=1000)
    assert len(all_runs) == len(seeded["run_ids"]) + len(seeded["failed_run_ids"]) + 2
    failed = queries.runs(seeded["path"], status="failed")
    assert set(failed["run_id"]) == {*seeded["failed_run_ids"], seeded["other_failed_run_id"]}
    assert set(queries.runs(seeded["path"], job="compute_flow", status="failed")["run_id"]) == {seeded["other_failed_run_id"]}
    by_prefix = queries.runs(seeded["path"], search=seeded["abandoned_run_id"][:30])
    assert list(by_prefix["run_id"]) == [seeded["abandoned_run_id"]]
    assert len(queries.runs(seeded["path"], search="timed out")) == 3
    assert len(queries.runs(seeded["path"], partition=seeded["sessions"][0], triggered_by="cli")) == 7
    assert len(queries.runs(seeded["path"], limit=5)) == 5
    opts = queries.run_filters(seeded["path"])
    assert "failed" in opts["status"] and "dagster" in opts["triggered_by"] and len(opts["job_name"]) == 7


def test_run_detail_is_redacted_and_complete(seeded: dict[str, Any]) -> None:
    rid = seeded["run_ids"][2]  # snapshot_options on the first session
    d = queries.run_detail(seeded["path"], rid)
    assert d is not None and d["run"]["run_id"] == rid and d["error"] is None
    assert d["args"]["api_key"] == "***"
    assert "PKTEST1234" not in d["events"]["payload"].str.cat()
    kinds = list(d["events"]["event_type"])
    assert kinds[0] == "run_started" and kinds[-1] == "run_succeeded"
    assert (d["events"]["offset_s"] >= 0).all()
    assert len(d["assets"]) == 3 and len(d["checks"]) == 3

    failed = queries.run_detail(seeded["path"], seeded["failed_run_ids"][0])
    assert failed is not None and failed["error"]["type"] == "TimeoutError"
    assert failed["error"]["template"].startswith("provider timed out after <n> s")
    assert queries.run_detail(seeded["path"], "no-such-run") is None


def test_heatmap_aggregated_and_per_symbol(seeded: dict[str, Any]) -> None:
    start, end = (dt.date.fromisoformat(seeded["sessions"][0]), dt.date.fromisoformat(seeded["sessions"][-1]))
    cells = queries.heatmap(seeded["path"], start=start - dt.timedelta(days=7), end=end)
    assert set(cells["asset_key"]) == {"candles_daily", "options_bars", "options_snapshot_file", "options_flow",
                                       "derived_metrics", "briefing_markdown", "dashboard_views"}
    inside = cells[cells["session"] >= seeded["sessions"][0]]
    assert set(inside["status"]) == {"ok"}
    before = cells[cells["session"] < seeded["sessions"][0]]
    assert len(before) and set(before["status"]) == {"missing"}
    ok = inside[inside["asset_key"] == "candles_daily"].iloc[0]
    assert (ok["ok"], ok["expected"]) == (3, 3)
    assert inside[inside["asset_key"] == "briefing_markdown"].iloc[0]["expected"] == 1
    # a symbol the ledger never saw: every per-symbol cell is missing, ALL-scope cells still ok
    one = queries.heatmap(seeded["path"], start=start, end=end, symbol="TSLA")
    assert set(one[one["asset_key"] == "candles_daily"]["status"]) == {"missing"}
    assert set(one[one["asset_key"] == "dashboard_views"]["status"]) == {"ok"}
    summary = queries.heatmap_summary(cells)
    assert summary["ok"] == 35 and summary["failed"] == 0


def test_heatmap_failed_partial_and_stale(seeded_copy: dict[str, Any]) -> None:
    import ledger

    path, day = seeded_copy["path"], seeded_copy["sessions"][-1]
    led = ledger.open(path)
    with led.run("ingest_candles", partition_key="2099-01-02") as run:  # a cell outside the window: ignored
        run.complete([run.materialized("candles_daily", "2099-01-02", "AAPL", rows=1, code_version="1")])
    new_day = "2020-01-02"
    with led.run("ingest_candles", partition_key=new_day) as run:
        run.complete([run.materialized("candles_daily", new_day, "AAPL", rows=1, code_version="1"),
                      run.asset_failed("candles_daily", new_day, "MSFT", error_type="X", error_message="boom")])
    with led.run("compute_flow", partition_key=new_day) as run:
        run.complete([run.materialized("options_flow", new_day, s, rows=1, code_version="0")
                      for s in ("AAPL", "MSFT", "SPY")])
    with led.run("ingest_options_bars", partition_key=new_day) as run:
        run.complete([run.materialized("options_bars", new_day, "AAPL", rows=1, code_version="1")])
    cells = queries.heatmap(path, start=dt.date(2020, 1, 2), end=dt.date(2020, 1, 2)).set_index("asset_key")
    assert cells.loc["candles_daily", "status"] == "failed"
    assert cells.loc["options_flow", "status"] == "stale"
    assert cells.loc["options_bars", "status"] == "partial"
    assert cells.loc["derived_metrics", "status"] == "missing"
    assert day  # the seeded sessions are untouched
    assert queries.partition_range(path) == (dt.date(2020, 1, 2), dt.date(2099, 1, 2))


def test_plan_commands_reads_every_step_shape() -> None:
    plan = {"steps": [{"command": "options-helper backfill run --start 2026-01-02"},
                      {"commands": ["a", "b"]}, "c", {"other": 1}]}
    assert queries.plan_commands(plan) == ["options-helper backfill run --start 2026-01-02", "a", "b", "c"]
    assert queries.plan_commands({}) == []


def test_tables_and_preview(seeded: dict[str, Any]) -> None:
    t = queries.tables(seeded["path"])
    names = set(t["schema"] + "." + t["name"])
    assert {"meta.events", "meta.ingestion_runs", "meta.partition_status"} <= names
    events = t[(t["schema"] == "meta") & (t["name"] == "events")].iloc[0]
    assert events["rows"] == seeded["last_seq"]
    df = queries.table_preview(seeded["path"], "meta", "events", limit=3, order_by="seq")
    assert list(df["seq"]) == [seeded["last_seq"], seeded["last_seq"] - 1, seeded["last_seq"] - 2]
    asc = queries.table_preview(seeded["path"], "meta", "events", limit=2, order_by="seq", descending=False)
    assert list(asc["seq"]) == [1, 2]
    with pytest.raises(LookupError):
        queries.table_preview(seeded["path"], "meta", "events; DROP TABLE x", limit=1)
    with pytest.raises(LookupError):
        queries.table_preview(seeded["path"], "meta", "events", order_by="seq DESC; --")


def test_symbol_queries(seeded: dict[str, Any]) -> None:
    assert queries.data_symbols(seeded["path"]) == ["AAPL", "MSFT", "SPY"]
    hist = queries.symbol_history(seeded["path"], "AAPL")
    assert len(hist) == 5 and {"close", "atm_iv_near", "iv_rank_252d"} <= set(hist.columns)
    assert hist["date"].is_monotonic_increasing
    day, flow = queries.latest_flow(seeded["path"], "AAPL")
    assert day == seeded["sessions"][-1] and set(flow["option_type"]) == {"call", "put"} and len(flow) == 6
    assert queries.latest_flow(seeded["path"], "NOPE")[1].empty
    reports = queries.latest_reports(seeded["path"], seeded["data_root"])
    assert [r["kind"] for r in reports] == ["briefing_markdown", "dashboard_views"]
    assert all(r["exists"] and r["date"] == seeded["sessions"][-1] for r in reports)


def test_queries_hold_no_connection(seeded_copy: dict[str, Any]) -> None:
    """After any page query, a writer in this process can open the file read-write at once."""
    path = seeded_copy["path"]
    queries.health(path)
    queries.runs(path)
    queries.heatmap(path, start=dt.date(2026, 1, 2), end=dt.date(2026, 1, 9))
    con = duckdb.connect(path)  # would raise if a read-only connection were still open here
    con.close()


def test_gap_plan_is_read_only_and_lists_commands(seeded_copy: dict[str, Any], tmp_path: Path) -> None:
    import attrs

    from ledger.config import load_settings

    settings = attrs.evolve(load_settings(environ={}), duckdb_path=Path(seeded_copy["path"]))
    start, end = dt.date.fromisoformat(seeded_copy["sessions"][0]), dt.date.fromisoformat(seeded_copy["sessions"][-1])
    plan = queries.gap_plan(settings, start=start, end=end, symbols=["AAPL", "MSFT", "SPY", "TSLA"])
    assert {"start", "end", "sessions", "cells_expected", "cells_missing", "ranges", "steps"} <= set(plan)
    commands = queries.plan_commands(plan)
    assert commands and all(c.startswith("options-helper ") for c in commands)
    assert any("TSLA" in c for c in commands)  # the symbol with no data at all
    # planning holds no connection and never wrote: the file is unchanged and free
    assert db.last_seq(seeded_copy["path"]) == seeded_copy["last_seq"]
    duckdb.connect(seeded_copy["path"]).close()
    cached = queries.gap_plan_for(seeded_copy["path"], start=start, end=end, symbols=("AAPL",))
    aapl = queries.plan_commands(cached)
    assert aapl and all("--symbols AAPL" in c for c in aapl if "--symbols" in c), aapl
