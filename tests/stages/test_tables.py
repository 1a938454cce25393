"""Shared column helpers: the compensated group sums equal pandas' groupby bit for bit, and the
Arrow option-type rule equals the pandas one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from stages.analytics._tables import group_sums, num
from stages.analytics.snapshot import normalize_option_type, option_type_column


def test_group_sums_equal_pandas_groupby_sum_and_mean_bit_for_bit():
    rng = np.random.default_rng(17)
    for trial in range(500):
        n = int(rng.integers(0, 80))
        keys = rng.choice(np.array([95.0, 100.0, 102.5, 105.0, np.nan, np.inf]), n)
        # magnitudes from 1e-3 to 1e16: a plain running sum loses digits that Kahan keeps
        values = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 17, n)
        values[rng.random(n) < 0.1] = np.nan
        if trial % 25 == 0 and n:
            values[0] = np.inf
        series = pd.Series(values)
        distinct, total, count = group_sums(keys, values)
        expected_sum = series.groupby(keys).sum()
        expected_mean = series.groupby(keys).mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        assert np.array_equal(distinct, expected_sum.index.to_numpy())
        assert np.array_equal(total, expected_sum.to_numpy(), equal_nan=True)
        assert np.array_equal(mean, expected_mean.to_numpy(), equal_nan=True)


def test_group_sums_differ_from_a_plain_sum_where_pandas_does():
    values = np.array([1e16, 1.0, 1.0, -1e16])
    _, total, count = group_sums(np.zeros(4), values)
    assert total[0] == 2.0 and count[0] == 4  # a plain left-to-right sum gives 0.0
    assert np.bincount(np.zeros(4, dtype=int), weights=values)[0] == 0.0


def test_option_type_column_follows_normalize_option_type():
    raw = ["call", "PUT", " c ", "P", "Call ", "x", None, "", "puts"]
    expected = normalize_option_type(pd.Series(raw, dtype=object)).astype(object).where(lambda s: s.notna(), None)
    assert option_type_column(pa.array(raw, pa.string())).to_pylist() == expected.tolist()


def test_num_reads_numeric_and_text_columns_as_float_with_nan():
    frame = pd.DataFrame({
        "float": [1.5, np.nan], "int": [1, 2], "nullable": pd.array([3, None], dtype="Int64"),
        "bool": [True, False], "text": ["4.5", "n/a"], "mixed": pd.Series([5, None], dtype=object),
    })
    expected = {"float": [1.5, np.nan], "int": [1.0, 2.0], "nullable": [3.0, np.nan], "bool": [1.0, 0.0],
                "text": [4.5, np.nan], "mixed": [5.0, np.nan], "absent": [np.nan, np.nan]}
    for column, values in expected.items():
        got = num(frame, column)
        assert got.dtype == np.float64 and np.array_equal(got, np.array(values), equal_nan=True), column
