"""Per-symbol daily derived metrics (the ``derived_metrics`` asset), one row per (symbol, date).

The original's definitions (reference 2.5) under its column names, plus ``iv_rank_252d``, with
its defects fixed:

- ``pc_oi = puts OI / calls OI`` and ``pc_vol = puts volume / calls volume`` over every expiry
  in the snapshot (null when the call side is <= 0).
- ``call_wall``: among calls with strike >= spot, the strike with the most open interest
  (ties: the lower strike); ``put_wall`` likewise among puts with strike <= spot. Null when
  that side has no open interest.
- ``gamma_peak_strike``: the strike with the largest ``sum(gamma*OI*100*spot^2*0.01)`` over
  calls and puts (unsigned, as the original; not dealer-signed GEX).
- The "near" expiry is the first expiry with **DTE > 0** (the original could pick a same-day or
  expired expiry, whose greeks are null). Per expiry, the ATM strike is the strike nearest
  spot that has both a call and a put mark (ties: lower strike); ``em_near_pct`` =
  (call mark + put mark) / spot; ``atm_iv_near`` = mean IV of the call and put at that strike;
  ``skew_near_pp`` = (IV of the put whose delta is nearest -0.25 - IV of the call whose delta
  is nearest +0.25) x 100; ``iv_term_slope`` = ATM IV of the second live expiry minus the first.
- ``rv_20d``, ``rv_60d``: standard deviation (ddof 1) of the last 20 / 60 daily log returns of
  ``close`` up to ``as_of``, x sqrt(252); null if any of them is missing. ``iv_rv_20d`` =
  ``atm_iv_near / rv_20d``.
- ``atm_iv_near_percentile``: average-rank percentile of today's value among prior rows
  **strictly before** ``as_of`` plus today ((rank - 1)/(n - 1) x 100; 100 when n = 1). A stored
  row for the same date (a re-run) is ignored rather than counted twice.
- ``iv_rank_252d``: (today - min)/(max - min) x 100 over the ``atm_iv_near`` values in the last
  252 XNYS sessions ending at ``as_of``, today included; null with fewer than 2 values or when
  max == min.

IV and ratios are fractions (0.25 = 25%); ``skew_near_pp`` is in percentage points.
Inputs are ``pyarrow.Table`` (pandas accepted); the result is a one-row ``pyarrow.Table`` in
``DERIVED_SCHEMA``. The work runs on numpy columns taken from the Arrow tables once (no pandas
frame per symbol); sums per strike are compensated as pandas' groupby, whose results they equal
bit for bit (``_tables.group_sums``).
"""

from __future__ import annotations

import datetime as dt
import functools
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import StageError
from stages.analytics._tables import arrow_date, arrow_float, group_sums, require_columns, to_arrow
from stages.analytics.flow import mark_price
from stages.analytics.snapshot import option_type_column

IV_RANK_SESSIONS = 252
TRADING_DAYS_PER_YEAR = 252

#: The metric columns, in the original's order, then ``iv_rank_252d``.
DERIVED_COLUMNS = (
    "spot",
    "pc_oi",
    "pc_vol",
    "call_wall",
    "put_wall",
    "gamma_peak_strike",
    "atm_iv_near",
    "em_near_pct",
    "skew_near_pp",
    "rv_20d",
    "rv_60d",
    "iv_rv_20d",
    "atm_iv_near_percentile",
    "iv_term_slope",
    "iv_rank_252d",
)

#: One row per (symbol, date); every metric may be null.
DERIVED_SCHEMA = pa.schema(
    [pa.field("symbol", pa.string(), nullable=False), pa.field("date", pa.date32(), nullable=False)]
    + [pa.field(name, pa.float64()) for name in DERIVED_COLUMNS]
)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _wall(strikes: np.ndarray, oi: np.ndarray) -> float | None:
    """The strike with the most open interest (ties: lower strike); None without any."""
    ok = np.isfinite(strikes) & np.isfinite(oi)
    if not ok.any():
        return None
    by_strike, total, _ = group_sums(strikes[ok], oi[ok])
    if total.max() <= 0:
        return None
    return float(by_strike[np.argmax(total)])  # argmax takes the first: lowest strike


def _nearest(values: np.ndarray, target: float, tiebreak: np.ndarray) -> int | None:
    """Index of the value nearest ``target`` (ties: smaller ``tiebreak``); None if none is finite."""
    ok = np.flatnonzero(np.isfinite(values) & np.isfinite(tiebreak))
    if ok.size == 0:
        return None
    order = np.lexsort((tiebreak[ok], np.abs(values[ok] - target)))
    return int(ok[order[0]])


def _mean_by_strike(strike: np.ndarray, mark: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct strikes and the mean of their non-NaN marks (NaN where none)."""
    strikes, total, count = group_sums(strike, mark)
    with np.errstate(invalid="ignore", divide="ignore"):
        return strikes, np.where(count > 0, total / count, np.nan)


def _expiry_stats(is_call: np.ndarray, is_put: np.ndarray, strike: np.ndarray, mark: np.ndarray, iv: np.ndarray,
                  delta: np.ndarray, spot: float) -> dict[str, float | None]:
    """``expiry_stats`` on one expiry's columns (a row of neither type counts only for the ATM IV)."""
    out: dict[str, float | None] = dict(atm_strike=None, expected_move_pct=None, atm_iv=None, skew_25d_pp=None)
    calls, puts = np.flatnonzero(is_call), np.flatnonzero(is_put)
    call_strikes, call_mark = _mean_by_strike(strike[calls], mark[calls])
    put_strikes, put_mark = _mean_by_strike(strike[puts], mark[puts])
    strikes, in_calls, in_puts = np.intersect1d(call_strikes, put_strikes, assume_unique=True, return_indices=True)
    c_mark, p_mark = call_mark[in_calls], put_mark[in_puts]
    quoted = ~np.isnan(c_mark) & ~np.isnan(p_mark)
    strikes, c_mark, p_mark = strikes[quoted], c_mark[quoted], p_mark[quoted]
    if strikes.size:
        i = _nearest(strikes, spot, strikes)
        if i is not None:
            atm = strikes[i]
            out["atm_strike"] = float(atm)
            out["expected_move_pct"] = float(c_mark[i] + p_mark[i]) / spot
            ivs = iv[strike == atm]
            ivs = ivs[np.isfinite(ivs)]
            out["atm_iv"] = float(ivs.mean()) if ivs.size else None
    p = _nearest(_with_iv(delta[puts], iv[puts]), -0.25, strike[puts])
    c = _nearest(_with_iv(delta[calls], iv[calls]), 0.25, strike[calls])
    if p is not None and c is not None:
        out["skew_25d_pp"] = (float(iv[puts[p]]) - float(iv[calls[c]])) * 100.0
    return out


def expiry_stats(rows: pd.DataFrame, spot: float) -> dict[str, float | None]:
    """ATM strike, straddle, expected move, ATM IV and 25-delta skew of one expiry's rows.

    ``rows`` has ``option_type, strike, mark, implied_volatility, delta``.
    """
    def col(name: str) -> np.ndarray:
        return rows[name].to_numpy(dtype=float)

    option_type = rows["option_type"].to_numpy(dtype=object)
    return _expiry_stats(option_type == "call", option_type == "put", col("strike"), col("mark"),
                         col("implied_volatility"), col("delta"), spot)


def _with_iv(values: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """``values`` where the row also has an IV, else NaN (a delta without an IV cannot price skew)."""
    return np.where(np.isfinite(iv), values, np.nan)


def _last_per_day(days: np.ndarray) -> np.ndarray:
    """Indices of the last row of each distinct non-NaT day, in date order."""
    keep = np.flatnonzero(~np.isnat(days))
    _, first_from_end = np.unique(days[keep][::-1], return_index=True)
    return keep[len(keep) - 1 - first_from_end]


def _realized_vol(days: np.ndarray, close: np.ndarray, as_of: dt.date, window: int) -> float | None:
    """``realized_vol`` on a ``date`` (``datetime64[D]``) and a ``close`` column."""
    upto = np.flatnonzero(days <= np.datetime64(as_of, "D"))
    rows = upto[_last_per_day(days[upto])]
    close = close[rows]
    close = np.where(close > 0, close, np.nan)  # a non-positive close is bad data, not a price
    returns = np.diff(np.log(close))
    if returns.size < window:
        return None
    last = returns[-window:]
    if not np.isfinite(last).all():
        return None
    return float(np.std(last, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))


def realized_vol(candles: pa.Table | pd.DataFrame, as_of: dt.date, window: int) -> float | None:
    """Annualised close-to-close volatility over the last ``window`` log returns up to ``as_of``."""
    table = to_arrow(candles)
    if table.num_rows == 0:
        return None
    return _realized_vol(arrow_date(table, "date"), arrow_float(table, "close"), as_of, window)


def percentile_rank(prior: np.ndarray, today: float) -> float:
    """Average-rank percentile of ``today`` among ``prior`` plus itself: (rank - 1)/(n - 1) x 100."""
    values = np.append(prior[np.isfinite(prior)], today)
    n = values.size
    if n == 1:
        return 100.0
    # Ties within 1e-12: an IV stored as 0.21 and today's mean(0.20, 0.22) are the same level.
    tie = np.abs(values - today) <= 1e-12
    rank = np.sum((values < today) & ~tie) + (np.sum(tie) + 1) / 2.0
    return float((rank - 1.0) / (n - 1.0) * 100.0)


def iv_rank(values: np.ndarray, today: float) -> float | None:
    """(today - min)/(max - min) x 100 over ``values`` (which include today); None if undefined."""
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    low, high = values.min(), values.max()
    return None if high <= low else float((today - low) / (high - low) * 100.0)


def _of_symbol(table: pa.Table, symbol: str) -> pa.Table:
    """The rows of ``symbol`` (any case) when the table has a ``symbol`` column."""
    if table.num_rows == 0 or "symbol" not in table.column_names:
        return table
    return table.filter(pc.equal(pc.utf8_upper(table["symbol"].cast(pa.string())), symbol.upper()))


def _prior_iv(history: pa.Table, symbol: str, as_of: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Stored ``atm_iv_near`` strictly before ``as_of``, one value per date (the last stored):
    (dates, values), finite values only."""
    if history.num_rows == 0 or "date" not in history.column_names or "atm_iv_near" not in history.column_names:
        return np.array([], dtype="datetime64[D]"), np.array([], dtype=float)
    history = _of_symbol(history, symbol)
    days, iv = arrow_date(history, "date"), arrow_float(history, "atm_iv_near")
    before = np.flatnonzero(days < np.datetime64(as_of, "D"))
    rows = before[_last_per_day(days[before])]
    rows = rows[np.isfinite(iv[rows])]
    return days[rows], iv[rows]


@functools.lru_cache(maxsize=64)
def _iv_rank_window_start(as_of: dt.date) -> dt.date:
    from ledger.calendar import TradingCalendar  # lazy: loading the calendar costs ~0.5 s

    return TradingCalendar.xnys().last_sessions(IV_RANK_SESSIONS, as_of)[0]


def _table(data: pa.Table | pd.DataFrame | None) -> pa.Table:
    return pa.table({}) if data is None else to_arrow(data)


def compute_derived(
    snapshot: pa.Table | pd.DataFrame,
    candles: pa.Table | pd.DataFrame | None,
    history: pa.Table | pd.DataFrame | None,
    *,
    symbol: str,
    as_of: dt.date,
) -> pa.Table:
    """One ``DERIVED_SCHEMA`` row for ``symbol`` on ``as_of``.

    ``snapshot`` is the session's snapshot (``SNAPSHOT_SCHEMA``); ``candles`` the symbol's daily
    candles (``date, close``; later rows are ignored, an optional ``symbol`` column filters);
    ``history`` the symbol's prior derived rows (``date, atm_iv_near``; may include a row for
    ``as_of`` from an earlier run, which is ignored). Raises ``StageError`` for an empty or
    mis-dated snapshot or one without a positive spot.
    """
    chain = _table(snapshot)
    if chain.num_rows == 0:
        raise StageError(f"the {symbol} snapshot for {as_of} is empty; derived metrics need a chain")
    require_columns(chain, ("expiry", "option_type", "strike", "spot"), f"the {symbol} snapshot")
    if "as_of" in chain.column_names:
        days = np.unique(arrow_date(chain, "as_of"))
        if len(days) != 1 or days[0] != np.datetime64(as_of, "D"):
            raise StageError(f"the {symbol} snapshot is dated {', '.join(map(str, days))}, not {as_of}")
    spots = arrow_float(chain, "spot")
    spots = spots[np.isfinite(spots) & (spots > 0)]
    if spots.size == 0:
        raise StageError(f"the {symbol} snapshot for {as_of} has no positive spot; re-run snapshot-options")
    spot = float(spots[0])

    expiry = arrow_date(chain, "expiry")
    option_type = option_type_column(chain["option_type"])
    is_call = np.array(pc.equal(option_type, "call").fill_null(False), dtype=bool)
    is_put = np.array(pc.equal(option_type, "put").fill_null(False), dtype=bool)
    strike, oi, volume = arrow_float(chain, "strike"), arrow_float(chain, "open_interest"), arrow_float(chain, "volume")
    mark = mark_price(arrow_float(chain, "bid"), arrow_float(chain, "ask"), arrow_float(chain, "last"))
    iv, delta = arrow_float(chain, "implied_volatility"), arrow_float(chain, "delta")

    metrics: dict[str, float | None] = {name: None for name in DERIVED_COLUMNS}
    metrics["spot"] = spot
    metrics["pc_oi"] = _ratio(np.nansum(oi[is_put]), np.nansum(oi[is_call]))
    metrics["pc_vol"] = _ratio(np.nansum(volume[is_put]), np.nansum(volume[is_call]))
    metrics["call_wall"] = _wall(strike[is_call & (strike >= spot)], oi[is_call & (strike >= spot)])
    metrics["put_wall"] = _wall(strike[is_put & (strike <= spot)], oi[is_put & (strike <= spot)])
    gamma_1pct = arrow_float(chain, "gamma") * oi * 100.0 * spot * spot * 0.01
    metrics["gamma_peak_strike"] = _wall(strike, np.where(np.isfinite(gamma_1pct), gamma_1pct, np.nan))

    live = np.unique(expiry[expiry > np.datetime64(as_of, "D")])

    def stats(day: np.datetime64) -> dict[str, float | None]:
        rows = expiry == day
        return _expiry_stats(is_call[rows], is_put[rows], strike[rows], mark[rows], iv[rows], delta[rows], spot)

    near = stats(live[0]) if live.size else None
    if near is not None:
        metrics["atm_iv_near"] = near["atm_iv"]
        metrics["em_near_pct"] = near["expected_move_pct"]
        metrics["skew_near_pp"] = near["skew_25d_pp"]
        if live.size > 1:
            second = stats(live[1])["atm_iv"]
            if second is not None and near["atm_iv"] is not None:
                metrics["iv_term_slope"] = second - near["atm_iv"]

    candle_table = _of_symbol(_table(candles), symbol)
    if candle_table.num_rows:
        candle_days, closes = arrow_date(candle_table, "date"), arrow_float(candle_table, "close")
        metrics["rv_20d"] = _realized_vol(candle_days, closes, as_of, 20)
        metrics["rv_60d"] = _realized_vol(candle_days, closes, as_of, 60)
    iv_near, rv20 = metrics["atm_iv_near"], metrics["rv_20d"]
    if iv_near is not None and rv20 is not None and rv20 > 0:
        metrics["iv_rv_20d"] = iv_near / rv20

    if iv_near is not None:
        prior_days, prior_iv = _prior_iv(_table(history), symbol, as_of)
        metrics["atm_iv_near_percentile"] = percentile_rank(prior_iv, iv_near)
        start = np.datetime64(_iv_rank_window_start(as_of), "D")
        metrics["iv_rank_252d"] = iv_rank(np.append(prior_iv[prior_days >= start], iv_near), iv_near)

    row = {"symbol": [symbol], "date": [as_of]} | {k: [v] for k, v in metrics.items()}
    return pa.table(row, schema=DERIVED_SCHEMA)


__all__ = [
    "DERIVED_COLUMNS",
    "DERIVED_SCHEMA",
    "IV_RANK_SESSIONS",
    "compute_derived",
    "expiry_stats",
    "iv_rank",
    "percentile_rank",
    "realized_vol",
]
