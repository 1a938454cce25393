"""The ledger's command line: exit codes, one JSON document per --json, graceful empties."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import ledger
from frontends.cli.app import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    led = ledger.open(path)
    with led.run("ingest_candles", triggered_by="cli", partition_key="2026-11-25", scope_keys=["AAPL"]) as run:
        mat = run.materialized("candles_daily", "2026-11-25", "AAPL", rows=1,
                               max_data_time="2026-11-25T00:00:00+00:00", code_version="1")
        run.complete([mat, run.check(asset_key="candles_daily", partition_key="2026-11-25", scope_key="AAPL",
                                     check_name="candles_no_negative_prices", severity="error", status="fail",
                                     materialization_id=mat.event_id, message="1 negative close")])
    with pytest.raises(RuntimeError), led.run("build_briefing", triggered_by="cli"):
        raise RuntimeError("no derived rows for 2026-11-25")
    return path


def test_health_json_has_the_documented_keys(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "health", "--json")
    assert code == 0
    doc = json.loads(out)
    for key in ("database_path", "schema_version", "last_seq", "latest_runs", "recent_failures", "watermarks",
                "failed_checks", "abandoned_runs"):
        assert key in doc
    assert {r["job_name"] for r in doc["latest_runs"]} == {"ingest_candles", "build_briefing"}
    assert doc["recent_failures"][0]["error_type"] == "RuntimeError"
    assert doc["failed_checks"][0]["check_name"] == "candles_no_negative_prices"
    assert doc["watermarks"][0]["sessions_behind"] is not None


def test_health_as_of_an_earlier_seq_answers_as_the_ledger_stood_then(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "health", "--json", "--as-of", "1")
    assert code == 0
    doc = json.loads(out)
    assert [r["status"] for r in doc["latest_runs"]] == ["started"]
    assert doc["recent_failures"] == [] and doc["failed_checks"] == []


def test_health_on_a_missing_database_is_an_empty_report_with_guidance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--duckdb-path", str(tmp_path / "absent.duckdb"), "health", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["database_exists"] is False and doc["latest_runs"] == [] and "db init" in doc["hint"]
    assert not (tmp_path / "absent.duckdb").exists()


def test_a_file_that_is_not_duckdb_is_a_clear_error_with_a_nonzero_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "notes.duckdb"
    bad.write_text("these are not the bytes you are looking for")
    code, _out, err = run_cli(capsys, "--duckdb-path", str(bad), "health")
    assert code == 5
    assert "not a DuckDB database" in err and "Traceback" not in err


def test_runs_and_runs_show_and_events_emit_one_json_document(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "runs", "--json")
    runs = json.loads(out)["runs"]
    assert code == 0 and len(runs) == 2
    run_id = next(r["run_id"] for r in runs if r["job_name"] == "ingest_candles")
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "runs", "show", run_id, "--json")
    detail = json.loads(out)
    assert code == 0
    assert [e["event_type"] for e in detail["events"]] == ["run_started", "asset_materialized", "check_evaluated", "run_succeeded"]
    assert detail["checks"][0]["materialization_seq"] == detail["assets"][0]["seq"]
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "events", "--run", run_id, "--json")
    assert code == 0 and len(json.loads(out)["events"]) == 4


def test_runs_show_of_an_unknown_run_says_how_to_list_runs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--duckdb-path", str(db), "runs", "show", "nope")
    assert code == 4 and "options-helper runs" in err


def test_db_verify_passes_then_fails_with_exit_7_after_an_event_is_edited(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "db", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    con = duckdb.connect(str(db))
    con.execute("""UPDATE meta.events SET payload = '{"rows": 999}' WHERE seq = 2""")  # tampering, on purpose
    con.close()
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "db", "verify", "--json")
    report = json.loads(out)
    assert code == 7 and report["ok"] is False and report["first_bad_seq"] == 2


def test_db_init_status_rebuild_and_reap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path / "new.duckdb")
    code, out, _ = run_cli(capsys, "--duckdb-path", path, "db", "init", "--json")
    assert code == 0 and json.loads(out)["schema_version"] >= 1
    code, out, _ = run_cli(capsys, "--duckdb-path", path, "db", "status", "--json")
    assert code == 0 and json.loads(out)["pending"] == []
    code, out, _ = run_cli(capsys, "--duckdb-path", path, "db", "rebuild", "--json")
    assert code == 0 and json.loads(out)["events"] == 0
    code, out, _ = run_cli(capsys, "--duckdb-path", path, "db", "reap", "--json")
    assert code == 0 and json.loads(out) == {"abandoned": []}


def test_a_bad_as_of_is_a_usage_error_with_an_example(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--duckdb-path", str(db), "health", "--as-of", "yesterday")
    assert code == 2 and "2026-11-25T21:00:00Z" in err


def test_help_does_not_import_heavy_or_optional_modules() -> None:
    probe = (
        "import sys\n"
        "from frontends.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('dagster', 'streamlit', 'alpaca', 'pyarrow', 'pandas', 'duckdb', 'exchange_calendars')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "HEAVY="


def test_reading_commands_leave_the_file_as_it_was(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """health, runs, runs show, events, db status and db verify open the ledger read-only."""
    import hashlib

    before = hashlib.sha256(db.read_bytes()).hexdigest()
    run_id = ledger.open(db, read_only=True).runs(limit=1)[0]["run_id"]
    for args in (["health", "--json"], ["health", "--as-of", "2"], ["runs", "--json"], ["runs", "show", run_id],
                 ["events", "--since", "1"], ["db", "status"], ["db", "verify"]):
        code, _, err = run_cli(capsys, "--duckdb-path", str(db), *args)
        assert code == 0, (args, err)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_health_groups_failures_and_labels_freshness(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--duckdb-path", str(db), "health", "--json")
    doc = json.loads(out)
    assert code == 0 and [g["failures"] for g in doc["failure_groups"]] == [1]
    assert doc["failure_groups"][0]["message_template"] == "no derived rows for <date>"
    assert doc["watermarks"][0]["freshness"] in ("current", "behind", "stale")
    assert doc["summary"]["jobs"] == 2 and doc["summary"]["failed_checks"] == 1


def test_reading_a_ledger_behind_the_code_says_to_migrate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import duckdb

    plain = tmp_path / "plain.duckdb"
    duckdb.connect(str(plain)).close()
    code, _, err = run_cli(capsys, "--duckdb-path", str(plain), "runs")
    assert code == 5 and "options-helper db init" in err
