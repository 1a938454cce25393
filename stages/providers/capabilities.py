"""The four datasets a provider offers, and what each provider can fetch: which datasets for a past
session (``historical``), which only for the current one (``live``).

Its own module, importing neither pyarrow nor a provider, so that the gap planner
(``options-helper gaps``) asks without paying for them or needing credentials.
``stages.providers.base`` re-exports every name.
"""

from __future__ import annotations

import attrs

STOCK_BARS = "stock_bars"
OPTION_CONTRACTS = "option_contracts"
OPTION_CHAIN = "option_chain"
OPTION_BARS = "option_bars"
DATASETS: tuple[str, ...] = (STOCK_BARS, OPTION_CONTRACTS, OPTION_CHAIN, OPTION_BARS)


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
# planner can ask without importing the provider (numpy, pyarrow, the synthetic market's modules).
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


__all__ = ["CAPABILITIES", "DATASETS", "OPTION_BARS", "OPTION_CHAIN", "OPTION_CONTRACTS", "STOCK_BARS",
           "ProviderCapabilities"]
