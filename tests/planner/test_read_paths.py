"""The planner reads ``partition_status`` in several ways depending on the plan's shape (narrow,
wide with an IN list, wide, wide with outer joins); every way gives the answer of the cell-by-cell
reference, on a ledger with every kind of cell state."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.planner import GapPlan, plan_gaps, reads
from stages import registry
from tests.planner.helpers import CAL, fill, graph, materialize
from tests.planner.reference import reference_plan

WINDOW = CAL.sessions_in_range(dt.date(2026, 11, 23), dt.date(2026, 11, 25))
ALL_DAYS = [CAL.previous_session(WINDOW[0]), *WINDOW]
UNIVERSE = tuple(f"S{i:02d}" for i in range(12))
CUTOFFS = {"options_bars": WINDOW[1]}

# (narrow scopes, IN-list scopes, share of the table above which the joins are outer, rows of the
# table from which the wide way reads through Arrow instead of fetchnumpy)
PATHS = {
    "narrow": (10**6, 64, 0.5, 0),
    "wide_in_list": (0, 10**6, float("inf"), 0),
    "wide": (0, 0, float("inf"), 0),
    "wide_outer": (0, 0, 0.0, 0),
    "wide_fetchnumpy": (0, 0, float("inf"), 10**9),
    "wide_outer_fetchnumpy": (0, 0, 0.0, 10**9),
}


@pytest.fixture(scope="module")
def led():
    import ledger as ledger_pkg

    led = ledger_pkg.open(":memory:", lease_seconds=0.001)
    holes = {("candles_daily", WINDOW[0], "S01"), ("options_snapshot_file", ALL_DAYS[0], "S02"),
             ("options_flow", WINDOW[2], "S11"), ("briefing_markdown", WINDOW[1], "ALL"),
             ("options_bars", WINDOW[0], "S05")}
    fill(led, ALL_DAYS[:-1], symbols=UNIVERSE, holes=holes)
    d = WINDOW[-1]
    fill(led, [d], symbols=UNIVERSE[6:], holes={("derived_metrics", d, "S09")})
    materialize(led, "candles_daily", d, ["S00"], status="failed", run_status="failed")  # an asset failure
    materialize(led, "candles_daily", d, ["S01"], status="none", run_status="failed")  # a run that failed early
    materialize(led, "options_bars", d, ["S02", "S03"], status="none", run_status="started")  # crashed
    led.reap(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    materialize(led, "options_bars", d, [], status="none", run_status="failed")  # no scopes: every symbol
    materialize(led, "candles_daily", d, ["S04", "S05"])
    materialize(led, "options_snapshot_file", d, ["S04"], error_check=True)  # a failed check, linked
    materialize(led, "options_flow", d, ["S05"], status="skipped")
    materialize(led, "derived_metrics", WINDOW[0], ["S03"], code="0")  # another code version
    # failed checks not linked to a materialization flag what their run materialized: the
    # check's scope, or every scope for a check on ALL
    _run_with_check(led, "candles_daily", WINDOW[1], ["S07", "S08"], check_scope="S07")
    _run_with_check(led, "options_bars", WINDOW[1], ["S09", "S10"], check_scope="ALL")
    # a failed check evaluated again (and passing) on the same materialization no longer counts
    _run_with_check(led, "options_snapshot_file", WINDOW[0], ["S06"], check_scope="S06", linked=True,
                    passes_later=True)
    return led


def _run_with_check(led, asset_key: str, day: dt.date, scopes: list[str], *, check_scope: str,
                    linked: bool = False, passes_later: bool = False) -> None:
    job = registry.job_for_asset(asset_key)
    pk = day.isoformat()
    run = led.run(job.name, partition_key=pk, scope_keys=scopes, code_version=job.code_version)
    with run:
        events = [run.materialized(asset_key, pk, s, rows=1, code_version=job.code_version) for s in scopes]
        link = events[0].event_id if linked else None
        check = {"asset_key": asset_key, "partition_key": pk, "scope_key": check_scope, "check_name": "gaps",
                 "severity": "error", "materialization_id": link}
        events.append(run.check(status="fail", **check))
        if passes_later:
            events.append(run.check(status="pass", **check))
        run.complete(events)


def _plan(led, path: str, monkeypatch, **kw) -> GapPlan:
    narrow, in_list, outer, arrow_rows = PATHS[path]
    monkeypatch.setattr(reads, "_NARROW_SCOPES", narrow)
    monkeypatch.setattr(reads, "_SCOPE_PUSHDOWN", in_list)
    monkeypatch.setattr(reads, "_OUTER_SHARE", outer)
    monkeypatch.setattr(reads, "_ARROW_ROWS", arrow_rows)
    with led.reader() as con:
        return plan_gaps(con, graph=graph(), start=WINDOW[0], end=WINDOW[-1], calendar=CAL,
                         unrecoverable=CUTOFFS, **kw)


def _reference(led, plan: GapPlan, symbols, assets=None) -> dict:
    with led.reader() as con:
        ref = reference_plan(con, graph=graph(), symbols=symbols, days=plan.session_days, has_lookback=True,
                             code_versions=registry.code_versions(), cutoffs=CUTOFFS, assets=assets)
    return {(a, plan.session_days[i], s): r for (a, i, s), r in ref.items()}


def _cells(plan: GapPlan) -> dict:
    return {(r.asset_key, d, r.scope_key): r.reason for r in plan.ranges
            for d in plan.session_days[plan.session_days.index(r.start):][: r.sessions]}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("symbols", "assets"), [
    (UNIVERSE, None),
    (UNIVERSE[:1], None),
    (UNIVERSE[4:6], ["options_snapshot_file", "options_flow"]),
    (("S01",), ["candles_daily"]),
    (UNIVERSE[:9], ["derived_metrics"]),
    (UNIVERSE[7:], ["dashboard_views"]),
])
def test_every_read_path_agrees_with_the_reference(led, monkeypatch, path, symbols, assets):
    plan = _plan(led, path, monkeypatch, symbols=symbols, assets=assets)
    got = _cells(plan)
    assert got == _reference(led, plan, symbols, assets)
    if symbols == UNIVERSE and assets is None:  # the ledger has every kind of cell
        assert set(plan.reasons) == {"unrecoverable", "failed", "abandoned", "upstream_missing", "missing",
                                     "check_failed", "stale"}
        assert got[("candles_daily", WINDOW[1], "S07")] == "check_failed"
        assert ("candles_daily", WINDOW[1], "S08") not in got  # the check named S07 only
        assert got[("options_bars", WINDOW[1], "S09")] == got[("options_bars", WINDOW[1], "S10")] == "check_failed"
        assert ("options_snapshot_file", WINDOW[0], "S06") not in got  # evaluated again, passed
        assert got[("options_bars", WINDOW[-1], "S04")] == "failed"  # the run named no scopes
        assert got[("options_bars", WINDOW[-1], "S02")] == "abandoned"  # an exact scope beats it


def test_the_paths_give_the_same_plan(led, monkeypatch):
    plans = {path: _plan(led, path, monkeypatch, symbols=UNIVERSE[:7]).to_dict() for path in PATHS}
    assert all(p == plans["narrow"] for p in plans.values())
