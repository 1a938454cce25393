"""Fixtures for the pipeline tests: a synthetic market, temporary databases and data roots, a
fixed clock, and a provider wrapper that injects faults.

A two-symbol, two-session ``daily`` is built once per test session (``built``); tests that
change it work on a copy (``state``), which is much cheaper than recomputing.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest

from ledger.config import Settings

SYMBOLS = ("SPY", "IWM")
SESSIONS = (dt.date(2026, 11, 19), dt.date(2026, 11, 20))
DAY1, DAY2 = SESSIONS
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)  # the latest completed session is 2026-11-23


def make_settings(root: Path, **overrides: Any) -> Settings:
    return Settings(duckdb_path=root / "warehouse" / "options.duckdb", data_root=root / "data",
                    watchlists={"default": SYMBOLS, "one": ("SPY",)}, **overrides)


class FaultyProvider:
    """Wraps a provider; ``fail`` maps a method to {symbol or '*': exception or a callable(n) -> exception|None},
    ``transform`` maps a method to a function applied to the result (``(result, symbol) -> result``)."""

    def __init__(self, inner: Any, *, fail: Mapping[str, Mapping[str, Any]] | None = None,
                 transform: Mapping[str, Callable[[Any, str], Any]] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.is_synthetic = inner.is_synthetic
        self.capabilities = inner.capabilities
        self.fail = {k: dict(v) for k, v in (fail or {}).items()}
        self.transform = dict(transform or {})
        self.calls: dict[str, int] = {}

    def _call(self, method: str, symbol: str, *args: Any, **kwargs: Any) -> Any:
        n = self.calls[method] = self.calls.get(method, 0) + 1
        rule = self.fail.get(method, {})
        exc = rule.get(symbol, rule.get("*"))
        if callable(exc) and not isinstance(exc, BaseException):
            exc = exc(n)
        if exc is not None:
            raise exc
        result = getattr(self.inner, method)(*args, **kwargs)
        fn = self.transform.get(method)
        return fn(result, symbol) if fn else result

    def stock_bars(self, symbols: Any, start: dt.date, end: dt.date) -> Any:
        return self._call("stock_bars", ",".join(symbols), symbols, start, end)

    def option_contracts(self, underlying: str, as_of: dt.date, *, expiry_lte: dt.date | None = None) -> Any:
        return self._call("option_contracts", underlying, underlying, as_of, expiry_lte=expiry_lte)

    def option_chain(self, underlying: str, as_of: dt.date) -> Any:
        return self._call("option_chain", underlying, underlying, as_of)

    def option_bars(self, contract_symbols: Any, start: dt.date, end: dt.date) -> Any:
        return self._call("option_bars", "*", contract_symbols, start, end)

    def check(self) -> Any:
        return self.inner.check()


@pytest.fixture(scope="session")
def synthetic() -> Any:
    from stages.providers.synthetic import SyntheticProvider

    return SyntheticProvider(seed=7, risk_free_rate=0.04)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, synthetic: Any) -> Path:
    """A root holding a full two-session daily for SPY and IWM (do not modify: copy it)."""
    import stages

    root = tmp_path_factory.mktemp("built")
    s = make_settings(root)
    for day in SESSIONS:
        result = stages.run_daily(as_of=day, settings=s, provider=synthetic, now=NOW)
        assert result.ok, result.to_dict()
    return root


@pytest.fixture()
def state(built: Path, tmp_path: Path) -> Settings:
    """A private copy of ``built``."""
    root = tmp_path / "state"
    shutil.copytree(built, root)
    return make_settings(root)


def evolve(s: Settings, **changes: Any) -> Settings:
    return attrs.evolve(s, **changes)
