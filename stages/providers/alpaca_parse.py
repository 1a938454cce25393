"""Alpaca JSON to the provider schemas. Anything that does not fit is a ``MalformedResponseError``.

The adapter asks alpaca-py for raw dicts (``raw_data=True``): the snapshot's ``dailyBar`` (the
day's option volume) is not in alpaca-py's models, and parsing here keeps one strict validator
per dataset instead of pydantic errors leaking out.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from ledger.errors import MalformedResponseError, UsageError
from stages.occ import parse_occ
from stages.providers.base import (
    OPTION_BARS_SCHEMA,
    OPTION_BARS_SORT,
    OPTION_CHAIN_SCHEMA,
    OPTION_CHAIN_SORT,
    OPTION_CONTRACTS_SCHEMA,
    OPTION_CONTRACTS_SORT,
    STOCK_BARS_SCHEMA,
    STOCK_BARS_SORT,
    sorted_table,
)

NEW_YORK = ZoneInfo("America/New_York")


def _bad(what: str, detail: str) -> MalformedResponseError:
    return MalformedResponseError(f"Alpaca returned a malformed {what}: {detail}")


@functools.lru_cache(maxsize=8192)
def parse_time(value: str) -> dt.datetime:
    """An RFC 3339 timestamp (``Z`` or offset, any fraction digits) as an aware UTC datetime."""
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Python < 3.12 accepts at most 6 fraction digits
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{(digits + '000000')[:6]}{rest[len(digits):]}"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _time(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _bad(what, f"timestamp {value!r} is not a string")
    try:
        return parse_time(value)
    except ValueError:
        raise _bad(what, f"timestamp {value!r} is not RFC 3339") from None


def _num(row: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> float | None:
    value = row.get(key)
    if value is None:
        if required:
            raise _bad(what, f"field {key!r} is missing")
        return None
    if isinstance(value, bool):
        raise _bad(what, f"field {key!r} is a boolean")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad(what, f"field {key!r} is not a number: {value!r}") from None


def _int(row: Mapping[str, Any], key: str, what: str, *, required: bool = True) -> int | None:
    value = _num(row, key, what, required=required)
    return None if value is None else int(value)


def _date(value: Any, what: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise _bad(what, f"date {value!r} is not YYYY-MM-DD") from None


def _mapping(payload: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise _bad(what, f"expected an object, got {type(payload).__name__}")
    return payload


def bars_table(payload: Any, *, key_name: str, start: dt.date, end: dt.date, what: str) -> pa.Table:
    """``{"SYM": [{"t","o","h","l","c","v","n","vw"}, ...]}`` to STOCK/OPTION bars rows in [start, end]."""
    schema = STOCK_BARS_SCHEMA if key_name == "symbol" else OPTION_BARS_SCHEMA
    sort = STOCK_BARS_SORT if key_name == "symbol" else OPTION_BARS_SORT
    cols: dict[str, list[Any]] = {f.name: [] for f in schema}
    for symbol, bars in _mapping(payload, what).items():
        if not isinstance(bars, list):
            raise _bad(what, f"bars of {symbol!r} are not a list")
        for bar in bars:
            bar = _mapping(bar, what)
            ts = _time(bar.get("t"), what)
            day = ts.astimezone(NEW_YORK).date()
            if not start <= day <= end:
                continue
            cols[key_name].append(symbol)
            cols["date"].append(day)
            cols["ts"].append(ts)
            for name, key in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c")):
                cols[name].append(_num(bar, key, what))
            cols["volume"].append(_int(bar, "v", what))
            cols["vwap"].append(_num(bar, "vw", what, required=False))
            cols["trade_count"].append(_int(bar, "n", what, required=False))
    table = pa.Table.from_pydict(cols, schema=schema)
    return sorted_table(table, sort).combine_chunks()


def contracts_page(payload: Any) -> tuple[list[Mapping[str, Any]], str | None]:
    """The contracts and the next page token of one ``/v2/options/contracts`` page."""
    page = _mapping(payload, "option contracts page")
    rows = page.get("option_contracts")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        raise _bad("option contracts page", "'option_contracts' is not a list")
    token = page.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise _bad("option contracts page", "'next_page_token' is not a string")
    return rows, token or None


def contracts_table(rows: Iterable[Mapping[str, Any]], *, underlying: str, as_of: dt.date, live: bool) -> pa.Table:
    """Contracts to OPTION_CONTRACTS_SCHEMA; for a past ``as_of``, values dated later are nulled."""
    what = "option contract"
    cols: dict[str, list[Any]] = {f.name: [] for f in OPTION_CONTRACTS_SCHEMA}
    seen: set[str] = set()
    for row in rows:
        row = _mapping(row, what)
        symbol = row.get("symbol")
        if not isinstance(symbol, str):
            raise _bad(what, "'symbol' is missing")
        if symbol in seen:
            continue
        seen.add(symbol)
        try:
            occ = parse_occ(symbol)
        except UsageError:
            raise _bad(what, f"{symbol!r} is not an OCC symbol") from None
        option_type = str(row.get("type") or occ.option_type).lower()
        if option_type not in ("call", "put"):
            raise _bad(what, f"type {option_type!r} of {symbol} is neither call nor put")
        oi_date = _date(row.get("open_interest_date"), what)
        close_date = _date(row.get("close_price_date"), what)
        oi = _int(row, "open_interest", what, required=False)
        close = _num(row, "close_price", what, required=False)
        if not live:  # point-in-time values from after as_of would leak the future
            if oi_date is None or oi_date > as_of:
                oi, oi_date = None, None
            if close_date is None or close_date > as_of:
                close, close_date = None, None
        cols["contract_symbol"].append(symbol)
        cols["underlying"].append(str(row.get("underlying_symbol") or underlying))
        cols["expiry"].append(_date(row.get("expiration_date"), what) or occ.expiry)
        cols["option_type"].append(option_type)
        cols["strike"].append(_num(row, "strike_price", what, required=False) or occ.strike)
        cols["multiplier"].append(int(_num(row, "size", what, required=False) or 100))
        cols["status"].append(str(row.get("status") or "active"))
        cols["open_interest"].append(oi)
        cols["open_interest_date"].append(oi_date)
        cols["close_price"].append(close)
        cols["close_price_date"].append(close_date)
    table = pa.Table.from_pydict(cols, schema=OPTION_CONTRACTS_SCHEMA)
    return sorted_table(table, OPTION_CONTRACTS_SORT).combine_chunks()


def chain_table(
    payload: Any, *, underlying: str, as_of: dt.date, open_interest: Mapping[str, int | None], now: dt.datetime
) -> tuple[pa.Table, dt.datetime]:
    """``{"OCC": snapshot}`` to OPTION_CHAIN_SCHEMA rows and the newest quote time."""
    what = "option chain snapshot"
    cols: dict[str, list[Any]] = {f.name: [] for f in OPTION_CHAIN_SCHEMA}
    newest: dt.datetime | None = None
    for symbol, snap in _mapping(payload, what).items():
        snap = _mapping(snap, what)
        try:
            occ = parse_occ(symbol, underlying=underlying)
        except UsageError:
            raise _bad(what, f"{symbol!r} is not an OCC symbol of {underlying}") from None
        quote = _mapping(snap.get("latestQuote") or {}, what)
        trade = _mapping(snap.get("latestTrade") or {}, what)
        greeks = _mapping(snap.get("greeks") or {}, what)
        daily = _mapping(snap.get("dailyBar") or {}, what)
        quoted = _time(quote["t"], what) if quote.get("t") else now
        newest = quoted if newest is None or quoted > newest else newest
        volume = 0
        if daily.get("t") and _time(daily["t"], what).astimezone(NEW_YORK).date() == as_of:
            volume = _int(daily, "v", what, required=False) or 0
        cols["contract_symbol"].append(symbol)
        cols["underlying"].append(underlying)
        cols["expiry"].append(occ.expiry)
        cols["option_type"].append(occ.option_type)
        cols["strike"].append(occ.strike)
        cols["bid"].append(_num(quote, "bp", what, required=False))
        cols["ask"].append(_num(quote, "ap", what, required=False))
        cols["last"].append(_num(trade, "p", what, required=False))
        cols["volume"].append(volume)
        cols["open_interest"].append(open_interest.get(symbol))
        cols["implied_volatility"].append(_num(snap, "impliedVolatility", what, required=False))
        for g in ("delta", "gamma", "theta", "vega"):
            cols[g].append(_num(greeks, g, what, required=False))
        cols["quote_time"].append(quoted)
    table = pa.Table.from_pydict(cols, schema=OPTION_CHAIN_SCHEMA)
    return sorted_table(table, OPTION_CHAIN_SORT).combine_chunks(), newest or now


def with_open_interest(table: pa.Table, open_interest: Mapping[str, int | None]) -> pa.Table:
    """``table`` (OPTION_CHAIN_SCHEMA) with its ``open_interest`` column taken from ``open_interest``."""
    column = pa.array([open_interest.get(s) for s in table.column("contract_symbol").to_pylist()], pa.int64())
    i = table.schema.get_field_index("open_interest")
    return table.set_column(i, table.schema.field(i), column)


def daily_bars(payload: Any, *, underlying: str, as_of: dt.date) -> pa.Table:
    """The session's OPTION_BARS rows from a chain snapshot's ``dailyBar`` (only bars dated
    ``as_of``: a contract that has not traded in the session has none), parsed exactly as the
    bars endpoint's answer is."""
    what = "option chain snapshot"
    bars: dict[str, list[Any]] = {}
    for symbol, snap in _mapping(payload, what).items():
        daily = _mapping(snap, what).get("dailyBar")
        if daily:
            bars[symbol] = [daily]
    return bars_table(bars, key_name="contract_symbol", start=as_of, end=as_of, what=f"{what} of {underlying}")


__all__ = ["bars_table", "chain_table", "contracts_page", "contracts_table", "daily_bars", "parse_time",
           "with_open_interest"]
