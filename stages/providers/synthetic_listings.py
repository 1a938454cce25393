"""Which option contracts the synthetic market lists, and since when.

Expiries (the same calendar for every underlying):

* **weeklies**: every Friday, listed 42 calendar days before it;
* **monthlies**: the third Friday of each month, listed 380 days before it, so about a year of
  them is always open.
  A Friday that is not a session moves to the session before it (Good Friday -> Thursday),
  as OCC does.

Strikes follow real listings: a fine increment near the money and a coarse one further out,
both fixed when the expiry is listed from the spot of that day (``nice`` steps of 0.5, 1, 2.5,
5, 10, 25, 50 or 100 dollars). A strike is listed on the first session on which it falls inside
the band around the range the underlying has traded in since the expiry was listed; strikes are
never withdrawn before expiry. So a strike's listing session is a pure function of the price
path, which is what lets open interest start at listing and evolve from there.
"""

from __future__ import annotations

import datetime as dt
import functools

import attrs
import numpy as np

from stages.providers.synthetic_prices import (
    PricePath,
    day_number,
    session_days,
    session_ordinals,
)

WEEKLY, MONTHLY = 0, 1
WEEKLY_LISTING_DAYS = 42
MONTHLY_LISTING_DAYS = 380
NICE_STEPS_MILLI = np.array([500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000], dtype=np.int64)
FINE_STEP_FRACTION = 0.008  # the fine increment is the nice step at or below 0.8% of spot
COARSE_STEP_FRACTION = 0.04
FINE_BAND = {WEEKLY: 0.06, MONTHLY: 0.08}


@attrs.frozen(kw_only=True)
class Expiry:
    """One expiry: its (session-adjusted) date, kind, and the session index it was listed at."""

    date: dt.date
    kind: int  # WEEKLY or MONTHLY
    nominal: dt.date  # the Friday it stands for
    listing_index: int  # index into the calendar sessions of the first listed session
    expiry_index: int  # index of the expiry session (len(sessions) when past the calendar)

    @property
    def listing_days(self) -> int:
        return MONTHLY_LISTING_DAYS if self.kind == MONTHLY else WEEKLY_LISTING_DAYS


def _is_monthly(friday: dt.date) -> bool:
    return 15 <= friday.day <= 21


def _session_on_or_before(day: dt.date) -> tuple[dt.date, int]:
    """The session on or before ``day`` and its index; past the calendar, the day itself."""
    ords = session_ordinals()
    n = day_number(day)
    if n > ords[-1]:
        return day, len(ords)
    i = int(np.searchsorted(ords, n, side="right")) - 1
    return dt.date.fromordinal(int(ords[i]) + dt.date(1970, 1, 1).toordinal()), i


@functools.lru_cache(maxsize=2048)
def expiry_for_friday(friday: dt.date) -> Expiry:
    kind = MONTHLY if _is_monthly(friday) else WEEKLY
    days = MONTHLY_LISTING_DAYS if kind == MONTHLY else WEEKLY_LISTING_DAYS
    date, idx = _session_on_or_before(friday)
    listing = int(np.searchsorted(session_ordinals(), day_number(friday) - days, side="left"))
    return Expiry(date=date, kind=kind, nominal=friday, listing_index=listing, expiry_index=idx)


@functools.lru_cache(maxsize=4096)
def expiries_open(as_of: dt.date) -> tuple[Expiry, ...]:
    """Expiries listed and not yet expired at session ``as_of``, nearest first."""
    first_friday = as_of + dt.timedelta(days=(4 - as_of.weekday()) % 7)
    out = []
    for k in range(MONTHLY_LISTING_DAYS // 7 + 2):
        friday = first_friday + dt.timedelta(days=7 * k)
        e = expiry_for_friday(friday)
        if e.date >= as_of and (friday - as_of).days <= e.listing_days:
            out.append(e)
    return tuple(out)


def expiry_from_date(date: dt.date) -> Expiry | None:
    """The synthetic expiry whose session-adjusted date is ``date``, if there is one."""
    friday = date + dt.timedelta(days=(4 - date.weekday()) % 7)
    e = expiry_for_friday(friday)
    return e if e.date == date else None


def _nice_step(price: float, fraction: float) -> int:
    target = price * fraction * 1000.0
    i = int(np.searchsorted(NICE_STEPS_MILLI, target, side="right")) - 1
    return int(NICE_STEPS_MILLI[max(i, 0)])


def wide_band(kind: int, base_vol: float) -> float:
    """How far out of the money strikes are listed, as a fraction of spot."""
    if kind == WEEKLY:
        return float(np.clip(0.5 * base_vol + 0.03, 0.08, 0.30))
    return float(np.clip(1.2 * base_vol, 0.25, 0.60))


@attrs.frozen(kw_only=True, eq=False)
class StrikeListing:
    """The strikes of one expiry listed by some session, with the session each was listed at."""

    expiry: Expiry
    strike_milli: np.ndarray  # int64, ascending
    listing_index: np.ndarray  # int64, the session index each strike was first listed


def strikes_listed(path: PricePath, expiry: Expiry, upto: int) -> StrikeListing:
    """Strikes of ``expiry`` listed on or before session index ``upto``."""
    start = expiry.listing_index
    closes = path.close[start : upto + 1]
    if len(closes) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return StrikeListing(expiry=expiry, strike_milli=empty, listing_index=empty)
    hi_run = np.maximum.accumulate(closes)
    lo_run = np.minimum.accumulate(closes)
    spot0 = float(closes[0])
    parts_k, parts_i = [], []
    bands = ((_nice_step(spot0, FINE_STEP_FRACTION), FINE_BAND[expiry.kind]),
             (_nice_step(spot0, COARSE_STEP_FRACTION), wide_band(expiry.kind, path.params.base_vol)))
    for step, band in bands:
        top = hi_run * (1.0 + band) * 1000.0
        bottom = lo_run * (1.0 - band) * 1000.0
        k_lo = int(np.floor(bottom[-1] / step)) - 1
        k_hi = int(np.ceil(top[-1] / step)) + 1
        grid = np.arange(max(k_lo, 1), k_hi + 1, dtype=np.int64) * step
        grid = grid[grid <= 99_999_999]
        # First session whose range covers the strike, from above and from below.
        up = np.searchsorted(top, grid.astype(np.float64), side="left")
        down = np.searchsorted(-bottom, -grid.astype(np.float64), side="left")
        first = np.maximum(up, down)
        keep = first < len(closes)
        parts_k.append(grid[keep])
        parts_i.append(first[keep] + start)
    strikes = np.concatenate(parts_k)
    listed = np.concatenate(parts_i)
    order = np.lexsort((listed, strikes))
    strikes, listed = strikes[order], listed[order]
    first_of_each = np.ones(len(strikes), dtype=bool)
    first_of_each[1:] = strikes[1:] != strikes[:-1]
    return StrikeListing(expiry=expiry, strike_milli=strikes[first_of_each], listing_index=listed[first_of_each])


@functools.lru_cache(maxsize=8192)
def strike_life(seed: int, key: str, expiry: Expiry) -> StrikeListing:
    """Every strike ``expiry`` ever lists for ``key`` (up to its expiry or the calendar's end).

    A strike's listing session is the first session whose range covers it, so this equals
    ``strikes_listed`` at any session once filtered to ``listing_index <= session``.
    """
    from stages.providers.synthetic_prices import price_path

    path = price_path(seed, key)
    return strikes_listed(path, expiry, min(expiry.expiry_index, len(path.close) - 1))


def strikes_at(seed: int, key: str, expiry: Expiry, index: int) -> StrikeListing:
    """The strikes of ``expiry`` listed on or before session ``index``."""
    life = strike_life(seed, key, expiry)
    keep = life.listing_index <= index
    return StrikeListing(expiry=expiry, strike_milli=life.strike_milli[keep], listing_index=life.listing_index[keep])


def session_date(index: int) -> dt.date:
    return dt.date.fromisoformat(str(session_days()[index]))


__all__ = [
    "MONTHLY",
    "WEEKLY",
    "Expiry",
    "StrikeListing",
    "expiries_open",
    "expiry_for_friday",
    "expiry_from_date",
    "session_date",
    "strike_life",
    "strikes_at",
    "strikes_listed",
    "wide_band",
]
