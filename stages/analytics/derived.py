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
``DERIVED_SCHEMA``.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa

from ledger.errors import StageError
from stages.analytics._tables import dates, num, require_columns, to_pandas
from stages.analytics.flow import mark_price
from stages.analytics.snapshot import normalize_option_type

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
    by_strike = pd.Series(oi[ok]).groupby(strikes[ok]).sum()
    if by_strike.max() <= 0:
        return None
    return float(by_strike.index[np.argmax(by_strike.to_numpy())])  # argmax takes the first: lowest strike


def _nearest(values: np.ndarray, target: float, tiebreak: np.ndarray) -> int | None:
    """Index of the value nearest ``target`` (ties: smaller ``tiebreak``); None if none is finite."""
    ok = np.flatnonzero(np.isfinite(values) & np.isfinite(tiebreak))
    if ok.size == 0:
        return None
    order = np.lexsort((tiebreak[ok], np.abs(values[ok] - target)))
    return int(ok[order[0]])


def expiry_stats(rows: pd.DataFrame, spot: float) -> dict[str, float | None]:
    """ATM strike, straddle, expected move, ATM IV and 25-delta skew of one expiry's rows.

    ``rows`` has ``option_type, strike, mark, implied_volatility, delta``.
    """
    out: dict[str, float | None] = dict(atm_strike=None, expected_move_pct=None, atm_iv=None, skew_25d_pp=None)
    calls = rows[rows["option_type"] == "call"]
    puts = rows[rows["option_type"] == "put"]
    call_mark = calls.groupby("strike")["mark"].mean()
    put_mark = puts.groupby("strike")["mark"].mean()
    both = pd.concat([call_mark.rename("c"), put_mark.rename("p")], axis=1, join="inner").dropna()
    if not both.empty:
        strikes = both.index.to_numpy(dtype=float)
        i = _nearest(strikes, spot, strikes)
        if i is not None:
            atm = strikes[i]
            out["atm_strike"] = float(atm)
            out["expected_move_pct"] = float(both["c"].iloc[i] + both["p"].iloc[i]) / spot
            ivs = rows.loc[rows["strike"] == atm, "implied_volatility"].to_numpy(dtype=float)
            ivs = ivs[np.isfinite(ivs)]
            out["atm_iv"] = float(ivs.mean()) if ivs.size else None
    p = _nearest(_with_iv(puts, "delta"), -0.25, puts["strike"].to_numpy(dtype=float))
    c = _nearest(_with_iv(calls, "delta"), 0.25, calls["strike"].to_numpy(dtype=float))
    if p is not None and c is not None:
        put_iv = float(puts["implied_volatility"].iloc[p])
        call_iv = float(calls["implied_volatility"].iloc[c])
        out["skew_25d_pp"] = (put_iv - call_iv) * 100.0
    return out


def _with_iv(rows: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` where the row also has an IV, else NaN (a delta without an IV cannot price skew)."""
    values = rows[column].to_numpy(dtype=float)
    return np.where(np.isfinite(rows["implied_volatility"].to_numpy(dtype=float)), values, np.nan)


def realized_vol(candles: pd.DataFrame, as_of: dt.date, window: int) -> float | None:
    """Annualised close-to-close volatility over the last ``window`` log returns up to ``as_of``."""
    if candles.empty:
        return None
    days = dates(candles, "date")
    frame = pd.DataFrame({"date": days, "close": num(candles, "close")})
    frame = frame[frame["date"] <= np.datetime64(as_of, "D")]
    frame = frame.drop_duplicates("date", keep="last").sort_values("date")
    close = frame["close"].to_numpy(dtype=float)
    close = np.where(close > 0, close, np.nan)  # a non-positive close is bad data, not a price
    returns = np.diff(np.log(close))
    if returns.size < window:
        return None
    last = returns[-window:]
    if not np.isfinite(last).all():
        return None
    return float(np.std(last, ddof=1) * math.sqrt(TRADING_DAYS_PER_YEAR))


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


def _prior_iv(history: pd.DataFrame, symbol: str, as_of: dt.date) -> pd.DataFrame:
    """Stored ``atm_iv_near`` strictly before ``as_of``, one value per date (the last stored)."""
    if history.empty or "date" not in history or "atm_iv_near" not in history:
        return pd.DataFrame({"date": np.array([], dtype="datetime64[D]"), "iv": np.array([], dtype=float)})
    if "symbol" in history:
        history = history[history["symbol"].astype("string").str.upper() == symbol.upper()]
    frame = pd.DataFrame({"date": dates(history, "date"), "iv": num(history, "atm_iv_near")})
    frame = frame[frame["date"] < np.datetime64(as_of, "D")].drop_duplicates("date", keep="last")
    return frame[np.isfinite(frame["iv"].to_numpy())]


def _iv_rank_window_start(as_of: dt.date) -> dt.date:
    from ledger.calendar import TradingCalendar  # lazy: loading the calendar costs ~0.5 s

    return TradingCalendar.xnys().last_sessions(IV_RANK_SESSIONS, as_of)[0]


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
    chain = to_pandas(snapshot)
    if chain.empty:
        raise StageError(f"the {symbol} snapshot for {as_of} is empty; derived metrics need a chain")
    require_columns(chain, ("expiry", "option_type", "strike", "spot"), f"the {symbol} snapshot")
    if "as_of" in chain:
        days = np.unique(dates(chain, "as_of"))
        if len(days) != 1 or days[0] != np.datetime64(as_of, "D"):
            raise StageError(f"the {symbol} snapshot is dated {', '.join(map(str, days))}, not {as_of}")
    spots = num(chain, "spot")
    spots = spots[np.isfinite(spots) & (spots > 0)]
    if spots.size == 0:
        raise StageError(f"the {symbol} snapshot for {as_of} has no positive spot; re-run snapshot-options")
    spot = float(spots[0])

    rows = pd.DataFrame(
        {
            "expiry": dates(chain, "expiry"),
            "option_type": normalize_option_type(chain["option_type"]).to_numpy(dtype=object),
            "strike": num(chain, "strike"),
            "oi": num(chain, "open_interest"),
            "volume": num(chain, "volume"),
            "mark": mark_price(num(chain, "bid"), num(chain, "ask"), num(chain, "last")),
            "implied_volatility": num(chain, "implied_volatility"),
            "delta": num(chain, "delta"),
            "gamma": num(chain, "gamma"),
        }
    )
    is_call = (rows["option_type"] == "call").to_numpy()
    is_put = (rows["option_type"] == "put").to_numpy()
    oi, volume, strike = rows["oi"].to_numpy(), rows["volume"].to_numpy(), rows["strike"].to_numpy()

    metrics: dict[str, float | None] = {name: None for name in DERIVED_COLUMNS}
    metrics["spot"] = spot
    metrics["pc_oi"] = _ratio(np.nansum(oi[is_put]), np.nansum(oi[is_call]))
    metrics["pc_vol"] = _ratio(np.nansum(volume[is_put]), np.nansum(volume[is_call]))
    metrics["call_wall"] = _wall(strike[is_call & (strike >= spot)], oi[is_call & (strike >= spot)])
    metrics["put_wall"] = _wall(strike[is_put & (strike <= spot)], oi[is_put & (strike <= spot)])
    gamma_1pct = rows["gamma"].to_numpy() * oi * 100.0 * spot * spot * 0.01
    metrics["gamma_peak_strike"] = _wall(strike, np.where(np.isfinite(gamma_1pct), gamma_1pct, np.nan))

    live = sorted(set(rows.loc[rows["expiry"] > np.datetime64(as_of, "D"), "expiry"].dropna()))
    near = expiry_stats(rows[rows["expiry"] == live[0]], spot) if live else None
    if near is not None:
        metrics["atm_iv_near"] = near["atm_iv"]
        metrics["em_near_pct"] = near["expected_move_pct"]
        metrics["skew_near_pp"] = near["skew_25d_pp"]
        if len(live) > 1:
            second = expiry_stats(rows[rows["expiry"] == live[1]], spot)["atm_iv"]
            if second is not None and near["atm_iv"] is not None:
                metrics["iv_term_slope"] = second - near["atm_iv"]

    candle_frame = to_pandas(candles)
    if not candle_frame.empty and "symbol" in candle_frame:
        candle_frame = candle_frame[candle_frame["symbol"].astype("string").str.upper() == symbol.upper()]
    metrics["rv_20d"] = realized_vol(candle_frame, as_of, 20)
    metrics["rv_60d"] = realized_vol(candle_frame, as_of, 60)
    iv_near, rv20 = metrics["atm_iv_near"], metrics["rv_20d"]
    if iv_near is not None and rv20 is not None and rv20 > 0:
        metrics["iv_rv_20d"] = iv_near / rv20

    if iv_near is not None:
        prior = _prior_iv(to_pandas(history), symbol, as_of)
        metrics["atm_iv_near_percentile"] = percentile_rank(prior["iv"].to_numpy(dtype=float), iv_near)
        start = np.datetime64(_iv_rank_window_start(as_of), "D")
        recent = prior.loc[prior["date"] >= start, "iv"].to_numpy(dtype=float)
        metrics["iv_rank_252d"] = iv_rank(np.append(recent, iv_near), iv_near)

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
