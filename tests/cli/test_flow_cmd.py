"""`options-helper flow`: the view over the three hand-built sessions of tests/stages/flow_chains.py,
written as snapshot files so the command computes the pairs itself (the job, the missed session,
the calendar), then nets windows from the stored rows. Figures are worked out in that module and
in tests/stages/test_flow_sessions.py."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import ledger
from frontends.cli.app import app, main
from ledger.config import Settings
from stages.analytics.flow import compute_flow_window
from stages.inputs import default_session
from stages.jobs.snapshot import relpath
from tests.stages.flow_chains import A, B, C, three_sessions

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(duckdb_path=tmp_path / "warehouse" / "options.duckdb", data_root=tmp_path / "data",
                 watchlists={"default": ("XYZ",)})
    ledger.open(s.duckdb_path)  # creates and migrates
    con = duckdb.connect(str(s.duckdb_path))
    for day, table in zip((A, B, C), three_sessions(), strict=True):
        rel = relpath("XYZ", day)
        path = s.data_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        con.execute("INSERT INTO options_snapshot_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ["XYZ", day, rel, path.stat().st_size, "0" * 64, table.num_rows, 100.0, "hand", "hand-built"])
    con.close()
    return s


def cli(s: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--duckdb-path", str(s.duckdb_path), "--data-root", str(s.data_root), "flow",
                                 "--symbols", "XYZ", *args])
    return result.exit_code, result.stdout


def test_window_of_two_computes_both_pairs_and_nets_them(settings: Settings) -> None:
    code, out = cli(settings, "--as-of", C.isoformat(), "--window", "2", "--group-by", "strike", "--json")
    assert code == 0, out
    doc = json.loads(out)  # one document
    assert [r["as_of"] for r in doc["runs"]] == [C.isoformat(), B.isoformat()]  # computed, newest first
    (xyz,) = doc["symbols"]
    # C <- B spans 1 session (01-20 is a holiday), B <- A 2 (01-16 was missed): 3
    assert (xyz["from_date"], xyz["to_date"], xyz["pairs"], xyz["gap_sessions"]) == (A.isoformat(), C.isoformat(), 2, 3)
    assert xyz["snapshot_dates"] == [A.isoformat(), B.isoformat(), C.isoformat()]
    # calls $31,500 - $38,100; puts -$1,300 + $15,200
    assert xyz["calls_delta_oi_notional"] == pytest.approx(-6_600)
    assert xyz["puts_delta_oi_notional"] == pytest.approx(13_900)
    # expired: W0 C100 (300, $4,500), W1 C100 (1200, $48,000), W1 P100 (700, $14,000); M P90 vanished
    assert (xyz["expired_contracts"], xyz["expired_oi"], xyz["disappeared_contracts"]) == (3, 2200, 1)
    assert xyz["expired_notional"] == pytest.approx(66_500)
    # zones by |net ΔOI$|: put 95 +100 (+$15,900, building), call 110 +140 (new, +$6,900, building);
    # call 100 +100 but -$13,500 (churn), put 100 -100 (-$2,000, unwinding); put 90 nets 0: in neither
    assert [(r["row_key"], r["delta_oi"], r["flow_class"]) for r in xyz["building"]] == [
        ("put|95", 100, "building"), ("call|110", 140, "building")]
    assert [r["delta_oi_notional"] for r in xyz["building"]] == pytest.approx([15_900, 6_900])
    assert [(r["row_key"], r["delta_oi"], r["flow_class"]) for r in xyz["unwinding"]] == [
        ("call|100", 100, "churn"), ("put|100", -100, "unwinding")]

    # the same window computed in memory from the snapshots agrees with the netting of stored rows
    memory = compute_flow_window(list(three_sessions()), gap_sessions=[2, 1], group_bys=["strike"]).to_pandas()
    by_key = memory.set_index("row_key")
    for r in (*xyz["building"], *xyz["unwinding"]):
        m = by_key.loc[r["row_key"]]
        assert (r["delta_oi"], r["oi_start"], r["n_pairs"], r["flow_class"]) == (
            m["delta_oi"], m["oi_start"], m["n_pairs"], m["flow_class"])
        assert r["delta_oi_notional"] == pytest.approx(m["delta_oi_notional"])


def test_top_group_by_and_a_window_longer_than_the_history(settings: Settings) -> None:
    code, out = cli(settings, "--as-of", C.isoformat(), "--window", "3", "--group-by", "expiry", "--top", "1", "--json")
    assert code == 0, out
    (xyz,) = json.loads(out)["symbols"]
    # A has no earlier snapshot: its flow is skipped, so the window holds the 2 pairs there are
    assert xyz["pairs"] == 2 and "only 2 of 3" in xyz["note"]
    # expiry rows: calls M +50 - 160 = ... the top building is put M (+5 + 95 = +100, $15,900)
    assert [r["row_key"] for r in xyz["building"]] == ["put|2025-02-21"]
    assert len(xyz["unwinding"]) == 1


def test_human_tables(settings: Settings) -> None:
    code, out = cli(settings, "--as-of", C.isoformat(), "--group-by", "contract", "--top", "2")
    assert code == 0, out
    # window 1: C vs B; calls -$38,100, puts +$15,200
    assert f"XYZ flow {B} → {C} | calls ΔOI$=-$38.1k | puts ΔOI$=+$15.2k" in out
    assert "building zones (top 2 by |net ΔOI$|)" in out and "unwinding zones (top 2 by |net ΔOI$|)" in out
    # the expired W1 contracts are on their own line, never in a zone
    assert "expired: 2 contracts, open interest 1,900 rolled off ($62.0k); not counted as flow" in out
    assert "1 contract vanished before expiry" in out
    zones = out.split("expired:")[0]
    assert "XYZ250117" not in zones  # no W1 contract in the zones
    code, out = cli(settings, "--as-of", B.isoformat(), "--window", "1")
    assert code == 0 and f"XYZ flow {A} → {B} | calls ΔOI$=+$31.5k | puts ΔOI$=-$1.3k | 2 sessions" in out


def test_bad_options_exit_2_and_latest_is_a_session(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--duckdb-path", str(settings.duckdb_path), "--data-root", str(settings.data_root), "flow", "--symbols", "XYZ"]
    for bad, words in ((["--window", "0"], "--window"), (["--group-by", "total"], "--group-by"),
                       (["--top", "101"], "--top")):
        assert main([*base, *bad]) == 2
        assert words in capsys.readouterr().err
    # --as-of latest is the latest completed session: no snapshot there, so the job fails (9)
    assert main([*base, "--as-of", "latest", "--json"]) == 9
    doc = json.loads(capsys.readouterr().out)
    assert doc["as_of"] == default_session(settings).isoformat() and doc["runs"][0]["status"] == "failed"


def test_nothing_within_the_limit_is_skipped_with_its_reason(settings: Settings) -> None:
    import attrs

    import stages

    # B's previous session (01-16) has no snapshot; with a limit of 1 session A is out of reach
    strict = attrs.evolve(settings, flow_max_gap_sessions=1)
    result = stages.run_job("compute_flow", as_of=B, symbols=["XYZ"], settings=strict)
    (outcome,) = result.outcomes
    assert outcome.status == "skipped" and outcome.reason == "no_previous_snapshot"
    # with the default limit of 5 it compares with A, two sessions back
    result = stages.run_job("compute_flow", as_of=B, symbols=["XYZ"], settings=settings)
    assert result.outcomes[0].status == "success"
    with ledger.open(settings.duckdb_path).reader() as con:
        rows = con.execute("SELECT DISTINCT from_date, gap_sessions FROM options_flow WHERE to_date = ?", [B]).fetchall()
    assert rows == [(A, 2)]


def test_the_limit_comes_from_the_config_file(tmp_path: Path) -> None:
    from ledger.config import load_settings
    from ledger.errors import ConfigError

    config = tmp_path / "options-helper.toml"
    config.write_text("[stages]\nflow_max_gap_sessions = 3\n")
    assert load_settings(environ={"OPTIONS_HELPER_CONFIG": str(config)}).flow_max_gap_sessions == 3
    assert load_settings(environ={}).flow_max_gap_sessions == 5
    config.write_text("[stages]\nflow_max_gap_sessions = 0\n")
    with pytest.raises(ConfigError, match="flow_max_gap_sessions"):
        load_settings(environ={"OPTIONS_HELPER_CONFIG": str(config)})


def test_as_of_latest_everywhere(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from stages.inputs import parse_as_of

    base = ["--duckdb-path", str(settings.duckdb_path), "--data-root", str(settings.data_root)]
    assert main([*base, "health", "--as-of", "latest", "--json"]) == 0  # the ledger as it stands
    assert json.loads(capsys.readouterr().out)["database_exists"] is True
    assert parse_as_of("latest", settings) == parse_as_of(None, settings) == default_session(settings)
    assert parse_as_of("2026-11-20", settings).isoformat() == "2026-11-20"
    # a pipeline command resolves it to the session (no candles provider call needed to see it)
    assert main([*base, "derived", "--as-of", "latest", "--symbols", "XYZ", "--json"]) == 9  # no snapshot there
    assert json.loads(capsys.readouterr().out)["as_of"] == default_session(settings).isoformat()


def test_the_session_is_recomputed_unless_resume(settings: Settings) -> None:
    # the gap planner's `options-helper flow --as-of D --symbols S` must redo a stale partition
    code, out = cli(settings, "--as-of", C.isoformat(), "--json")
    first = json.loads(out)["runs"]
    assert code == 0 and [r["run_id"] is not None for r in first] == [True]
    code, out = cli(settings, "--as-of", C.isoformat(), "--json")
    again = json.loads(out)["runs"]
    assert [r["run_id"] is not None for r in again] == [True] and again[0]["run_id"] != first[0]["run_id"]
    # --resume: materialized by this code already, so no run; the view reads the stored rows
    code, out = cli(settings, "--as-of", C.isoformat(), "--resume", "--json")
    doc = json.loads(out)
    assert code == 0 and [r["run_id"] for r in doc["runs"]] == [None] and doc["symbols"][0]["pairs"] == 1
