"""The read-only ledger: ``ledger.open(path, read_only=True)`` / ``Ledger.from_settings(..., read_only=True)``.

It never writes (the file's bytes are the same after every read), never creates or migrates a
file, refuses writes with ``ReadOnlyLedgerError``, and lets a writer in another process commit
while it polls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import pytest

import ledger
from ledger.config import Settings
from ledger.errors import DatabaseNotFoundError, LedgerLockedError, ReadOnlyLedgerError, SchemaMissingError
from tests.ledger.children import Child

SESSIONS = ("2025-03-03", "2025-03-04", "2025-03-05")


def _fingerprint(path: Path) -> tuple[str, tuple[str, ...]]:
    """The file's bytes and the names beside it (a WAL or a new file would show)."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), tuple(sorted(p.name for p in path.parent.iterdir()))


def _seed(path: Path) -> ledger.Ledger:
    led = ledger.open(path)
    for day in SESSIONS:
        with led.run("ingest_candles", triggered_by="cli", partition_key=day, scope_keys=["AAPL", "MSFT"]) as run:
            good = run.materialized("candles_daily", day, "AAPL", rows=1, max_data_time=f"{day}T21:00:00+00:00")
            run.complete([good, run.asset_failed("candles_daily", day, "MSFT", error_type="TimeoutError",
                                                 error_message=f"timed out on {day}"),
                          run.check(asset_key="candles_daily", partition_key=day, scope_key="AAPL",
                                    check_name="non_empty", severity="error", status="fail", message="empty",
                                    materialization_id=good.event_id)])
    with pytest.raises(RuntimeError), led.run("compute_flow", partition_key=SESSIONS[-1]):
        raise RuntimeError("flow went wrong")
    return led


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    _seed(path)
    return path


def test_reading_never_changes_the_file(seeded: Path) -> None:
    before = _fingerprint(seeded)
    led = ledger.open(seeded, read_only=True)
    run_id = led.runs(limit=1)[0]["run_id"]
    h = led.health()
    assert h["summary"]["jobs"] == 2 and h["summary"]["latest_failed"] == 1
    assert led.runs() and led.run_detail(run_id)["run"]["run_id"] == run_id
    assert [e.seq for e in led.events()] == list(range(1, led.last_seq() + 1))
    assert led.partition_status() and led.watermarks() and led.checks()
    past = led.health(as_of_seq=4)  # time travel: a fold in memory
    assert past["last_seq"] == 4 and past["counts"]["ingestion_runs"] == 1
    assert led.runs(as_of_seq=4)[0]["status"] == "started"  # its success is seq 5
    assert led.partition_cells(start=dt.date(2025, 3, 3), end=dt.date(2025, 3, 5), scopes=["AAPL", "MSFT"])
    assert led.tables() and led.table_preview("meta", "events", limit=2, order_by="seq")
    assert led.verify().ok
    assert _fingerprint(seeded) == before


def test_writes_are_refused_with_a_typed_error_and_nothing_is_written(seeded: Path) -> None:
    before = _fingerprint(seeded)
    led = ledger.open(seeded, read_only=True)
    for attempt in (lambda: led.run("ingest_candles"), lambda: led.append([]), led.reap, led.rebuild):
        with pytest.raises(ReadOnlyLedgerError, match="read-only"):
            attempt()
    assert isinstance(ReadOnlyLedgerError("x"), ledger.OptionsHelperError)
    assert _fingerprint(seeded) == before


def test_a_missing_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "ledger.duckdb"
    with pytest.raises(DatabaseNotFoundError, match="options-helper db init"):
        ledger.open(path, read_only=True)
    with pytest.raises(DatabaseNotFoundError, match="options-helper db init"):
        ledger.Ledger.from_settings(Settings(duckdb_path=path), read_only=True)
    assert not path.exists() and not path.parent.exists()


def test_a_file_without_the_schema_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "plain.duckdb"
    duckdb.connect(str(path)).close()
    before = _fingerprint(path)
    with pytest.raises(SchemaMissingError, match="options-helper db init"):  # a MigrationError
        ledger.open(path, read_only=True)
    assert _fingerprint(path) == before
    assert ledger.status(path)["schema_version"] == 0 and ledger.status(path)["pending"]


def test_events_follow_the_log_from_a_seq(seeded: Path) -> None:
    led = ledger.open(seeded, read_only=True)
    head = led.last_seq()
    page = led.events(3, 4)
    assert [e.seq for e in page] == [4, 5, 6, 7]
    assert led.events(since=head) == []
    seen: list[int] = []
    since = 0
    while batch := led.events(since=since, limit=5):
        seen += [e.seq for e in batch]
        since = batch[-1].seq
    assert seen == list(range(1, head + 1))


def test_health_counts_freshness_in_sessions_not_days() -> None:
    from ledger.calendar import TradingCalendar
    from ledger.health import freshness

    marks = [{"asset_key": "candles_daily", "scope_key": "AAPL",
              "watermark_ts": dt.datetime(2025, 1, 3, tzinfo=dt.UTC)},  # a Friday
             {"asset_key": "candles_daily", "scope_key": "SPY",
              "watermark_ts": dt.datetime(2024, 12, 27, tzinfo=dt.UTC)}]
    rows = freshness(marks, latest_session=dt.date(2025, 1, 6), calendar=TradingCalendar.xnys())  # the Monday after
    assert {r["scope_key"]: r["sessions_behind"] for r in rows} == {"AAPL": 1, "SPY": 5}  # 1 Jan is a holiday
    assert [r["freshness"] for r in rows] == ["stale", "behind"]


def test_health_reports_failure_groups_and_freshness_as_of_a_moment(seeded: Path) -> None:
    led = ledger.open(seeded, read_only=True)
    h = led.health(as_of_time=dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC))
    # before the first event was recorded: nothing yet
    assert h["last_seq"] == 0 and h["latest_runs"] == [] and h["watermarks"] == []
    now = led.health(close_delay_minutes=30)
    assert [g["failures"] for g in now["failure_groups"]] == [1]
    assert now["failure_groups"][0]["error_type"] == "RuntimeError"
    (mark,) = now["watermarks"]
    assert mark["watermark"] == dt.date(2025, 3, 5) and mark["sessions_behind"] > 0 and mark["freshness"] == "stale"


def test_from_settings_uses_the_configured_lock_timeout(seeded: Path) -> None:
    """A read-only reader waits for a writer's lock as long as the settings say, then says so."""
    holder = Child("_child_lock_holder.py", str(seeded), "30")
    try:
        assert holder.wait_for("holding", timeout=60), holder.stderr()[-1500:]
        settings = Settings(duckdb_path=seeded, lock_timeout_seconds=0.3)
        t0 = dt.datetime.now()
        with pytest.raises(LedgerLockedError, match="OPTIONS_HELPER_LOCK_TIMEOUT"):
            ledger.Ledger.from_settings(settings, read_only=True).runs()
        assert (dt.datetime.now() - t0).total_seconds() < 10
    finally:
        holder.kill()


@pytest.mark.timeout(180)
def test_a_writer_commits_while_a_read_only_reader_polls_in_another_process(seeded: Path) -> None:
    start = ledger.open(seeded, read_only=True).last_seq()
    stop = seeded.parent / "stop"
    reader = Child("_child_reader.py", str(seeded), "--duration", "120", "--interval", "0.05", "--follow", "--batch", "7",
                   "--stop-file", str(stop))
    assert reader.wait_for("followed", timeout=60), reader.stderr()[-1500:]  # polling before the writer starts
    writer = Child("_child_writer.py", str(seeded), "--lease", "60", "--duration", "4", "--tag", "W")
    writer_code = writer.finish(timeout=120)
    stop.touch()  # the reader polls once more, after the writer's last commit, and stops
    codes = [writer_code, reader.finish(timeout=120)]
    assert codes == [0, 0], (writer.stderr()[-1500:], reader.lines[-5:])
    assert not [line for line in reader.lines if line.startswith(("error", "gap"))]
    committed = writer.values("committed")
    polls = [int(v.split()[0]) for v in reader.values("ok")]
    assert committed, "the writer got in while the reader polled"
    assert polls == sorted(polls), "the reader never saw the log go backwards"
    assert polls[0] == start and polls[-1] > start, "the reader saw the writer's commits"
    led = ledger.open(seeded, read_only=True)
    head = led.last_seq()
    assert polls[-1] == head and int(reader.values("followed")[-1]) == head, "the follower caught up"
    assert {r["run_id"] for r in led.runs(limit=1000)} >= set(committed)
    assert led.verify().ok


def test_every_production_call_site_builds_the_ledger_from_settings() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [f"{p.relative_to(root)}:{n}" for folder in ("frontends", "stages") for p in (root / folder).rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1) if "ledger.open(" in line]
    assert offenders == []



def test_frontends_run_no_sql_of_their_own() -> None:
    """The CLI and the portal render what the ledger and stages compute; the portal's guarded SQL
    box is the one place a frontend executes SQL."""
    root = Path(__file__).resolve().parents[2]
    offenders = [f"{p.relative_to(root)}:{n}" for p in (root / "frontends").rglob("*.py") if p.name != "sql_guard.py"
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if ".execute(" in line or ".sql(" in line or "duckdb.connect(" in line]
    assert offenders == []
