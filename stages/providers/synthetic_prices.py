"""The synthetic market's underlying prices: one deterministic daily path per (seed, symbol).

Model (log price, one step per XNYS session since 2000-01-03)::

    log close_t = log anchor + drift * (years since 2024-01-02) + x_t
    x_t         = phi * x_{t-1} + sigma_t * z_t + gap_t - sigma_t^2 / 2

* ``z_t`` is a standard normal drawn by the counter-based generator at the session's calendar
  day, so a session's shock never depends on which range was asked for.
* ``sigma_t`` is the symbol's daily volatility times a regime multiplier that changes monthly
  and persists (a moving average of monthly normals, so calm and stressed spells last months).
* ``gap_t``: on a few sessions a year (per-symbol probability) an overnight jump of about four
  daily standard deviations, visible as a gap between the previous close and the open.
* ``phi`` gives a half-life of about two years: prices wander like a random walk over weeks
  and months but stay within sensible bounds over decades, so strikes and volumes stay sane.

The path over the whole calendar costs about a millisecond per symbol and is cached, so the
close of session N is the previous close of session N+1 by construction.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

import attrs
import numpy as np

import stages.providers._counter_rng as rng

REFERENCE_DAY = dt.date(2024, 1, 2)
HALF_LIFE_SESSIONS = 504
PHI = 0.5 ** (1.0 / HALF_LIFE_SESSIONS)
TRADING_DAYS = 252
REGIME_STRENGTH = 0.35
GAP_SIZE_SIGMAS = 4.0
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

# A few familiar names get plausible levels and volatilities (at 2024-01-02) so that demos read
# naturally; every other well-formed ticker gets parameters drawn from its own hash.
KNOWN_SYMBOLS: dict[str, tuple[float, float, float]] = {
    # symbol: (anchor price, annual volatility, average daily share volume)
    "SPY": (475.0, 0.15, 75e6),
    "QQQ": (405.0, 0.20, 45e6),
    "IWM": (198.0, 0.22, 30e6),
    "DIA": (375.0, 0.15, 3e6),
    "AAPL": (185.0, 0.25, 55e6),
    "MSFT": (370.0, 0.25, 22e6),
    "NVDA": (48.0, 0.50, 400e6),
    "AMZN": (149.0, 0.32, 45e6),
    "TSLA": (248.0, 0.55, 110e6),
}
INDEX_LIKE = frozenset({"SPY", "QQQ", "IWM", "DIA"})


@attrs.frozen(kw_only=True)
class SymbolParams:
    """Per-symbol constants of the synthetic market, drawn from (seed, symbol)."""

    symbol: str
    anchor: float  # price level around 2024-01-02
    base_vol: float  # annualised volatility in a normal regime
    drift: float  # annual log drift
    base_volume: float  # average daily share volume
    trade_size: float  # average shares per trade
    gap_prob: float  # chance of an overnight gap per session
    skew: float  # strength of the put skew of the volatility smile (1 = typical stock)
    oi_scale: float  # open interest of an at-the-money monthly contract, in contracts


@functools.lru_cache(maxsize=4096)
def symbol_params(seed: int, symbol: str) -> SymbolParams:
    def u(name: str) -> float:
        return rng.symbol_uniform(seed, symbol, name)

    def log_uniform(name: str, lo: float, hi: float) -> float:
        return math.exp(math.log(lo) + u(name) * (math.log(hi) - math.log(lo)))

    known = KNOWN_SYMBOLS.get(symbol)
    anchor, vol, volume = known if known else (
        log_uniform("anchor", 15.0, 600.0), log_uniform("vol", 0.16, 0.65), log_uniform("volume", 1.5e6, 60e6)
    )
    index_like = symbol in INDEX_LIKE
    return SymbolParams(
        symbol=symbol,
        anchor=anchor,
        base_vol=vol,
        drift=0.02 + 0.06 * u("drift"),
        base_volume=volume,
        trade_size=80.0 + 120.0 * u("trade_size"),
        gap_prob=(0.002 + 0.004 * u("gap")) if index_like else (0.008 + 0.02 * u("gap")),
        skew=(1.5 + 0.5 * u("skew")) if index_like else (0.6 + 0.8 * u("skew")),
        oi_scale=max(200.0, volume / 2500.0 * (0.5 + u("oi"))),
    )


@functools.cache
def _sessions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every calendar session as (datetime64[D], day number since 1970, ts in UTC microseconds).

    ``ts`` is midnight America/New_York of the session, the stamp Alpaca gives daily bars.
    """
    import pandas as pd

    from ledger.calendar import TradingCalendar

    cal = TradingCalendar.xnys()
    days = np.array(cal.sessions_in_range(cal.first_session, cal.last_session), dtype="datetime64[D]")
    ordinals = days.astype(np.int64)
    ts = pd.DatetimeIndex(days.astype("datetime64[ns]")).tz_localize("America/New_York").tz_convert("UTC")
    return days, ordinals, (ts.asi8 // 1000).astype(np.int64)


def session_days() -> np.ndarray:
    return _sessions()[0]


def session_ordinals() -> np.ndarray:
    return _sessions()[1]


def session_ts_us() -> np.ndarray:
    return _sessions()[2]


def day_number(day: dt.date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def session_index(day: dt.date) -> int:
    """The index of session ``day`` (which must be a session) in the calendar arrays."""
    ords = session_ordinals()
    n = day_number(day)
    i = int(np.searchsorted(ords, n))
    if i >= len(ords) or ords[i] != n:
        from ledger.calendar import TradingCalendar

        TradingCalendar.xnys().require_session(day)  # raises the helpful NotASessionError
        raise AssertionError(day)
    return i


def session_range(start: dt.date, end: dt.date) -> tuple[int, int]:
    """Indices [lo, hi) of the sessions within [start, end]."""
    ords = session_ordinals()
    lo = int(np.searchsorted(ords, day_number(start), side="left"))
    hi = int(np.searchsorted(ords, day_number(end), side="right"))
    return lo, max(lo, hi)


def ar1(shocks: np.ndarray, phi: float, block: int = 1024) -> np.ndarray:
    """``x_t = phi * x_{t-1} + shocks_t`` from ``x_{-1} = 0``, vectorised block by block.

    Within a block ``x_{s+j} = phi^j * (x_{s-1} * phi + sum_{k<=j} shocks_{s+k} * phi^-k)``;
    blocks keep ``phi^-k`` small, so the sums stay exact to rounding. (scipy.signal.lfilter
    does the same but costs seconds to import.)
    """
    out = np.empty(len(shocks))
    powers = phi ** np.arange(block + 1, dtype=np.float64)
    carry = 0.0
    for start in range(0, len(shocks), block):
        chunk = shocks[start : start + block]
        n = len(chunk)
        up = powers[1 : n + 1]
        values = up * (carry + np.cumsum(chunk / powers[:n]) / phi)
        out[start : start + n] = values
        carry = float(values[-1])
    return out


@attrs.frozen(kw_only=True, eq=False)
class PricePath:
    """A symbol's daily path over every calendar session (arrays aligned with the sessions)."""

    params: SymbolParams
    log_close: np.ndarray
    close: np.ndarray  # rounded to cents: the published close
    sigma: np.ndarray  # daily volatility including the regime
    regime: np.ndarray  # the regime multiplier of sigma (1 = normal)
    gap: np.ndarray  # the overnight jump in log price (0 on most sessions)
    close_cumsum: np.ndarray  # for trailing means


@functools.cache
def _calendar_terms() -> tuple[np.ndarray, np.ndarray]:
    """Per session: the month number since 1970 and the years since ``REFERENCE_DAY``."""
    days, ordinals, _ = _sessions()
    return days.astype("datetime64[M]").astype(np.int64), (ordinals - day_number(REFERENCE_DAY)) / 365.25


@functools.lru_cache(maxsize=512)
def price_path(seed: int, symbol: str) -> PricePath:
    p = symbol_params(seed, symbol)
    ordinals = _sessions()[1]
    months, years = _calendar_terms()
    first_month, last_month = int(months[0]) - 3, int(months[-1])
    month_ids = np.arange(first_month, last_month + 1, dtype=np.int64)
    zm = rng.normal(rng.stream_key(seed, symbol, "regime"), month_ids + (1 << 40))
    weights = np.array([0.6, 0.5, 0.4, 0.3])
    score = np.convolve(zm, weights / np.sqrt((weights**2).sum()), mode="full")[: len(zm)]
    regime_by_month = np.exp(REGIME_STRENGTH * score - 0.5 * REGIME_STRENGTH**2)
    regime = regime_by_month[months - first_month]

    sigma = p.base_vol / math.sqrt(TRADING_DAYS) * regime
    counters = ordinals.astype(np.uint64)
    raw = rng.bits(rng.stream_key(seed, symbol, "ret"), counters)
    z = rng.normal_from_bits(raw)
    # The low 11 bits (unused by the normal) decide the gap days; sizes are drawn only for those.
    is_gap = (raw & np.uint64(0x7FF)).astype(np.float64) < p.gap_prob * 2048.0
    gap = np.zeros(len(z))
    gap[is_gap] = GAP_SIZE_SIGMAS * sigma[is_gap] * rng.normal(rng.stream_key(seed, symbol, "gapsize"), counters[is_gap])
    shocks = sigma * z + gap - 0.5 * sigma * sigma
    x = ar1(shocks, PHI)
    log_close = math.log(p.anchor) + p.drift * years + x
    close = np.maximum(np.round(np.exp(log_close), 2), 0.05)
    return PricePath(
        params=p, log_close=log_close, close=close, sigma=sigma, regime=regime, gap=gap,
        close_cumsum=np.concatenate([[0.0], np.cumsum(close)]),
    )


def trailing_mean_close(path: PricePath, idx: np.ndarray, window: int = 20) -> np.ndarray:
    """Mean close over the ``window`` sessions ending at each index (fewer at the start)."""
    hi = np.asarray(idx) + 1
    lo = np.maximum(hi - window, 0)
    return (path.close_cumsum[hi] - path.close_cumsum[lo]) / (hi - lo)


def daily_bars(seed: int, symbol: str, lo: int, hi: int) -> dict[str, np.ndarray]:
    """OHLCV for sessions [lo, hi) of ``symbol`` as numpy columns (prices in cents)."""
    path = price_path(seed, symbol)
    p = path.params
    idx = np.arange(lo, hi)
    counters = session_ordinals()[idx].astype(np.uint64)

    def z(name: str) -> np.ndarray:
        return rng.normal(rng.stream_key(seed, symbol, name), counters)

    sigma = path.sigma[idx]
    close = path.close[idx]
    prev_close = path.close[np.maximum(idx - 1, 0)]
    overnight = path.gap[idx] + 0.3 * sigma * z("overnight")
    open_ = np.maximum(np.round(prev_close * np.exp(overnight), 2), 0.01)
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = np.round(top * np.exp(np.abs(z("high")) * 0.45 * sigma), 2)
    low = np.maximum(np.round(bottom * np.exp(-np.abs(z("low")) * 0.45 * sigma), 2), 0.01)
    move = np.abs(np.log(close / prev_close)) / (p.base_vol / math.sqrt(TRADING_DAYS))
    activity = (0.6 + 0.4 * path.regime[idx]) * (1.0 + 0.35 * np.minimum(move, 6.0))
    activity = np.where(path.gap[idx] != 0.0, activity * 2.5, activity)
    volume = np.floor(p.base_volume * activity * np.exp(0.25 * z("volume") - 0.03)).astype(np.int64)
    trade_count = np.maximum(1, np.floor(volume / (p.trade_size * np.exp(0.1 * z("tsize"))))).astype(np.int64)
    vwap = np.clip(np.round((high + low + 2.0 * close) / 4.0, 4), low, high)
    return {
        "open": open_, "high": high, "low": low, "close": close,
        "volume": volume, "vwap": vwap, "trade_count": trade_count,
    }


__all__ = [
    "KNOWN_SYMBOLS",
    "PricePath",
    "SymbolParams",
    "daily_bars",
    "day_number",
    "price_path",
    "session_days",
    "session_index",
    "session_ordinals",
    "session_range",
    "session_ts_us",
    "symbol_params",
    "trailing_mean_close",
]
