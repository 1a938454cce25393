"""The plan's answer objects: a range per island of cells with one reason, a step per island with
the command that fixes it (one session: the job's own command; more: a backfill)."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.planner import GapRange, PlannerAsset, PlanStep, ranges

DAYS = (dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25))
ISO = tuple(d.isoformat() for d in DAYS)


def test_ranges_span_their_islands():
    built = ranges._gap_ranges("candles_daily", ["AAPL", "MSFT"], [0, 1], [3, 1], ["missing", "stale"], DAYS)
    assert built == [
        GapRange(asset_key="candles_daily", scope_key="AAPL", start=DAYS[0], end=DAYS[2], sessions=3, reason="missing"),
        GapRange(asset_key="candles_daily", scope_key="MSFT", start=DAYS[1], end=DAYS[1], sessions=1, reason="stale"),
    ]


@pytest.mark.parametrize(("lo", "hi", "command"), [
    (1, 1, "options-helper ingest candles --as-of 2026-11-24 --symbols AAPL,MSFT"),
    (0, 2, "options-helper backfill --assets candles_daily --symbols AAPL,MSFT --start 2026-11-23 --end 2026-11-25"),
])
def test_a_step_runs_the_jobs_command_for_one_session_and_a_backfill_for_more(lo, hi, command):
    asset = PlannerAsset(key="candles_daily", job="ingest_candles", cli_command="ingest candles")
    step = ranges._step(7, asset, ["AAPL", "MSFT"], DAYS, ISO, lo, hi, None)
    assert step == PlanStep(step=7, job="ingest_candles", asset_key="candles_daily", symbols=("AAPL", "MSFT"),
                            start=DAYS[lo], end=DAYS[hi], sessions=hi - lo + 1, command=command)


def test_a_step_of_an_all_scoped_asset_names_the_universe_option():
    asset = PlannerAsset(key="briefing_markdown", job="build_briefing", per_symbol=False, cli_command="briefing")
    step = ranges._step(1, asset, ["ALL"], DAYS, ISO, 2, 2, "--symbols AAPL,MSFT")
    assert step.symbols == () and step.command == "options-helper briefing --as-of 2026-11-25 --symbols AAPL,MSFT"
