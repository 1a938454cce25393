"""Black-Scholes prices, greeks and implied volatility, vectorised over numpy arrays.

European, no dividends; ``t`` in years (calendar days / 365, as the original tool did);
``is_call`` a boolean array. Theta is per calendar day, vega per 1.00 of volatility.
Used by the synthetic market to quote free of arbitrage, and by the snapshot stage to infer
implied volatility from the mid when the source gives none.
"""

from __future__ import annotations

import numpy as np

_SQRT_2PI = np.sqrt(2.0 * np.pi)
MIN_T = 1e-6
IV_LOW, IV_HIGH = 1e-4, 5.0


def ndtr(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF: ``scipy.special.ndtr``, imported on first use (scipy costs ~0.15 s
    to import, which `options-helper gaps` would pay: it imports the synthetic provider only to
    read its capabilities)."""
    from scipy.special import ndtr as scipy_ndtr

    return scipy_ndtr(x)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def _d1_d2(spot, strike, t, rate, vol):
    t = np.maximum(np.asarray(t, dtype=float), MIN_T)
    vol = np.maximum(np.asarray(vol, dtype=float), 1e-12)
    sq = vol * np.sqrt(t)
    d1 = (np.log(np.asarray(spot, float) / np.asarray(strike, float)) + (rate + 0.5 * vol * vol) * t) / sq
    return d1, d1 - sq, t


def bs_price(spot, strike, t, rate, vol, is_call) -> np.ndarray:
    """Option price; at t -> 0 it tends to intrinsic value."""
    d1, d2, tt = _d1_d2(spot, strike, t, rate, vol)
    s = np.asarray(spot, float)
    k = np.asarray(strike, float)
    disc = k * np.exp(-rate * tt)
    call = s * ndtr(d1) - disc * ndtr(d2)
    put = disc * ndtr(-d2) - s * ndtr(-d1)
    return np.where(np.asarray(is_call, bool), call, put)


def bs_greeks(spot, strike, t, rate, vol, is_call) -> dict[str, np.ndarray]:
    """delta, gamma, theta (per day), vega (per 1.00 vol), rho (per 1.00 rate)."""
    d1, d2, tt = _d1_d2(spot, strike, t, rate, vol)
    s = np.asarray(spot, float)
    k = np.asarray(strike, float)
    v = np.maximum(np.asarray(vol, float), 1e-12)
    call = np.asarray(is_call, bool)
    pdf = _pdf(d1)
    disc = np.exp(-rate * tt)
    delta = np.where(call, ndtr(d1), ndtr(d1) - 1.0)
    gamma = pdf / (s * v * np.sqrt(tt))
    decay = -(s * pdf * v) / (2.0 * np.sqrt(tt))
    theta_year = np.where(call, decay - rate * k * disc * ndtr(d2), decay + rate * k * disc * ndtr(-d2))
    vega = s * pdf * np.sqrt(tt)
    rho = np.where(call, k * tt * disc * ndtr(d2), -k * tt * disc * ndtr(-d2))
    return {"delta": delta, "gamma": gamma, "theta": theta_year / 365.0, "vega": vega, "rho": rho}


def implied_volatility(price, spot, strike, t, rate, is_call, *, tol: float = 1e-7, max_iter: int = 100) -> np.ndarray:
    """Implied volatility by safeguarded Newton (bisection fallback); NaN where no vol fits.

    A price below intrinsic (after discounting) or above the no-arbitrage bound has no solution.
    """
    price = np.asarray(price, float)
    s = np.broadcast_to(np.asarray(spot, float), price.shape)
    k = np.broadcast_to(np.asarray(strike, float), price.shape)
    tt = np.broadcast_to(np.maximum(np.asarray(t, float), MIN_T), price.shape)
    call = np.broadcast_to(np.asarray(is_call, bool), price.shape)
    disc = k * np.exp(-rate * tt)
    lower = np.where(call, np.maximum(s - disc, 0.0), np.maximum(disc - s, 0.0))
    upper = np.where(call, s, disc)
    solvable = np.isfinite(price) & (price > lower + 1e-10) & (price < upper) & (price > 0)

    lo = np.full(price.shape, IV_LOW)
    hi = np.full(price.shape, IV_HIGH)
    vol = np.full(price.shape, 0.3)
    done = ~solvable
    for _ in range(max_iter):
        model = bs_price(s, k, tt, rate, vol, call)
        diff = model - price
        hi = np.where(diff > 0, vol, hi)
        lo = np.where(diff <= 0, vol, lo)
        converged = np.abs(diff) < tol
        done = done | converged
        if done.all():
            break
        vega = bs_greeks(s, k, tt, rate, vol, call)["vega"]
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = vol - diff / vega
        bisect = 0.5 * (lo + hi)
        step_ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
        vol = np.where(done, vol, np.where(step_ok, newton, bisect))
    result = np.where(solvable, vol, np.nan)
    # Anything that never converged to within a cent's fraction is not trusted.
    residual = np.abs(bs_price(s, k, tt, rate, np.where(solvable, vol, 0.3), call) - price)
    return np.where(solvable & (residual < 1e-4 * np.maximum(1.0, price)), result, np.nan)


__all__ = ["bs_greeks", "bs_price", "implied_volatility"]
