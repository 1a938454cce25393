"""The daily's Alpaca request budget, counted against the local fake server with Alpaca's
documented page limits (``FakeAlpaca(page_size=None)``), over a market seeded from the synthetic
provider (three symbols, chains of 1,586 - 3,430 contracts).

``reuse=False`` is the plain plan (one request per call, what the adapter did before issue 17);
the default plan must give the same rows with far fewer requests, and the whole daily must stay
under ``requests_per_minute`` in every 60 s window.
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import TerminalProviderError
from tests.providers.fake_alpaca import FakeAlpaca, ManualClock
from tests.providers.fake_market import seed_market

pytestmark = pytest.mark.alpaca

SYMBOLS = ("AAPL", "MSFT", "SPY")
LIVE = dt.date(2024, 6, 3)
NOW = dt.datetime(2024, 6, 3, 21, 30, tzinfo=dt.UTC)  # after the close: the session is live and complete

STOCK_BARS, CONTRACTS = "/v2/stocks/bars", "/v2/options/contracts"
OPTION_BARS, SNAPSHOTS = "/v1beta1/options/bars", "/v1beta1/options/snapshots/"

# Requests of one daily for the three symbols (first run: 90 sessions of candles each).
BEFORE = {STOCK_BARS: 6, CONTRACTS: 6, OPTION_BARS: 29, SNAPSHOTS: 10}  # 51: 17 per symbol
AFTER = {STOCK_BARS: 1, CONTRACTS: 1, SNAPSHOTS: 10}  # 12: 4 per symbol (the snapshot pages)


@pytest.fixture(scope="module")
def market():
    pytest.importorskip("alpaca")
    return SYMBOLS


def daily_over_fake(root: Path, *, reuse: bool, requests_per_minute: float | None = 200.0) -> dict[str, Any]:
    """One daily over a fresh fake and ledger; the requests it made and everything it stored."""
    import ledger
    from ledger.config import Settings
    from stages import datastore
    from stages.providers.alpaca_provider import AlpacaProvider
    from stages.runner import run_daily

    clock = ManualClock()
    with FakeAlpaca(page_size=None, clock=clock) as fake:
        seed_market(fake, SYMBOLS, LIVE)
        settings = Settings(duckdb_path=root / "warehouse" / "options.duckdb", data_root=root / "data",
                            watchlists={"default": SYMBOLS})
        provider = AlpacaProvider(
            credentials=fake.credentials(), data_url=fake.url, trading_url=fake.url, requests_per_second=1000.0,
            requests_per_minute=requests_per_minute, clock=clock, sleep=clock.sleep, jitter=random.Random(0),
            now=lambda: NOW, reuse=reuse,
        )
        result = run_daily(as_of=LIVE, symbols=SYMBOLS, settings=settings, provider=provider, now=NOW)
        requests = list(fake.requests)
        counts = fake.counts()
    with ledger.open(settings.duckdb_path).reader() as con:
        tables = {t: datastore.table_rows(con, t).to_pylist() for t in datastore.TABLES}
    files = {o.path: o.sha256 for r in result.results for o in r.outcomes if o.path}
    return {"result": result, "counts": counts, "requests": requests, "tables": tables, "files": files,
            "provider": provider}


@pytest.fixture(scope="module")
def before(market, tmp_path_factory):
    return daily_over_fake(tmp_path_factory.mktemp("before"), reuse=False)


@pytest.fixture(scope="module")
def after(market, tmp_path_factory):
    return daily_over_fake(tmp_path_factory.mktemp("after"), reuse=True)


def test_the_plain_plan_makes_17_requests_per_symbol(before):
    assert before["result"].status == "success"
    assert before["counts"] == BEFORE


def test_the_daily_makes_4_requests_per_symbol_all_of_them_snapshot_pages(after):
    assert after["result"].status == "success"
    assert after["counts"] == AFTER
    # the session's option bars came from the snapshots' dailyBar; nothing was asked twice
    keys = [(r.path, tuple(sorted(r.query.items()))) for r in after["requests"]]
    assert len(keys) == len(set(keys))
    assert all(r.query.get("limit") == "1000" for r in after["requests"] if r.path.startswith(SNAPSHOTS))
    assert all(r.query.get("limit") == "10000" for r in after["requests"] if r.path == CONTRACTS)
    assert [r.query["symbols"] for r in after["requests"] if r.path == STOCK_BARS] == ["AAPL,MSFT,SPY"]


def test_fewer_requests_give_identical_rows_and_files(before, after):
    for table, rows in before["tables"].items():
        assert after["tables"][table] == rows, table
    assert sum(len(rows) for rows in after["tables"].values()) > 5_000
    assert after["files"] == before["files"] and len(after["files"]) >= 5


def test_the_daily_never_exceeds_requests_per_minute_in_any_60_s_window(market, tmp_path):
    limit = 10
    run = daily_over_fake(tmp_path, reuse=False, requests_per_minute=limit)  # 51 requests: five minutes' worth
    stamps = sorted(r.at for r in run["requests"])
    assert len(stamps) == sum(BEFORE.values())
    busiest = max(sum(1 for t in stamps if s <= t < s + 60.0) for s in stamps)
    assert busiest == limit  # the limiter filled every window and never overfilled one
    assert stamps[-1] - stamps[0] >= 60.0 * (len(stamps) // limit - 1)
    assert run["provider"].retrier.requests == len(stamps)


def test_the_fake_refuses_what_alpaca_refuses(fake_alpaca, make_provider):
    provider = make_provider(reuse=False)
    contracts = [f"AAPL240621C{i:08d}" for i in range(1, 102)]
    from alpaca.data.requests import OptionBarsRequest
    from alpaca.data.timeframe import TimeFrame

    request = OptionBarsRequest(symbol_or_symbols=contracts, timeframe=TimeFrame.Day)
    with pytest.raises(TerminalProviderError, match="HTTP 422"):
        provider._call("option bars", lambda: provider._client("option").get_option_bars(request))
    assert "at most 100" in fake_alpaca.handle("/v1beta1/options/bars", {"symbols": ",".join(contracts)},
                                               {"APCA-API-KEY-ID": fake_alpaca.key,
                                                "APCA-API-SECRET-KEY": fake_alpaca.secret}).body["message"]
    for path, limit in (("/v2/stocks/bars", "10001"), ("/v1beta1/options/snapshots/AAPL", "1001"),
                        ("/v2/options/contracts", "10001")):
        reply = fake_alpaca.handle(path, {"symbols": "AAPL", "limit": limit},
                                   {"APCA-API-KEY-ID": fake_alpaca.key, "APCA-API-SECRET-KEY": fake_alpaca.secret})
        assert reply.status == 422, path


def test_the_run_cache_expires(fake_alpaca, make_provider, clock):
    from tests.providers.fake_alpaca import bar

    fake_alpaca.add_stock_bars("AAPL", [bar(LIVE, 190.0)])
    provider = make_provider(cache_seconds=60.0)
    provider.prefetch_stock_bars(["AAPL", "MSFT"], LIVE, LIVE)
    assert provider.stock_bars(["AAPL"], LIVE, LIVE).num_rows == 1
    assert provider.stock_bars(["MSFT"], LIVE, LIVE).num_rows == 0  # known to have no bar: not asked again
    assert len(fake_alpaca.seen(STOCK_BARS)) == 1
    clock.sleep(61.0)
    assert provider.stock_bars(["AAPL"], LIVE, LIVE).num_rows == 1
    assert len(fake_alpaca.seen(STOCK_BARS)) == 2
