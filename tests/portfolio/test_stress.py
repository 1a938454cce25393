"""Stress by full repricing, checked against a Black-Scholes written here independently
(scalar, with math.erf) and a loop over every scenario and leg."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest

from stages.portfolio.stress import stress
from stages.portfolio.valuation import value_portfolio
from tests.portfolio.quotes import E1, SESSION, SPOT, frame, multi, portfolio, row, single

RATE = 0.04


def _n(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def reference_price(kind: str, spot: float, strike: float, days: float, vol: float) -> float:
    if days <= 0:
        return max(spot - strike, 0.0) if kind == "call" else max(strike - spot, 0.0)
    t = days / 365.0
    d1 = (math.log(spot / strike) + (RATE + vol * vol / 2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    if kind == "call":
        return spot * _n(d1) - strike * math.exp(-RATE * t) * _n(d2)
    return strike * math.exp(-RATE * t) * _n(-d2) - spot * _n(-d1)


# (kind, strike, signed contracts, iv, days to expiry)
LEGS = [("call", 100, 2, 0.25, 49), ("put", 95, -1, 0.30, 49), ("put", 90, 1, 0.33, 49),
        ("call", 110, -1, 0.22, 49), ("call", 120, 1, 0.21, 49), ("put", 100, 1, 0.40, 5)]


def reference_pnl(spot_pct: float, vol_points: float, days: int) -> float:
    total = 0.0
    for kind, strike, n, iv, dte in LEGS:
        base = reference_price(kind, SPOT, strike, dte, iv)
        shocked = reference_price(kind, SPOT * (1 + spot_pct), strike, dte - days, max(iv + vol_points / 100, 1e-4))
        total += n * 100 * (shocked - base)
    return total


def _valuation():
    near = SESSION + dt.timedelta(days=5)
    chain = [row("call", 100, bid=3.4, ask=3.6, iv=0.25), row("put", 95, bid=1.8, ask=2.0, iv=0.30),
             row("put", 90, bid=0.7, ask=0.9, iv=0.33), row("call", 110, bid=0.9, ask=1.1, iv=0.22),
             row("call", 120, bid=0.2, ask=0.4, iv=0.21), row("put", 100, bid=1.5, ask=1.7, iv=0.40, expiry=near),
             row("call", 130, bid=0.1, ask=0.2, iv=None)]
    p = portfolio(single("c", "call", 100, 2, 3.0),
                  multi("ic", -150.0, ("long", "put", 90, 1), ("short", "put", 95, 1), ("short", "call", 110, 1),
                        ("long", "call", 120, 1)),
                  single("near-put", "put", 100, 1, 1.0, expiry=near),
                  single("no-iv", "call", 130, 1, 0.1),
                  single("ghost", "call", 140, 1, 0.1))
    assert near < E1
    return value_portfolio(p, frame(chain), as_of=SESSION, rate=RATE)


def test_each_scenario_equals_a_full_repricing_of_every_leg() -> None:
    table = {s["name"]: s for s in stress(_valuation().legs, RATE)}
    expected = {"spot -5%": (-0.05, 0, 0), "spot +5%": (0.05, 0, 0), "IV -5 pts": (0, -5, 0),
                "IV +5 pts": (0, 5, 0), "+7 days": (0, 0, 7)}
    for name, (s, v, d) in expected.items():
        assert table[name]["pnl"] == pytest.approx(reference_pnl(s, v, d), rel=1e-9, abs=1e-7), name
        assert (table[name]["spot_pct"], table[name]["vol_points"], table[name]["days"]) == (s, v, d)


def test_the_combined_worst_case_is_the_lowest_of_every_combination() -> None:
    rows = stress(_valuation().legs, RATE)
    worst = rows[-1]
    grid = {(s, v, d): reference_pnl(s, v, d)
            for s, v, d in itertools.product((-0.05, 0.0, 0.05), (-5.0, 0.0, 5.0), (0, 7)) if (s, v, d) != (0, 0, 0)}
    key = min(grid, key=grid.__getitem__)
    assert worst["name"].startswith("worst combined")
    assert worst["pnl"] == pytest.approx(grid[key], rel=1e-9)
    assert (worst["spot_pct"], worst["vol_points"], worst["days"]) == key
    assert worst["pnl"] <= min(r["pnl"] for r in rows[:-1])


def test_legs_that_cannot_be_repriced_are_counted_not_guessed() -> None:
    rows = stress(_valuation().legs, RATE)
    # 6 legs repriced; the call without an IV and the missing one are left out
    assert {(r["legs_repriced"], r["legs_left_out"]) for r in rows} == {(6, 2)}
    gross = sum(abs(n * 100 * reference_price(k, SPOT, x, d, iv)) for k, x, n, iv, d in LEGS)
    assert rows[0]["pnl_pct"] == pytest.approx(reference_pnl(-0.05, 0, 0) / gross, rel=1e-9)


def test_the_near_leg_expires_inside_the_seven_days_and_is_worth_intrinsic() -> None:
    legs = _valuation().legs
    only = legs[legs["id"] == "near-put"]
    (days7,) = [r for r in stress(only, RATE) if r["name"] == "+7 days"]
    assert days7["pnl"] == pytest.approx(100 * (0.0 - reference_price("put", SPOT, 100, 5, 0.40)))


def test_no_legs_no_pnl() -> None:
    legs = _valuation().legs
    rows = stress(legs[legs["id"] == "ghost"], RATE)
    assert all(r["pnl"] is None and r["legs_repriced"] == 0 for r in rows)
