"""Quotes, open interest and volume of synthetic option contracts, vectorised.

Everything here is evaluated for arrays of (contract, session) pairs at once, so a whole chain
(about 2,000 contracts) or a contract's bar history is a handful of numpy operations.

**Volatility surface.** At-the-money volatility has a term structure that starts at the
symbol's current regime (``base_vol * regime * 1.1``) and decays towards its long-run level
``base_vol`` with a time constant of about 0.2 years, times a small daily level noise. The
smile is quadratic in standardised moneyness ``x = ln(K/F) / (atm * sqrt(T))``::

    iv = atm * (1 - 0.10 * skew * x + 0.025 * x^2),   x clipped to [-3.5, 3.5]

so puts carry the usual skew (stronger for index ETFs) and far wings flatten out.

**Prices.** The mid is Black-Scholes (``stages.pricing``) on that surface: calls and puts share
one volatility per strike, so put-call parity holds on mids, and the surface is gentle enough
that call prices fall and put prices rise with the strike.

**Open interest** of a contract at the end of session ``t`` is a closed-form function::

    OI_t = floor(A_t * life_t * rolloff_t * exp(0.04 * z_t))   (0 before listing, gone after expiry)

where ``A_t`` is the contract's interest level (symbol scale, expiry kind, a bell around the
mean spot over the contract's life and over the last 20 sessions, a bonus for round strikes), ``life_t`` builds up after the strike is listed
and ``rolloff_t`` closes positions over the last sessions before expiry. The day's flows follow:
``opened - closed = OI_t - OI_{t-1}``, each side also carries churn ``c`` (positions opened and
closed the same day, bounded by what exists), and ``volume = opened + closed + transfers``. So
``|OI_t - OI_{t-1}| <= volume_t`` always, and open interest only moves on days that trade.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

import stages.providers._counter_rng as rng
from stages.pricing import bs_price
from stages.providers.synthetic_listings import MONTHLY
from stages.providers.synthetic_prices import PricePath, session_ordinals, trailing_mean_close

YEAR_DAYS = 365.0
MIN_T_YEARS = 1.0 / (YEAR_DAYS * 24.0)  # an hour: the quote is taken at the close
OI_NOISE = 0.04
SMILE_SLOPE = 0.10
SMILE_CURVE = 0.025
SMILE_CLIP = 3.5


@attrs.frozen(kw_only=True, eq=False)
class Contracts:
    """Parallel arrays describing contracts (one row per contract, or per (contract, session))."""

    expiry_day: np.ndarray  # int64 days since 1970
    expiry_index: np.ndarray  # int64 session index of the expiry
    kind: np.ndarray  # int8 WEEKLY/MONTHLY
    is_call: np.ndarray  # bool
    strike_milli: np.ndarray  # int64
    listing_index: np.ndarray  # int64 session index the strike was listed

    @property
    def strike(self) -> np.ndarray:
        return self.strike_milli / 1000.0

    def key(self) -> np.ndarray:
        """A stable uint64 per contract: expiry day, strike and type packed together."""
        return (
            (self.expiry_day.astype(np.uint64) << np.uint64(40))
            | (self.strike_milli.astype(np.uint64) << np.uint64(1))
            | self.is_call.astype(np.uint64)
        )

    def take(self, idx: np.ndarray) -> Contracts:
        return Contracts(**{f.name: getattr(self, f.name)[idx] for f in attrs.fields(Contracts)})


@attrs.frozen(kw_only=True, eq=False)
class Quotes:
    spot: np.ndarray
    t_years: np.ndarray
    iv: np.ndarray
    mid: np.ndarray
    half_spread: np.ndarray  # before monotone clamping and tick rounding
    last: np.ndarray
    open_interest: np.ndarray
    open_interest_prev: np.ndarray
    opened: np.ndarray
    closed: np.ndarray
    volume: np.ndarray
    moneyness: np.ndarray  # standardised, x above


def _tick(price: np.ndarray) -> np.ndarray:
    return np.where(price < 3.0, 0.01, 0.05)


def round_down_tick(price: np.ndarray) -> np.ndarray:
    tick = _tick(price)
    return np.maximum(np.floor(price / tick + 1e-9) * tick, 0.0).round(2)


def round_up_tick(price: np.ndarray) -> np.ndarray:
    tick = _tick(price)
    return (np.ceil(price / tick - 1e-9) * tick).round(2)


def surface(path: PricePath, seed: int, session: np.ndarray, t_years: np.ndarray, strike: np.ndarray,
            rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spot, iv, standardised moneyness) for each (session index, time to expiry, strike)."""
    p = path.params
    spot = path.close[session]
    level = np.exp(0.04 * rng.normal(rng.stream_key(seed, p.symbol, "ivlevel"), session_ordinals()[session]))
    short = p.base_vol * path.regime[session] * 1.1
    atm = (p.base_vol + (short - p.base_vol) * np.exp(-t_years / 0.2)) * level
    forward = spot * np.exp(rate * t_years)
    x = np.log(strike / forward) / (atm * np.sqrt(t_years))
    xc = np.clip(x, -SMILE_CLIP, SMILE_CLIP)
    iv = atm * (1.0 - SMILE_SLOPE * p.skew * xc + SMILE_CURVE * xc * xc)
    return spot, iv, x


def _open_interest(path: PricePath, seed: int, c: Contracts, session: np.ndarray, ckey: np.ndarray) -> np.ndarray:
    """OI at the end of each session index in ``session`` (0 outside the contract's life)."""
    p = path.params
    safe = np.clip(session, 0, len(path.close) - 1)
    alive = (session >= c.listing_index) & (session <= c.expiry_index)
    recent = trailing_mean_close(path, safe)
    since = np.minimum(c.listing_index, safe)
    lifetime = (path.close_cumsum[safe + 1] - path.close_cumsum[since]) / (safe + 1 - since)
    days_left = np.maximum(c.expiry_day - session_ordinals()[safe], 0)
    t = np.maximum(days_left / YEAR_DAYS, MIN_T_YEARS)
    width = 0.05 + 0.8 * p.base_vol * np.sqrt(t)
    m = np.log(c.strike / recent)
    # Positions are sticky: most interest sits where the stock traded over the contract's life,
    # the rest follows the recent price.
    bell = 0.6 * np.exp(-0.5 * (np.log(c.strike / lifetime) / width) ** 2) + 0.4 * np.exp(-0.5 * (m / width) ** 2)
    bell = bell + 0.015
    put_skew = np.where(~c.is_call & (m < 0), 1.0 + 0.3 * p.skew, 1.0)
    kind_weight = np.where(c.kind == MONTHLY, 1.0, 0.35)
    round_bonus = np.where(c.strike_milli % 10_000 == 0, 1.5, np.where(c.strike_milli % 5_000 == 0, 1.2, 1.0))
    age = np.maximum(session - c.listing_index, 0)
    build = np.where(c.kind == MONTHLY, 25.0, 6.0)
    life = 1.0 - np.exp(-(age + 1.0) / build)
    sessions_left = np.maximum(c.expiry_index - session, 0)
    rolloff = np.minimum(1.0, 0.35 + 0.65 * sessions_left / 5.0)
    z = rng.normal(rng.stream_key(seed, p.symbol, "oi"), rng.combine(ckey, session_ordinals()[safe]))
    level = p.oi_scale * kind_weight * bell * put_skew * round_bonus * life * rolloff * np.exp(OI_NOISE * z)
    return np.where(alive, np.floor(level), 0).astype(np.int64)


def quote(path: PricePath, seed: int, c: Contracts, session: np.ndarray, rate: float) -> Quotes:
    """Mid quotes, open interest and the day's flows of contracts ``c`` at session indices ``session``.

    Only meaningful where the contract is alive (listed and not expired); callers filter.
    """
    p = path.params
    ckey = c.key()
    day = session_ordinals()[session]
    days_left = np.maximum(c.expiry_day - day, 0)
    t_years = np.maximum(days_left / YEAR_DAYS, MIN_T_YEARS)
    strike = c.strike
    spot, iv, x = surface(path, seed, session, t_years, strike, rate)
    mid = bs_price(spot, strike, t_years, rate, iv, c.is_call)

    oi = _open_interest(path, seed, c, session, ckey)
    oi_prev = _open_interest(path, seed, c, session - 1, ckey)
    delta_oi = oi - oi_prev
    # The day's activity: higher near expiry, near the money and on days the stock moves.
    daily_sigma = p.base_vol / math.sqrt(252.0)
    move = np.abs(np.log(path.close[session] / path.close[np.maximum(session - 1, 0)])) / daily_sigma
    activity = (1.0 + 0.4 * np.minimum(move, 6.0)) * (0.3 + np.exp(-0.5 * np.clip(x, -6, 6) ** 2))
    turnover = 0.03 + 0.20 * np.exp(-days_left / 10.0)
    zc = rng.normal(rng.stream_key(seed, p.symbol, "churn"), rng.combine(ckey, day))
    churn = np.floor(np.maximum(oi, oi_prev) * turnover * activity * np.exp(0.5 * zc - 0.125))
    churn = np.minimum(churn, np.minimum(oi, oi_prev)).astype(np.int64)
    opened = np.maximum(delta_oi, 0) + churn
    closed = np.maximum(-delta_oi, 0) + churn
    ut = rng.uniform(rng.stream_key(seed, p.symbol, "transfer"), rng.combine(ckey, day))
    transfers = np.floor(churn * 0.4 * ut).astype(np.int64)
    volume = opened + closed + transfers

    # Half-spread: a share of the time value that grows away from the money and with tenor,
    # plus 0.5% of the intrinsic value; so in percent it widens away from the money while deep
    # in-the-money contracts quote tight.
    rel = 0.02 + 0.03 * np.minimum(np.abs(x), 6.0) + 0.04 * np.minimum(t_years, 2.0)
    intrinsic = np.where(c.is_call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))
    extrinsic = np.maximum(mid - intrinsic, 0.0)
    half = np.maximum(0.5 * (rel * extrinsic + 0.01 * intrinsic), 0.005)
    ul = rng.uniform(rng.stream_key(seed, p.symbol, "last"), rng.combine(ckey, day))
    last_raw = mid + 0.8 * (2.0 * ul - 1.0) * half
    last = np.where(volume > 0, np.maximum(np.round(last_raw, 2), 0.01), np.nan)
    return Quotes(
        spot=spot, t_years=t_years, iv=iv, mid=mid, half_spread=half, last=last, open_interest=oi,
        open_interest_prev=oi_prev, opened=opened, closed=closed, volume=volume, moneyness=x,
    )


def _grouped_accumulate(values: np.ndarray, group: np.ndarray, op: np.ufunc, reverse: bool) -> np.ndarray:
    """Running min/max of ``values`` within consecutive groups (``group`` non-decreasing, from 0).

    The groups are laid out as rows of a padded 2-D array, so the result is exact (no offsets).
    """
    if len(values) == 0:
        return values
    n_groups = int(group[-1]) + 1
    starts = np.searchsorted(group, np.arange(n_groups))
    pos = np.arange(len(values)) - starts[group]
    width = int(pos.max()) + 1
    pad = np.inf if op is np.minimum else -np.inf
    grid = np.full((n_groups, width), pad)
    lengths = np.diff(np.append(starts, len(values)))
    if reverse:
        pos = lengths[group] - 1 - pos
    grid[group, pos] = values
    return op.accumulate(grid, axis=1)[group, pos]


def bid_ask(mid: np.ndarray, half: np.ndarray, is_call: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bid and ask ``mid -/+ half``, rounded outwards to the tick and monotone in strike.

    ``group`` numbers the (expiry, type) runs; within a run rows are in ascending strike.
    Calls must not get dearer with the strike, puts not cheaper: any raw quote that would is
    pulled in towards its neighbour (a bid raised, an ask lowered, both still around the mid).
    Ticks: 0.01 below 3.00, 0.05 above; rounding bids down and asks up keeps the mid inside.
    """
    bid_raw = mid - half
    ask_raw = mid + half
    call_ask = _grouped_accumulate(ask_raw, group, np.minimum, reverse=False)
    call_bid = _grouped_accumulate(bid_raw, group, np.maximum, reverse=True)
    put_ask = _grouped_accumulate(ask_raw, group, np.minimum, reverse=True)
    put_bid = _grouped_accumulate(bid_raw, group, np.maximum, reverse=False)
    ask = round_up_tick(np.where(is_call, call_ask, put_ask))
    bid = round_down_tick(np.where(is_call, call_bid, put_bid))
    ask = np.maximum(ask, bid + 0.01).round(2)
    return bid, ask


__all__ = ["Contracts", "Quotes", "bid_ask", "quote", "round_down_tick", "round_up_tick", "surface"]
