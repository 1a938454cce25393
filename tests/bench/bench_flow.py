"""Benchmark: vectorised flow (``stages.analytics.flow``) against the obvious pandas version.

Run with ``python -m tests.bench.bench_flow [--quick]``. The chain is generated here with numpy (about
2,000 contracts over two sessions, with expiries rolling off and new listings), so the figure
does not depend on the providers. The "naive" implementation is what one writes first: an
outer merge, then ``DataFrame.apply`` row by row for mark, delta OI, notionals, class and row
key, then ``groupby().apply`` per grouping. Both must agree to 1e-9 before any time is reported.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

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
    d_oi = oi - oi_prev
    volume = row["volume"] if here else np.nan
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
        }
    )


def _classify(d_oi: float, oi_prev: float, volume: float) -> str:
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
    rows = merged.apply(_per_row, axis=1)
    out = []
    for group_by, keys in _KEYS.items():
        def summarise(group: pd.DataFrame) -> pd.Series:
            sums = {c: group[c].sum(min_count=1) for c in
                    ("delta_oi", "delta_oi_notional", "volume_notional", "delta_notional", "volume", "oi_prev")}
            sums["n_pairs"] = len(group)
            return pd.Series(sums)

        agg = rows.groupby(keys, dropna=False).apply(summarise, include_groups=False).reset_index()
        agg["flow_class"] = agg.apply(lambda r: _classify(r["delta_oi"], r["oi_prev"], r["volume"]), axis=1)
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


def run(quick: bool = False, repeats: int | None = None) -> dict:
    """Time both implementations on the same chain; returns the figures as a dict (``quick``: 3
    repeats instead of 7, for ``run_all --quick``; the chain and the agreement check are the same)."""
    repeats = repeats or (3 if quick else 7)
    previous, current = make_sessions()
    fast = compute_flow(current, previous, group_bys=FLOW_GROUP_BYS).to_pandas()
    slow = naive_flow(current, previous)
    assert_agree(fast, slow)
    fast_s = _median_seconds(lambda: compute_flow(current, previous), repeats)
    slow_s = _median_seconds(lambda: naive_flow(current, previous), max(3, repeats // 2))
    return {
        "benchmark": "flow",
        "contracts_previous": previous.num_rows,
        "contracts_current": current.num_rows,
        "output_rows": len(fast),
        "repeats": repeats,
        "vectorised_median_s": round(fast_s, 5),
        "naive_median_s": round(slow_s, 5),
        "speedup": round(slow_s / fast_s, 1),
    }


def main() -> None:
    import sys

    result = run(quick="--quick" in sys.argv[1:])
    print(
        f"flow on {result['contracts_previous']} -> {result['contracts_current']} contracts "
        f"({result['output_rows']} output rows): vectorised median {result['vectorised_median_s'] * 1000:.1f} ms, "
        f"naive median {result['naive_median_s'] * 1000:.1f} ms, speedup x{result['speedup']}"
    )


if __name__ == "__main__":
    main()
