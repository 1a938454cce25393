"""Flow over three hand-built sessions (tests/stages/flow_chains.py): expiries between them, a
new listing, a contract vanishing before its expiry and a missed session. Every figure is worked
out by hand in the comments: ΔOI$ = ΔOI x mark x 100; class threshold max(10, 10 % of the
previous OI), churn volume max(50, 50 % of the previous OI).
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from stages.analytics.flow import compute_flow, compute_flow_window, contract_flow
from tests.stages.flow_chains import (
    MC100,
    MC110,
    MP90,
    MP95,
    W0C100,
    W1C100,
    W1P100,
    A,
    B,
    C,
    M,
    three_sessions,
)


def _rows(table, group_by: str) -> dict[str, dict]:
    out = table.to_pandas()
    return {r["row_key"]: r for r in out[out["group_by"] == group_by].to_dict("records")}


def test_a_to_b_after_a_missed_session():
    a, b, _ = three_sessions()
    per = {r["contract_symbol"]: r for r in contract_flow(b, a).to_dict("records")}
    assert {k: v["status"] for k, v in per.items()} == {
        W0C100: "expired", W1C100: "matched", W1P100: "matched", MC100: "matched", MP95: "matched",
        MP90: "matched", MC110: "new"}
    # W0 C100 expired at A's close: 300 contracts at 0.15 rolled off = $4,500, not flow
    assert per[W0C100]["flow_class"] == "expired" and math.isnan(per[W0C100]["delta_oi"])
    assert per[W0C100]["expired_oi"] == 300 and per[W0C100]["expired_notional"] == pytest.approx(4_500)
    # W1 C100 +200 (threshold 100) building, $8,000; W1 P100 -100 (threshold 80) unwinding, -$2,000
    assert (per[W1C100]["delta_oi"], per[W1C100]["flow_class"]) == (200, "building")
    assert per[W1C100]["delta_oi_notional"] == pytest.approx(8_000)
    assert (per[W1P100]["delta_oi"], per[W1P100]["flow_class"]) == (-100, "unwinding")
    # M C100 +50 < 200; volume 1000 >= max(50, 1000) -> churn, $16,000
    assert (per[MC100]["delta_oi"], per[MC100]["flow_class"]) == (50, "churn")
    # M P95 +5 < 50, volume 20 < 250 -> unknown; M P90 0 -> unknown
    assert (per[MP95]["flow_class"], per[MP90]["flow_class"]) == ("unknown", "unknown")
    # the new listing starts at zero: ΔOI = OI = 150 >= 10 -> building, $7,500
    assert (per[MC110]["oi_prev"], per[MC110]["delta_oi"], per[MC110]["flow_class"]) == (0, 150, "building")
    assert per[MC110]["delta_oi_notional"] == pytest.approx(7_500)

    table = compute_flow(b, a, gap_sessions=2)
    out = table.to_pandas()
    assert set(out["from_date"]) == {A} and set(out["to_date"]) == {B} and set(out["gap_sessions"]) == {2}
    strike = _rows(table, "strike")
    assert sorted(strike) == ["call|100", "call|110", "put|100", "put|90", "put|95"]
    # call 100 = W1 C100 + M C100: +250, $24,000; oi_start 3000 -> threshold 300; volume 1900 >= 1500 -> churn
    r = strike["call|100"]
    assert (r["delta_oi"], r["oi_start"], r["n_pairs"], r["flow_class"]) == (250, 3000, 2, "churn")
    assert r["delta_oi_notional"] == pytest.approx(24_000)
    # the expired W0 C100 at the same strike is not in it
    assert r["n_expired"] == 0 and pd.isna(r["expired_oi"])
    total = _rows(table, "total")
    # calls +200 +50 +150 = +400, $31,500; oi_start 3000 -> building; W0 C100 apart: 1, 300, $4,500
    r = total["call"]
    assert (r["delta_oi"], r["flow_class"], r["n_expired"], r["expired_oi"]) == (400, "building", 1, 300)
    assert r["delta_oi_notional"] == pytest.approx(31_500) and r["expired_notional"] == pytest.approx(4_500)
    # puts -100 +5 +0 = -95, -$1,300; oi_start 1700 -> threshold 170; volume 320 < 850 -> unknown
    r = total["put"]
    assert (r["delta_oi"], r["oi_start"], r["flow_class"], r["n_expired"]) == (-95, 1700, "unknown", 0)
    assert r["delta_oi_notional"] == pytest.approx(-1_300)


def test_b_to_c_after_the_weekly_expiry():
    _, b, c = three_sessions()
    table = compute_flow(c, b, gap_sessions=1)
    contract = {r["contract_symbol"]: r for r in table.to_pandas().query("group_by == 'contract'").to_dict("records")}
    assert {k: (v["status"], v["flow_class"]) for k, v in contract.items()} == {
        W1C100: ("expired", "expired"), W1P100: ("expired", "expired"),
        MP90: ("disappeared", "unknown"),  # gone although M (02-21) has not expired
        MC100: ("matched", "unknown"), MP95: ("matched", "building"), MC110: ("matched", "unknown")}
    # M P90 vanished: its change is unknown (not -400), it keeps its last OI and is not counted as expired
    assert math.isnan(contract[MP90]["delta_oi"]) and contract[MP90]["oi_start"] == 400
    assert contract[MP90]["n_disappeared"] == 1 and contract[MP90]["n_expired"] == 0
    # the weekly's 1200 calls at 0.40 and 700 puts at 0.20 rolled off: $48,000 and $14,000
    assert contract[W1C100]["expired_notional"] == pytest.approx(48_000)
    assert contract[W1P100]["expired_notional"] == pytest.approx(14_000)

    # groups hold live contracts only: no put 100 (expired), no put 90 (vanished), no W1 expiry
    assert sorted(_rows(table, "strike")) == ["call|100", "call|110", "put|95"]
    assert sorted(_rows(table, "expiry")) == ["call|2025-02-21", "put|2025-02-21"]
    assert sorted(_rows(table, "expiry-strike")) == ["call|2025-02-21|100", "call|2025-02-21|110",
                                                      "put|2025-02-21|95"]
    strike = _rows(table, "strike")
    # M C100 -150 (threshold 205), volume 400 < 1025 -> unknown, -$37,500; M P95 +95 >= 50.5 -> building, $15,200
    assert (strike["call|100"]["delta_oi"], strike["call|100"]["flow_class"]) == (-150, "unknown")
    assert strike["call|100"]["delta_oi_notional"] == pytest.approx(-37_500)
    assert (strike["put|95"]["delta_oi"], strike["put|95"]["flow_class"]) == (95, "building")
    expiry = _rows(table, "expiry")
    # calls M: -150 - 10 = -160, -$38,100; oi_start 2200 -> threshold 220; volume 405 < 1100 -> unknown
    r = expiry["call|2025-02-21"]
    assert (r["delta_oi"], r["oi_start"], r["flow_class"]) == (-160, 2200, "unknown")
    assert r["delta_oi_notional"] == pytest.approx(-38_100)
    # puts M: P95 only (P90 vanished): +95, oi_start 505 -> building
    assert (expiry["put|2025-02-21"]["delta_oi"], expiry["put|2025-02-21"]["oi_start"]) == (95, 505)

    total = _rows(table, "total")
    # live calls -$38,100 against $48,000 that expired; puts +$15,200 against $14,000 expired
    assert total["call"]["delta_oi_notional"] == pytest.approx(-38_100)
    assert (total["call"]["n_expired"], total["call"]["expired_oi"]) == (1, 1200)
    assert total["put"]["delta_oi_notional"] == pytest.approx(15_200)
    assert (total["put"]["n_expired"], total["put"]["expired_oi"], total["put"]["n_disappeared"]) == (1, 700, 1)
    assert total["put"]["expired_notional"] == pytest.approx(14_000)
    # no expired or vanished contract is classified as flow
    out = table.to_pandas()
    gone = out["status"].isin(["expired", "disappeared"])
    assert not out.loc[gone, "flow_class"].isin(["building", "unwinding", "churn"]).any()


def test_window_of_two_pairs():
    a, b, c = three_sessions()
    table = compute_flow_window([a, b, c], gap_sessions=[2, 1])
    out = table.to_pandas()
    assert set(out["window_size"]) == {2} and set(out["from_date"]) == {A} and set(out["to_date"]) == {C}
    assert set(out["gap_sessions"]) == {3}
    contract = _rows(table, "contract")
    # M C100: +50 then -150 = -100, $16,000 - $37,500 = -$21,500; oi_start 2000 (A), oi_end 1900 (C);
    # threshold 200; volume 1000 + 400 = 1400 >= 1000 -> churn
    r = contract[f"{MC100}|{M.isoformat()}|call|100"]
    assert (r["delta_oi"], r["oi_start"], r["oi_end"], r["n_pairs"], r["flow_class"]) == (-100, 2000, 1900, 2, "churn")
    assert r["delta_oi_notional"] == pytest.approx(-21_500)
    # strike call 100: W1 C100 +200 (pair 1 only: it expired in pair 2) + M C100 -100 = +100,
    # $8,000 - $21,500 = -$13,500; 3 rows of 2 contracts; oi_start 3000; volume 2300 >= 1500 -> churn
    r = _rows(table, "strike")["call|100"]
    assert (r["delta_oi"], r["n_pairs"], r["n_contracts"], r["oi_start"], r["flow_class"]) == (100, 3, 2, 3000, "churn")
    assert r["delta_oi_notional"] == pytest.approx(-13_500)
    # totals: calls +400 - 160 = +240, $31,500 - $38,100 = -$6,600; expired W0 C100 (300, $4,500)
    # and W1 C100 (1200, $48,000): 2 contracts, 1,500 OI, $52,500
    r = _rows(table, "total")["call"]
    assert (r["delta_oi"], r["n_expired"], r["expired_oi"]) == (240, 2, 1500)
    assert r["delta_oi_notional"] == pytest.approx(-6_600) and r["expired_notional"] == pytest.approx(52_500)


def test_the_briefing_says_which_snapshot_and_what_expired():
    import datetime as dt

    from stages.analytics import SymbolBriefing, build_briefing

    a, b, _ = three_sessions()
    markdown, payload = build_briefing(B, [SymbolBriefing(symbol="XYZ", as_of=B, flow=compute_flow(b, a, gap_sessions=2))],
                                       synthetic=False, generated_at=dt.datetime(2025, 1, 17, 22, tzinfo=dt.UTC))
    assert "### Flow by strike vs 2025-01-15 (2 sessions)" in markdown
    # W0 C100: 300 contracts at 0.15 = $4,500 rolled off, on its own line and in no table
    assert "**Expired** (not flow): 1 contract, open interest 300 rolled off ($4.5k)" in markdown
    tables = markdown.split("### Flow by strike")[1].split("**Expired**")[0]
    assert "| call | 100.00 | +250 |" in tables  # W1 C100 + M C100 only
    flow = payload["symbols"][0]["flow"]
    assert (flow["from_date"], flow["gap_sessions"], flow["expired_contracts"], flow["expired_oi"]) == (
        "2025-01-15", 2, 1, 300)
