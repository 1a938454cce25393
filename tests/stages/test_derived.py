"""Derived metrics on a hand-built chain (conftest.derived_snapshot); arithmetic in the comments.

Chain (spot 100, session 2025-01-03): a same-day expiry E0 (call/put 100, IV 0.90, OI 10 each,
volume 5 each), the near expiry E1 and E2:

    E1 call  95 mark 6.00 iv .22 delta .80 gamma .02 oi 100 vol  10
    E1 call 100 mark 2.50 iv .20 delta .52 gamma .05 oi 400 vol 200
    E1 call 105 mark 0.80 iv .19 delta .26 gamma .04 oi 900 vol 100
    E1 put   95 mark 0.90 iv .25 delta -.24 gamma .04 oi 700 vol 150
    E1 put  100 mark 2.30 iv .22 delta -.47 gamma .05 oi 300 vol 100
    E1 put  105 mark 5.50 iv .21 delta -.75 gamma .02 oi  50 vol   0
    E2 call 100 mark 4.00 iv .23 gamma .03 oi 100 ; E2 put 100 mark 3.80 iv .25 gamma .03 oi 100
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest

from ledger.errors import StageError
from stages.analytics.derived import (
    DERIVED_COLUMNS,
    DERIVED_SCHEMA,
    compute_derived,
    iv_rank,
    percentile_rank,
)
from tests.stages.conftest import SESSION


def _row(table: pa.Table) -> dict:
    assert table.num_rows == 1 and table.schema.equals(DERIVED_SCHEMA)
    return table.to_pylist()[0]


def _history() -> pa.Table:
    return pa.table(
        {
            "symbol": ["XYZ", "XYZ", "XYZ", "XYZ", "XYZ", "XYZ", "ABC"],
            "date": [dt.date(2023, 6, 1), dt.date(2024, 12, 27), dt.date(2024, 12, 30), dt.date(2024, 12, 31),
                     dt.date(2025, 1, 2), SESSION, dt.date(2025, 1, 2)],
            # 0.50 is older than 252 sessions; 0.99 is an earlier run of this very session; ABC is another symbol
            "atm_iv_near": [0.50, 0.18, 0.21, 0.25, 0.30, 0.99, 0.05],
        }
    )


def test_chain_metrics_by_hand(derived_snapshot, candles):
    r = _row(compute_derived(derived_snapshot, candles, None, symbol="XYZ", as_of=SESSION))
    assert r["symbol"] == "XYZ" and r["date"] == SESSION and r["spot"] == 100.0
    # puts OI 700+300+50 (E1) + 100 (E2) + 10 (E0) = 1160; calls 100+400+900 + 100 + 10 = 1510
    assert r["pc_oi"] == pytest.approx(1160 / 1510)
    # puts volume 150+100+0+0+5 = 255; calls 10+200+100+0+5 = 315
    assert r["pc_vol"] == pytest.approx(255 / 315)
    # calls with strike >= 100: OI at 100 = 400+100+10 = 510, at 105 = 900 -> 105
    assert r["call_wall"] == 105.0
    # puts with strike <= 100: OI at 95 = 700, at 100 = 300+100+10 = 410 -> 95
    assert r["put_wall"] == 95.0
    # gamma*OI*100*spot^2*0.01 = gamma*OI*1e4 per row; by strike (E0 greeks are null):
    # 95: .02*100 + .04*700 = 30; 100: .05*400 + .05*300 + .03*100 + .03*100 = 41; 105: .04*900 + .02*50 = 37
    assert r["gamma_peak_strike"] == 100.0
    # near = E1, not the same-day E0 (whose IV 0.90 would otherwise win). ATM strike 100:
    # straddle 2.50 + 2.30 = 4.80 -> 4.8%; ATM IV mean(.20, .22) = .21
    assert r["em_near_pct"] == pytest.approx(0.048)
    assert r["atm_iv_near"] == pytest.approx(0.21)
    # put nearest -0.25 delta: P95 (-.24, iv .25); call nearest +0.25: C105 (.26, iv .19) -> (.25-.19)*100 = 6pp
    assert r["skew_near_pp"] == pytest.approx(6.0)
    # E2 ATM IV mean(.23, .25) = .24; slope .24 - .21 = .03
    assert r["iv_term_slope"] == pytest.approx(0.03)
    # 40 log returns alternating +-0.01; the last 20 have mean 0 and sample variance 20*0.0001/19,
    # so rv_20d = 0.01*sqrt(20/19)*sqrt(252). The 2025-01-06 candle (after the session) is ignored.
    rv20 = 0.01 * math.sqrt(20 / 19) * math.sqrt(252)
    assert r["rv_20d"] == pytest.approx(rv20, rel=1e-9)
    assert r["rv_60d"] is None  # only 40 returns
    assert r["iv_rv_20d"] == pytest.approx(0.21 / rv20)
    # no history: percentile of one value is 100; IV rank needs two values
    assert r["atm_iv_near_percentile"] == 100.0 and r["iv_rank_252d"] is None


def test_percentile_and_iv_rank_by_hand(derived_snapshot, candles):
    r = _row(compute_derived(derived_snapshot, candles, _history(), symbol="XYZ", as_of=SESSION))
    # Percentile over every prior XYZ row (strictly before the session) plus today's 0.21:
    # [0.50, 0.18, 0.21, 0.25, 0.30, 0.21], n = 6; below 0.21: one; equal: two -> average rank 1 + 3/2 = 2.5
    # -> (2.5 - 1)/(6 - 1)*100 = 30
    assert r["atm_iv_near_percentile"] == pytest.approx(30.0)
    # IV rank over the last 252 sessions (2023-06-01 is outside): [0.18, 0.21, 0.25, 0.30, 0.21]
    # -> (0.21 - 0.18)/(0.30 - 0.18)*100 = 25
    assert r["iv_rank_252d"] == pytest.approx(25.0)


def test_helpers():
    assert percentile_rank(np.array([1.0, 2.0]), 3.0) == 100.0
    assert percentile_rank(np.array([]), 3.0) == 100.0
    assert iv_rank(np.array([0.2, 0.2]), 0.2) is None  # flat: undefined


def test_empty_or_misdated_snapshot_is_an_error(derived_snapshot):
    with pytest.raises(StageError, match="empty"):
        compute_derived(derived_snapshot.slice(0, 0), None, None, symbol="XYZ", as_of=SESSION)
    with pytest.raises(StageError, match="not 2025-01-06"):
        compute_derived(derived_snapshot, None, None, symbol="XYZ", as_of=dt.date(2025, 1, 6))


def test_columns_are_the_originals_plus_iv_rank():
    assert DERIVED_COLUMNS[:14] == (
        "spot", "pc_oi", "pc_vol", "call_wall", "put_wall", "gamma_peak_strike", "atm_iv_near", "em_near_pct",
        "skew_near_pp", "rv_20d", "rv_60d", "iv_rv_20d", "atm_iv_near_percentile", "iv_term_slope",
    )
    assert DERIVED_COLUMNS[14] == "iv_rank_252d"
