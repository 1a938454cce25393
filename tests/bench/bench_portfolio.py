"""Benchmark: ``portfolio show`` and the stress table for 200 positions (600 legs) across 50
underlyings, from stored snapshots.

Run with ``python -m tests.bench.bench_portfolio [--quick]``. Setup: one session's chain
snapshot per underlying (about 2,000 contracts each, built with ``enrich_chain`` from a numpy
chain as in ``bench_flow``) written as the snapshot stage writes them (Parquet under
``lake/options_snapshots/symbol=S/date=D/chain.parquet``) and registered in
``options_snapshot_files`` through the ledger's data writer; a portfolio of 40 single legs, 40
verticals and 120 iron condors (40 + 80 + 480 = 600 legs). Figures:

* ``show``: ``stages.portfolio.show(settings, as_of=...)`` end to end (read the file, open the
  database read-only, find the 50 snapshot files, read them, value, exposure, stress), warm
  imports, median of several runs; target < 0.5 s. ``cli_wall_s``: the same through
  ``options-helper portfolio show --json`` in a fresh process (imports included).
* ``stress``: ``stages.portfolio.stress.stress`` on the valued legs (every scenario and leg in
  one numpy array); target < 50 ms.
* baselines in the same process: a per-leg loop (read each leg's snapshot file with pandas, find
  the contract, mark it) and scalar ``math`` repricing of every leg and scenario; both must agree
  with the fast path before any time is reported.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SESSION = dt.date(2026, 11, 20)
N_SYMBOLS = 50
RATE = 0.04


def _symbols(n: int) -> list[str]:
    return [f"B{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(n)]


def _chain(rng: np.random.Generator, symbol: str, spot: float) -> pa.Table:
    from stages.analytics.snapshot import enrich_chain

    expiries = [SESSION + dt.timedelta(days=7 * (i + 1)) for i in range(20)]
    strikes = np.round(spot * np.linspace(0.75, 1.25, 50), 1)
    exp = np.repeat(np.array(expiries, dtype="datetime64[D]"), len(strikes) * 2)
    strike = np.tile(np.repeat(strikes, 2), len(expiries))
    is_call = np.tile(np.array([True, False]), len(expiries) * len(strikes))
    n = len(exp)
    t = (exp - np.datetime64(SESSION, "D")).astype(float) / 365.0
    moneyness = np.abs(strike / spot - 1.0)
    iv = 0.2 + 0.3 * moneyness
    from stages.pricing import bs_price

    mid = np.maximum(bs_price(spot, strike, t, RATE, iv, is_call), 0.01)
    width = 0.02 + 0.02 * rng.random(n)
    frame = pd.DataFrame({
        "contract_symbol": [f"{symbol}{pd.Timestamp(e):%y%m%d}{'C' if c else 'P'}{round(k * 1000):08d}"
                            for e, k, c in zip(exp, strike, is_call, strict=True)],
        "underlying": symbol, "expiry": pd.to_datetime(exp).date, "option_type": np.where(is_call, "call", "put"),
        "strike": strike, "bid": np.round(mid * (1 - width), 2), "ask": np.round(mid * (1 + width), 2),
        "last": np.round(mid, 2), "volume": rng.poisson(100, n).astype(float),
        "open_interest": rng.poisson(1000, n).astype(float), "implied_volatility": iv,
    })
    return enrich_chain(frame, spot, SESSION, RATE)


def build(root: Path, n_symbols: int = N_SYMBOLS) -> tuple[Any, dict[str, pa.Table]]:
    """A ledger with one stored snapshot per symbol and a 200-position portfolio file."""
    import attrs

    import ledger
    from ledger.config import Settings
    from stages import datastore
    from stages.jobs._files import _sha256

    rng = np.random.default_rng(11)
    settings = Settings(duckdb_path=root / "warehouse" / "options.duckdb", data_root=root / "data",
                        portfolio=root / "portfolio.json")
    chains: dict[str, pa.Table] = {}
    rows = []
    for i, symbol in enumerate(_symbols(n_symbols)):
        spot = float(50 + 10 * i)
        chain = _chain(rng, symbol, spot)
        chains[symbol] = chain
        rel = f"lake/options_snapshots/symbol={symbol}/date={SESSION}/chain.parquet"
        path = root / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(chain, path)
        rows.append({"symbol": symbol, "date": SESSION, "path": rel, "bytes": path.stat().st_size,
                     "sha256": _sha256(path), "contracts": chain.num_rows, "spot": spot, "provider": "synthetic"})
    table = pa.Table.from_pylist(rows)
    table = table.set_column(1, "date", pa.array([SESSION] * len(rows), pa.date32()))
    led = ledger.open(settings.duckdb_path)
    with led.run("snapshot_options", triggered_by="python", partition_key=SESSION.isoformat(),
                 scope_keys=tuple(chains), args={"bench": "portfolio"}) as run:
        run.complete([], data_writer=lambda con: datastore.write(
            con, datastore.TableWrite(table=datastore.SNAPSHOT_FILES.name, rows=table, partition={"date": SESSION}),
            run.run_id))
    settings.portfolio.write_text(json.dumps(_portfolio(chains, rng), indent=1))
    return attrs.evolve(settings), chains


def _portfolio(chains: dict[str, pa.Table], rng: np.random.Generator) -> dict[str, Any]:
    symbols = list(chains)
    positions = []

    def strikes_of(symbol: str, expiry: dt.date) -> list[float]:
        t = chains[symbol]
        return sorted({k for k, e in zip(t["strike"].to_pylist(), t["expiry"].to_pylist(), strict=True) if e == expiry})

    kinds = ["single"] * 40 + ["vertical"] * 40 + ["condor"] * 120
    for i, kind in enumerate(kinds):
        symbol = symbols[i % len(symbols)]
        expiry = SESSION + dt.timedelta(days=7 * int(rng.integers(2, 20)))
        ks = strikes_of(symbol, expiry)
        mid = len(ks) // 2
        e = expiry.isoformat()
        if kind == "single":
            positions.append({"id": f"p{i}", "symbol": symbol, "option_type": "call", "expiry": e,
                              "strike": ks[mid], "contracts": 1 + i % 3, "cost_basis": 2.0})
        elif kind == "vertical":
            positions.append({"id": f"p{i}", "symbol": symbol, "net_debit": 150.0, "legs": [
                {"side": "long", "option_type": "put", "expiry": e, "strike": ks[mid], "contracts": 1},
                {"side": "short", "option_type": "put", "expiry": e, "strike": ks[mid - 4], "contracts": 1}]})
        else:
            positions.append({"id": f"p{i}", "symbol": symbol, "net_debit": -200.0, "legs": [
                {"side": "long", "option_type": "put", "expiry": e, "strike": ks[mid - 10], "contracts": 1},
                {"side": "short", "option_type": "put", "expiry": e, "strike": ks[mid - 5], "contracts": 1},
                {"side": "short", "option_type": "call", "expiry": e, "strike": ks[mid + 5], "contracts": 1},
                {"side": "long", "option_type": "call", "expiry": e, "strike": ks[mid + 10], "contracts": 1}]})
    return {"base_currency": "USD", "cash": 0.0, "positions": positions}


# -- the baselines ----------------------------------------------------------------------------
def naive_values(settings: Any) -> dict[str, float]:
    """Per leg: read its snapshot file with pandas, find the contract, mark it; sum per position."""
    import duckdb

    from stages.portfolio import load_portfolio

    doc = load_portfolio(settings.portfolio).portfolio
    out = {}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        paths = dict(con.execute("SELECT symbol, path FROM options_snapshot_files WHERE date = ?", [SESSION]).fetchall())
    for position in doc.positions:
        total = 0.0
        for leg in position.legs:
            frame = pd.read_parquet(Path(settings.data_root) / paths[position.symbol])
            r = frame[(frame["expiry"] == leg.expiry) & (frame["option_type"] == leg.option_type)
                      & (frame["strike"] == leg.strike)].iloc[0]
            mark = (r["bid"] + r["ask"]) / 2 if r["bid"] > 0 and r["ask"] > 0 else r["last"]
            total += leg.signed_contracts * 100 * mark
        out[position.id] = total
    return out


def _n(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _price(call: bool, s: float, k: float, days: float, vol: float) -> float:
    if days <= 0:
        return max(s - k, 0.0) if call else max(k - s, 0.0)
    t = days / 365.0
    d1 = (math.log(s / k) + (RATE + vol * vol / 2) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    return s * _n(d1) - k * math.exp(-RATE * t) * _n(d2) if call else k * math.exp(-RATE * t) * _n(-d2) - s * _n(-d1)


def naive_stress(legs: pd.DataFrame) -> list[float]:
    from stages.portfolio.stress import GRID, SCENARIOS

    out = []
    rows = legs.to_dict("records")
    for sc in (*SCENARIOS, *GRID):
        total = 0.0
        for r in rows:
            total += r["signed"] * 100 * (
                _price(r["option_type"] == "call", r["spot"] * (1 + sc.spot_pct), r["strike"], r["dte"] - sc.days,
                       max(r["implied_volatility"] + sc.vol_points / 100, 1e-4))
                - _price(r["option_type"] == "call", r["spot"], r["strike"], r["dte"], r["implied_volatility"]))
        out.append(total)
    return out


def _timed(fn: Any, repeats: int) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process) over ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _median(fn: Any, repeats: int) -> float:
    return _timed(fn, repeats)[0]


def run(quick: bool = False, repeats: int | None = None) -> dict[str, Any]:
    from stages import portfolio
    from stages.portfolio.stress import GRID, SCENARIOS, scenario_pnl, stress

    repeats = repeats or (3 if quick else 9)
    with tempfile.TemporaryDirectory(prefix="oh-bench-portfolio-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        settings, _ = build(root)
        setup_s = time.perf_counter() - t0
        report = portfolio.show(settings, as_of=SESSION)
        doc = report.to_dict()
        legs = report.valuation.legs
        assert len(doc["positions"]) == 200 and len(legs) == 600 and doc["exposure"]["legs_missing"] == 0
        t0 = time.perf_counter()
        naive = naive_values(settings)
        naive_show_s = time.perf_counter() - t0
        for p in doc["positions"]:
            assert abs(p["value"] - naive[p["id"]]) < 1e-6, p["id"]
        fast_pnl, _, _ = scenario_pnl(legs, SCENARIOS + GRID, RATE)
        assert np.allclose(fast_pnl, naive_stress(legs), rtol=1e-9, atol=1e-6)

        show_s, show_cpu = _timed(lambda: portfolio.show(settings, as_of=SESSION), repeats)
        stress_s, stress_cpu = _timed(lambda: stress(legs, RATE), repeats * 3)
        naive_stress_s = _median(lambda: naive_stress(legs), 1 if quick else 3)
        cli = [sys.executable, "-m", "frontends.cli.app", "--duckdb-path", str(settings.duckdb_path), "--data-root",
               str(settings.data_root), "--portfolio", str(settings.portfolio), "portfolio", "show", "--as-of",
               SESSION.isoformat(), "--json"]

        def cli_once() -> None:
            subprocess.run(cli, check=True, capture_output=True)

        cli_s = _median(cli_once, 3 if quick else 5)
    return {
        "benchmark": "portfolio",
        "positions": 200, "legs": 600, "symbols": N_SYMBOLS, "contracts_per_snapshot": 2000,
        "scenarios": len(SCENARIOS) + len(GRID), "repeats": repeats, "setup_s": round(setup_s, 2),
        "show_median_s": round(show_s, 4), "show_cpu_median_s": round(show_cpu, 4), "show_target_s": 0.5,
        "stress_median_s": round(stress_s, 5), "stress_cpu_median_s": round(stress_cpu, 5), "stress_target_s": 0.05,
        "naive_show_s": round(naive_show_s, 3), "show_speedup": round(naive_show_s / show_s, 1),
        "naive_stress_s": round(naive_stress_s, 4), "stress_speedup": round(naive_stress_s / stress_s, 1),
        "cli_wall_median_s": round(cli_s, 3),
    }


def main() -> None:
    r = run(quick="--quick" in sys.argv[1:])
    print(f"portfolio show, {r['positions']} positions / {r['legs']} legs / {r['symbols']} underlyings: "
          f"median {r['show_median_s'] * 1000:.0f} ms wall, {r['show_cpu_median_s'] * 1000:.0f} ms CPU (target < 500 ms; per-leg baseline {r['naive_show_s']:.2f} s, "
          f"x{r['show_speedup']}); CLI in a fresh process {r['cli_wall_median_s']:.2f} s")
    print(f"stress, {r['scenarios']} scenarios x {r['legs']} legs: median {r['stress_median_s'] * 1000:.1f} ms wall, {r['stress_cpu_median_s'] * 1000:.1f} ms CPU "
          f"(target < 50 ms; scalar baseline {r['naive_stress_s'] * 1000:.0f} ms, x{r['stress_speedup']})")


if __name__ == "__main__":
    main()
