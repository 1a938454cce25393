"""The answer's objects are built by setting their slots (ranges.py): they must be exactly what
the classes' own constructors build, and the shortcut must switch itself off when a class gains
a validator, a converter or a hook."""

from __future__ import annotations

import datetime as dt
import gc

import attrs
import pytest

from ledger.planner import GapRange, PlannerAsset, PlanStep, ranges

DAYS = (dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25))
ISO = tuple(d.isoformat() for d in DAYS)


def test_the_shortcut_is_on_for_the_answer_classes():
    assert ranges._FAST_RANGES and ranges._FAST_STEPS


def test_ranges_built_by_slots_equal_the_constructed_ones():
    built = ranges._gap_ranges("candles_daily", ["AAPL", "MSFT"], [0, 1], [3, 1], ["missing", "stale"], DAYS)
    assert built == [
        GapRange(asset_key="candles_daily", scope_key="AAPL", start=DAYS[0], end=DAYS[2], sessions=3, reason="missing"),
        GapRange(asset_key="candles_daily", scope_key="MSFT", start=DAYS[1], end=DAYS[1], sessions=1, reason="stale"),
    ]
    assert {hash(r) for r in built} == {hash(attrs.evolve(r)) for r in built}
    assert repr(built[0]).startswith("GapRange(asset_key='candles_daily'")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built[0].reason = "failed"  # type: ignore[misc]


@pytest.mark.parametrize(("lo", "hi", "command"), [
    (1, 1, "options-helper ingest candles --as-of 2026-11-24 --symbols AAPL,MSFT"),
    (0, 2, "options-helper backfill --assets candles_daily --symbols AAPL,MSFT --start 2026-11-23 --end 2026-11-25"),
])
def test_steps_built_by_slots_equal_the_constructed_ones(lo, hi, command):
    asset = PlannerAsset(key="candles_daily", job="ingest_candles", cli_command="ingest candles")
    step = ranges._step(7, asset, ["AAPL", "MSFT"], DAYS, ISO, lo, hi, None)
    assert step == PlanStep(step=7, job="ingest_candles", asset_key="candles_daily", symbols=("AAPL", "MSFT"),
                            start=DAYS[lo], end=DAYS[hi], sessions=hi - lo + 1, command=command)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        step.command = ""  # type: ignore[misc]


def test_a_validator_switches_the_shortcut_off():
    @attrs.frozen(kw_only=True)
    class Checked:
        n: int = attrs.field(validator=attrs.validators.gt(0))

    @attrs.frozen(kw_only=True)
    class Plain:
        n: int

    assert ranges._plain_init(Plain) and not ranges._plain_init(Checked)


@pytest.mark.parametrize("enabled", [True, False])
def test_garbage_collection_is_restored_as_it_was(enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with ranges._gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
