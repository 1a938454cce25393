"""An independent check of the snapshot files: the Black-Scholes price at each stored implied
volatility lies within that row's bid-ask. Black-Scholes is written out here from the formula
(math.erf), not taken from ``stages.pricing``; the files are read straight from Parquet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import ledger
import stages
from ledger.config import Settings
from tests.pipeline.conftest import DAY2, NOW, FaultyProvider

_erf = np.vectorize(math.erf)


def _cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def black_scholes(spot: float, strike: np.ndarray, t: np.ndarray, rate: float, vol: np.ndarray, call: np.ndarray) -> np.ndarray:
    d1 = (np.log(spot / strike) + (rate + vol * vol / 2.0) * t) / (vol * np.sqrt(t))
    d2 = d1 - vol * np.sqrt(t)
    c = spot * _cdf(d1) - strike * np.exp(-rate * t) * _cdf(d2)
    p = strike * np.exp(-rate * t) * _cdf(-d2) - spot * _cdf(-d1)
    return np.where(call, c, p)


def _violations(path: Path, rate: float) -> tuple[int, int, list[str]]:
    t = pq.read_table(path)
    as_of = t["as_of"][0].as_py()
    live = pc.and_(pc.greater(t["expiry"], pa.scalar(as_of, pa.date32())), pc.is_valid(t["implied_volatility"]))
    quoted = pc.and_(pc.greater(t["bid"], 0.0), pc.greater(t["ask"], 0.0))
    rows = t.filter(pc.and_(live, quoted)).to_pydict()
    n = len(rows["contract_symbol"])
    if n == 0:
        return 0, 0, []
    dte = np.array([(e - as_of).days for e in rows["expiry"]], dtype=float)
    price = black_scholes(rows["spot"][0], np.array(rows["strike"]), dte / 365.0, rate,
                          np.array(rows["implied_volatility"]), np.array([o == "call" for o in rows["option_type"]]))
    bid, ask = np.array(rows["bid"]), np.array(rows["ask"])
    tol = 0.005 + 1e-6 * price  # half a cent: quotes are in cents
    bad = (price < bid - tol) | (price > ask + tol)
    sample = [f"{rows['contract_symbol'][i]} bs={price[i]:.4f} bid={bid[i]} ask={ask[i]}" for i in np.flatnonzero(bad)[:5]]
    return n, int(bad.sum()), sample


def _files(s: Settings) -> list[Path]:
    with ledger.open(s.duckdb_path).reader() as con:
        rel = [r[0] for r in con.execute("SELECT path FROM options_snapshot_files ORDER BY path").fetchall()]
    return [s.data_root / p for p in rel]


def test_stored_iv_reprices_within_the_quote(state: Settings) -> None:
    files = _files(state)
    assert len(files) == 4
    for path in files:
        n, bad, sample = _violations(path, state.risk_free_rate)
        assert n > 500, path
        assert bad == 0, f"{path}: {bad}/{n} rows price outside the quote, e.g. {sample}"


def test_inferred_iv_reprices_within_the_quote(settings: Settings, synthetic: Any) -> None:
    """With the source's IV and greeks removed, the stage inverts IV from the mid."""

    def strip(snap: Any, _: str) -> Any:
        table = snap.table
        for column in ("implied_volatility", "delta", "gamma", "theta", "vega"):
            i = table.column_names.index(column)
            table = table.set_column(i, table.schema.field(column), pa.nulls(table.num_rows, pa.float64()))
        import attrs

        return attrs.evolve(snap, table=table)

    provider = FaultyProvider(synthetic, transform={"option_chain": strip})
    result = stages.run_job("snapshot_options", as_of=DAY2, symbols=["SPY"], settings=settings, provider=provider, now=NOW)
    assert result.ok, result.to_dict()
    assert result.outcome("SPY").extra["iv_sources"].get("bs_inferred", 0) > 500
    (path,) = _files(settings)
    n, bad, sample = _violations(path, settings.risk_free_rate)
    assert n > 500 and bad == 0, sample
    table = pq.read_table(path)
    assert pc.all(pc.is_in(table["iv_source"], value_set=pa.array(["bs_inferred", "missing"]))).as_py()
