"""Snapshot enrichment: IV inference, its source tag, greeks, order and schema."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from ledger.errors import StageError
from stages.analytics.snapshot import SNAPSHOT_SCHEMA, enrich_chain
from tests.stages.conftest import E0_SAME_DAY, E1, E2, SESSION, occ

RATE = 0.04
SPOT = 100.0


def _bs_price(spot: float, strike: float, t: float, rate: float, vol: float, call: bool) -> float:
    """Textbook Black-Scholes with math.erf, independent of stages.pricing."""
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    n = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    if call:
        return spot * n(d1) - strike * math.exp(-rate * t) * n(d2)
    return strike * math.exp(-rate * t) * n(-d2) - spot * n(-d1)


def _chain() -> pa.Table:
    rows = [
        # (expiry, type, strike, bid, ask, last, volume, oi, provider iv, provider delta)
        (E2, "call", 105, 1.10, 1.30, 1.20, 5, 100, None, None),  # mid 1.20 -> inferred
        (E1, "put", 95, 0.60, 0.70, 0.65, 0, 300, 0.0, None),  # IV 0 counts as missing -> inferred from mid
        (E1, "call", 100, 2.40, 2.60, 2.45, 10, 400, 0.21, 0.55),  # provider IV and delta kept
        (E1, "call", 110, 0.0, 0.0, 0.15, 12, 50, None, None),  # no quote, traded: inferred from last
        (E1, "put", 90, 0.0, 0.0, 0.10, 0, 20, None, None),  # no quote, no volume: missing
        (E0_SAME_DAY, "call", 100, 0.40, 0.60, 0.5, 100, 10, 0.5, 0.5),  # DTE 0: greeks null
    ]
    return pa.table(
        {
            "contract_symbol": [occ(e, k, s) for e, k, s, *_ in rows],
            "underlying": ["xyz"] * len(rows),
            "expiry": [r[0] for r in rows],
            "option_type": [r[1].upper() for r in rows],  # the provider's casing is normalised
            "strike": [float(r[2]) for r in rows],
            "bid": [r[3] for r in rows],
            "ask": [r[4] for r in rows],
            "last": [r[5] for r in rows],
            "volume": [r[6] for r in rows],
            "open_interest": [r[7] for r in rows],
            "implied_volatility": pa.array([r[8] for r in rows], pa.float64()),
            "delta": pa.array([r[9] for r in rows], pa.float64()),
            "gamma": pa.array([None] * len(rows), pa.float64()),
            "theta": pa.array([None] * len(rows), pa.float64()),
            "vega": pa.array([None] * len(rows), pa.float64()),
            "quote_time": pa.array([None] * len(rows), pa.timestamp("s", tz="UTC")),
        }
    )


def test_schema_order_and_sources():
    out = enrich_chain(_chain(), SPOT, SESSION, RATE)
    assert out.schema.equals(SNAPSHOT_SCHEMA)
    rows = out.to_pylist()
    # ordered by (expiry, strike, option_type)
    assert [(r["expiry"], r["strike"], r["option_type"]) for r in rows] == sorted(
        (r["expiry"], r["strike"], r["option_type"]) for r in rows
    )
    by = {(r["expiry"], r["option_type"], r["strike"]): r for r in rows}
    assert by[(E2, "call", 105.0)]["iv_source"] == "bs_inferred"
    assert by[(E1, "put", 95.0)]["iv_source"] == "bs_inferred"
    assert by[(E1, "call", 100.0)]["iv_source"] == "provider" and by[(E1, "call", 100.0)]["implied_volatility"] == 0.21
    assert by[(E1, "call", 100.0)]["delta"] == 0.55  # the source's delta is kept
    assert by[(E1, "call", 110.0)]["iv_source"] == "bs_inferred"
    assert by[(E1, "put", 90.0)]["iv_source"] == "missing" and by[(E1, "put", 90.0)]["implied_volatility"] is None
    assert by[(E1, "put", 90.0)]["delta"] is None  # no IV, no model greeks
    same_day = by[(E0_SAME_DAY, "call", 100.0)]
    assert all(same_day[g] is None for g in ("delta", "gamma", "theta", "vega"))
    assert {r["underlying"] for r in rows} == {"XYZ"} and {r["spot"] for r in rows} == {SPOT}
    assert {r["as_of"] for r in rows} == {SESSION}


def test_inferred_iv_reprices_the_mid_independently():
    out = enrich_chain(_chain(), SPOT, SESSION, RATE).to_pylist()
    inferred = [r for r in out if r["iv_source"] == "bs_inferred"]
    assert len(inferred) == 3
    for r in inferred:
        t = (r["expiry"] - SESSION).days / 365.0
        target = (r["bid"] + r["ask"]) / 2 if r["bid"] > 0 and r["ask"] > 0 else r["last"]
        price = _bs_price(SPOT, r["strike"], t, RATE, r["implied_volatility"], r["option_type"] == "call")
        assert price == pytest.approx(target, abs=1e-4), r["contract_symbol"]


def test_model_greeks_are_filled_and_sane():
    out = enrich_chain(_chain(), SPOT, SESSION, RATE).to_pylist()
    call = next(r for r in out if r["expiry"] == E2)
    # A finite-difference delta of the independent price at the inferred IV matches.
    t = (E2 - SESSION).days / 365.0
    h = 0.01
    fd = (_bs_price(SPOT + h, 105, t, RATE, call["implied_volatility"], True)
          - _bs_price(SPOT - h, 105, t, RATE, call["implied_volatility"], True)) / (2 * h)
    assert call["delta"] == pytest.approx(fd, rel=1e-5)
    assert call["gamma"] > 0 and call["vega"] > 0 and call["theta"] < 0


def test_rejects_bad_input():
    with pytest.raises(StageError, match="spot"):
        enrich_chain(_chain(), 0.0, SESSION, RATE)
    with pytest.raises(StageError, match="missing column"):
        enrich_chain(_chain().drop_columns(["strike"]), SPOT, SESSION, RATE)
    bad = _chain().set_column(3, "option_type", pa.array(["X"] * 6))
    with pytest.raises(StageError, match="call/put"):
        enrich_chain(bad, SPOT, SESSION, RATE)


def test_deterministic():
    a = enrich_chain(_chain(), SPOT, SESSION, RATE)
    b = enrich_chain(_chain().take(np.arange(6)[::-1]), SPOT, SESSION, RATE)
    assert a.equals(b)
