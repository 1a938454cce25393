"""Stress: the portfolio's P&L under market moves, by full Black-Scholes repricing of every leg.

Scenarios: spot -5 % and +5 %, implied volatility -5 and +5 vol points, +7 calendar days, and the
combined worst case: the lowest P&L over every combination of spot {-5 %, 0, +5 %} x IV
{-5, 0, +5 points} x days {0, +7}. Each leg is repriced at the shocked spot, volatility
(floored at 0.01 %) and time to expiry, with the configured rate and no dividends; a leg whose
shocked time to expiry is zero or less is worth its intrinsic value. P&L = sum over legs of
signed contracts x 100 x (shocked price - base price), where the base price is the model price
at today's spot, IV and DTE (so a scenario's P&L is the move's effect alone, not the model's
distance from the mark). ``pnl_pct`` is the P&L over the legs' gross model value
(sum of |contracts x 100 x base price|).

Legs that are missing, unpriced, already expired or without an implied volatility cannot be
repriced: they are left out and counted (``legs_left_out``). All scenarios and legs are
computed at once as one (scenario x leg) numpy array.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import numpy as np
import pandas as pd

from stages.portfolio.model import MULTIPLIER
from stages.pricing import bs_price

SPOT_SHOCK = 0.05
VOL_SHOCK_POINTS = 5.0
DAYS_SHIFT = 7
MIN_VOL = 1e-4


@attrs.frozen(kw_only=True)
class Scenario:
    name: str
    spot_pct: float = 0.0
    vol_points: float = 0.0
    days: int = 0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(name="spot -5%", spot_pct=-SPOT_SHOCK),
    Scenario(name="spot +5%", spot_pct=SPOT_SHOCK),
    Scenario(name="IV -5 pts", vol_points=-VOL_SHOCK_POINTS),
    Scenario(name="IV +5 pts", vol_points=VOL_SHOCK_POINTS),
    Scenario(name="+7 days", days=DAYS_SHIFT),
)
GRID: tuple[Scenario, ...] = tuple(
    Scenario(name="", spot_pct=s, vol_points=v, days=d)
    for s, v, d in itertools.product((-SPOT_SHOCK, 0.0, SPOT_SHOCK), (-VOL_SHOCK_POINTS, 0.0, VOL_SHOCK_POINTS),
                                     (0, DAYS_SHIFT))
    if (s, v, d) != (0.0, 0.0, 0)
)


def option_prices(spot: np.ndarray, strike: np.ndarray, dte: np.ndarray, rate: float, vol: np.ndarray,
                  is_call: np.ndarray) -> np.ndarray:
    """Black-Scholes prices (broadcasting); intrinsic value where ``dte`` (calendar days) <= 0."""
    spot, strike, dte, vol = (np.asarray(x, dtype=float) for x in (spot, strike, dte, vol))
    call = np.asarray(is_call, dtype=bool)
    model = bs_price(spot, strike, np.maximum(dte, 1e-9) / 365.0, rate, vol, call)
    intrinsic = np.where(call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))
    return np.where(dte <= 0, intrinsic, model)


def stressable(legs: pd.DataFrame) -> np.ndarray:
    """Which rows of a valued leg table can be repriced."""
    if not len(legs):
        return np.zeros(0, dtype=bool)
    iv = legs["implied_volatility"].to_numpy(dtype=float)
    spot = legs["spot"].to_numpy(dtype=float)
    return (legs["priced"].to_numpy(dtype=bool) & ~legs["expired"].to_numpy(dtype=bool)
            & np.isfinite(iv) & np.isfinite(spot) & (spot > 0))


def scenario_pnl(legs: pd.DataFrame, scenarios: tuple[Scenario, ...], rate: float) -> tuple[np.ndarray, float, int]:
    """(P&L per scenario, gross base value, legs repriced) over the repriceable legs."""
    use = stressable(legs)
    if not len(legs):
        return np.zeros(len(scenarios)), 0.0, 0

    def col(name: str) -> np.ndarray:
        return legs[name].to_numpy(dtype=float)[use]

    spot, strike, dte, iv = col("spot"), col("strike"), col("dte"), col("implied_volatility")
    call = legs["option_type"].to_numpy(dtype=object)[use] == "call"
    qty = col("signed") * MULTIPLIER
    base = option_prices(spot, strike, dte, rate, iv, call)
    s = np.array([sc.spot_pct for sc in scenarios], dtype=float)[:, None]
    v = np.array([sc.vol_points for sc in scenarios], dtype=float)[:, None] / 100.0
    d = np.array([sc.days for sc in scenarios], dtype=float)[:, None]
    shocked = option_prices(spot[None, :] * (1.0 + s), strike[None, :], dte[None, :] - d, rate,
                            np.maximum(iv[None, :] + v, MIN_VOL), call[None, :])
    pnl = ((shocked - base[None, :]) * qty[None, :]).sum(axis=1)
    return pnl, float(np.abs(base * qty).sum()), int(use.sum())


def stress(legs: pd.DataFrame, rate: float) -> list[dict[str, Any]]:
    """The stress table: the five single moves, then the combined worst case."""
    everything = SCENARIOS + GRID
    pnl, gross, repriced = scenario_pnl(legs, everything, rate)
    left_out = len(legs) - repriced
    rows = []

    def row(sc: Scenario, name: str, value: float) -> dict[str, Any]:
        return {"name": name, "spot_pct": sc.spot_pct, "vol_points": sc.vol_points, "days": sc.days,
                "pnl": float(value) if repriced else None,
                "pnl_pct": float(value / gross) if repriced and gross > 0 else None,
                "legs_repriced": repriced, "legs_left_out": left_out}

    for i, sc in enumerate(SCENARIOS):
        rows.append(row(sc, sc.name, pnl[i]))
    grid = pnl[len(SCENARIOS):]
    worst = int(np.argmin(grid)) if len(grid) else 0
    sc = GRID[worst]
    label = ", ".join(part for part in (
        f"spot {sc.spot_pct * 100:+.0f}%" if sc.spot_pct else "",
        f"IV {sc.vol_points:+.0f} pts" if sc.vol_points else "",
        f"+{sc.days} days" if sc.days else "") if part)
    rows.append(row(sc, f"worst combined ({label})", grid[worst]))
    return rows


__all__ = ["DAYS_SHIFT", "GRID", "SCENARIOS", "SPOT_SHOCK", "VOL_SHOCK_POINTS", "Scenario", "option_prices",
           "scenario_pnl", "stress", "stressable"]
