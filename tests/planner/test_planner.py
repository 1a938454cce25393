"""The gap planner's rules (docs/gaps.md) on ledgers written through the ledger API."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.config import Settings
from ledger.planner import GapPlan, lookback_assets, plan_gaps
from stages import registry
from stages.planning import plan
from tests.planner.helpers import CAL, SYMBOLS, fill, graph, materialize, memory_ledger
from tests.planner.reference import reference_plan

D = dt.date


def _plan(led, start, end, symbols=SYMBOLS, **kw) -> GapPlan:
    with led.reader() as con:
        return plan_gaps(con, graph=kw.pop("g", None) or graph(), symbols=symbols, start=start, end=end,
                         calendar=CAL, **kw)


def _cells(p: GapPlan, include_unrecoverable=True) -> dict[tuple[str, D, str], str]:
    out = {}
    for r in p.ranges:
        if r.reason == "unrecoverable" and not include_unrecoverable:
            continue
        i = p.session_days.index(r.start)
        for d in p.session_days[i : i + r.sessions]:
            out[(r.asset_key, d, r.scope_key)] = r.reason
    return out


def _window(start: D, end: D) -> list[D]:
    days = CAL.sessions_in_range(start, end)
    return [CAL.previous_session(days[0]), *days]


# -- the calendar ------------------------------------------------------------------------------
@pytest.mark.parametrize(("start", "end", "closed"), [
    (D(2026, 11, 20), D(2026, 12, 1), [D(2026, 11, 26), D(2026, 11, 21), D(2026, 11, 22), D(2026, 11, 28)]),
    (D(2025, 1, 6), D(2025, 1, 13), [D(2025, 1, 9)]),  # national day of mourning
    (D(2026, 6, 30), D(2026, 7, 8), [D(2026, 7, 3), D(2026, 7, 4)]),  # Independence Day observed
])
def test_closed_days_are_never_gaps(start, end, closed):
    led = memory_ledger()
    p = _plan(led, start, end)
    days = {d for _, d, _ in p.cells()}
    assert days and not days & set(closed)
    assert all(CAL.is_session(d) for d in days)
    assert p.sessions == len(CAL.sessions_in_range(start, end))
    # everything is missing in an empty ledger: every expected cell, and the lookback ones
    assert p.cells_missing == p.cells_expected
    assert set(p.reasons) <= {"missing", "upstream_missing"}


def test_monday_morning_fridays_data_is_current(tmp_path: Path):
    s = Settings(duckdb_path=tmp_path / "l.duckdb", watchlists={"default": ("AAPL", "MSFT")})
    import ledger

    led = ledger.open(s.duckdb_path)
    friday = D(2026, 11, 27)  # an early close (13:00 ET)
    fill(led, _window(D(2026, 11, 20), friday), symbols=("AAPL", "MSFT"))
    monday_9am_et = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
    p = plan(s, start=D(2026, 11, 20), now=monday_9am_et)
    assert p.end == friday and p.cells_missing == 0 and not p.ranges
    # the default window is the 20 sessions ending on Friday; older ones are simply missing
    p20 = plan(s, now=monday_9am_et)
    assert p20.end == friday and p20.sessions == 20
    assert p20.cells_missing > 0 and max(d for _, d, _ in p20.cells()) <= D(2026, 11, 19)
    # Friday closes at 18:00 UTC (13:00 ET); with the 30-minute delay it counts from 18:30 UTC
    assert plan(s, start=D(2026, 11, 20), now=dt.datetime(2026, 11, 27, 18, 10, tzinfo=dt.UTC)).end == D(2026, 11, 25)
    assert plan(s, start=D(2026, 11, 20), now=dt.datetime(2026, 11, 27, 18, 31, tzinfo=dt.UTC)).end == friday


# -- holes and their dependents ----------------------------------------------------------------
WINDOW = CAL.sessions_in_range(D(2026, 11, 23), D(2026, 11, 25))
ALL_DAYS = [CAL.previous_session(WINDOW[0]), *WINDOW]
SYMS = ("AAPL", "MSFT")
LOOKBACK = set(lookback_assets(graph()))


def _universe():
    cells = []
    for i, d in enumerate(ALL_DAYS):
        for a in registry.ASSETS:
            if i == 0 and a.key not in LOOKBACK:
                continue
            for s in (SYMS if a.per_symbol else ("ALL",)):
                cells.append((a.key, d, s))
    return cells


def _upstream_cells(cell):
    a, d, s = cell
    spec = registry.asset(a)
    out = []
    for u in spec.upstream:
        day = CAL.previous_session(d) if u.lag else d
        if day < ALL_DAYS[0]:
            continue
        up = registry.asset(u.asset_key)
        scopes = [s] if up.per_symbol and spec.per_symbol else (list(SYMS) if up.per_symbol else ["ALL"])
        out.extend((u.asset_key, day, k) for k in scopes)
    return out


def _dependents_closure(holes, universe):
    reported = set(holes)
    changed = True
    while changed:
        changed = False
        for c in universe:
            if c not in reported and any(u in reported for u in _upstream_cells(c)):
                reported.add(c)
                changed = True
    return reported


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.sampled_from(_universe()), max_size=8))
def test_random_holes_are_reported_with_exactly_their_dependents(holes):
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=SYMS, holes=holes)
    p = _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS)
    got = _cells(p)
    assert set(got) == _dependents_closure(holes, _universe())
    for cell, reason in got.items():
        if cell in holes:
            absent_up = any(u in holes for u in _upstream_cells(cell))
            assert reason == ("upstream_missing" if absent_up else "missing"), cell
        else:
            assert reason == "stale", cell
    # the same rules written cell by cell in Python agree, reason for reason
    with led.reader() as con:
        ref = reference_plan(con, graph=graph(), symbols=SYMS, days=p.session_days, has_lookback=True,
                             code_versions=registry.code_versions(), cutoffs={})
    assert {(a, p.session_days[i], s): r for (a, i, s), r in ref.items()} == got
    # steps cover exactly the cells, upstream assets first
    stepped = {(st_.asset_key, d, s) for st_ in p.steps for d in p.session_days
               if st_.start <= d <= st_.end for s in (st_.symbols or ("ALL",))}
    assert stepped == set(got)
    order = [registry.ASSET_KEYS.index(st_.asset_key) for st_ in p.steps]
    assert order == sorted(order)
    assert p.to_dict() == _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS).to_dict()  # deterministic


# -- staleness ---------------------------------------------------------------------------------
def test_reingesting_candles_marks_that_sessions_derived_briefing_and_dashboard_stale():
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=SYMS)
    assert _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS).cells_missing == 0
    s = WINDOW[1]
    materialize(led, "candles_daily", s, ["AAPL"])
    got = _cells(_plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS))
    assert set(got.values()) == {"stale"}
    nxt = WINDOW[2]
    assert set(got) == {
        ("options_snapshot_file", s, "AAPL"), ("options_flow", s, "AAPL"), ("derived_metrics", s, "AAPL"),
        ("briefing_markdown", s, "ALL"), ("dashboard_views", s, "ALL"),
        # flow needs the previous snapshot: the next session's flow and what reads it follow
        ("options_flow", nxt, "AAPL"), ("derived_metrics", nxt, "AAPL"),
        ("briefing_markdown", nxt, "ALL"), ("dashboard_views", nxt, "ALL"),
    }
    # re-running the dependents in daily order clears it
    for a in ("options_snapshot_file", "options_flow", "derived_metrics"):
        materialize(led, a, s, ["AAPL"])
    for a in ("briefing_markdown", "dashboard_views"):
        materialize(led, a, s, ["ALL"])
    for a in ("options_flow", "derived_metrics"):
        materialize(led, a, nxt, ["AAPL"])
    for a in ("briefing_markdown", "dashboard_views"):
        materialize(led, a, nxt, ["ALL"])
    assert _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS).cells_missing == 0


def test_a_new_code_version_marks_its_partitions_and_dependents_stale():
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=SYMS)
    versions = registry.code_versions() | {"derived_metrics": "2"}
    p = _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS, code_versions=versions)
    got = _cells(p)
    assert set(got.values()) == {"stale"}
    assert {a for a, _, _ in got} == {"derived_metrics", "briefing_markdown", "dashboard_views"}
    assert len(got) == len(WINDOW) * (len(SYMS) + 2)
    # once rerun with the new version, nothing is stale
    for d in WINDOW:
        materialize(led, "derived_metrics", d, list(SYMS), code="2")
        materialize(led, "briefing_markdown", d, ["ALL"])
        materialize(led, "dashboard_views", d, ["ALL"])
    assert _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS, code_versions=versions).cells_missing == 0


# -- failed, abandoned, check_failed, skipped, unrecoverable ------------------------------------
def test_failed_abandoned_and_check_failed_cells():
    import ledger as ledger_pkg

    led = ledger_pkg.open(":memory:", lease_seconds=0.001)
    d = WINDOW[-1]
    fill(led, ALL_DAYS[:-1], symbols=SYMS)
    materialize(led, "candles_daily", d, ["AAPL"], status="failed", run_status="failed")  # an asset event
    materialize(led, "candles_daily", d, ["MSFT"], status="none", run_status="failed")  # the run failed early
    materialize(led, "options_bars", d, list(SYMS), status="none", run_status="started")  # crashed
    led.reap(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    materialize(led, "options_snapshot_file", d, ["AAPL"], error_check=True)
    got = _cells(_plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS))
    assert got[("candles_daily", d, "AAPL")] == "failed"
    assert got[("candles_daily", d, "MSFT")] == "failed"
    assert got[("options_bars", d, "AAPL")] == "abandoned"
    # a materialization whose error check failed (and whose candles failed) is check_failed
    assert got[("options_snapshot_file", d, "AAPL")] == "check_failed"
    assert got[("options_snapshot_file", d, "MSFT")] == "upstream_missing"
    assert got[("options_flow", d, "MSFT")] == "upstream_missing"


def test_skipped_cells_count_as_present_until_their_upstream_comes():
    led = memory_ledger()
    d0, d1 = ALL_DAYS[0], WINDOW[0]
    fill(led, [d1], symbols=SYMS)  # nothing at the lookback session
    p = _plan(led, WINDOW[0], WINDOW[0], symbols=SYMS)
    got = _cells(p)
    assert got[("options_snapshot_file", d0, "AAPL")] == "upstream_missing"
    assert got[("candles_daily", d0, "AAPL")] == "missing"
    assert got[("options_flow", d1, "AAPL")] == "stale"  # computed without the previous snapshot
    materialize(led, "options_flow", d1, ["AAPL"], status="skipped")
    assert _cells(_plan(led, d1, d1, symbols=SYMS))[("options_flow", d1, "AAPL")] == "upstream_missing"


def test_live_only_chains_are_unrecoverable_not_missing():
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=SYMS, holes={("options_snapshot_file", WINDOW[0], "AAPL"),
                                           ("options_snapshot_file", WINDOW[-1], "AAPL"),
                                           ("options_flow", WINDOW[0], "AAPL")})
    g = graph(live_only_chain=True)
    p = _plan(led, WINDOW[0], WINDOW[-1], symbols=SYMS, g=g, unrecoverable={"options_snapshot_file": WINDOW[-1]})
    got = _cells(p)
    assert got[("options_snapshot_file", WINDOW[0], "AAPL")] == "unrecoverable"
    assert got[("options_flow", WINDOW[0], "AAPL")] == "unrecoverable"  # absent, and its input never comes
    assert got[("options_snapshot_file", WINDOW[-1], "AAPL")] == "missing"  # the live session can be taken
    assert p.cells_unrecoverable == 2
    assert all(st_.asset_key != "options_snapshot_file" or st_.start == WINDOW[-1] for st_ in p.steps)
    assert ("options_snapshot_file", WINDOW[0], "AAPL") not in set(p.cells())


def test_steps_group_symbols_by_range_and_name_commands():
    led = memory_ledger()
    holes = {("candles_daily", d, s) for d in WINDOW for s in ("AAPL", "MSFT")}
    fill(led, ALL_DAYS, symbols=("AAPL", "MSFT", "SPY"), holes=holes, assets=["candles_daily"])
    p = _plan(led, WINDOW[0], WINDOW[-1], symbols=("AAPL", "MSFT", "SPY"), assets=["candles_daily"])
    assert [s.to_dict() for s in p.steps] == [{
        "step": 1, "job": "ingest_candles", "asset_key": "candles_daily", "symbols": ["AAPL", "MSFT"],
        "start": WINDOW[0].isoformat(), "end": WINDOW[-1].isoformat(), "sessions": 3,
        "command": f"options-helper backfill --assets candles_daily --symbols AAPL,MSFT "
                   f"--start {WINDOW[0]} --end {WINDOW[-1]}"}]
    doc = p.to_dict()
    assert {"start", "end", "sessions", "cells_expected", "cells_missing", "ranges", "steps"} <= set(doc)
    assert doc["cells_expected"] == 3 * 3  # candles alone need no lookback session
    assert doc["ranges"][0] == {"asset_key": "candles_daily", "scope_key": "AAPL", "start": WINDOW[0].isoformat(),
                                "end": WINDOW[-1].isoformat(), "sessions": 3, "reason": "missing"}
    one = _plan(led, WINDOW[1], WINDOW[1], symbols=("AAPL",), assets=["candles_daily"])
    assert one.steps[0].command == f"options-helper ingest candles --as-of {WINDOW[1]} --symbols AAPL"


def test_a_subset_of_symbols_plans_exactly_their_part_of_the_universe():
    """The scan filters scopes in several ways (a few: in the scan, no joins; more: joins plus an
    IN list; many: only the joins; see also test_read_paths.py); per-symbol assets never depend on
    other symbols, so every way gives the universe's answer restricted to the subset."""
    from ledger.planner import _SCOPE_PUSHDOWN

    universe = tuple(f"S{i:03d}" for i in range(_SCOPE_PUSHDOWN + 6))
    per_symbol = [a.key for a in registry.ASSETS if a.per_symbol]
    holes = {("candles_daily", WINDOW[1], "S001"), ("options_snapshot_file", ALL_DAYS[0], "S002"),
             ("options_flow", WINDOW[2], universe[-1]), ("derived_metrics", WINDOW[0], "S001")}
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=universe, holes=holes)
    materialize(led, "options_bars", WINDOW[1], ["S003"], status="failed", run_status="failed")

    def ranges(symbols):
        p = _plan(led, WINDOW[0], WINDOW[-1], symbols=symbols, assets=per_symbol)
        return [r.to_dict() for r in p.ranges if r.scope_key in symbols]

    everything = _plan(led, WINDOW[0], WINDOW[-1], symbols=universe, assets=per_symbol)
    assert {r.scope_key for r in everything.ranges} == {"S001", "S002", "S003", universe[-1]}
    for subset in (("S001",), ("S002",), ("S001", "S003", universe[-1]), universe[1:]):
        want = [r.to_dict() for r in everything.ranges if r.scope_key in subset]
        assert ranges(subset) == want, subset
