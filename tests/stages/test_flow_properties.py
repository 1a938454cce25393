"""Flow on the synthetic market, as properties: for any symbol, session and gap (a missed session
or two), with some contracts dropped from the later chain (a provider gap), every grouped row's
ΔOI is the sum of its live contracts' ΔOI, and no expired or vanished contract is flow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledger.calendar import TradingCalendar
from stages.analytics.flow import FLOW_GROUP_BYS, LIVE_STATUSES, compute_flow
from stages.analytics.snapshot import enrich_chain
from stages.providers.synthetic import SyntheticProvider

CAL = TradingCalendar.xnys()
SESSIONS = CAL.sessions_in_range(pd.Timestamp("2025-06-02").date(), pd.Timestamp("2026-11-30").date())
PROVIDER = SyntheticProvider()
KEYS = {"strike": ["option_type", "strike"], "expiry": ["option_type", "expiry"],
        "expiry-strike": ["option_type", "expiry", "strike"], "total": ["option_type"]}


def _snapshot(symbol: str, day) -> pa.Table:
    snap = PROVIDER.option_chain(symbol, day)
    return enrich_chain(snap.table, snap.spot, day, 0.04)


@example(symbol="SPY", index=SESSIONS.index(pd.Timestamp("2026-11-23").date()), gap=1, drop=0.0, seed=0)  # the monthly
@example(symbol="SPY", index=3, gap=2, drop=0.001953125, seed=1889)  # the dropped contract is a new listing
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(symbol=st.sampled_from(["SPY", "IWM", "AAPL", "TSLA"]), index=st.integers(3, len(SESSIONS) - 1),
       gap=st.integers(1, 3), drop=st.floats(0.0, 0.05), seed=st.integers(0, 2**16))
def test_grouped_rows_are_sums_of_live_contracts_and_expiries_are_not_flow(symbol, index, gap, drop, seed):
    later_day, earlier_day = SESSIONS[index], SESSIONS[index - gap]
    earlier, later = _snapshot(symbol, earlier_day), _snapshot(symbol, later_day)
    later_all = later
    keep = np.random.default_rng(seed).random(later.num_rows) >= drop  # a provider gap drops some contracts
    later = later.filter(pa.array(keep))
    out = compute_flow(later, earlier, symbol=symbol, gap_sessions=gap).to_pandas()
    assert set(out["group_by"]) == set(FLOW_GROUP_BYS) and set(out["gap_sessions"]) == {gap}

    contracts = out[out["group_by"] == "contract"]
    live = contracts[contracts["status"].isin(LIVE_STATUSES)]
    gone = contracts[~contracts["status"].isin(LIVE_STATUSES)]
    # an expired contract's expiry is before the later session; a vanished one's is not
    expired = gone[gone["status"] == "expired"]
    assert (pd.to_datetime(expired["expiry"]).dt.date < later_day).all()
    assert (pd.to_datetime(gone.loc[gone["status"] == "disappeared", "expiry"]).dt.date >= later_day).all()
    # no contract that is gone is classified as flow, and none carries a change
    assert not out.loc[out["status"].isin(["expired", "disappeared"]), "flow_class"].isin(
        ["building", "unwinding", "churn"]).any()
    assert (expired["flow_class"] == "expired").all() and gone["delta_oi"].isna().all()
    # every contract of the earlier chain past its expiry by the later session expired
    past = pd.to_datetime(earlier.column("expiry").to_pandas()).dt.date < later_day
    assert len(expired) == int(past.sum())
    # a dropped contract that the earlier chain held (and that has not expired) vanished; a dropped
    # new listing leaves no trace
    dropped = set(pc.filter(later_all.column("contract_symbol"), pa.array(~keep)).to_pylist())
    held = set(earlier.column("contract_symbol").to_pylist())
    assert set(gone.loc[gone["status"] == "disappeared", "contract_symbol"]) == dropped & held

    for group_by, keys in KEYS.items():
        rows = out[out["group_by"] == group_by].set_index(keys)["delta_oi"]
        want = live.groupby(keys)["delta_oi"].sum(min_count=1)
        if group_by != "total":  # groups are made of live contracts only
            assert sorted(rows.index) == sorted(want.index)
        np.testing.assert_allclose(rows.reindex(want.index).to_numpy(float), want.to_numpy(float), equal_nan=True)
        grouped = out[out["group_by"] == group_by]
        if group_by != "total":
            assert (grouped["n_expired"] == 0).all() and (grouped["n_disappeared"] == 0).all()
    totals = out[out["group_by"] == "total"]
    assert totals["n_expired"].sum() == len(expired)
    assert totals["expired_oi"].sum() == expired["oi_start"].sum()
