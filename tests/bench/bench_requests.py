"""Benchmark: the Alpaca requests a daily makes, per symbol and endpoint, before and after issue 17.

Run with ``python -m tests.bench.bench_requests`` (``--quick``: 5 symbols; ``--symbols N``).
A daily of N symbols (default 20) runs through the real alpaca-py clients against the local fake
server (``tests/providers/fake_alpaca.py``, Alpaca's documented page limits, ``page_size=None``),
seeded from the synthetic market (chains of 1,500 - 3,500 contracts), twice on fresh ledgers:

* **before**: ``AlpacaProvider(reuse=False)``, the plain plan the adapter had at commit 0068a23
  (one request per provider call: candles and spot per symbol, contracts twice, the session's
  option bars from the bars endpoint 100 contracts at a time, no cache). Its counts for three
  symbols were measured with the 0068a23 adapter itself and are asserted in
  ``tests/providers/test_request_budget.py``;
* **after**: the default plan (multi-symbol stock bars and contracts, option bars from the chain
  snapshot's ``dailyBar``, one request per thing per run).

Both runs must store identical rows. Requests are counted by the server; the provider's clock
is a manual one, so the rate limiter never sleeps for real. The 500-symbol figure is projected
from the measured per-symbol pages (snapshot pages are per underlying; stock bars and contracts
share pages across symbols, so they are recomputed with Alpaca's page sizes for 500), then
divided by the free plan's 200 requests a minute.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LIVE = dt.date(2024, 6, 3)
NOW = dt.datetime(2024, 6, 3, 21, 30, tzinfo=dt.UTC)
RATE_PER_MINUTE = 200
PROJECTED_SYMBOLS = 500
UNIVERSE = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "BRK.B", "JPM", "V", "XOM",
            "UNH", "JNJ", "WMT", "PG", "MA", "HD", "CVX", "KO", "PEP", "ABBV", "MRK", "COST", "AVGO", "ORCL", "BAC",
            "ADBE")
ENDPOINTS = ("/v2/stocks/bars", "/v2/options/contracts", "/v1beta1/options/bars", "/v1beta1/options/snapshots/")


def _symbols(n: int) -> tuple[str, ...]:
    extra = tuple(f"X{i:03d}" for i in range(max(0, n - len(UNIVERSE))))
    return (UNIVERSE + extra)[:n]


def daily(symbols: tuple[str, ...], *, reuse: bool) -> dict[str, Any]:
    import ledger
    from ledger.config import Settings
    from stages import datastore
    from stages.providers.alpaca_provider import AlpacaProvider
    from stages.runner import run_daily
    from tests.providers.fake_alpaca import FakeAlpaca, ManualClock
    from tests.providers.fake_market import seed_market

    clock = ManualClock()
    root = Path(tempfile.mkdtemp(prefix="bench-requests-"))
    with FakeAlpaca(page_size=None, clock=clock) as fake:
        sizes = seed_market(fake, symbols, LIVE)
        settings = Settings(duckdb_path=root / "w" / "options.duckdb", data_root=root / "data",
                            watchlists={"default": symbols})
        provider = AlpacaProvider(credentials=fake.credentials(), data_url=fake.url, trading_url=fake.url,
                                  requests_per_second=1000.0, requests_per_minute=RATE_PER_MINUTE, clock=clock,
                                  sleep=clock.sleep, jitter=random.Random(0), now=lambda: NOW, reuse=reuse)
        cpu0 = time.process_time()
        result = run_daily(as_of=LIVE, symbols=symbols, settings=settings, provider=provider, now=NOW)
        cpu = time.process_time() - cpu0
        counts = fake.counts()
        throttled = clock.now_value - 1000.0
    with ledger.open(settings.duckdb_path).reader() as con:
        tables = {t: datastore.table_rows(con, t).to_pylist() for t in datastore.TABLES}
    return {"status": result.status, "counts": {e: counts.get(e, 0) for e in ENDPOINTS}, "tables": tables,
            "sizes": sizes, "cpu_s": cpu, "limiter_minutes": throttled / 60.0}


def project(after: dict[str, int], sizes: dict[str, int], n: int, per_symbol_before: float) -> dict[str, float]:
    """Requests of an ``n``-symbol daily: before is linear; after recomputes the shared pages."""
    from stages.providers.alpaca_provider import (
        CONTRACT_UNDERLYINGS_PER_REQUEST,
        CONTRACTS_PAGE_SIZE,
        STOCK_SYMBOLS_PER_REQUEST,
    )

    measured = len(sizes)
    mean_chain = sum(sizes.values()) / measured
    snapshot_pages = after["/v1beta1/options/snapshots/"] / measured * n
    batches = math.ceil(n / CONTRACT_UNDERLYINGS_PER_REQUEST)
    contracts = batches * math.ceil(min(n, CONTRACT_UNDERLYINGS_PER_REQUEST) * mean_chain / CONTRACTS_PAGE_SIZE)
    from stages.jobs.candles import LOOKBACK_SESSIONS

    stock_first = sum(math.ceil(min(n - i, STOCK_SYMBOLS_PER_REQUEST) * LOOKBACK_SESSIONS / 10_000)
                      for i in range(0, n, STOCK_SYMBOLS_PER_REQUEST))
    stock_steady = math.ceil(n / STOCK_SYMBOLS_PER_REQUEST)
    after_first = snapshot_pages + contracts + stock_first
    after_steady = snapshot_pages + contracts + stock_steady
    before = per_symbol_before * n
    return {"before_requests": before, "after_requests_first_run": after_first,
            "after_requests_steady": after_steady, "before_minutes": before / RATE_PER_MINUTE,
            "after_minutes_first_run": after_first / RATE_PER_MINUTE,
            "after_minutes_steady": after_steady / RATE_PER_MINUTE}


def run(quick: bool = False, symbols: int | None = None) -> dict[str, Any]:
    n = symbols or (5 if quick else 20)
    universe = _symbols(n)
    before = daily(universe, reuse=False)
    after = daily(universe, reuse=True)
    identical = before["tables"] == after["tables"]
    total_b, total_a = sum(before["counts"].values()), sum(after["counts"].values())
    per_b, per_a = total_b / n, total_a / n
    proj = project(after["counts"], after["sizes"], PROJECTED_SYMBOLS, per_b)

    print(f"Alpaca requests of one daily, {n} symbols (mean chain {sum(after['sizes'].values()) / n:,.0f} "
          f"contracts), fake server with Alpaca's page limits; rows identical: {identical}")
    print(f"{'endpoint':34} {'before':>8} {'/symbol':>8} {'after':>8} {'/symbol':>8}")
    for e in ENDPOINTS:
        b, a = before["counts"][e], after["counts"][e]
        print(f"{e:34} {b:8d} {b / n:8.2f} {a:8d} {a / n:8.2f}")
    print(f"{'total':34} {total_b:8d} {per_b:8.2f} {total_a:8d} {per_a:8.2f}   ratio {per_a / per_b:.2f}")
    print(f"{PROJECTED_SYMBOLS} symbols at {RATE_PER_MINUTE} requests/minute: before {proj['before_requests']:,.0f} "
          f"requests = {proj['before_minutes']:.1f} min; after {proj['after_requests_steady']:,.0f} = "
          f"{proj['after_minutes_steady']:.1f} min (first run, 90 sessions of candles: "
          f"{proj['after_minutes_first_run']:.1f} min)")
    print(f"CPU of the daily in this process (fake server included; the machine may be loaded): before "
          f"{before['cpu_s']:.1f} s, after {after['cpu_s']:.1f} s")
    if not identical or before["status"] != "success" or after["status"] != "success":
        raise SystemExit("the two request plans stored different rows, or a daily failed")
    return {
        "symbols": n, "mean_chain_contracts": sum(after["sizes"].values()) / n, "rows_identical": identical,
        "before": {"requests": total_b, "per_symbol": per_b, "per_endpoint": before["counts"]},
        "after": {"requests": total_a, "per_symbol": per_a, "per_endpoint": after["counts"]},
        "ratio": per_a / per_b,
        "projected_500": proj,
        "rate_per_minute": RATE_PER_MINUTE,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--symbols", type=int, default=None)
    args = parser.parse_args(argv)
    run(quick=args.quick, symbols=args.symbols)
    return 0


if __name__ == "__main__":
    sys.exit(main())
