"""Benchmark: the synthetic provider's full chain and a year of daily bars for 500 symbols.

Run with ``python -m tests.bench.bench_providers`` (``--quick`` for smoke sizes). Targets from
the issue: a full chain of about 2,000 contracts in under 20 ms; one year of daily bars for
500 symbols in under 2 s. Baselines measured in the same process:

* chain: the same contracts priced one at a time (scalar Black-Scholes price and greeks and an
  f-string OCC symbol per contract), the loop one writes first;
* bars: the same year asked one session at a time (250 requests instead of one).

The XNYS calendar load (exchange-calendars, once per process) is reported on its own.
Each figure is given as wall time and as this process's CPU time: on a shared machine
(``load_average`` is reported) the wall time includes waiting for a core, the CPU time does not.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

CHAIN_SYMBOL = "SPY"
CHAIN_TARGET_S = 0.020
BARS_TARGET_S = 2.0


class _Timer:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> _Timer:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


def _median(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        with _Timer() as t:
            fn()
        walls.append(t.wall)
        cpus.append(t.cpu)
    return statistics.median(walls), statistics.median(cpus)


def _clear_caches() -> None:
    from stages.providers import synthetic_listings, synthetic_prices

    synthetic_prices.price_path.cache_clear()
    synthetic_prices.symbol_params.cache_clear()
    synthetic_listings.expiries_open.cache_clear()
    synthetic_listings.expiry_for_friday.cache_clear()


def naive_chain(provider, symbol: str, day: dt.date) -> list[dict]:
    """The per-contract scalar loop: what the vectorised chain replaces."""
    from stages.occ import format_occ
    from stages.pricing import bs_greeks, bs_price
    from stages.providers.synthetic import _chain_contracts
    from stages.providers.synthetic_chain import surface
    from stages.providers.synthetic_prices import price_path, session_index

    index = session_index(day)
    path = price_path(provider.seed, symbol)
    c = _chain_contracts(provider.seed, symbol, index, None)
    rows = []
    for i in range(len(c.strike_milli)):
        expiry = dt.date(1970, 1, 1) + dt.timedelta(days=int(c.expiry_day[i]))
        strike = c.strike_milli[i] / 1000.0
        t = max((expiry - day).days / 365.0, 1.0 / (365.0 * 24.0))
        spot, iv, _ = surface(path, provider.seed, np.array([index]), np.array([t]), np.array([strike]), provider.rate)
        call = bool(c.is_call[i])
        price = float(bs_price(spot[0], strike, t, provider.rate, iv[0], call))
        greeks = bs_greeks(spot[0], strike, t, provider.rate, iv[0], call)
        rows.append({"contract_symbol": format_occ(symbol, expiry, "call" if call else "put", strike), "mid": price,
                     "iv": float(iv[0]), **{k: float(v) for k, v in greeks.items()}})
    return rows


def run(quick: bool = False) -> dict:
    from ledger.calendar import TradingCalendar
    from stages.providers.synthetic import SyntheticProvider

    t0 = time.perf_counter()
    cal = TradingCalendar.xnys()
    from stages.providers.synthetic_prices import session_days

    session_days()
    calendar_s = time.perf_counter() - t0

    provider = SyntheticProvider(seed=7)
    days = cal.sessions_in_range(dt.date(2025, 1, 2), dt.date(2025, 12, 31))
    repeats = 5 if quick else 25

    # -- chain ----------------------------------------------------------------------------------
    _clear_caches()
    with _Timer() as cold:
        first = provider.option_chain(CHAIN_SYMBOL, days[100])
    contracts = first.table.num_rows
    sample = days[110 : 110 + repeats]
    walls, cpus = [], []
    for day in sample:  # a different session each time
        with _Timer() as t:
            provider.option_chain(CHAIN_SYMBOL, day)
        walls.append(t.wall)
        cpus.append(t.cpu)
    chain_wall, chain_cpu = statistics.median(walls), statistics.median(cpus)
    naive_wall, naive_cpu = _median(lambda: naive_chain(provider, CHAIN_SYMBOL, days[100]), 1 if quick else 3)

    # -- bars -----------------------------------------------------------------------------------
    n_symbols = 50 if quick else 500
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    _clear_caches()
    with _Timer() as bars_cold:
        table = provider.stock_bars(symbols, days[0], days[-1])
    warm_wall, _warm_cpu = _median(lambda: provider.stock_bars(symbols, days[0], days[-1]), 3)
    with _Timer() as per_session:
        for day in days:
            provider.stock_bars(symbols, day, day)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {
        "benchmark": "providers",
        "load_average": round(load, 2) if load is not None else None,
        "calendar_load_s": round(calendar_s, 3),
        "chain_symbol": CHAIN_SYMBOL,
        "chain_contracts": contracts,
        "chain_cold_wall_s": round(cold.wall, 4),
        "chain_median_wall_s": round(chain_wall, 4),
        "chain_median_cpu_s": round(chain_cpu, 4),
        "chain_naive_loop_wall_s": round(naive_wall, 4),
        "chain_naive_loop_cpu_s": round(naive_cpu, 4),
        "chain_speedup_cpu": round(naive_cpu / max(chain_cpu, 1e-9), 1),
        "chain_target_s": CHAIN_TARGET_S,
        "chain_within_target_wall": chain_wall < CHAIN_TARGET_S,
        "chain_within_target_cpu": chain_cpu < CHAIN_TARGET_S,
        "bars_symbols": n_symbols,
        "bars_sessions": len(days),
        "bars_rows": table.num_rows,
        "bars_cold_wall_s": round(bars_cold.wall, 3),
        "bars_cold_cpu_s": round(bars_cold.cpu, 3),
        "bars_warm_wall_s": round(warm_wall, 3),
        "bars_per_session_requests_wall_s": round(per_session.wall, 3),
        "bars_per_session_requests_cpu_s": round(per_session.cpu, 3),
        "bars_speedup_vs_per_session_cpu": round(per_session.cpu / max(bars_cold.cpu, 1e-9), 1),
        "bars_target_s": BARS_TARGET_S,
        "bars_within_target_wall": bars_cold.wall < BARS_TARGET_S,
        "bars_within_target_cpu": bars_cold.cpu < BARS_TARGET_S,
    }
    print(
        f"load average {result['load_average']}; calendar load {calendar_s:.2f} s (once per process, not counted)\n"
        f"chain {CHAIN_SYMBOL}: {contracts} contracts, median {chain_wall * 1000:.1f} ms wall / "
        f"{chain_cpu * 1000:.1f} ms cpu over {len(sample)} sessions (cold, with the price path: "
        f"{cold.wall * 1000:.1f} ms wall); per-contract loop {naive_cpu * 1000:.0f} ms cpu, "
        f"x{result['chain_speedup_cpu']}; target < {CHAIN_TARGET_S * 1000:.0f} ms\n"
        f"bars: {n_symbols} symbols x {len(days)} sessions = {table.num_rows} rows cold in {bars_cold.wall:.2f} s wall / "
        f"{bars_cold.cpu:.2f} s cpu ({warm_wall:.2f} s wall warm); one request per session "
        f"{per_session.cpu:.2f} s cpu, x{result['bars_speedup_vs_per_session_cpu']}; target < {BARS_TARGET_S:.0f} s"
    )
    return result


if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
