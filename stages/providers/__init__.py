"""Market-data providers: the interface, the offline ``synthetic`` market and ``alpaca``.

``build_provider(settings)`` is the one place a provider is chosen. Importing this package
never imports alpaca-py (an optional extra) or exchange-calendars; both load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.config import Settings
    from stages.providers.base import (
        DATASETS,
        OPTION_BARS,
        OPTION_BARS_SCHEMA,
        OPTION_CHAIN,
        OPTION_CHAIN_SCHEMA,
        OPTION_CONTRACTS,
        OPTION_CONTRACTS_SCHEMA,
        STOCK_BARS,
        STOCK_BARS_SCHEMA,
        ChainSnapshot,
        CheckItem,
        MarketDataProvider,
        ProviderCapabilities,
        ProviderCheck,
    )

# The names of ``stages.providers.base``, loaded on first use: importing this package (which
# ``stages.providers.capabilities``, the gap planner's, does) costs no pyarrow.
_FROM_BASE = frozenset({
    "DATASETS", "OPTION_BARS", "OPTION_BARS_SCHEMA", "OPTION_CHAIN", "OPTION_CHAIN_SCHEMA", "OPTION_CONTRACTS",
    "OPTION_CONTRACTS_SCHEMA", "STOCK_BARS", "STOCK_BARS_SCHEMA", "ChainSnapshot", "CheckItem",
    "MarketDataProvider", "ProviderCapabilities", "ProviderCheck",
})


def __getattr__(name: str) -> Any:
    if name not in _FROM_BASE:
        raise AttributeError(f"module 'stages.providers' has no attribute {name!r}")
    value = getattr(importlib.import_module("stages.providers.base"), name)
    globals()[name] = value
    return value


def build_provider(settings: Settings, **overrides: object) -> MarketDataProvider:
    """The provider named by ``settings.provider``.

    ``overrides`` go to the provider's constructor (tests pass ``sleep``/``clock`` to alpaca).
    """
    from ledger.errors import ConfigError, MissingExtraError

    if settings.provider == "synthetic":
        from stages.providers.synthetic import SyntheticProvider

        return SyntheticProvider(seed=settings.synthetic_seed, risk_free_rate=settings.risk_free_rate)
    if settings.provider == "alpaca":
        try:
            import alpaca  # noqa: F401  (probe only: the adapter imports what it needs)
        except ImportError as e:
            raise MissingExtraError.for_extra("alpaca", "alpaca-py") from e
        from stages.providers.alpaca_provider import AlpacaProvider

        return AlpacaProvider.from_settings(settings, **overrides)  # type: ignore[arg-type]
    raise ConfigError(f"unknown provider {settings.provider!r}; choose synthetic or alpaca")


def check_provider(settings: Settings, **overrides: object) -> ProviderCheck:
    """``provider check``: do the credentials work and which feeds answer. Never shows keys.

    Missing credentials are reported (``ok`` false), not raised; a missing extra is raised.
    """
    from ledger.errors import AuthenticationError
    from stages.providers.base import CheckItem, ProviderCheck

    try:
        provider = build_provider(settings, **overrides)
    except AuthenticationError as e:
        return ProviderCheck(
            provider=settings.provider, ok=False, is_synthetic=False,
            items=(CheckItem(name="credentials", ok=False, detail=str(e)),),
        )
    check = getattr(provider, "check", None)
    if check is None:
        return ProviderCheck(provider=provider.name, ok=True, is_synthetic=provider.is_synthetic,
                             items=(CheckItem(name=provider.name, ok=True, detail="no check offered"),))
    return check()


__all__ = [
    "DATASETS",
    "OPTION_BARS",
    "OPTION_BARS_SCHEMA",
    "OPTION_CHAIN",
    "OPTION_CHAIN_SCHEMA",
    "OPTION_CONTRACTS",
    "OPTION_CONTRACTS_SCHEMA",
    "STOCK_BARS",
    "STOCK_BARS_SCHEMA",
    "ChainSnapshot",
    "CheckItem",
    "MarketDataProvider",
    "ProviderCapabilities",
    "ProviderCheck",
    "build_provider",
    "check_provider",
]
