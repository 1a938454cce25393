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
        return _clean(attrs.asdict(self, recurse=False))


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


def leg_table(portfolio: Portfolio) -> pd.DataFrame:
    """One row per leg of every position, in file order."""
    rows = []
    for p_index, position in enumerate(portfolio.positions):
        for l_index, leg in enumerate(position.legs):
            rows.append((p_index, l_index, position.id, position.symbol, leg.side, leg.option_type, leg.expiry,
                         float(leg.strike), int(leg.contracts), int(leg.signed_contracts), leg.ratio))
    columns = ["position", "leg", "id", "symbol", "side", "option_type", "expiry", "strike", "contracts", "signed",
               "ratio"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["expiry"] = pd.to_datetime(frame["expiry"]).astype("datetime64[s]") if len(frame) else frame["expiry"]
    frame["strike_milli"] = np.rint(frame["strike"].to_numpy(dtype=float) * 1000).astype(np.int64)
    return frame


def _quote_frame(quotes: pd.DataFrame) -> pd.DataFrame:
    q = quotes.copy()
    for column in QUOTE_COLUMNS:
        if column not in q:
            q[column] = np.nan
    q = q.rename(columns={"underlying": "symbol", "as_of": "quote_as_of"})
    q["symbol"] = q["symbol"].astype(str).str.upper()
    q["option_type"] = q["option_type"].astype(str).str.lower()
    q["expiry"] = pd.to_datetime(q["expiry"]).astype("datetime64[s]")
    q["quote_as_of"] = pd.to_datetime(q["quote_as_of"]).astype("datetime64[s]")
    q["strike_milli"] = np.rint(pd.to_numeric(q["strike"], errors="coerce").to_numpy(dtype=float) * 1000).astype(np.int64)
    # One row per contract: the newest snapshot that has it.
    q = q.sort_values("quote_as_of", kind="mergesort").drop_duplicates(
        ["symbol", "expiry", "option_type", "strike_milli"], keep="last")
    keep = ["symbol", "expiry", "option_type", "strike_milli", "contract_symbol", "bid", "ask", "last",
            "implied_volatility", *GREEKS, "spot", "quote_as_of"]
    return q[keep]


def value_legs(legs: pd.DataFrame, quotes: pd.DataFrame, *, as_of: dt.date, rate: float,
               spots: Mapping[str, float]) -> pd.DataFrame:
    """``legs`` (``leg_table``) joined to ``quotes`` (snapshot rows), with marks, Greeks and status."""
    frame = legs.merge(_quote_frame(quotes), how="left", on=["symbol", "expiry", "option_type", "strike_milli"],
                       sort=False, indicator=True)
    found = (frame.pop("_merge") == "both").to_numpy()
    session = np.datetime64(as_of, "D")
    dte = (frame["expiry"].to_numpy(dtype="datetime64[D]") - session).astype(np.int64)
    expired = dte < 0
    bid, ask, last = (pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in ("bid", "ask", "last"))
    mark, source = mark_prices(bid, ask, last)
    priced = found & np.isfinite(mark)
    spot_now = frame["symbol"].map(lambda s: spots.get(s, np.nan)).to_numpy(dtype=float)
    quote_spot = pd.to_numeric(frame["spot"], errors="coerce").to_numpy(dtype=float)
    spot = np.where(expired | ~np.isfinite(spot_now), quote_spot, spot_now)
    iv = pd.to_numeric(frame["implied_volatility"], errors="coerce").to_numpy(dtype=float)
    iv = np.where(iv > 1e-4, iv, np.nan)
    live = dte > 0
    t = np.where(live, dte, 1).astype(float) / 365.0
    is_call = (frame["option_type"] == "call").to_numpy()
    model = bs_greeks(np.where(np.isfinite(spot), spot, 1.0), frame["strike"].to_numpy(dtype=float), t, rate,
                      np.where(np.isfinite(iv), iv, 0.3), is_call)
    can_model = live & np.isfinite(iv) & np.isfinite(spot)
    greek_source = np.full(len(frame), "", dtype=object)
    for name in GREEKS:
        given = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
        from_chain = np.isfinite(given)
        value = np.where(from_chain, given, np.where(can_model, model[name], np.nan))
        # Expired and expiring legs carry no risk forward; missing ones are unknown.
        frame[name] = np.where(found & live, value, np.where(found, 0.0, np.nan))
        if name == "delta":
            greek_source = np.where(~(found & live), "", np.where(from_chain, "chain",
                                                                    np.where(can_model, "black_scholes", "")))
    frame["greeks_source"] = greek_source
    frame["dte"] = dte
    frame["spot"] = spot
    frame["implied_volatility"] = iv
    frame["mark"] = np.where(priced, mark, np.nan)
    frame["mark_source"] = np.where(priced, source, "")
    frame["found"] = found
    frame["priced"] = priced
    frame["expired"] = expired
    frame["status"] = np.where(~found, MISSING, np.where(~priced, UNPRICED, np.where(expired, EXPIRED, OK)))
    scale = frame["signed"].to_numpy(dtype=float) * MULTIPLIER
    frame["value"] = scale * frame["mark"].to_numpy(dtype=float)
    frame["delta_shares"] = scale * frame["delta"].to_numpy(dtype=float)
    frame["gamma_shares"] = scale * frame["gamma"].to_numpy(dtype=float)
    frame["theta_per_day"] = scale * frame["theta"].to_numpy(dtype=float)
    frame["vega_per_vol_point"] = scale * frame["vega"].to_numpy(dtype=float) / 100.0
    frame["delta_dollars"] = frame["delta_shares"] * frame["spot"]
    two_sided = (bid > 0) & (ask > 0)
    frame["spread"] = np.where(found & two_sided, ask - bid, np.nan)
    frame["mid"] = np.where(found & two_sided, 0.5 * (bid + ask), np.nan)
    return frame


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
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp):
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


def value_portfolio(portfolio: Portfolio, quotes: pd.DataFrame, *, as_of: dt.date, rate: float,
                    spots: Mapping[str, float] | None = None) -> PortfolioValuation:
    """Value every position from ``quotes`` (snapshot rows: the session's, plus for legs that
    expired before it the last snapshot on or before their expiry). ``spots`` are the session's
    spot per underlying (default: the snapshot rows' ``spot`` of the session)."""
    legs = leg_table(portfolio)
    if spots is None:
        q = quotes[pd.to_datetime(quotes["as_of"]).dt.date == as_of] if len(quotes) else quotes
        spots = {str(s).upper(): float(v) for s, v in zip(q.get("underlying", []), q.get("spot", []), strict=False)}
    frame = value_legs(legs, quotes, as_of=as_of, rate=rate, spots=spots)
    positions = []
    records = frame.to_dict("records")
    start = 0
    for p_index, position in enumerate(portfolio.positions):
        n = len(position.legs)
        rows = records[start:start + n]
        part = frame.iloc[start:start + n]
        start += n
        assert all(r["position"] == p_index for r in rows)
        positions.append(_position_value(position, rows, part, spots))
    valuation = PortfolioValuation(as_of=as_of, rate=rate, positions=tuple(positions), legs=frame)
    return attrs.evolve(valuation, exposure=exposure(valuation))


def _position_value(position: Any, rows: list[dict[str, Any]], part: pd.DataFrame,
                    spots: Mapping[str, float]) -> PositionValue:
    statuses = [r["status"] for r in rows]
    missing = tuple(position.legs[i].describe() for i, s in enumerate(statuses) if s in (MISSING, UNPRICED))
    all_expired = all(r["expired"] for r in rows)
    status = (MISSING if MISSING in statuses else UNPRICED if UNPRICED in statuses
              else EXPIRED if all_expired else OK)
    valued = not missing
    value = float(part["value"].sum()) if valued else None
    cost = position.cost
    pnl = value - cost if value is not None and cost is not None else None
    pnl_pct = pnl / abs(cost) if pnl is not None and cost else None
    if position.kind == "single":
        mark = _opt(rows[0]["mark"])
        contracts: int | None = position.contracts
    else:
        unit = math.gcd(*(leg.contracts for leg in position.legs))
        mark = value / (MULTIPLIER * unit) if value is not None else None
        contracts = None
    weights = part["contracts"].to_numpy(dtype=float)
    mids = (weights * part["mid"].to_numpy(dtype=float)).sum()
    spread = (weights * part["spread"].to_numpy(dtype=float)).sum()
    spread_pct = float(spread / mids) if np.isfinite(spread) and np.isfinite(mids) and mids > 0 else None
    dte = min(int(d) for d in part["dte"])
    spot = spots.get(position.symbol)
    greeks = {name: _sum(part[name].to_numpy(dtype=float)) if valued else None
              for name in ("delta_shares", "delta_dollars", "gamma_shares", "theta_per_day", "vega_per_vol_point")}
    marks_as_of = tuple(sorted({r["quote_as_of"].date() for r in rows if isinstance(r.get("quote_as_of"), pd.Timestamp)}))
    legs = tuple({k: _clean(r.get(k)) for k in _LEG_FIELDS} for r in rows)
    return PositionValue(
        id=position.id, symbol=position.symbol, kind=position.kind, description=_describe(position), status=status,
        spot=_opt(spot), dte=dte, expiry=min(leg.expiry for leg in position.legs), contracts=contracts,
        cost=_opt(cost), cost_basis=getattr(position, "cost_basis", None), net_debit=getattr(position, "net_debit", None),
        mark=_opt(mark), value=_opt(value), pnl=_opt(pnl), pnl_pct=_opt(pnl_pct), spread_pct=spread_pct,
        missing_legs=missing, expired=all_expired, marks_as_of=marks_as_of, legs=legs, **greeks,
    )


def exposure(valuation: PortfolioValuation) -> dict[str, Any]:
    """Portfolio totals over the legs with a known value: delta in shares and dollars, gamma in
    shares per $1 and as dollar delta per 1 % move, theta in $ per day, vega in $ per vol point;
    per underlying too. Legs that are missing or unpriced are counted, not guessed."""
    legs = valuation.legs
    usable = legs[legs["priced"].to_numpy(dtype=bool)] if len(legs) else legs
    by_symbol = []
    names = ("delta_shares", "delta_dollars", "gamma_shares", "theta_per_day", "vega_per_vol_point")
    totals = dict.fromkeys((*names, "gamma_dollars_1pct", "value"), 0.0)
    for symbol, group in usable.groupby("symbol", sort=True) if len(usable) else []:
        spot = _opt(group["spot"].iloc[0])
        row: dict[str, Any] = {"symbol": symbol, "spot": spot}
        for name in names:
            row[name] = float(np.nansum(group[name].to_numpy(dtype=float)))
        row["gamma_dollars_1pct"] = row["gamma_shares"] * (spot or 0.0) ** 2 * 0.01
        row["value"] = float(np.nansum(group["value"].to_numpy(dtype=float)))
        for key in totals:
            totals[key] += row[key]
        by_symbol.append(row)
    statuses = legs["status"].to_numpy() if len(legs) else np.array([])
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
