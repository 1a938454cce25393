"""Valuing the portfolio from one session's chain snapshot rows (pure: no I/O, no clock).

Per leg, matched to the snapshot by (underlying, expiry, option type, strike):

* **mark** = mid when bid > 0 and ask > 0, else last, else ask, else bid (each only when > 0):
  the older tool's order. A leg whose contract is not in the snapshot is *missing* and its
  position gets no value, P&L or Greeks (never a value of zero); a contract in the snapshot with
  no price at all is *unpriced*, treated the same way.
* **Greeks** per share from the snapshot (delta, gamma, theta per calendar day, vega per 1.00 of
  volatility), or Black-Scholes from the snapshot's implied volatility at the given rate where
  the snapshot has none; multiplied by the signed contracts x 100.
* A leg that expired before the session (expiry < session) is reported *expired* with its last
  mark: the caller passes the rows of the last snapshot on or before its expiry. It adds to the
  position's value and P&L but no Greeks (it is gone).

Per position: value = sum(signed contracts x 100 x mark); P&L = value - cost, where cost is
``cost_basis x 100 x contracts`` for a single leg (negative when short: premium received) and
``net_debit`` for a multi-leg position (negative for a credit); P&L % = P&L / |cost|.
``mark`` is the leg's mark for a single leg and the net price per unit of the structure for a
multi-leg one (value / (100 x gcd of the legs' contracts)), negative for a net credit.
Spread % = (ask - bid) / mid (for a multi-leg position: sum(contracts x (ask - bid)) /
sum(contracts x mid), the cost of crossing relative to gross premium). DTE is calendar days to
the nearest leg's expiry.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import pandas as pd

from stages.portfolio.model import MULTIPLIER, Portfolio
from stages.pricing import bs_greeks

#: The snapshot columns valuation reads (``stages.analytics.snapshot.SNAPSHOT_SCHEMA``).
QUOTE_COLUMNS = ("contract_symbol", "underlying", "expiry", "option_type", "strike", "bid", "ask", "last",
                 "implied_volatility", "delta", "gamma", "theta", "vega", "spot", "as_of")
GREEKS = ("delta", "gamma", "theta", "vega")

OK, MISSING, UNPRICED, EXPIRED = "ok", "missing", "unpriced", "expired"


@attrs.frozen(kw_only=True)
class PositionValue:
    """One position valued on ``as_of`` (None where it cannot be known); ``legs`` are dicts."""

    id: str
    symbol: str
    kind: str
    description: str
    status: str  # ok | missing | unpriced | expired
    spot: float | None
    dte: int | None
    expiry: dt.date
    contracts: int | None
    cost: float | None
    cost_basis: float | None
    net_debit: float | None
    mark: float | None
    value: float | None
    pnl: float | None
    pnl_pct: float | None
    spread_pct: float | None
    delta_shares: float | None
    delta_dollars: float | None
    gamma_shares: float | None
    theta_per_day: float | None
    vega_per_vol_point: float | None
    missing_legs: tuple[str, ...] = ()
    expired: bool = False
    marks_as_of: tuple[dt.date, ...] = ()
    legs: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        fields = attrs.asdict(self, recurse=False)
        legs = fields.pop("legs")  # already JSON-ready (see value_portfolio)
        return {**_clean(fields), "legs": [dict(leg) for leg in legs]}


@attrs.frozen(kw_only=True)
class PortfolioValuation:
    """Positions valued on ``as_of``, the leg table (for stress) and the exposure totals."""

    as_of: dt.date
    rate: float
    positions: tuple[PositionValue, ...]
    legs: pd.DataFrame = attrs.field(eq=False, repr=False)
    exposure: Mapping[str, Any] = attrs.field(factory=dict)


def mark_prices(bid: np.ndarray, ask: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mark, source) per row: mid, else last, else ask, else bid (each when > 0), else NaN / ''."""
    bid, ask, last = (np.asarray(x, dtype=float) for x in (bid, ask, last))
    with np.errstate(invalid="ignore"):
        two = (bid > 0) & (ask > 0)
        has_last, has_ask, has_bid = last > 0, ask > 0, bid > 0
    mark = np.where(two, 0.5 * (bid + ask), np.where(has_last, last, np.where(has_ask, ask, np.where(has_bid, bid, np.nan))))
    source = np.where(two, "mid", np.where(has_last, "last", np.where(has_ask, "ask", np.where(has_bid, "bid", ""))))
    return mark, source


def leg_table(portfolio: Portfolio) -> dict[str, np.ndarray]:
    """One entry per leg of every position, in file order, as numpy columns."""
    rows = [(p_index, l_index, position.id, position.symbol, leg.side, leg.option_type, leg.expiry, float(leg.strike),
             int(leg.contracts), int(leg.signed_contracts), leg.ratio)
            for p_index, position in enumerate(portfolio.positions) for l_index, leg in enumerate(position.legs)]
    names = ("position", "leg", "id", "symbol", "side", "option_type", "expiry", "strike", "contracts", "signed", "ratio")
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    out: dict[str, np.ndarray] = {}
    for name, values in zip(names, cols, strict=True):
        if name in ("position", "leg", "contracts", "signed"):
            out[name] = np.asarray(values, dtype=np.int64)
        elif name == "strike":
            out[name] = np.asarray(values, dtype=float)
        elif name == "expiry":
            out[name] = np.asarray(values, dtype="datetime64[D]")
        else:
            out[name] = np.asarray(values, dtype=object)
    out["strike_milli"] = np.rint(out["strike"] * 1000).astype(np.int64)
    return out


def _quote_columns(quotes: Any) -> dict[str, np.ndarray]:
    """Snapshot rows (an Arrow table or a DataFrame) as numpy columns (absent ones are NaN)."""
    import pyarrow as pa

    n = quotes.num_rows if isinstance(quotes, pa.Table) else len(quotes)
    names = quotes.column_names if isinstance(quotes, pa.Table) else list(quotes.columns)
    out: dict[str, np.ndarray] = {}
    for column in QUOTE_COLUMNS:
        if column not in names:
            out[column] = np.full(n, np.nan)
            continue
        values = quotes[column]
        if isinstance(values, pa.ChunkedArray):
            if column in ("expiry", "as_of"):
                out[column] = values.to_numpy().astype("datetime64[D]") if n else np.zeros(0, "datetime64[D]")
            elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
                out[column] = values.to_numpy(zero_copy_only=False).astype(object)
            else:
                out[column] = values.to_numpy(zero_copy_only=False).astype(float)
        elif column in ("expiry", "as_of"):
            out[column] = pd.to_datetime(values).to_numpy().astype("datetime64[D]")
        elif column in ("contract_symbol", "underlying", "option_type"):
            out[column] = values.to_numpy(dtype=object)
        else:
            out[column] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return out


def _match(legs: Mapping[str, np.ndarray], q: Mapping[str, np.ndarray]) -> np.ndarray:
    """For each leg, the index of its contract's row in ``q`` (the newest snapshot's), else -1.

    Keys are (underlying, expiry, option type, strike in thousandths) as the snapshot contract
    writes them (upper-case tickers, ``call``/``put``)."""
    if not len(q["strike"]):
        return np.full(len(legs["strike"]), -1, dtype=np.int64)
    order = np.argsort(q["as_of"].astype("datetime64[D]"), kind="stable")  # newest last

    def key(symbol: np.ndarray, expiry: np.ndarray, kind: np.ndarray, strike: np.ndarray) -> pd.MultiIndex:
        return pd.MultiIndex.from_arrays([symbol.astype(object), expiry.astype("datetime64[D]").astype(np.int64),
                                          kind.astype(object), np.rint(strike * 1000).astype(np.int64)])

    quotes = key(q["underlying"][order], q["expiry"][order], q["option_type"][order], q["strike"][order])
    keep = ~quotes.duplicated(keep="last")
    rows, quotes = order[keep], quotes[keep]
    at = quotes.get_indexer(key(legs["symbol"], legs["expiry"], legs["option_type"], legs["strike"]))
    return np.where(at >= 0, rows[at], -1).astype(np.int64)


def value_legs(legs: Mapping[str, np.ndarray], quotes: Any, *, as_of: dt.date, rate: float,
               spots: Mapping[str, float]) -> pd.DataFrame:
    """``legs`` (``leg_table``) matched to ``quotes`` (snapshot rows), with marks, Greeks and status."""
    q = _quote_columns(quotes)
    at = _match(legs, q)
    found = at >= 0
    safe = np.where(found, at, 0)
    n = len(at)

    def pick(name: str) -> np.ndarray:
        column = q[name]
        if not len(column):
            return np.full(n, np.nan)
        values = column[safe]
        if values.dtype.kind == "f":
            return np.where(found, values, np.nan)
        out = values.astype(object)
        out[~found] = None
        return out

    out: dict[str, Any] = dict(legs)
    dte = (legs["expiry"] - np.datetime64(as_of, "D")).astype(np.int64)
    expired = dte < 0
    bid, ask, last = pick("bid"), pick("ask"), pick("last")
    mark, source = mark_prices(bid, ask, last)
    priced = found & np.isfinite(mark)
    spot_now = np.array([spots.get(sym, np.nan) for sym in legs["symbol"].tolist()], dtype=float)
    quote_spot = pick("spot")
    spot = np.where(expired | ~np.isfinite(spot_now), quote_spot, spot_now)
    iv = pick("implied_volatility")
    with np.errstate(invalid="ignore"):
        iv = np.where(iv > 1e-4, iv, np.nan)
    live = dte > 0
    t = np.where(live, dte, 1).astype(float) / 365.0
    is_call = legs["option_type"] == "call"
    model = bs_greeks(np.where(np.isfinite(spot), spot, 1.0), legs["strike"], t, rate,
                      np.where(np.isfinite(iv), iv, 0.3), is_call)
    can_model = live & np.isfinite(iv) & np.isfinite(spot)
    for name in GREEKS:
        given = pick(name)
        from_chain = np.isfinite(given)
        value = np.where(from_chain, given, np.where(can_model, model[name], np.nan))
        # Expired and expiring legs carry no risk forward; missing ones are unknown.
        out[name] = np.where(found & live, value, np.where(found, 0.0, np.nan))
        if name == "delta":
            out["greeks_source"] = np.where(~(found & live), "", np.where(
                from_chain, "chain", np.where(can_model, "black_scholes", "")))
    out.update(contract_symbol=pick("contract_symbol"), quote_as_of=np.where(
        found, q["as_of"][safe] if len(q["as_of"]) else np.datetime64("NaT", "D"), np.datetime64("NaT", "D")),
        bid=bid, ask=ask, last=last, dte=dte, spot=spot, implied_volatility=iv,
        mark=np.where(priced, mark, np.nan), mark_source=np.where(priced, source, ""), found=found, priced=priced,
        expired=expired,
        status=np.where(~found, MISSING, np.where(~priced, UNPRICED, np.where(expired, EXPIRED, OK))))
    scale = legs["signed"].astype(float) * MULTIPLIER
    out["value"] = scale * out["mark"]
    out["delta_shares"] = scale * out["delta"]
    out["gamma_shares"] = scale * out["gamma"]
    out["theta_per_day"] = scale * out["theta"]
    out["vega_per_vol_point"] = scale * out["vega"] / 100.0
    out["delta_dollars"] = out["delta_shares"] * spot
    with np.errstate(invalid="ignore"):
        two_sided = (bid > 0) & (ask > 0)
    out["spread"] = np.where(found & two_sided, ask - bid, np.nan)
    out["mid"] = np.where(found & two_sided, 0.5 * (bid + ask), np.nan)
    return pd.DataFrame(out)


def _opt(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else value.astype("datetime64[D]").item().isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _describe(position: Any) -> str:
    if position.kind == "single":
        side = "" if position.side == "long" else "short "
        return f"{side}{position.option_type} {position.strike:g} {position.expiry.isoformat()}"
    return " / ".join(f"{'+' if g.side == 'long' else '-'}{g.contracts} {g.option_type[0].upper()}{g.strike:g} "
                      f"{g.expiry.isoformat()}" for g in position.legs)


_LEG_FIELDS = ("side", "option_type", "expiry", "strike", "contracts", "ratio", "contract_symbol", "status", "dte",
               "bid", "ask", "last", "mark", "mark_source", "implied_volatility", "delta", "gamma", "theta", "vega",
               "greeks_source", "quote_as_of")


def _sum(values: np.ndarray) -> float | None:
    return float(values.sum()) if len(values) and np.isfinite(values).all() else None


def _as_python(values: np.ndarray) -> list[Any]:
    """A column as JSON-ready Python values: NaN and NaT as None, dates as ISO strings."""
    if values.dtype.kind == "M":
        text = np.datetime_as_string(values.astype("datetime64[D]"))
        return [None if t == "NaT" else t for t in text.tolist()]
    if values.dtype.kind == "f":
        return [None if v != v or v in (math.inf, -math.inf) else v for v in values.tolist()]
    if values.dtype.kind == "O":
        return [None if isinstance(v, float) and v != v else _clean(v) for v in values.tolist()]
    return values.tolist()


def value_portfolio(portfolio: Portfolio, quotes: Any, *, as_of: dt.date, rate: float,
                    spots: Mapping[str, float] | None = None) -> PortfolioValuation:
    """Value every position from ``quotes`` (snapshot rows, an Arrow table or a DataFrame: the
    session's, plus for legs that expired before it the last snapshot on or before their expiry).
    ``spots`` are the session's spot per underlying (default: the session's snapshot rows' spot)."""
    legs = leg_table(portfolio)
    if spots is None:
        q = _quote_columns(quotes)
        today = q["as_of"] == np.datetime64(as_of, "D")
        spots = {str(sym).upper(): float(v) for sym, v in zip(q["underlying"][today], q["spot"][today], strict=True)}
    frame = value_legs(legs, quotes, as_of=as_of, rate=rate, spots=spots)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    records = {name: _as_python(columns[name]) for name in _LEG_FIELDS}
    positions = []
    start = 0
    for position in portfolio.positions:
        n = len(position.legs)
        part = {name: values[start:start + n] for name, values in columns.items()}
        legs_out = tuple({name: records[name][i] for name in _LEG_FIELDS} for i in range(start, start + n))
        start += n
        positions.append(_position_value(position, part, spots, legs_out))
    valuation = PortfolioValuation(as_of=as_of, rate=rate, positions=tuple(positions), legs=frame)
    return attrs.evolve(valuation, exposure=exposure(valuation))


def _position_value(position: Any, part: Mapping[str, np.ndarray], spots: Mapping[str, float],
                    legs: tuple[Mapping[str, Any], ...]) -> PositionValue:
    statuses = part["status"].tolist()
    missing = tuple(position.legs[i].describe() for i, s in enumerate(statuses) if s in (MISSING, UNPRICED))
    all_expired = bool(part["expired"].all())
    status = (MISSING if MISSING in statuses else UNPRICED if UNPRICED in statuses
              else EXPIRED if all_expired else OK)
    valued = not missing
    value = float(part["value"].astype(float).sum()) if valued else None
    cost = position.cost
    pnl = value - cost if value is not None and cost is not None else None
    pnl_pct = pnl / abs(cost) if pnl is not None and cost else None
    if position.kind == "single":
        mark = _opt(part["mark"][0])
        contracts: int | None = position.contracts
    else:
        unit = math.gcd(*(leg.contracts for leg in position.legs))
        mark = value / (MULTIPLIER * unit) if value is not None else None
        contracts = None
    weights = part["contracts"].astype(float)
    mids = float((weights * part["mid"].astype(float)).sum())
    spread = float((weights * part["spread"].astype(float)).sum())
    spread_pct = spread / mids if math.isfinite(spread) and math.isfinite(mids) and mids > 0 else None
    spot = spots.get(position.symbol)
    greeks = {name: _sum(part[name].astype(float)) if valued else None
              for name in ("delta_shares", "delta_dollars", "gamma_shares", "theta_per_day", "vega_per_vol_point")}
    quoted = part["quote_as_of"].astype("datetime64[D]")
    marks_as_of = tuple(sorted({d.item() for d in quoted if not np.isnat(d)}))
    return PositionValue(
        id=position.id, symbol=position.symbol, kind=position.kind, description=_describe(position), status=status,
        spot=_opt(spot), dte=int(part["dte"].min()), expiry=min(leg.expiry for leg in position.legs),
        contracts=contracts, cost=_opt(cost), cost_basis=getattr(position, "cost_basis", None),
        net_debit=getattr(position, "net_debit", None), mark=_opt(mark), value=_opt(value), pnl=_opt(pnl),
        pnl_pct=_opt(pnl_pct), spread_pct=spread_pct, missing_legs=missing, expired=all_expired,
        marks_as_of=marks_as_of, legs=legs, **greeks,
    )


def exposure(valuation: PortfolioValuation) -> dict[str, Any]:
    """Portfolio totals over the legs with a known price: delta in shares and dollars, gamma in
    shares per $1 and as dollar delta per 1 % move, theta in $ per day, vega in $ per vol point;
    per underlying too. Legs that are missing or unpriced are counted, not guessed."""
    legs = valuation.legs
    names = ("delta_shares", "delta_dollars", "gamma_shares", "theta_per_day", "vega_per_vol_point", "value")
    totals = dict.fromkeys((*names, "gamma_dollars_1pct"), 0.0)
    by_symbol = []
    if len(legs):
        usable = legs["priced"].to_numpy(dtype=bool)
        symbols = legs["symbol"].to_numpy(dtype=object)
        spot = legs["spot"].to_numpy(dtype=float)
        data = {name: legs[name].to_numpy(dtype=float) for name in names}
        for symbol in sorted(set(symbols[usable].tolist())):
            rows = usable & (symbols == symbol)
            s = _opt(spot[rows][0])
            row: dict[str, Any] = {"symbol": symbol, "spot": s}
            for name in names:
                row[name] = float(np.nansum(data[name][rows]))
            row["gamma_dollars_1pct"] = row["gamma_shares"] * (s or 0.0) ** 2 * 0.01
            for key in totals:
                totals[key] += row[key]
            by_symbol.append(row)
    statuses = legs["status"].to_numpy(dtype=object) if len(legs) else np.array([], dtype=object)
    return _clean({
        **totals,
        "positions": len(valuation.positions),
        "positions_valued": sum(p.value is not None for p in valuation.positions),
        "legs": len(legs),
        "legs_missing": int(((statuses == MISSING) | (statuses == UNPRICED)).sum()),
        "legs_expired": int((statuses == EXPIRED).sum()),
        "by_symbol": by_symbol,
    })


def position_rows(valuation: PortfolioValuation) -> list[dict[str, Any]]:
    """The positions as JSON-ready dicts (``{id, symbol, mark, pnl, pnl_pct, ...}``)."""
    return [p.to_dict() for p in valuation.positions]


def needed_expiries(portfolio: Portfolio) -> dict[str, set[dt.date]]:
    """Per underlying, the expiries its legs use (what to read from a snapshot)."""
    out: dict[str, set[dt.date]] = {}
    for position in portfolio.positions:
        for leg in position.legs:
            out.setdefault(position.symbol, set()).add(leg.expiry)
    return out


__all__ = ["EXPIRED", "MISSING", "OK", "QUOTE_COLUMNS", "UNPRICED", "PortfolioValuation", "PositionValue",
           "exposure", "leg_table", "mark_prices", "needed_expiries", "position_rows", "value_legs",
           "value_portfolio"]
