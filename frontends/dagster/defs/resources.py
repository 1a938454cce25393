"""Resources: the same configuration as the CLI, resolved the same way.

- ``ledger`` (``LedgerResource``): the DuckDB ledger/warehouse and the data root. Left unset, the
  path comes from ``get_duckdb_path()`` (``OPTIONS_HELPER_DUCKDB_PATH`` > ``options-helper.toml``
  > ``data/warehouse/options.duckdb``), exactly as for ``options-helper`` without ``--duckdb-path``.
- ``provider`` (``ProviderResource``): the ``--provider`` choice (``synthetic`` or ``alpaca``).
  Only the name is configurable; keys come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` or
  the env file named in the config, read by the provider itself, so they never appear in Dagster
  run config, the launchpad or logs.
- ``universe`` (``UniverseResource``): which symbols; by default the config file's ``default``
  watchlist, as for the CLI without ``--symbols``.

Settings are built once per asset execution (the edge), never cached in a module global.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from ledger.config import PROVIDERS, Settings, get_duckdb_path, load_settings
from ledger.errors import ConfigError


class LedgerResource(dg.ConfigurableResource):
    """The options-helper DuckDB file (ledger + warehouse) and data root."""

    duckdb_path: str | None = Field(
        default=None, description="DuckDB file; unset means get_duckdb_path() (env, config file, default)."
    )
    data_root: str | None = Field(
        default=None, description="Root of the data lake and reports; unset means OPTIONS_HELPER_DATA_ROOT, config, 'data'."
    )

    def path(self) -> Path:
        return get_duckdb_path(self.duckdb_path)

    def settings(self, provider: str | None = None) -> Settings:
        """The one frozen Settings for an execution, with ``--duckdb-path``/``--provider`` semantics."""
        return load_settings(duckdb_path=self.duckdb_path, data_root=self.data_root, provider=provider)


class ProviderResource(dg.ConfigurableResource):
    """The market data provider, chosen like ``--provider``; credentials never pass through here."""

    name: str | None = Field(
        default=None,
        description="synthetic or alpaca; unset means OPTIONS_HELPER_PROVIDER, the config file, then synthetic.",
    )

    def resolved_name(self) -> str | None:
        if self.name is not None and self.name not in PROVIDERS:
            raise ConfigError(f"unknown provider {self.name!r}; choose one of: {', '.join(PROVIDERS)}")
        return self.name

    def build(self, settings: Settings):  # -> stages.providers.MarketDataProvider
        """The provider instance for ``settings`` (the one place a provider is chosen)."""
        from stages.providers import build_provider

        return build_provider(settings)


class UniverseResource(dg.ConfigurableResource):
    """The symbols each asset covers: explicit symbols, else a watchlist of the config file."""

    watchlist: str = Field(default="default", description="Watchlist name in options-helper.toml.")
    symbols: list[str] | None = Field(default=None, description="Explicit symbols; overrides the watchlist.")

    def resolve(self, settings: Settings) -> tuple[str, ...] | None:
        """The symbols to pass to the runner; ``None`` means the settings' default watchlist."""
        if self.symbols:
            return tuple(sorted({s.strip().upper() for s in self.symbols if s.strip()}))
        if self.watchlist == "default":
            return None
        return settings.watchlist(self.watchlist)


RESOURCES = {"ledger": LedgerResource(), "provider": ProviderResource(), "universe": UniverseResource()}

__all__ = ["RESOURCES", "LedgerResource", "ProviderResource", "UniverseResource"]
