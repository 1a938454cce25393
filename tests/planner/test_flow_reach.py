"""The planner's rule for a missed session (docs/gaps.md, docs/flow.md): flow for a session compares
with the latest earlier snapshot within ``flow_max_gap_sessions``, so a flow cell whose previous
session's snapshot can never be taken (a live-only chain, a past session) is computable when an
earlier snapshot within the reach exists, and unrecoverable when none does."""

from __future__ import annotations

import datetime as dt

from ledger.planner import plan_gaps
from stages.planning import planner_graph
from stages.providers.base import DATASETS, OPTION_CHAIN, ProviderCapabilities
from tests.planner.helpers import CAL, fill, memory_ledger

WINDOW = CAL.sessions_in_range(dt.date(2026, 11, 16), dt.date(2026, 11, 20))  # Mon..Fri
ALL_DAYS = [CAL.previous_session(WINDOW[0]), *WINDOW]
SYMS = ("AAPL", "MSFT")
LIVE_ONLY = ProviderCapabilities(historical=frozenset(DATASETS) - {OPTION_CHAIN}, live=frozenset(DATASETS))


def _reasons(led, reach: int) -> dict[tuple[str, dt.date, str], str]:
    with led.reader() as con:
        p = plan_gaps(con, graph=planner_graph(LIVE_ONLY, max_gap_sessions=reach), symbols=SYMS, start=WINDOW[0],
                      end=WINDOW[-1], calendar=CAL, unrecoverable={"options_snapshot_file": WINDOW[-1]})
    out = {}
    for r in p.ranges:
        i = p.session_days.index(r.start)
        for d in p.session_days[i : i + r.sessions]:
            out[(r.asset_key, d, r.scope_key)] = r.reason
    return out


def test_a_missed_session_leaves_the_next_flow_computable():
    # AAPL's snapshot of Tuesday was missed (a laptop asleep) and can never be taken; Wednesday's
    # flow was not computed. Monday's snapshot is one session further back.
    tue, wed = WINDOW[1], WINDOW[2]
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=SYMS, holes={("options_snapshot_file", tue, "AAPL"), ("options_flow", tue, "AAPL"),
                                           ("options_flow", wed, "AAPL"), ("derived_metrics", tue, "AAPL"),
                                           ("derived_metrics", wed, "AAPL")})
    got = _reasons(led, reach=5)
    assert got[("options_snapshot_file", tue, "AAPL")] == "unrecoverable"
    assert got[("options_flow", tue, "AAPL")] == "unrecoverable"  # its own session's snapshot is gone
    assert got[("options_flow", wed, "AAPL")] == "missing"  # vs Monday's snapshot: computable
    assert got[("derived_metrics", wed, "AAPL")] == "upstream_missing"  # after the flow, not never
    assert not any(k[2] == "MSFT" for k in got)
    # with no reach (the previous session only) the same cell cannot be produced
    one = _reasons(led, reach=1)
    assert one[("options_flow", wed, "AAPL")] == "unrecoverable"
    assert one[("derived_metrics", wed, "AAPL")] == "unrecoverable"


def test_nothing_within_the_reach_is_unrecoverable_and_a_recorded_skip_is_no_gap():
    mon, tue, wed = WINDOW[0], WINDOW[1], WINDOW[2]
    led = memory_ledger()
    fill(led, ALL_DAYS, symbols=SYMS, holes={("options_snapshot_file", mon, "AAPL"), ("options_snapshot_file", tue, "AAPL"),
                                           ("options_flow", mon, "AAPL"), ("options_flow", tue, "AAPL"),
                                           ("options_flow", wed, "AAPL")})
    # reach 2 from Wednesday: Tuesday (blocked) and Monday (blocked): nothing to compare with
    assert _reasons(led, reach=2)[("options_flow", wed, "AAPL")] == "unrecoverable"
    # reach 3 gets to the lookback session (Friday before), which is there
    assert _reasons(led, reach=3)[("options_flow", wed, "AAPL")] == "missing"
    # the job records the skip (no snapshot within the limit): then the cell is settled, not a gap
    from tests.planner.helpers import materialize

    materialize(led, "options_flow", wed, ["AAPL"], status="skipped")
    assert ("options_flow", wed, "AAPL") not in _reasons(led, reach=2)
