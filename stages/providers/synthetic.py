"""The ``synthetic`` provider: a deterministic, offline option market.

Every number is a pure function of (seed, symbol, session): the same request gives the same
rows whatever range it was part of, in whatever order requests come, on any machine with the
same locked dependencies. All four datasets exist for every XNYS session in the calendar, so
history is backfillable. The model lives in ``synthetic_prices`` (underlying paths),
``synthetic_listings`` (expiries and strikes) and ``synthetic_chain`` (surface, quotes, open
interest and volume); docs/providers.md describes it with its parameters.

Tickers: any well-formed ticker exists (``require_ticker``); malformed ones raise
``UsageError`` as the API rejects them with "invalid symbol". The market of a ticker is keyed
by its OCC root (the ticker without its dot), so ``BRK.B`` and its options ``BRKB...`` agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import UsageError
from stages.occ import OccColumns, occ_root, parse_occ_many, require_ticker
from stages.pricing import bs_greeks, bs_price
from stages.providers.base import (
    CAPABILITIES,
    OPTION_BARS_SCHEMA,
    OPTION_BARS_SORT,
    OPTION_CHAIN_SCHEMA,
    OPTION_CONTRACTS_SCHEMA,
    STOCK_BARS_SCHEMA,
    TS,
    ChainSnapshot,
    CheckItem,
    ProviderCheck,
    sorted_table,
)
from stages.providers.synthetic_chain import YEAR_DAYS, Contracts, Quotes, bid_ask, quote
from stages.providers.synthetic_listings import expiries_open, expiry_from_date, strike_life, strikes_at
from stages.providers.synthetic_prices import (
    daily_bars,
    day_number,
    price_path,
    session_days,
    session_index,
    session_range,
    session_ts_us,
)

MULTIPLIER = 100
_EPOCH = dt.date(1970, 1, 1)


def _check_range(start: dt.date, end: dt.date) -> None:
    if start > end:
        raise UsageError(f"start {start} is after end {end}; give the range oldest first")


def _chain_contracts(seed: int, key: str, index: int, expiry_lte: dt.date | None) -> Contracts:
    """Every contract of ``key`` listed at session ``index``, in (expiry, type, strike) order."""
    as_of = dt.date.fromordinal(_EPOCH.toordinal() + int(session_days()[index].astype(np.int64)))
    parts = []
    for e in expiries_open(as_of):
        if expiry_lte is not None and e.date > expiry_lte:
            continue
        listing = strikes_at(seed, key, e, index)
        n = len(listing.strike_milli)
        if n == 0:
            continue
        for is_call in (True, False):  # "call" sorts before "put"
            parts.append((e, is_call, listing.strike_milli, listing.listing_index, n))
    if not parts:
        return Contracts(
            expiry_day=np.zeros(0, np.int64), expiry_index=np.zeros(0, np.int64), kind=np.zeros(0, np.int8),
            is_call=np.zeros(0, bool), strike_milli=np.zeros(0, np.int64), listing_index=np.zeros(0, np.int64),
        )
    sizes = np.array([p[4] for p in parts])
    return Contracts(
        expiry_day=np.repeat([day_number(p[0].date) for p in parts], sizes).astype(np.int64),
        expiry_index=np.repeat([p[0].expiry_index for p in parts], sizes).astype(np.int64),
        kind=np.repeat([p[0].kind for p in parts], sizes).astype(np.int8),
        is_call=np.repeat([p[1] for p in parts], sizes),
        strike_milli=np.concatenate([p[2] for p in parts]),
        listing_index=np.concatenate([p[3] for p in parts]),
    )


def _occ_symbols(root: str, c: Contracts) -> pa.Array:
    """OCC symbols for many contracts at once: one prefix per (expiry, type), one strike field
    per distinct strike, joined by a pyarrow string kernel (no Python loop per contract)."""
    if len(c.strike_milli) == 0:
        return pa.array([], pa.string())
    group_key = c.expiry_day * 2 + c.is_call
    groups, g_inverse = np.unique(group_key, return_inverse=True)
    prefixes = pa.array([
        f"{root}{_EPOCH + dt.timedelta(days=int(k // 2)):%y%m%d}{'C' if k % 2 else 'P'}" for k in groups.tolist()
    ])
    strikes, s_inverse = np.unique(c.strike_milli, return_inverse=True)
    fields = pa.array([f"{m:08d}" for m in strikes.tolist()])
    return pc.binary_join_element_wise(prefixes.take(pa.array(g_inverse)), fields.take(pa.array(s_inverse)), "")


def _types(c: Contracts) -> pa.Array:
    return pc.if_else(pa.array(c.is_call), "call", "put")


def _constant(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


class SyntheticProvider:
    """A deterministic offline market; see the module docstring and docs/providers.md."""

    name = "synthetic"
    is_synthetic = True
    process_safe = True  # pure functions of (seed, symbol, session): forked copies agree
    capabilities = CAPABILITIES["synthetic"]

    def __init__(self, *, seed: int = 7, risk_free_rate: float = 0.04) -> None:
        self.seed = int(seed)
        self.rate = float(risk_free_rate)

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed}, risk_free_rate={self.rate})"

    # -- stock bars -------------------------------------------------------------------------
    def stock_bars(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        _check_range(start, end)
        tickers = sorted({require_ticker(s) for s in symbols})
        lo, hi = session_range(start, end)
        n = hi - lo
        if n == 0 or not tickers:
            return STOCK_BARS_SCHEMA.empty_table()
        cols = [daily_bars(self.seed, occ_root(t), lo, hi) for t in tickers]
        symbol = pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(len(tickers), dtype=np.int32), n)), pa.array(tickers)
        ).cast(pa.string())
        days = np.tile(session_days()[lo:hi], len(tickers))
        ts = np.tile(session_ts_us()[lo:hi], len(tickers))
        data = {name: np.concatenate([c[name] for c in cols]) for name in cols[0]}
        return pa.Table.from_arrays(
            [symbol, pa.array(days, pa.date32()), pa.array(ts, TS)]
            + [pa.array(data[f.name], f.type) for f in STOCK_BARS_SCHEMA if f.name not in ("symbol", "date", "ts")],
            schema=STOCK_BARS_SCHEMA,
        )

    # -- contracts and chains ---------------------------------------------------------------
    def _chain(self, underlying: str, as_of: dt.date, expiry_lte: dt.date | None) -> tuple[Contracts, Quotes, int]:
        require_ticker(underlying)
        index = session_index(as_of)
        key = occ_root(underlying)
        c = _chain_contracts(self.seed, key, index, expiry_lte)
        q = quote(price_path(self.seed, key), self.seed, c, np.full(len(c.strike_milli), index), self.rate)
        return c, q, index

    def option_contracts(self, underlying: str, as_of: dt.date, *, expiry_lte: dt.date | None = None) -> pa.Table:
        """Contracts listed at ``as_of`` with that session's settled open interest and close."""
        c, q, _ = self._chain(underlying, as_of, expiry_lte)
        n = len(c.strike_milli)
        traded = q.volume > 0
        as_of_col = pa.array(np.full(n, day_number(as_of), dtype=np.int32), pa.date32())
        close_date = pc.if_else(pa.array(traded), as_of_col, pa.scalar(None, pa.date32()))
        return pa.Table.from_arrays(
            [
                _occ_symbols(occ_root(underlying), c),
                _constant(underlying, n),
                pa.array(c.expiry_day.astype(np.int32), pa.date32()),
                _types(c),
                pa.array(c.strike),
                pa.array(np.full(n, MULTIPLIER, dtype=np.int32)),
                _constant("active", n),
                pa.array(q.open_interest),
                as_of_col,
                pa.array(q.last, from_pandas=True),
                close_date,
            ],
            schema=OPTION_CONTRACTS_SCHEMA,
        )

    def option_chain(self, underlying: str, as_of: dt.date) -> ChainSnapshot:
        """Every listed contract's end-of-session quote at ``as_of``; the spot is the close."""
        c, q, index = self._chain(underlying, as_of, None)
        n = len(c.strike_milli)
        group = np.zeros(n, dtype=np.int64)
        if n:
            change = (np.diff(c.expiry_day) != 0) | (np.diff(c.is_call.astype(np.int8)) != 0)
            group[1:] = np.cumsum(change)
        bid, ask = bid_ask(q.mid, q.half_spread, c.is_call, group)
        g = bs_greeks(q.spot, c.strike, q.t_years, self.rate, q.iv, c.is_call)
        from ledger.calendar import TradingCalendar

        quoted_at = TradingCalendar.xnys().session_close(as_of)
        quote_time = pa.array(np.full(n, int(quoted_at.timestamp() * 1_000_000), dtype=np.int64), TS)
        table = pa.Table.from_arrays(
            [
                _occ_symbols(occ_root(underlying), c),
                _constant(underlying, n),
                pa.array(c.expiry_day.astype(np.int32), pa.date32()),
                _types(c),
                pa.array(c.strike),
                pa.array(bid),
                pa.array(ask),
                pa.array(q.last, from_pandas=True),
                pa.array(q.volume),
                pa.array(q.open_interest),
                pa.array(q.iv),
                pa.array(g["delta"]),
                pa.array(g["gamma"]),
                pa.array(g["theta"]),
                pa.array(g["vega"]),
                quote_time,
            ],
            schema=OPTION_CHAIN_SCHEMA,
        )
        spot = float(price_path(self.seed, occ_root(underlying)).close[index])
        return ChainSnapshot(underlying=underlying, as_of=as_of, spot=spot, quoted_at=quoted_at, table=table)

    # -- option bars ------------------------------------------------------------------------
    def option_bars(self, contract_symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table:
        """Daily bars of the given contracts on the sessions they traded (volume > 0)."""
        _check_range(start, end)
        symbols = sorted(set(contract_symbols))
        parsed = parse_occ_many(symbols)
        lo, hi = session_range(start, end)
        roots, of_root = np.unique(parsed.root.astype(str), return_inverse=True)
        tables = [self._bars_for_root(str(root), symbols, parsed, np.flatnonzero(of_root == k), lo, hi)
                  for k, root in enumerate(roots)]
        tables = [t for t in tables if t.num_rows]
        if not tables or hi <= lo:
            return OPTION_BARS_SCHEMA.empty_table()
        return sorted_table(pa.concat_tables(tables), OPTION_BARS_SORT)

    def _bars_for_root(self, root: str, symbols: list[str], parsed: OccColumns, of_root: np.ndarray,
                       lo: int, hi: int) -> pa.Table:
        """Bars of the contracts ``symbols[i] for i in of_root`` (all of option root ``root``)."""
        path = price_path(self.seed, root)
        milli, expiry = parsed.strike_milli[of_root], parsed.expiry[of_root]
        n = len(of_root)
        listed = np.full(n, -1, dtype=np.int64)  # the session a listed strike was listed at; -1: not listed
        expiry_day, expiry_index, kind = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int8)
        for day in np.unique(expiry).tolist():  # the contracts the synthetic market lists, by expiry
            e = expiry_from_date(day)
            if e is None:
                continue
            life = strike_life(self.seed, root, e)
            at = np.flatnonzero(expiry == np.datetime64(day, "D"))
            j = np.searchsorted(life.strike_milli, milli[at])
            hit = j < len(life.strike_milli)
            hit[hit] = life.strike_milli[j[hit]] == milli[at[hit]]
            listed[at[hit]] = life.listing_index[j[hit]]
            expiry_day[at], expiry_index[at], kind[at] = day_number(e.date), e.expiry_index, e.kind
        rows = np.flatnonzero(listed >= 0)  # in the order of ``symbols``
        if not len(rows) or hi <= lo:
            return OPTION_BARS_SCHEMA.empty_table()
        contracts = Contracts(
            expiry_day=expiry_day[rows], expiry_index=expiry_index[rows], kind=kind[rows],
            is_call=parsed.is_call[of_root][rows], strike_milli=milli[rows], listing_index=listed[rows],
        )
        # One row per (contract, session it was alive in [lo, hi)).
        first = np.maximum(contracts.listing_index, lo)
        counts = np.maximum(np.minimum(contracts.expiry_index, hi - 1) - first + 1, 0)
        which = np.repeat(np.arange(len(rows)), counts)
        session = first[which] + np.arange(len(which)) - np.repeat(np.cumsum(counts) - counts, counts)
        c = contracts.take(which)
        q = quote(path, self.seed, c, session, self.rate)
        traded = q.volume > 0
        c, session, which = c.take(traded), session[traded], which[traded]
        q = _take_quotes(q, traded)
        if not len(session):
            return OPTION_BARS_SCHEMA.empty_table()
        s_lo = int(session.min())
        under = daily_bars(self.seed, root, s_lo, int(session.max()) + 1)
        at = session - s_lo
        t_open = q.t_years + 6.5 / 24.0 / YEAR_DAYS
        strike = c.strike
        open_ = bs_price(under["open"][at], strike, t_open, self.rate, q.iv, c.is_call)
        up = bs_price(under["high"][at], strike, q.t_years, self.rate, q.iv, c.is_call)
        down = bs_price(under["low"][at], strike, q.t_years, self.rate, q.iv, c.is_call)
        close = q.last
        open_ = np.maximum(np.round(open_, 2), 0.01)
        high = np.round(np.maximum.reduce([open_, close, up, down]), 2)
        low = np.maximum(np.round(np.minimum.reduce([open_, close, up, down]), 2), 0.01)
        vwap = np.clip(np.round((high + low + 2.0 * close) / 4.0, 4), low, high)
        size = 2.0 + 8.0 * ((c.strike_milli + session) % 7) / 6.0
        trades = np.maximum(1, np.ceil(q.volume / size)).astype(np.int64)
        names = pa.array([symbols[i] for i in of_root[rows]]).take(pa.array(which))
        return pa.Table.from_arrays(
            [
                names,
                pa.array(session_days()[session], pa.date32()),
                pa.array(session_ts_us()[session], TS),
                pa.array(open_), pa.array(high), pa.array(low), pa.array(close),
                pa.array(q.volume), pa.array(vwap), pa.array(trades),
            ],
            schema=OPTION_BARS_SCHEMA,
        )

    # -- check ------------------------------------------------------------------------------
    def check(self) -> ProviderCheck:
        return ProviderCheck(
            provider=self.name, ok=True, is_synthetic=True,
            items=(CheckItem(name="synthetic", ok=True, detail=f"offline deterministic market, seed {self.seed}"),),
        )


def _take_quotes(q: Quotes, mask: np.ndarray) -> Quotes:
    import attrs

    return Quotes(**{f.name: getattr(q, f.name)[mask] for f in attrs.fields(Quotes)})


__all__ = ["SyntheticProvider"]
