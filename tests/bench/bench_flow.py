"""Benchmark: vectorised flow (``stages.analytics.flow``) against the obvious pandas version and
against the implementation before expirations were taken apart (commit 0068a23), in one process.

Run with ``python -m tests.bench.bench_flow [--quick]``. The chain is generated here with numpy (about
2,000 contracts over two sessions, with expiries rolling off and new listings), so the figure
does not depend on the providers. The "naive" implementation is what one writes first: an
outer merge, then ``DataFrame.apply`` row by row for mark, delta OI, notionals, class and row
key, then ``groupby().apply`` per grouping. Both must agree to 1e-9 before any time is reported.
The "baseline" is ``stages/analytics/flow.py`` as of 0068a23 (read with ``git show``, loaded as a
module): the target is the current code within 1.2x of it on the same chain, same run.

A second figure: ``options-helper flow --window 5`` for 50 symbols from stored rows (the read
path, ``stages.flow_view.flow_view`` with ``compute=False``), target under 1 s.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from stages.analytics.flow import FLOW_GROUP_BYS, compute_flow
from stages.analytics.snapshot import enrich_chain

FROM_DAY, TO_DAY = dt.date(2025, 3, 6), dt.date(2025, 3, 7)
SYMBOL = "BNCH"


# -- a realistic pair of chains ------------------------------------------------------------
def _chain(rng: np.random.Generator, expiries: list[dt.date], strikes: np.ndarray, spot: float) -> pd.DataFrame:
    exp = np.repeat(np.array(expiries, dtype="datetime64[D]"), len(strikes) * 2)
    strike = np.tile(np.repeat(strikes, 2), len(expiries))
    is_call = np.tile(np.array([True, False]), len(expiries) * len(strikes))
    n = len(exp)
    codes = [
        f"{SYMBOL}{pd.Timestamp(e).strftime('%y%m%d')}{'C' if c else 'P'}{round(k * 1000):08d}"
        for e, k, c in zip(exp, strike, is_call, strict=True)
    ]
    moneyness = np.abs(strike / spot - 1.0)
    oi = rng.poisson(4000 * np.exp(-12 * moneyness)).astype(float)
    volume = rng.poisson(800 * np.exp(-15 * moneyness)).astype(float)
    width = 0.02 + 0.01 * rng.random(n)
    intrinsic = np.where(is_call, np.maximum(spot - strike, 0), np.maximum(strike - spot, 0))
    mid = intrinsic + 3.0 * np.exp(-8 * moneyness) + 0.05
    bid = np.round(mid * (1 - width), 2)
    ask = np.round(mid * (1 + width), 2)
    bid[rng.random(n) < 0.05] = 0.0  # some one-sided quotes, so every mark branch is exercised
    return pd.DataFrame(
        {
            "contract_symbol": codes,
            "underlying": SYMBOL,
            "expiry": pd.to_datetime(exp).date,
            "option_type": np.where(is_call, "call", "put"),
            "strike": strike,
            "bid": bid,
            "ask": ask,
            "last": np.round(mid, 2),
            "volume": volume,
            "open_interest": oi,
            "implied_volatility": 0.2 + 0.3 * moneyness,
            "delta": np.nan,
            "gamma": np.nan,
            "theta": np.nan,
            "vega": np.nan,
        }
    )


def make_sessions(seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """Two snapshot tables (previous, current) of about 2,000 contracts each."""
    rng = np.random.default_rng(seed)
    strikes = np.arange(75.0, 125.0, 1.0)  # 50 strikes
    fridays = [FROM_DAY + dt.timedelta(days=1 + 7 * i) for i in range(21)]
    # Previous session lists the 20 nearest expiries; the nearest one expires, a new one is listed.
    prev = _chain(rng, fridays[:20], strikes, 100.0)
    cur = _chain(rng, fridays[1:21], strikes, 101.0)
    shared = cur["contract_symbol"].isin(prev["contract_symbol"])
    base = prev.set_index("contract_symbol")["open_interest"].reindex(cur["contract_symbol"]).to_numpy()
    change = rng.normal(0, 60, len(cur)).round()
    cur.loc[shared.to_numpy(), "open_interest"] = np.maximum(base[shared.to_numpy()] + change[shared.to_numpy()], 0)
    return enrich_chain(prev, 100.0, FROM_DAY, 0.04), enrich_chain(cur, 101.0, TO_DAY, 0.04)


# -- the obvious implementation -------------------------------------------------------------
_KEYS = {
    "contract": ["contract_symbol", "expiry", "option_type", "strike"],
    "strike": ["option_type", "strike"],
    "expiry": ["option_type", "expiry"],
    "expiry-strike": ["option_type", "expiry", "strike"],
    "total": ["option_type"],
}


def _mark(row: pd.Series, suffix: str) -> float:
    bid, ask, last = row["bid" + suffix], row["ask" + suffix], row["last" + suffix]
    if bid > 0 and ask > 0:
        return (bid + ask) / 2
    for value in (last, ask, bid):
        if value > 0:
            return value
    return np.nan


def _per_row(row: pd.Series) -> pd.Series:
    here, there = row["_merge"] != "right_only", row["_merge"] != "left_only"
    oi = row["open_interest"] if here else 0.0
    oi_prev = row["open_interest_p"] if there else 0.0
    d_oi = oi - oi_prev if here else np.nan  # a contract that is gone has no change (expired or vanished)
    volume = row["volume"] if here else np.nan
    expiry = row["expiry"] if here else row["expiry_p"]
    status = ("matched" if there else "new") if here else ("expired" if expiry < row["to_day"] else "disappeared")
    mark = _mark(row, "" if here else "_p")
    delta = row["delta"] if here else row["delta_p"]
    return pd.Series(
        {
            "contract_symbol": row["contract_symbol"],
            "expiry": row["expiry"] if here else row["expiry_p"],
            "option_type": row["option_type"] if here else row["option_type_p"],
            "strike": row["strike"] if here else row["strike_p"],
            "delta_oi": d_oi,
            "oi_prev": oi_prev,
            "volume": volume,
            "delta_oi_notional": d_oi * mark * 100,
            "volume_notional": volume * mark * 100,
            "delta_notional": d_oi * delta * row["spot_now"] * 100,
            "status": status,
            "live": here,
        }
    )


def _classify(d_oi: float, oi_prev: float, volume: float, all_expired: bool = False) -> str:
    if all_expired:
        return "expired"
    if pd.isna(d_oi):
        return "unknown"
    base = max(0.0 if pd.isna(oi_prev) else oi_prev, 0.0)
    threshold = max(10.0, 0.1 * base)
    if d_oi >= threshold:
        return "building"
    if d_oi <= -threshold:
        return "unwinding"
    if not pd.isna(volume) and volume >= max(50.0, 0.5 * base):
        return "churn"
    return "unknown"


def _strike_text(strike: float) -> str:
    return "" if pd.isna(strike) else (f"{strike:.8f}".rstrip("0").rstrip("."))


def _row_key(row: pd.Series, keys: list[str]) -> str:
    parts = []
    for key in keys:
        value = row[key]
        text = _strike_text(value) if key == "strike" else ("" if pd.isna(value) else str(value))
        if text:
            parts.append(text)
    return "|".join(parts)


def naive_flow(current: pa.Table, previous: pa.Table) -> pd.DataFrame:
    cur, prev = current.to_pandas(), previous.to_pandas()
    merged = cur.merge(prev, on="contract_symbol", how="outer", suffixes=("", "_p"), indicator=True)
    merged["spot_now"] = cur["spot"].iloc[0]
    merged["to_day"] = cur["as_of"].iloc[0]
    rows = merged.apply(_per_row, axis=1)
    out = []
    for group_by, keys in _KEYS.items():
        def summarise(group: pd.DataFrame, by: str = group_by) -> pd.Series:
            sums = {c: group[c].sum(min_count=1) for c in
                    ("delta_oi", "delta_oi_notional", "volume_notional", "delta_notional", "volume")}
            base = group if by == "contract" else group[group["live"]]  # the threshold's base: live OI
            sums["oi_prev"] = base["oi_prev"].sum(min_count=1)
            sums["n_pairs"] = len(group)
            sums["all_expired"] = bool((group["status"] == "expired").all())
            return pd.Series(sums)

        # the groupings by strike and expiry hold live contracts only
        part = rows if group_by in ("contract", "total") else rows[rows["live"]]
        agg = part.groupby(keys, dropna=False).apply(summarise, include_groups=False).reset_index()
        agg["flow_class"] = agg.apply(lambda r: _classify(r["delta_oi"], r["oi_prev"], r["volume"], r["all_expired"]),
                                      axis=1)
        agg["row_key"] = agg.apply(lambda r, k=keys: _row_key(r, k), axis=1)
        agg["group_by"] = group_by
        out.append(agg)
    return pd.concat(out, ignore_index=True)


# -- comparison and timing ------------------------------------------------------------------
_COMPARED = ("delta_oi", "delta_oi_notional", "volume_notional", "delta_notional", "n_pairs")


def assert_agree(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    a = fast.set_index(["group_by", "row_key"]).sort_index()
    b = slow.set_index(["group_by", "row_key"]).sort_index()
    assert a.index.equals(b.index), "the two implementations produced different rows"
    for column in _COMPARED:
        x, y = a[column].to_numpy(dtype=float), b[column].to_numpy(dtype=float)
        assert np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True), f"{column} differs"
    assert (a["flow_class"] == b["flow_class"]).all(), "flow_class differs"


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _stored_rows(symbols: int, window: int) -> tuple[pa.Table, list[str], list[dt.date]]:
    """One-session flow rows for ``symbols`` symbols over ``window`` pairs: the bench pair's rows,
    relabelled per symbol and session (a read benchmark: the figures need not differ)."""
    import pyarrow.compute as pc

    previous, current = make_sessions()
    pair = compute_flow(current, previous, symbol="S000")
    days = [dt.date(2025, 3, 3) + dt.timedelta(days=i) for i in range(window + 1)]  # Mon..Sat: labels only
    names = [f"S{i:03d}" for i in range(symbols)]
    parts = []
    for name in names:
        for k in range(1, window + 1):
            n = pair.num_rows
            t = pair.set_column(pair.schema.get_field_index("symbol"), "symbol", pa.array([name] * n))
            for column, day in (("from_date", days[k - 1]), ("to_date", days[k]), ("as_of", days[k])):
                t = t.set_column(t.schema.get_field_index(column), column, pa.array([day] * n, pa.date32()))
            parts.append(t)
    rows = pa.concat_tables(parts)
    assert pc.sum(pc.equal(rows.column("group_by"), "total")).as_py() == 2 * symbols * window
    return rows, names, days


def view_bench(quick: bool = False, symbols: int = 50, window: int = 5) -> dict:
    """Time ``flow_view(compute=False)`` (what ``flow --window 5`` does once the pairs are stored)."""
    import tempfile
    from pathlib import Path

    import ledger
    from ledger.config import Settings
    from stages import datastore
    from stages.flow_view import flow_view

    rows, names, days = _stored_rows(symbols, window)
    folder = Path(tempfile.mkdtemp(prefix="bench_flow_view_"))
    settings = Settings(duckdb_path=folder / "flow.duckdb", data_root=folder)
    led = ledger.open(settings.duckdb_path)
    led.close() if hasattr(led, "close") else None
    import duckdb

    con = duckdb.connect(str(settings.duckdb_path))
    datastore.write(con, datastore.TableWrite(table=datastore.FLOW.name, rows=rows,
                                              partition={"symbol": names}), "bench")
    con.execute("CHECKPOINT")
    con.close()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for group_by in ("contract", "strike"):
        times, cpus = [], []
        for _ in range(3 if quick else 5):
            start, start_cpu = time.perf_counter(), time.process_time()
            view = flow_view(settings, as_of=days[-1], symbols=names, window=window, group_by=group_by, top=10,
                             compute=False)
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)  # every thread's CPU: what a loaded machine cannot inflate
            assert all(s.pairs == window and len(s.building) == 10 for s in view.symbols)
        timings[group_by], cpu[group_by] = statistics.median(times), statistics.median(cpus)
    return {"view_symbols": symbols, "view_window": window, "view_rows_stored": rows.num_rows,
            "view_median_s": round(timings["contract"], 4), "view_strike_median_s": round(timings["strike"], 4),
            "view_cpu_s": round(cpu["contract"], 4), "view_strike_cpu_s": round(cpu["strike"], 4)}


BASELINE_COMMIT = "0068a23"


def load_baseline() -> Any:
    """``stages/analytics/flow.py`` as of ``BASELINE_COMMIT``, as a module (None without git)."""
    import importlib.util
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        text = subprocess.run(["git", "show", f"{BASELINE_COMMIT}:stages/analytics/flow.py"], cwd=root,
                              capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    folder = Path(tempfile.mkdtemp(prefix="bench_flow_"))
    path = folder / f"flow_{BASELINE_COMMIT}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def run(quick: bool = False, repeats: int | None = None) -> dict:
    """Time the implementations on the same chain; returns the figures as a dict (``quick``: fewer
    repeats, for ``run_all --quick``; the chain and the agreement check are the same)."""
    repeats = repeats or (5 if quick else 15)
    previous, current = make_sessions()
    fast = compute_flow(current, previous, group_bys=FLOW_GROUP_BYS).to_pandas()
    slow = naive_flow(current, previous)
    assert_agree(fast, slow)
    baseline = load_baseline()
    # interleaved, so that a loaded machine slows both alike
    fast_times, base_times = [], []
    for _ in range(repeats):
        fast_times.append(_median_seconds(lambda: compute_flow(current, previous), 1))
        if baseline is not None:
            base_times.append(_median_seconds(lambda: baseline.compute_flow(current, previous), 1))
    fast_s = statistics.median(fast_times)
    base_s = statistics.median(base_times) if base_times else None
    slow_s = _median_seconds(lambda: naive_flow(current, previous), 3 if quick else 5)
    view = view_bench(quick=quick)
    return {
        "benchmark": "flow",
        "contracts_previous": previous.num_rows,
        "contracts_current": current.num_rows,
        "output_rows": len(fast),
        "repeats": repeats,
        "vectorised_median_s": round(fast_s, 5),
        "naive_median_s": round(slow_s, 5),
        "speedup": round(slow_s / fast_s, 1),
        "baseline_commit": BASELINE_COMMIT,
        "baseline_median_s": None if base_s is None else round(base_s, 5),
        "ratio_to_baseline": None if base_s is None else round(fast_s / base_s, 3),
        "ratio_target": 1.2,
        **view,
    }


def main() -> None:
    import sys

    result = run(quick="--quick" in sys.argv[1:])
    base = result["baseline_median_s"]
    print(
        f"flow on {result['contracts_previous']} -> {result['contracts_current']} contracts "
        f"({result['output_rows']} output rows): vectorised median {result['vectorised_median_s'] * 1000:.1f} ms, "
        f"naive median {result['naive_median_s'] * 1000:.1f} ms, speedup x{result['speedup']}"
    )
    if base is not None:
        print(f"  baseline {result['baseline_commit']} median {base * 1000:.1f} ms: ratio "
              f"{result['ratio_to_baseline']:.2f} (target <= {result['ratio_target']})")
    print(f"flow --window {result['view_window']} for {result['view_symbols']} symbols from stored rows: "
          f"median {result['view_median_s'] * 1000:.0f} ms grouped by contract, "
          f"{result['view_strike_median_s'] * 1000:.0f} ms by strike, over {result['view_rows_stored']:,} stored rows "
          f"(target < 1000 ms); process CPU {result['view_cpu_s'] * 1000:.0f} ms and "
          f"{result['view_strike_cpu_s'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
