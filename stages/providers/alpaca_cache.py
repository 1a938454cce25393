"""What one run already fetched from Alpaca, so that no request repeats within it.

The runner keeps one provider for a whole ``daily``; its ``RunCache`` holds, per symbol or
underlying and session:

* stock bars and the date range the request covered (the candles stage fetches them in batches;
  the chain's spot is the session's close from them);
* the contracts listed for an underlying on a session (discovered once for the options-bars stage
  and reused for the chain's open interest);
* the option-chain snapshot, parsed (the options-bars stage takes the session's bars from its
  ``dailyBar``; the snapshot stage then takes the chain itself, which leaves the cache).

Entries are Arrow tables, not JSON, and expire ``ttl_seconds`` after they were fetched (on the
provider's clock), so a long-lived provider never serves a previous run's live data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import attrs
import pyarrow as pa
import pyarrow.compute as pc


@attrs.frozen
class CachedChain:
    """A parsed chain snapshot: rows without open interest, the newest quote time, and the
    session's option bars from each contract's ``dailyBar``."""

    table: pa.Table
    quoted_at: dt.datetime
    daily_bars: pa.Table

    @property
    def contracts(self) -> frozenset[str]:
        return frozenset(self.table.column("contract_symbol").to_pylist())


@attrs.define
class RunCache:
    ttl_seconds: float
    clock: Callable[[], float]
    _bars: dict[str, tuple[dt.date, dt.date, pa.Table, float]] = attrs.field(factory=dict)
    _contracts: dict[tuple[str, dt.date], tuple[pa.Table, float]] = attrs.field(factory=dict)
    _chains: dict[tuple[str, dt.date], tuple[CachedChain, float]] = attrs.field(factory=dict)
    _underlying: dict[str, str] = attrs.field(factory=dict)

    def _fresh(self, stamp: float) -> bool:
        return self.clock() - stamp <= self.ttl_seconds

    # -- stock bars -------------------------------------------------------------------------
    def put_bars(self, symbols: Iterable[str], start: dt.date, end: dt.date, table: pa.Table) -> None:
        """Record that ``table`` holds every bar of ``symbols`` in [start, end] (none: no rows)."""
        now = self.clock()
        column = table.column("symbol")
        for symbol in symbols:
            rows = table.filter(pc.equal(column, symbol)) if table.num_rows else table
            self._bars[symbol] = (start, end, rows, now)

    def bars(self, symbol: str, start: dt.date, end: dt.date) -> pa.Table | None:
        """The cached bars of ``symbol`` in [start, end], or None when the cache does not cover it."""
        entry = self._bars.get(symbol)
        if entry is None or not self._fresh(entry[3]) or not (entry[0] <= start and end <= entry[1]):
            return None
        rows = entry[2]
        if rows.num_rows == 0:
            return rows
        dates = rows.column("date")
        keep = pc.and_(pc.greater_equal(dates, pa.scalar(start, pa.date32())),
                       pc.less_equal(dates, pa.scalar(end, pa.date32())))
        return rows.filter(keep)

    # -- contracts --------------------------------------------------------------------------
    def put_contracts(self, underlying: str, as_of: dt.date, table: pa.Table) -> None:
        self._contracts[(underlying, as_of)] = (table, self.clock())
        for symbol in table.column("contract_symbol").to_pylist():
            self._underlying[symbol] = underlying

    def contracts(self, underlying: str, as_of: dt.date) -> pa.Table | None:
        entry = self._contracts.get((underlying, as_of))
        return entry[0] if entry is not None and self._fresh(entry[1]) else None

    def underlying_of(self, contract_symbol: str) -> str | None:
        return self._underlying.get(contract_symbol)

    # -- chains -----------------------------------------------------------------------------
    def put_chain(self, underlying: str, as_of: dt.date, chain: CachedChain) -> None:
        self._chains[(underlying, as_of)] = (chain, self.clock())

    def chain(self, underlying: str, as_of: dt.date, *, pop: bool = False) -> CachedChain | None:
        key = (underlying, as_of)
        entry = self._chains.pop(key, None) if pop else self._chains.get(key)
        return entry[0] if entry is not None and self._fresh(entry[1]) else None

    def clear(self) -> None:
        for store in (self._bars, self._contracts, self._chains, self._underlying):
            store.clear()  # type: ignore[attr-defined]

    def sizes(self) -> dict[str, Any]:
        return {"bars": len(self._bars), "contracts": len(self._contracts), "chains": len(self._chains)}


__all__ = ["CachedChain", "RunCache"]
