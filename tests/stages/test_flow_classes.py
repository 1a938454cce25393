"""The classification thresholds pinned at their boundaries (reference 2.4):

    building   ΔOI >=  max(10, 10 % of the previous OI)
    unwinding  ΔOI <= -max(10, 10 % of the previous OI)
    churn      otherwise, volume >= max(50, 50 % of the previous OI)
    unknown    otherwise

Each case sits exactly at, just above or just below a threshold, on both sides of where the floor
(10, 50) gives way to the percentage, so that changing any constant fails a case. They are
checked on ``classify_flow`` and through ``contract_flow`` (a pair of one-contract snapshots)."""

from __future__ import annotations

import numpy as np
import pytest

from stages.analytics.flow import classify_flow, contract_flow
from tests.stages.conftest import E1, PREV_DAY, SESSION, snapshot

CASES = [
    # oi_prev, ΔOI, volume, class
    # -- the OI floor of 10 (10 % of 50 is 5): at, above, below, both signs
    (50, 10, 0, "building"), (50, 11, 0, "building"), (50, 9, 0, "unknown"),
    (50, -10, 0, "unwinding"), (50, -11, 0, "unwinding"), (50, -9, 0, "unknown"),
    # -- 10 % of the previous OI: 300 -> 30
    (300, 30, 0, "building"), (300, 31, 0, "building"), (300, 29, 0, "unknown"),
    (300, -30, 0, "unwinding"), (300, -31, 0, "unwinding"), (300, -29, 0, "unknown"),
    # -- 10 % of 1000 = 100 (a factor of 0.11 or 0.09 moves these)
    (1000, 100, 0, "building"), (1000, 99, 0, "unknown"), (1000, -100, 0, "unwinding"), (1000, -99, 0, "unknown"),
    # -- where the floor meets the percentage: 10 % of 100 = 10
    (100, 10, 0, "building"), (100, 9, 0, "unknown"),
    # -- a new listing (previous OI 0): the floor
    (0, 10, 0, "building"), (0, 9, 0, "unknown"),
    # -- the volume floor of 50 (50 % of 60 is 30)
    (60, 0, 50, "churn"), (60, 0, 51, "churn"), (60, 0, 49, "unknown"),
    # -- 50 % of the previous OI: 300 -> 150 (a factor of 0.75 gives 225; 0.45 gives 135)
    (300, 0, 150, "churn"), (300, 0, 151, "churn"), (300, 0, 149, "unknown"),
    (300, 5, 150, "churn"), (300, -5, 149, "unknown"),
    # -- 50 % of 1000 = 500
    (1000, 20, 500, "churn"), (1000, 20, 499, "unknown"),
    # -- where the floor meets the percentage: 50 % of 100 = 50
    (100, 0, 50, "churn"), (100, 0, 49, "unknown"),
    # -- a building or unwinding ΔOI wins over any volume
    (300, 30, 10_000, "building"), (300, -30, 10_000, "unwinding"),
]


@pytest.mark.parametrize(("oi_prev", "delta_oi", "volume", "expected"), CASES)
def test_classify_at_the_boundaries(oi_prev, delta_oi, volume, expected):
    got = classify_flow(np.array([float(delta_oi)]), np.array([float(oi_prev)]), np.array([float(volume)]))
    assert got[0] == expected


@pytest.mark.parametrize(("oi_prev", "delta_oi", "volume", "expected"), CASES)
def test_contract_flow_at_the_boundaries(oi_prev, delta_oi, volume, expected):
    def chain(oi, vol, day, spot):
        return snapshot([dict(expiry=E1, option_type="call", strike=100.0, bid=1.0, ask=1.2, last=1.1,
                              volume=vol, open_interest=oi)], spot=spot, as_of=day)

    if oi_prev == 0:  # a new listing: nothing the day before but another contract
        previous = snapshot([dict(expiry=E1, option_type="put", strike=90.0, bid=1.0, ask=1.2, last=1.1,
                                  volume=0, open_interest=5)], spot=99.0, as_of=PREV_DAY)
    else:
        previous = chain(oi_prev, 0, PREV_DAY, 99.0)
    row = contract_flow(chain(oi_prev + delta_oi, volume, SESSION, 100.0), previous).set_index("strike").loc[100.0]
    assert row["delta_oi"] == delta_oi and row["flow_class"] == expected


def test_unknown_change_is_unknown_whatever_the_volume():
    got = classify_flow(np.array([np.nan]), np.array([300.0]), np.array([10_000.0]))
    assert got[0] == "unknown"
