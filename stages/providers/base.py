"""The market-data provider interface: four datasets, fixed Arrow schemas, declared capabilities.

Every provider returns the same shapes, so stages never look at where data came from:

* ``stock_bars``: daily OHLCV bars per (symbol, session), ``STOCK_BARS_SCHEMA``.
* ``option_contracts``: the contracts listed for an underlying as of a session, with the last
  known open interest and close price and the dates they refer to, ``OPTION_CONTRACTS_SCHEMA``.
* ``option_chain``: a snapshot of every listed contract's quote (bid, ask, last), volume, open
  interest, implied volatility and greeks, plus the underlying's spot, ``ChainSnapshot``.
* ``option_bars``: daily OHLCV bars per (contract, session), ``OPTION_BARS_SCHEMA``.

Timestamps are ``timestamp[us, tz=UTC]``; dates are ``date32``. Rows are sorted
deterministically (see the ``*_SORT`` constants). A provider's ``capabilities`` say which
datasets it can produce for a past session (``historical``) and which only for the current
one (``live``); asking for a past session of a live-only dataset raises
``UnsupportedDatasetError``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs
import pyarrow as pa

STOCK_BARS = "stock_bars"
OPTION_CONTRACTS = "option_contracts"
OPTION_CHAIN = "option_chain"
OPTION_BARS = "option_bars"
DATASETS: tuple[str, ...] = (STOCK_BARS, OPTION_CONTRACTS, OPTION_CHAIN, OPTION_BARS)

TS = pa.timestamp("us", tz="UTC")

STOCK_BARS_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("vwap", pa.float64()),
        pa.field("trade_count", pa.int64()),
    ]
)

OPTION_CONTRACTS_SCHEMA = pa.schema(
    [
        pa.field("contract_symbol", pa.string(), nullable=False),
        pa.field("underlying", pa.string(), nullable=False),
        pa.field("expiry", pa.date32(), nullable=False),
        pa.field("option_type", pa.string(), nullable=False),
        pa.field("strike", pa.float64(), nullable=False),
        pa.field("multiplier", pa.int32(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("open_interest", pa.int64()),
        pa.field("open_interest_date", pa.date32()),
        pa.field("close_price", pa.float64()),
        pa.field("close_price_date", pa.date32()),
    ]
)

OPTION_CHAIN_SCHEMA = pa.schema(
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
        pa.field("delta", pa.float64()),
        pa.field("gamma", pa.float64()),
        pa.field("theta", pa.float64()),
        pa.field("vega", pa.float64()),
        pa.field("quote_time", TS),
    ]
)

OPTION_BARS_SCHEMA = pa.schema(
    [
        pa.field("contract_symbol", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("vwap", pa.float64()),
        pa.field("trade_count", pa.int64()),
    ]
)

# The deterministic row order of each dataset.
STOCK_BARS_SORT = (("symbol", "ascending"), ("date", "ascending"))
OPTION_CONTRACTS_SORT = (
    ("expiry", "ascending"), ("option_type", "ascending"), ("strike", "ascending"), ("contract_symbol", "ascending"),
)
OPTION_CHAIN_SORT = OPTION_CONTRACTS_SORT
OPTION_BARS_SORT = (("contract_symbol", "ascending"), ("date", "ascending"))


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def sorted_table(table: pa.Table, keys: Sequence[tuple[str, str]]) -> pa.Table:
    return table.sort_by(list(keys)) if table.num_rows > 1 else table


@attrs.frozen(kw_only=True)
class ChainSnapshot:
    """An option chain as of a session: ``table`` follows ``OPTION_CHAIN_SCHEMA``."""

    underlying: str
    as_of: dt.date
    spot: float
    quoted_at: dt.datetime = attrs.field()
    table: pa.Table = attrs.field(eq=False)

    @quoted_at.validator
    def _aware(self, _attribute: attrs.Attribute, value: dt.datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("quoted_at must be timezone-aware")

    @table.validator
    def _schema(self, _attribute: attrs.Attribute, value: pa.Table) -> None:
        if not value.schema.equals(OPTION_CHAIN_SCHEMA):
            raise ValueError(f"a chain table must follow OPTION_CHAIN_SCHEMA, got {value.schema}")

    @property
    def contracts(self) -> int:
        return self.table.num_rows


@attrs.frozen(kw_only=True)
class ProviderCapabilities:
    """Which datasets a provider can produce for a past session, and which only live."""

    historical: frozenset[str]
    live: frozenset[str]

    def can_backfill(self, dataset: str) -> bool:
        """True when ``dataset`` can be produced for any past session (a backfill)."""
        _known(dataset)
        return dataset in self.historical

    def supports(self, dataset: str) -> bool:
        _known(dataset)
        return dataset in self.historical or dataset in self.live


# What each provider can fetch, declared here rather than only on its class so that the gap
# planner (`options-helper gaps`) can ask without importing the provider (numpy, pyarrow.compute,
# the synthetic market's modules) or needing its credentials.
CAPABILITIES: dict[str, ProviderCapabilities] = {
    "synthetic": ProviderCapabilities(historical=frozenset(DATASETS), live=frozenset(DATASETS)),
    # Alpaca has no historical option chain snapshots: the chain is live only.
    "alpaca": ProviderCapabilities(historical=frozenset({STOCK_BARS, OPTION_CONTRACTS, OPTION_BARS}),
                                   live=frozenset({STOCK_BARS, OPTION_CONTRACTS, OPTION_CHAIN, OPTION_BARS})),
}


def _known(dataset: str) -> None:
    if dataset not in DATASETS:
        from ledger.errors import UsageError

        raise UsageError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)}")


@attrs.frozen(kw_only=True)
class CheckItem:
    """One probe of ``provider check``: what was tried, whether it worked, and why not."""

    name: str
    ok: bool
    detail: str = ""


@attrs.frozen(kw_only=True)
class ProviderCheck:
    """The result of ``provider check``. Never holds key values: only where they came from."""

    provider: str
    ok: bool
    is_synthetic: bool
    credentials_source: str | None = None
    items: tuple[CheckItem, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "ok": self.ok,
            "is_synthetic": self.is_synthetic,
            "credentials_source": self.credentials_source,
            "checks": [{"name": i.name, "ok": i.ok, "detail": i.detail} for i in self.items],
        }


@runtime_checkable
class MarketDataProvider(Protocol):
    """What every provider offers. Unknown tickers raise ``SymbolNotFoundError`` where the
    source would, malformed ones ``UsageError``; rows come back sorted."""

    name: str
    is_synthetic: bool
    capabilities: ProviderCapabilities

    def stock_bars(self, symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table: ...

    def option_contracts(
        self, underlying: str, as_of: dt.date, *, expiry_lte: dt.date | None = None
    ) -> pa.Table: ...

    def option_chain(self, underlying: str, as_of: dt.date) -> ChainSnapshot: ...

    def option_bars(self, contract_symbols: Sequence[str], start: dt.date, end: dt.date) -> pa.Table: ...


# A provider may set ``process_safe = True`` when forked copies of it may serve calls at once
# (no shared rate limit, cache or connection): the runner then computes its stages' scopes in a
# pool of processes (``stages.parallel``). Absent means False.
# Both built-in providers also offer ``check() -> ProviderCheck`` (``provider check``); it is not
# part of the protocol, so test doubles need not implement it.


def prefetch(provider: object, dataset: str, *args: object) -> None:
    """Let a provider that batches requests fetch ahead for the per-symbol calls to come
    (``provider.prefetch_<dataset>(*args)``, e.g. alpaca's multi-symbol stock bars); nothing for a
    provider without one. A failure is logged and left to the per-symbol calls, which retry and,
    if they fail too, fail their own symbol only."""
    fn = getattr(provider, f"prefetch_{dataset}", None)
    if fn is None:
        return
    from ledger.errors import OptionsHelperError

    try:
        fn(*args)
    except OptionsHelperError as e:
        import logging

        logging.getLogger("stages.providers").warning("prefetch of %s failed (%s); fetching per symbol", dataset, e)


__all__ = [
    "DATASETS",
    "OPTION_BARS",
    "OPTION_BARS_SCHEMA",
    "OPTION_BARS_SORT",
    "OPTION_CHAIN",
    "OPTION_CHAIN_SCHEMA",
    "OPTION_CHAIN_SORT",
    "OPTION_CONTRACTS",
    "OPTION_CONTRACTS_SCHEMA",
    "OPTION_CONTRACTS_SORT",
    "STOCK_BARS",
    "STOCK_BARS_SCHEMA",
    "STOCK_BARS_SORT",
    "ChainSnapshot",
    "CheckItem",
    "MarketDataProvider",
    "ProviderCapabilities",
    "ProviderCheck",
    "empty_table",
    "prefetch",
    "sorted_table",
]
