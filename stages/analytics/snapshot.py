"""Turn a provider's option chain into the snapshot file's rows (the ``options_snapshot_file`` contract).

Input and output are ``pyarrow.Table`` (a pandas DataFrame is accepted as input). What is added
to the provider's chain, following the original tool (reference 2.3 and 2.5, "Greeks"):

- ``implied_volatility`` where the source has none (null, non-finite or <= 1e-4) is inverted
  with Black-Scholes from the mid when bid > 0 and ask > 0, else from ``last`` when volume > 0;
  ``iv_source`` says which: ``provider``, ``bs_inferred`` or ``missing``. No inference for
  contracts with DTE <= 0: at the session close they have expired and no volatility fits.
- ``delta, gamma, theta, vega`` where the source has none, from Black-Scholes at that IV with
  ``t = calendar days to expiry / 365``, the given risk-free rate and no dividends. Theta is
  per calendar day and vega per 1.00 of volatility, as in ``stages.pricing``. Contracts with
  DTE <= 0 get null greeks, including any the provider sent, so the columns mean one thing.
- ``spot`` and ``as_of`` on every row, and a deterministic row order (expiry, strike,
  option_type, contract_symbol).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

from ledger.errors import StageError
from stages.analytics._tables import dates, num, require_columns, to_pandas
from stages.pricing import bs_greeks, implied_volatility

# An IV at or below this is a placeholder some sources send for "unknown".
MIN_VALID_IV = 1e-4

IV_SOURCE_PROVIDER = "provider"
IV_SOURCE_INFERRED = "bs_inferred"
IV_SOURCE_MISSING = "missing"
IV_SOURCES = (IV_SOURCE_PROVIDER, IV_SOURCE_INFERRED, IV_SOURCE_MISSING)

GREEK_COLUMNS = ("delta", "gamma", "theta", "vega")

#: The snapshot file's columns, one row per contract (the data contract other stages read).
#: ``option_type`` is ``'call'`` or ``'put'``; ``iv_source`` one of ``IV_SOURCES``;
#: ``theta`` per calendar day, ``vega`` per 1.00 of volatility; ``spot`` is the underlying's
#: close for ``as_of`` (the session date).
SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("contract_symbol", pa.string(), nullable=False),
        pa.field("underlying", pa.string(), nullable=False),
        pa.field("expiry", pa.date32(), nullable=False),
        pa.field("option_type", pa.string(), nullable=False),
        pa.field("strike", pa.float64(), nullable=False),
        pa.field("bid", pa.float64()),
        pa.field("ask", pa.float64()),
        pa.field("last", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("open_interest", pa.int64()),
        pa.field("implied_volatility", pa.float64()),
        pa.field("iv_source", pa.string(), nullable=False),
        pa.field("delta", pa.float64()),
        pa.field("gamma", pa.float64()),
        pa.field("theta", pa.float64()),
        pa.field("vega", pa.float64()),
        pa.field("spot", pa.float64(), nullable=False),
        pa.field("as_of", pa.date32(), nullable=False),
    ]
)

_REQUIRED = ("contract_symbol", "underlying", "expiry", "option_type", "strike")
_TYPE_ALIASES = {"call": "call", "c": "call", "put": "put", "p": "put"}


def normalize_option_type(values: pd.Series) -> pd.Series:
    """``'call'``/``'put'`` from any case of call/put/c/p; anything else becomes null."""
    return values.astype("string").str.strip().str.lower().map(_TYPE_ALIASES)


def inference_price(bid: np.ndarray, ask: np.ndarray, last: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """The price an IV is inverted from: mid when both sides quote, else a traded last, else NaN."""
    two_sided = (bid > 0) & (ask > 0)
    traded = (last > 0) & (volume > 0)
    return np.where(two_sided, 0.5 * (bid + ask), np.where(traded, last, np.nan))


def enrich_chain(
    chain: pa.Table | pd.DataFrame,
    spot: float,
    as_of: dt.date,
    risk_free_rate: float = 0.0,
) -> pa.Table:
    """The snapshot rows (``SNAPSHOT_SCHEMA``) for one underlying's provider chain on ``as_of``.

    ``chain`` has ``contract_symbol, underlying, expiry, option_type, strike`` and optionally
    ``bid, ask, last, volume, open_interest, implied_volatility, delta, gamma, theta, vega,
    quote_time`` (absent columns count as null; ``quote_time`` is not part of the snapshot).
    Raises ``StageError`` when a required column is missing, ``spot`` is not a positive number,
    or a row has an option type other than call/put or a null key.
    """
    if spot is None or not np.isfinite(spot) or spot <= 0:
        raise StageError(f"spot must be a positive price to snapshot the chain on {as_of}, got {spot!r}")
    frame = to_pandas(chain)
    require_columns(frame, _REQUIRED, "the provider chain")
    n = len(frame)

    option_type = normalize_option_type(frame["option_type"])
    expiry = dates(frame, "expiry")
    strike = num(frame, "strike")
    bad = option_type.isna().to_numpy() | np.isnat(expiry) | ~np.isfinite(strike) | frame["contract_symbol"].isna().to_numpy()
    if bad.any():
        sample = frame.loc[bad, "contract_symbol"].astype("string").fillna("<null>").head(5).tolist()
        raise StageError(
            f"{int(bad.sum())} chain row(s) have a null key or an option type other than call/put "
            f"(e.g. {', '.join(sample)}); fix the provider mapping before snapshotting"
        )
    is_call = (option_type == "call").to_numpy()

    bid, ask, last = num(frame, "bid"), num(frame, "ask"), num(frame, "last")
    volume, open_interest = num(frame, "volume"), num(frame, "open_interest")
    dte = (expiry - np.datetime64(as_of, "D")).astype(np.int64)
    live = dte > 0
    t = np.where(live, dte, 1).astype(float) / 365.0

    source_iv = num(frame, "implied_volatility")
    has_source_iv = np.isfinite(source_iv) & (source_iv > MIN_VALID_IV)
    price = inference_price(bid, ask, last, volume)
    wanted = ~has_source_iv & live & np.isfinite(price)
    inferred = np.full(n, np.nan)
    if wanted.any():
        inferred[wanted] = implied_volatility(price[wanted], spot, strike[wanted], t[wanted], risk_free_rate, is_call[wanted])
    got_inferred = wanted & np.isfinite(inferred)
    iv = np.where(has_source_iv, source_iv, np.where(got_inferred, inferred, np.nan))
    iv_source = np.where(has_source_iv, IV_SOURCE_PROVIDER, np.where(got_inferred, IV_SOURCE_INFERRED, IV_SOURCE_MISSING))

    model = bs_greeks(spot, strike, t, risk_free_rate, np.where(np.isfinite(iv), iv, 0.3), is_call)
    can_model = live & np.isfinite(iv)
    greeks = {}
    for name in GREEK_COLUMNS:
        given = num(frame, name)
        filled = np.where(np.isfinite(given), given, np.where(can_model, model[name], np.nan))
        greeks[name] = np.where(live, filled, np.nan)

    out = pd.DataFrame(
        {
            "contract_symbol": frame["contract_symbol"].astype("string").str.strip().to_numpy(dtype=object),
            "underlying": frame["underlying"].astype("string").str.strip().str.upper().to_numpy(dtype=object),
            "expiry": expiry,
            "option_type": option_type.to_numpy(dtype=object),
            "strike": strike,
            "bid": bid,
            "ask": ask,
            "last": last,
            "volume": volume,
            "open_interest": open_interest,
            "implied_volatility": iv,
            "iv_source": iv_source,
            **greeks,
        }
    )
    out["spot"] = float(spot)
    out["as_of"] = np.datetime64(as_of, "D")
    out = out.sort_values(["expiry", "strike", "option_type", "contract_symbol"], kind="mergesort")
    return _to_snapshot_table(out)


def _to_snapshot_table(frame: pd.DataFrame) -> pa.Table:
    arrays = []
    for field in SNAPSHOT_SCHEMA:
        column = frame[field.name]
        if pa.types.is_integer(field.type):
            values = column.to_numpy(dtype=float)
            arrays.append(pa.array(np.rint(np.where(np.isfinite(values), values, 0)).astype(np.int64), mask=~np.isfinite(values)))
        elif pa.types.is_floating(field.type):
            values = column.to_numpy(dtype=float)
            arrays.append(pa.array(values, mask=~np.isfinite(values), type=field.type))
        elif pa.types.is_date(field.type):
            arrays.append(pa.array(column.to_numpy(dtype="datetime64[D]"), type=field.type))
        else:
            arrays.append(pa.array(column.to_numpy(dtype=object), type=field.type))
    return pa.Table.from_arrays(arrays, schema=SNAPSHOT_SCHEMA)


__all__ = [
    "GREEK_COLUMNS",
    "IV_SOURCES",
    "IV_SOURCE_INFERRED",
    "IV_SOURCE_MISSING",
    "IV_SOURCE_PROVIDER",
    "MIN_VALID_IV",
    "SNAPSHOT_SCHEMA",
    "enrich_chain",
    "inference_price",
    "normalize_option_type",
]
