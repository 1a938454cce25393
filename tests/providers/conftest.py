"""Fixtures for the provider tests: the fake Alpaca server and an adapter pointed at it."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from tests.providers.fake_alpaca import FakeAlpaca, ManualClock

# A session whose chain is "live": the adapter's wall clock is pinned to its afternoon.
LIVE_SESSION = dt.date(2024, 6, 3)
LIVE_NOW = dt.datetime(2024, 6, 3, 19, 0, tzinfo=dt.UTC)


@pytest.fixture
def fake_alpaca():
    pytest.importorskip("alpaca")
    with FakeAlpaca() as fake:
        yield fake


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_provider(fake_alpaca, clock):
    """Build an AlpacaProvider against the fake; keyword arguments override the defaults."""
    from stages.providers.alpaca_provider import AlpacaProvider

    def make(**overrides):
        kwargs = dict(
            credentials=fake_alpaca.credentials(), data_url=fake_alpaca.url, trading_url=fake_alpaca.url,
            retry_budget_seconds=30.0, requests_per_second=1000.0, clock=clock, sleep=clock.sleep,
            jitter=random.Random(0), now=lambda: LIVE_NOW,
        )
        kwargs.update(overrides)
        return AlpacaProvider(**kwargs)

    return make
