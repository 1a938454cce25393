"""Flow on a hand-built pair of sessions; every expected figure is worked out in the comments.

Formulas: mark = mid if bid>0 & ask>0, else last>0, else ask>0, else bid>0.
delta_oi_notional = dOI*mark*100; volume_notional = volume*mark*100; delta_notional = dOI*delta*spot*100
(spot = this session's, 100). Class: threshold = max(10, 0.1*oi_prev): building if dOI >= threshold,
unwinding if dOI <= -threshold; else churn if volume >= max(50, 0.5*oi_prev); else unknown.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ledger.errors import StageError
from stages.analytics.flow import (
    FLOW_PARTITION_COLUMNS,
    FLOW_SCHEMA,
    compute_flow,
    compute_flow_window,
    contract_flow,
    row_keys,
)
from tests.stages.conftest import E0, E1, E2, PREV_DAY, SESSION, occ, snapshot


def _by_symbol(frame: pd.DataFrame) -> dict[str, dict]:
    return {r["contract_symbol"]: r for r in frame.to_dict("records")}


def test_contract_flow_by_hand(flow_sessions):
    previous, current = flow_sessions
    rows = _by_symbol(contract_flow(current, previous))
    assert len(rows) == 8  # 6 in both + 1 expired + 1 new

    # C100 E1: dOI = 1150-1000 = +150; mark = (2.40+2.60)/2 = 2.50; threshold max(10, 100) = 100 -> building
    r = rows[occ(E1, "call", 100)]
    assert r["status"] == "matched" and r["delta_oi"] == 150
    assert r["delta_oi_notional"] == pytest.approx(150 * 2.50 * 100)  # 37,500
    assert r["volume_notional"] == pytest.approx(300 * 2.50 * 100)  # 75,000
    assert r["delta_notional"] == pytest.approx(150 * 0.52 * 100 * 100)  # 780,000
    assert r["flow_class"] == "building"

    # P100 E1: dOI = 480-500 = -20 (threshold 50: neither); volume 400 >= max(50, 250) -> churn
    r = rows[occ(E1, "put", 100)]
    assert r["delta_oi"] == -20 and r["mark"] == pytest.approx(1.60)
    assert r["delta_oi_notional"] == pytest.approx(-3_200)  # -20*1.60*100
    assert r["volume_notional"] == pytest.approx(64_000)  # 400*1.60*100
    assert r["delta_notional"] == pytest.approx(96_000)  # -20*-0.48*100*100
    assert r["flow_class"] == "churn"

    # C105 E1: bid 0 -> no mid; last 0 -> mark = ask 0.70. dOI = -50 <= -max(10, 20) -> unwinding
    r = rows[occ(E1, "call", 105)]
    assert r["mark"] == pytest.approx(0.70)
    assert r["delta_oi_notional"] == pytest.approx(-3_500)  # -50*0.70*100
    assert r["delta_notional"] == pytest.approx(-150_000)  # -50*0.30*100*100
    assert r["flow_class"] == "unwinding"

    # P95 E1: ask 0 -> mark = last 0.35. dOI = +5 < 30; volume 30 < 150 -> unknown
    r = rows[occ(E1, "put", 95)]
    assert r["mark"] == pytest.approx(0.35)
    assert r["delta_oi_notional"] == pytest.approx(175)  # 5*0.35*100
    assert r["flow_class"] == "unknown"

    # E2 put: bid only -> mark = bid 3.00; dOI 0
    r = rows[occ(E2, "put", 100)]
    assert r["mark"] == pytest.approx(3.00) and r["delta_oi"] == 0 and r["flow_class"] == "unknown"

    # C100 E0 expired on 2025-01-02, before this session: its 80 contracts rolled off, which is not
    # flow (no dOI, no notionals, class expired); what rolled off is kept apart, at its last mark
    # (last 0.05): 80*0.05*100 = 400.
    r = rows[occ(E0, "call", 100)]
    assert r["status"] == "expired" and r["flow_class"] == "expired"
    assert r["oi_prev"] == 80 and r["oi"] == 0 and math.isnan(r["delta_oi"])
    assert math.isnan(r["delta_oi_notional"]) and math.isnan(r["delta_notional"]) and math.isnan(r["volume_notional"])
    assert r["expired_oi"] == 80 and r["expired_notional"] == pytest.approx(400)
    assert rows[occ(E1, "call", 100)]["expired_oi"] != rows[occ(E1, "call", 100)]["expired_oi"]  # NaN for live ones

    # The new C110 listing: oi_prev 0, dOI = +60 >= 10 -> building; mark (0.20+0.30)/2 = 0.25
    r = rows[occ(E1, "call", 110)]
    assert r["status"] == "new" and r["oi_prev"] == 0 and r["delta_oi"] == 60
    assert r["delta_oi_notional"] == pytest.approx(1_500)  # 60*0.25*100
    assert r["delta_notional"] == pytest.approx(60_000)  # 60*0.10*100*100
    assert r["flow_class"] == "building"

    # P90: today's open interest is missing -> dOI unknown, not a fake -50
    r = rows[occ(E1, "put", 90)]
    assert r["status"] == "matched" and math.isnan(r["delta_oi"]) and r["flow_class"] == "unknown"


def test_aggregated_rows_by_hand(flow_sessions):
    previous, current = flow_sessions
    table = compute_flow(current, previous)
    assert table.schema.equals(FLOW_SCHEMA)
    out = table.to_pandas()
    assert set(out["symbol"]) == {"XYZ"} and set(out["window_size"]) == {1}
    assert set(out["from_date"]) == {PREV_DAY} and set(out["to_date"]) == {SESSION} and set(out["as_of"]) == {SESSION}
    counts = out.groupby("group_by").size().to_dict()
    # 8 contracts; strikes: call 100/105/110, put 90/95/100; expiries: call E0/E1, put E1/E2;
    # expiry-strike: call E0-100, E1-100/105/110, put E1-90/95/100, E2-100
    # the expired C100 E0 is in no grouped row: strikes call 100/105/110, put 90/95/100; expiries
    # call E1, put E1/E2; expiry-strike call E1-100/105/110, put E1-90/95/100, E2-100; totals call, put
    assert counts == {"contract": 8, "strike": 6, "expiry": 3, "expiry-strike": 7, "total": 2}
    keyed = out.set_index(["group_by", "row_key"])
    assert ("expiry", "call|2025-01-02") not in keyed.index

    # strike call|100 = C100 E1 only (the expired C100 E0 rolled off)
    r = keyed.loc[("strike", "call|100")]
    assert r["delta_oi"] == 150 and r["delta_oi_notional"] == pytest.approx(37_500)
    assert r["volume_notional"] == pytest.approx(75_000) and r["delta_notional"] == pytest.approx(780_000)
    assert r["n_pairs"] == 1 and r["n_contracts"] == 1 and r["n_expired"] == 0 and r["status"] == "matched"
    # oi_start 1000 -> threshold 100 <= 150 -> building (before: 70 against 108, unknown)
    assert r["oi_start"] == 1000 and r["flow_class"] == "building"

    # strike put|100 = P100 E1 + P100 E2: dOI -20 + 0; oi_start 510 -> threshold 51; volume 400 >= 255 -> churn
    r = keyed.loc[("strike", "put|100")]
    assert r["delta_oi"] == -20 and r["volume_notional"] == pytest.approx(64_000) and r["flow_class"] == "churn"

    # expiry call|2025-01-17 = C100 + C105 + C110: dOI 150 - 50 + 60 = 160; oi_start 1000+200+0 = 1200
    # -> threshold 120 <= 160 -> building; notional 37,500 - 3,500 + 1,500 = 35,500
    r = keyed.loc[("expiry", "call|2025-01-17")]
    assert r["delta_oi"] == 160 and r["delta_oi_notional"] == pytest.approx(35_500)
    assert r["n_pairs"] == 3 and r["n_new"] == 1 and r["flow_class"] == "building"

    # the put at 90 has no known dOI: sums stay null rather than 0
    r = keyed.loc[("strike", "put|90")]
    assert pd.isna(r["delta_oi"]) and pd.isna(r["delta_oi_notional"]) and r["flow_class"] == "unknown"

    # totals per type: calls = C100 E1 + C105 + C110 (new) = +150 - 50 + 60 = +160 contracts,
    # 37,500 - 3,500 + 1,500 = $35,500; oi_start 1200 (live only) -> threshold 120 -> building;
    # the expired C100 E0 apart: 1 contract, 80 OI, $400
    r = keyed.loc[("total", "call")]
    assert r["delta_oi"] == 160 and r["delta_oi_notional"] == pytest.approx(35_500) and r["oi_start"] == 1200
    assert r["n_pairs"] == 4 and r["n_new"] == 1 and r["n_expired"] == 1 and r["flow_class"] == "building"
    assert r["expired_oi"] == 80 and r["expired_notional"] == pytest.approx(400) and r["status"] == "mixed"
    # puts: -20 + 5 + 0 (P90 unknown) = -15; -3,200 + 175 + 0 = -3,025; oi_start 500+300+50+10 = 860
    # -> threshold 86 > 15; volume 400+30+0+0 = 430 >= max(50, 0.5*860 = 430) -> churn (at the boundary)
    r = keyed.loc[("total", "put")]
    assert r["delta_oi"] == -15 and r["delta_oi_notional"] == pytest.approx(-3_025) and r["oi_start"] == 860
    assert r["volume"] == 430 and r["flow_class"] == "churn" and r["n_expired"] == 0 and pd.isna(r["expired_oi"])
    assert set(out["gap_sessions"]) == {1}  # Thursday -> Friday

    # row keys follow the original: contract_symbol|expiry|option_type|strike, strike trimmed
    assert (("contract", f"{occ(E1, 'call', 105)}|2025-01-17|call|105") in keyed.index)
    assert ("expiry-strike", "put|2025-02-21|100") in keyed.index
    # unique within each partition
    assert not out.duplicated([*FLOW_PARTITION_COLUMNS, "row_key"]).any()


def test_strike_and_contract_rows_agree_with_contract_flow(flow_sessions):
    previous, current = flow_sessions
    per_contract = contract_flow(current, previous)
    out = compute_flow(current, previous).to_pandas()
    contract_rows = out[out["group_by"] == "contract"].set_index("contract_symbol")
    ref = per_contract.set_index("contract_symbol")
    np.testing.assert_allclose(
        contract_rows.loc[ref.index, "delta_oi_notional"].to_numpy(float), ref["delta_oi_notional"].to_numpy(float)
    )
    assert (contract_rows.loc[ref.index, "flow_class"] == ref["flow_class"]).all()


def test_window_of_two_pairs_nets_the_pairs(flow_sessions):
    previous, current = flow_sessions
    # A third session, 2025-01-06, where C100 E1 goes to 1200 (another +50).
    later = current.to_pandas()
    later["as_of"] = pd.Timestamp("2025-01-06").date()
    later.loc[later["contract_symbol"] == occ(E1, "call", 100), "open_interest"] = 1200
    out = compute_flow_window([previous, current, later]).to_pandas()  # a pandas frame is accepted too
    r = out[(out["group_by"] == "contract") & (out["contract_symbol"] == occ(E1, "call", 100))].iloc[0]
    assert r["window_size"] == 2 and r["n_pairs"] == 2
    assert r["delta_oi"] == 200  # +150 then +50
    assert r["oi_start"] == 1000 and r["oi_end"] == 1200


def test_row_keys_fallback_and_repeats():
    rows = pd.DataFrame({"option_type": [None, None, "call", "call"], "strike": [np.nan, np.nan, 100.5, 100.5]})
    keys = row_keys(rows, "strike")
    assert list(keys) == ["row-000000", "row-000001", "call|100.5", "call|100.5|1"]


def test_rejects_bad_pairs(flow_sessions):
    previous, current = flow_sessions
    with pytest.raises(StageError, match="before"):
        contract_flow(previous, current)
    with pytest.raises(StageError, match="empty"):
        contract_flow(current, previous.slice(0, 0))
    doubled = snapshot(current.to_pylist() * 2, spot=100.0, as_of=SESSION)
    with pytest.raises(StageError, match="repeats"):
        contract_flow(doubled, previous)
