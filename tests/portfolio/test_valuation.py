"""Marks, P&L, P&L %, spread %, DTE and Greeks, worked out by hand from a small chain.

The chain (XYZ, spot 100, session 2025-01-03, expiry 2025-02-21 = 49 days):

    call 100  bid 3.40 ask 3.60            -> mark 3.50 (mid)
    call 110  bid 0.90 ask 1.10            -> mark 1.00 (mid)
    call 120  bid 0.30 (no ask, no last)   -> mark 0.30 (bid: the last resort)
    put   95  bid 0 ask 2.10 last 1.90     -> mark 1.90 (last: no two-sided quote)
    put   90  ask 0.80 (no bid, no last)   -> mark 0.80 (ask)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from stages.portfolio.valuation import EXPIRED, MISSING, OK, mark_prices, value_portfolio
from stages.pricing import bs_price
from tests.portfolio.quotes import (
    E0,
    E1,
    EARLIER,
    SESSION,
    SPOT,
    frame,
    multi,
    portfolio,
    row,
    single,
)

CHAIN = [
    row("call", 100, bid=3.40, ask=3.60, last=3.55, delta=0.55, gamma=0.04, theta=-0.03, vega=0.14),
    row("call", 110, bid=0.90, ask=1.10, delta=0.20, gamma=0.03, theta=-0.02, vega=0.10),
    row("call", 120, bid=0.30, delta=0.06, gamma=0.01, theta=-0.01, vega=0.04),
    row("put", 95, bid=0.0, ask=2.10, last=1.90, delta=-0.30, gamma=0.035, theta=-0.025, vega=0.12),
    row("put", 90, ask=0.80, delta=-0.15, gamma=0.02, theta=-0.015, vega=0.08),
]


def value(*positions):
    return value_portfolio(portfolio(*positions), frame(CHAIN), as_of=SESSION, rate=0.04)


def test_the_mark_is_mid_then_last_then_ask_then_bid() -> None:
    mark, source = mark_prices(np.array([1.0, 0.0, 0.0, 0.4, np.nan, 0.0]),
                               np.array([1.2, 2.0, 0.5, 0.0, np.nan, 0.0]),
                               np.array([9.0, 1.9, np.nan, np.nan, np.nan, 0.0]))
    assert mark[:4].tolist() == pytest.approx([1.1, 1.9, 0.5, 0.4])
    assert source.tolist() == ["mid", "last", "ask", "bid", "", ""]
    assert np.isnan(mark[4]) and np.isnan(mark[5])


def test_long_call() -> None:
    # 2 contracts bought at 3.00: paid 600; worth 2 x 100 x 3.50 = 700; P&L +100 = +16.7 %.
    (p,) = value(single("c", "call", 100, 2, 3.00)).positions
    assert (p.status, p.mark, p.cost, p.value) == (OK, pytest.approx(3.50), 600.0, pytest.approx(700.0))
    assert p.pnl == pytest.approx(100.0) and p.pnl_pct == pytest.approx(100 / 600)
    assert p.spread_pct == pytest.approx(0.20 / 3.50)
    assert p.dte == 49
    assert p.delta_shares == pytest.approx(2 * 100 * 0.55)
    assert p.delta_dollars == pytest.approx(2 * 100 * 0.55 * SPOT)
    assert p.gamma_shares == pytest.approx(2 * 100 * 0.04)
    assert p.theta_per_day == pytest.approx(2 * 100 * -0.03)
    assert p.vega_per_vol_point == pytest.approx(2 * 100 * 0.14 / 100)


def test_long_put_marked_at_last() -> None:
    # Paid 2.50 for one put; no two-sided quote, so the mark is the last trade 1.90:
    # worth 190, P&L -60 = -24 %; no spread % without a bid.
    (p,) = value(single("p", "put", 95, 1, 2.50)).positions
    assert p.mark == pytest.approx(1.90) and p.value == pytest.approx(190.0)
    assert p.pnl == pytest.approx(-60.0) and p.pnl_pct == pytest.approx(-0.24)
    assert p.spread_pct is None
    assert p.legs[0]["mark_source"] == "last"
    assert p.delta_shares == pytest.approx(-30.0)


def test_debit_vertical() -> None:
    # +1 C100 (3.50) -1 C110 (1.00): worth 350 - 100 = 250 against a 200 debit: +50 = +25 %.
    (p,) = value(multi("dv", 200.0, ("long", "call", 100, 1), ("short", "call", 110, 1))).positions
    assert p.value == pytest.approx(250.0) and p.mark == pytest.approx(2.50)
    assert p.pnl == pytest.approx(50.0) and p.pnl_pct == pytest.approx(0.25)
    # crossing both spreads (0.20 + 0.20) over gross premium (3.50 + 1.00)
    assert p.spread_pct == pytest.approx(0.40 / 4.50)
    assert p.delta_shares == pytest.approx(100 * (0.55 - 0.20))
    assert p.theta_per_day == pytest.approx(100 * (-0.03 + 0.02))


def test_credit_spread_has_a_negative_debit() -> None:
    # -1 P95 (1.90) +1 P90 (0.80, the ask): worth -190 + 80 = -110. Opened for a 120 credit
    # (net_debit -120): P&L = -110 - (-120) = +10, on the 120 at stake: +8.3 %.
    (p,) = value(multi("cs", -120.0, ("short", "put", 95, 1), ("long", "put", 90, 1))).positions
    assert p.value == pytest.approx(-110.0) and p.mark == pytest.approx(-1.10)
    assert p.pnl == pytest.approx(10.0) and p.pnl_pct == pytest.approx(10 / 120)
    assert p.spread_pct is None  # the 95 put has no bid
    assert p.delta_shares == pytest.approx(100 * (0.30 - 0.15))


def test_iron_condor() -> None:
    # +P90 (0.80) -P95 (1.90) -C110 (1.00) +C120 (0.30, the bid): 80 - 190 - 100 + 30 = -180,
    # opened for a 200 credit: P&L +20 = +10 %.
    (p,) = value(multi("ic", -200.0, ("long", "put", 90, 1), ("short", "put", 95, 1),
                       ("short", "call", 110, 1), ("long", "call", 120, 1))).positions
    assert p.value == pytest.approx(-180.0) and p.mark == pytest.approx(-1.80)
    assert p.pnl == pytest.approx(20.0) and p.pnl_pct == pytest.approx(0.10)
    assert [leg["mark_source"] for leg in p.legs] == ["ask", "last", "mid", "bid"]
    assert p.delta_shares == pytest.approx(100 * (-0.15 + 0.30 - 0.20 + 0.06))
    assert p.status == OK and not p.missing_legs


def test_a_short_single_leg_is_the_one_extension() -> None:
    # Sold one 110 call for 1.60 (received 160); it is worth 1.00: P&L +60 = +37.5 %.
    (p,) = value(single("sc", "call", 110, 1, 1.60, side="short")).positions
    assert p.cost == -160.0 and p.value == pytest.approx(-100.0)
    assert p.pnl == pytest.approx(60.0) and p.pnl_pct == pytest.approx(60 / 160)
    assert p.delta_shares == pytest.approx(-20.0)


def test_a_missing_leg_is_reported_never_valued_at_zero() -> None:
    v = value(multi("ic", -200.0, ("long", "put", 90, 1), ("short", "put", 95, 1),
                    ("short", "call", 110, 1), ("long", "call", 125, 1)),
              single("c", "call", 100, 1, 3.00))
    condor, call = v.positions
    assert condor.status == MISSING
    assert condor.missing_legs == (f"long 1 call 125 {E1.isoformat()}",)
    assert (condor.value, condor.pnl, condor.pnl_pct, condor.mark, condor.delta_shares) == (None,) * 5
    assert condor.legs[3]["status"] == MISSING and condor.legs[3]["mark"] is None
    assert call.status == OK
    assert v.exposure["legs_missing"] == 1
    assert v.exposure["positions_valued"] == 1


def test_an_expired_position_keeps_its_last_mark() -> None:
    # The Jan 2 call expired before the session: its last snapshot (Jan 2) marked it 1.10.
    chain = [*CHAIN, row("call", 100, bid=1.00, ask=1.20, expiry=E0, as_of=EARLIER, delta=0.9)]
    v = value_portfolio(portfolio(single("old", "call", 100, 3, 0.50, expiry=E0)), frame(chain), as_of=SESSION,
                        rate=0.04, spots={"XYZ": SPOT})
    (p,) = v.positions
    assert p.status == EXPIRED and p.expired
    assert p.marks_as_of == (EARLIER,)
    assert p.mark == pytest.approx(1.10) and p.value == pytest.approx(330.0) and p.pnl == pytest.approx(180.0)
    assert p.dte == -1
    assert p.delta_shares == 0.0  # gone: it carries no risk forward
    assert v.exposure["legs_expired"] == 1


def test_the_newest_snapshot_of_a_contract_wins() -> None:
    chain = [row("call", 100, bid=9.0, ask=9.2, as_of=EARLIER), *CHAIN]
    (p,) = value_portfolio(portfolio(single("c", "call", 100, 1, 3.0)), frame(chain), as_of=SESSION,
                           rate=0.04).positions
    assert p.mark == pytest.approx(3.50) and p.marks_as_of == (SESSION,)


# -- Greeks from Black-Scholes where the chain has none, against finite differences --------------
def _price(spot: float = SPOT, days: float = 49, vol: float = 0.25) -> float:
    return float(bs_price(spot, 100.0, days / 365.0, 0.04, vol, True))


def test_greeks_from_the_iv_match_finite_differences_of_the_price() -> None:
    chain = [row("call", 100, bid=3.40, ask=3.60, iv=0.25)]  # no greeks in the chain
    (p,) = value_portfolio(portfolio(single("c", "call", 100, 3, 3.0)), frame(chain), as_of=SESSION,
                           rate=0.04).positions
    leg = p.legs[0]
    assert leg["greeks_source"] == "black_scholes"
    h = 0.01
    delta = (_price(SPOT + h) - _price(SPOT - h)) / (2 * h)
    gamma = (_price(SPOT + h) - 2 * _price() + _price(SPOT - h)) / h**2
    theta = (_price(days=49 - 1e-3) - _price(days=49 + 1e-3)) / 2e-3  # per calendar day passing
    vega = (_price(vol=0.25 + 1e-4) - _price(vol=0.25 - 1e-4)) / 2e-4  # per 1.00 of volatility
    assert leg["delta"] == pytest.approx(delta, rel=1e-5)
    assert leg["gamma"] == pytest.approx(gamma, rel=1e-3)
    assert leg["theta"] == pytest.approx(theta, rel=1e-4) and theta < 0
    assert leg["vega"] == pytest.approx(vega, rel=1e-5)
    assert p.delta_shares == pytest.approx(300 * delta, rel=1e-5)
    assert p.vega_per_vol_point == pytest.approx(3 * vega, rel=1e-5)  # 300 x vega / 100


def test_exposure_totals_sum_the_positions_per_underlying() -> None:
    v = value(single("c", "call", 100, 2, 3.00), multi("cs", -120.0, ("short", "put", 95, 1), ("long", "put", 90, 1)))
    e = v.exposure
    assert e["delta_shares"] == pytest.approx(110.0 + 15.0)
    assert e["delta_dollars"] == pytest.approx(125.0 * SPOT)
    assert e["gamma_shares"] == pytest.approx(2 * 4.0 + (-3.5 + 2.0))
    assert e["gamma_dollars_1pct"] == pytest.approx(e["gamma_shares"] * SPOT**2 * 0.01)
    assert e["theta_per_day"] == pytest.approx(-6.0 + 2.5 - 1.5)
    assert e["vega_per_vol_point"] == pytest.approx(0.28 - 0.12 + 0.08)
    assert [r["symbol"] for r in e["by_symbol"]] == ["XYZ"]
    assert e["positions"] == 2 and e["positions_valued"] == 2 and e["legs"] == 3


def test_dte_is_calendar_days_to_the_nearest_leg() -> None:
    (p,) = value(single("c", "call", 100, 1, 1.0)).positions
    assert p.dte == (E1 - SESSION).days == 49
    assert p.expiry == E1 and isinstance(p.expiry, dt.date)


def test_an_empty_portfolio_values_to_nothing() -> None:
    from stages.portfolio.stress import stress

    v = value_portfolio(portfolio(), frame(CHAIN), as_of=SESSION, rate=0.04)
    assert v.positions == () and v.exposure["positions"] == 0 and v.exposure["delta_shares"] == 0.0
    assert all(s["pnl"] is None for s in stress(v.legs, 0.04))
