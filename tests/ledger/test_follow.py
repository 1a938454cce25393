"""The follower API (``ledger.follow``): typed events after a seq, in order, in bounded pages; a
cursor past the end is reported; following only reads (no dagster or openlineage needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import ledger
from ledger.errors import DatabaseNotFoundError, UsageError
from ledger.events import AssetMaterialized, RunStarted, RunSucceeded
from ledger.follow import follow, open_follower, read_page, run_events, run_starts


@pytest.fixture
def led(tmp_path: Path) -> ledger.Ledger:
    led = ledger.open(tmp_path / "f.duckdb")
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        with led.run("ingest_candles", triggered_by="cli", partition_key=day, scope_keys=["AAPL", "SPY"]) as run:
            run.complete([run.materialized("candles_daily", day, s, rows=1) for s in ("AAPL", "SPY")])
    return led  # 3 runs x (start, 2 materializations, success) = 12 events


def test_pages_are_typed_events_in_seq_order_bounded_by_the_batch(led: ledger.Ledger) -> None:
    source = open_follower(led.path)
    page = read_page(source, since=0, batch=5)
    assert [s.seq for s in page.events] == [1, 2, 3, 4, 5] and page.more and page.cursor == 5
    assert isinstance(page.events[0].event, RunStarted) and isinstance(page.events[1].event, AssetMaterialized)
    rest = read_page(source, since=page.cursor, batch=100)
    assert [s.seq for s in rest.events] == list(range(6, 13)) and not rest.more


def test_follow_yields_every_event_once_and_stops_at_the_end(led: ledger.Ledger) -> None:
    for source in (led, open_follower(led.path)):  # a Ledger or its store
        pages = list(follow(source, since=0, batch=5))
        assert [len(p.events) for p in pages] == [5, 5, 2]
        assert [s.seq for p in pages for s in p.events] == list(range(1, 13))
        assert list(follow(source, since=pages[-1].cursor)) == []
        assert [s.seq for p in follow(source, since=10, batch=5) for s in p.events] == [11, 12]


def test_a_caught_up_cursor_is_an_empty_page_and_one_past_the_end_is_behind(led: ledger.Ledger) -> None:
    source = open_follower(led.path)
    caught_up = read_page(source, since=12)
    assert caught_up.events == () and caught_up.head == 12 and not caught_up.behind and caught_up.cursor == 12
    past = read_page(source, since=40)
    assert past.events == () and past.behind and past.head == 12
    assert [p.behind for p in follow(source, since=40)] == [True]
    with pytest.raises(UsageError):
        read_page(source, since=-1)
    with pytest.raises(UsageError):
        read_page(source, since=0, batch=0)


def test_runs_started_before_the_cursor_are_found(led: ledger.Ledger) -> None:
    source = open_follower(led.path)
    tail = read_page(source, since=10).events  # the third run's last materialization and success
    run_id = tail[-1].event.run_id
    assert isinstance(tail[-1].event, RunSucceeded)
    starts = run_starts(source, {run_id}, known=tail)
    assert starts[run_id].partition_key == "2026-11-25" and starts[run_id].triggered_by == "cli"
    assert [s.seq for s in run_events(source, run_id, until=11)] == [9, 10, 11]
    assert [s.seq for s in run_events(led, run_id)] == [9, 10, 11, 12]


def test_following_only_reads(led: ledger.Ledger, tmp_path: Path) -> None:
    before = hashlib.sha256(led.path.read_bytes()).hexdigest()
    for _ in follow(open_follower(led.path), since=0, batch=3):
        pass
    assert hashlib.sha256(led.path.read_bytes()).hexdigest() == before
    with pytest.raises(DatabaseNotFoundError):
        open_follower(tmp_path / "missing.duckdb")
    assert not (tmp_path / "missing.duckdb").exists()
