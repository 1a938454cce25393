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
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import StageError
from stages.analytics._tables import arrow_date, arrow_float, require_columns, to_arrow
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


def option_type_column(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """``normalize_option_type`` on an Arrow column: ``'call'``/``'put'`` or null."""
    text = pc.utf8_lower(pc.utf8_trim_whitespace(values.cast(pa.string())))
    kind = pa.scalar(None, pa.string())
    for alias, name in _TYPE_ALIASES.items():
        kind = pc.if_else(pc.equal(text, alias), name, kind)
    return kind


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
    frame = to_arrow(chain)
    require_columns(frame, _REQUIRED, "the provider chain")
    n = frame.num_rows

    option_type = option_type_column(frame["option_type"])
    contract = pc.utf8_trim_whitespace(frame["contract_symbol"].cast(pa.string()))
    expiry = arrow_date(frame, "expiry")
    strike = arrow_float(frame, "strike")
    bad = (_is_null(option_type) | np.isnat(expiry) | ~np.isfinite(strike) | _is_null(frame["contract_symbol"]))
    if bad.any():
        sample = frame["contract_symbol"].cast(pa.string()).filter(pa.array(bad)).fill_null("<null>")
        raise StageError(
            f"{int(bad.sum())} chain row(s) have a null key or an option type other than call/put "
            f"(e.g. {', '.join(sample.to_pylist()[:5])}); fix the provider mapping before snapshotting"
        )
    is_call = _is_true(pc.equal(option_type, "call"))

    bid, ask, last = arrow_float(frame, "bid"), arrow_float(frame, "ask"), arrow_float(frame, "last")
    volume, open_interest = arrow_float(frame, "volume"), arrow_float(frame, "open_interest")
    dte = (expiry - np.datetime64(as_of, "D")).astype(np.int64)
    live = dte > 0
    t = np.where(live, dte, 1).astype(float) / 365.0

    source_iv = arrow_float(frame, "implied_volatility")
    has_source_iv = np.isfinite(source_iv) & (source_iv > MIN_VALID_IV)
    price = inference_price(bid, ask, last, volume)
    wanted = ~has_source_iv & live & np.isfinite(price)
    inferred = np.full(n, np.nan)
    if wanted.any():
        inferred[wanted] = implied_volatility(price[wanted], spot, strike[wanted], t[wanted], risk_free_rate, is_call[wanted])
    got_inferred = wanted & np.isfinite(inferred)
    iv = np.where(has_source_iv, source_iv, np.where(got_inferred, inferred, np.nan))
    source = np.where(has_source_iv, 0, np.where(got_inferred, 1, 2))  # an index into IV_SOURCES
    iv_source = pa.array(IV_SOURCES, pa.string()).take(pa.array(source))

    model = bs_greeks(spot, strike, t, risk_free_rate, np.where(np.isfinite(iv), iv, 0.3), is_call)
    can_model = live & np.isfinite(iv)
    greeks = {}
    for name in GREEK_COLUMNS:
        given = arrow_float(frame, name)
        filled = np.where(np.isfinite(given), given, np.where(can_model, model[name], np.nan))
        greeks[name] = np.where(live, filled, np.nan)

    columns = {
        "contract_symbol": contract,
        "underlying": pc.utf8_upper(pc.utf8_trim_whitespace(frame["underlying"].cast(pa.string()))),
        "expiry": expiry,
        "option_type": option_type,
        "strike": strike,
        "bid": bid,
        "ask": ask,
        "last": last,
        "volume": volume,
        "open_interest": open_interest,
        "implied_volatility": iv,
        "iv_source": iv_source,
        **greeks,
        "spot": np.full(n, float(spot)),
        "as_of": np.full(n, np.datetime64(as_of, "D")),
    }
    table = _to_snapshot_table(columns)
    order = pc.sort_indices(table, [(k, "ascending") for k in ("expiry", "strike", "option_type", "contract_symbol")])
    return table.take(order)


def _is_null(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _is_true(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _to_snapshot_table(columns: dict[str, Any]) -> pa.Table:
    """``SNAPSHOT_SCHEMA`` from numpy or Arrow columns: non-finite numbers become null, counts
    are rounded to integers."""
    arrays = []
    for field in SNAPSHOT_SCHEMA:
        column = columns[field.name]
        if pa.types.is_integer(field.type):
            arrays.append(pa.array(np.rint(np.where(np.isfinite(column), column, 0)).astype(np.int64), mask=~np.isfinite(column)))
        elif pa.types.is_floating(field.type):
            arrays.append(pa.array(column, mask=~np.isfinite(column), type=field.type))
        elif isinstance(column, np.ndarray):
            arrays.append(pa.array(column, type=field.type))
        else:
            arrays.append(pa.concat_arrays(column.chunks) if isinstance(column, pa.ChunkedArray) else column)
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
    "option_type_column",
]
