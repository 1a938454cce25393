"""The checks on hand-built Arrow tables at their edges: what each one counts, reports and samples.

The runner hands the checks ``pyarrow.Table`` rows, read from their buffers; every case here also
holds the table's pandas conversion (read through pandas, the way the checks were defined) to the
same result, so the fast reading cannot drift from the definition.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stages.analytics.checks import CheckResult, run_checks
from stages.registry import CANDLES_DAILY, OPTIONS_BARS, OPTIONS_FLOW, OPTIONS_SNAPSHOT_FILE
from tests.stages.conftest import SESSION, occ

D1, D2 = dt.date(2025, 1, 2), SESSION
LATER = dt.date(2025, 1, 6)
E1 = dt.date(2025, 1, 17)


def _checks(asset_key: str, table: pa.Table) -> dict[str, CheckResult]:
    """The asset's results by check name, after holding the table and its pandas conversion to the same ones."""
    results = run_checks(asset_key, table, session=SESSION, scope_key="XYZ")
    assert results == run_checks(asset_key, table.to_pandas(date_as_object=True), session=SESSION, scope_key="XYZ")
    return {r.check_name: r for r in results}


def _candles(**columns: Any) -> pa.Table:
    base: dict[str, Any] = {"symbol": ["AAA", "AAA"], "date": [D1, D2], "open": [1.0, 1.0], "high": [1.0, 1.0],
                            "low": [1.0, 1.0], "close": [1.0, 1.0]}
    return pa.table({**base, **columns})


def _snapshot(rows: list[dict[str, Any]]) -> pa.Table:
    from stages.analytics.snapshot import SNAPSHOT_SCHEMA

    full = []
    for r in rows:
        row = {f.name: None for f in SNAPSHOT_SCHEMA}
        row.update(underlying="XYZ", expiry=E1, option_type="call", strike=100.0, bid=1.0, ask=1.1, spot=100.0,
                   implied_volatility=0.3, iv_source="provider", as_of=SESSION)
        row.update(r)
        row.setdefault("contract_symbol", None)
        row["contract_symbol"] = row["contract_symbol"] or occ(row["expiry"], row["option_type"], row["strike"])
        full.append(row)
    return pa.Table.from_pylist(full, schema=SNAPSHOT_SCHEMA)


def test_an_empty_table_passes_what_counts_rows_and_fails_freshness():
    empty = _candles().slice(0, 0)
    by = _checks(CANDLES_DAILY, empty)
    assert {name: r.status for name, r in by.items()} == {
        "candles_unique_symbol_date": "pass", "candles_required_columns": "pass", "candles_monotonic_date": "pass",
        "candles_no_negative_prices": "pass", "candles_no_future_dates": "pass", "candles_fresh": "fail"}
    assert by["candles_fresh"].metrics == {"rows_checked": 0, "latest_date": None, "session": "2025-01-03"}
    snapshot = _checks(OPTIONS_SNAPSHOT_FILE, _snapshot([]))
    assert snapshot["snapshot_dated_session"].message == "no rows for the session 2025-01-03"
    assert snapshot["snapshot_null_iv_ratio"].metrics["null_iv_ratio"] == 0.0


def test_nulls_blanks_and_nan_are_missing_values_in_required_columns():
    table = _candles(symbol=["AAA", "AAA", " \t", ""], date=[D1, D2, D2, None],
                     open=[1.0] * 4, high=[1.0] * 4, low=[1.0] * 4, close=[float("nan"), 1.0, None, 1.0])
    result = _checks(CANDLES_DAILY, table)["candles_required_columns"]
    assert result.status == "fail"
    assert result.metrics == {"rows_checked": 4, "null_rows": 3,
                              "null_cells_by_column": {"symbol": 2, "date": 1, "close": 2}}


def test_rows_sharing_a_key_are_counted_and_sampled_and_null_keys_are_equal():
    table = _candles(symbol=["AAA", "AAA", None, None, "BBB"], date=[D2, D2, D2, D2, D2],
                     open=[1.0] * 5, high=[1.0] * 5, low=[1.0] * 5, close=[1.0] * 5)
    result = _checks(CANDLES_DAILY, table)["candles_unique_symbol_date"]
    assert result.status == "fail"
    assert result.metrics == {"rows_checked": 5, "duplicate_rows": 4, "duplicate_keys": 2,
                              "sample": ["AAA|2025-01-03", "AAA|2025-01-03", "<NA>|2025-01-03", "<NA>|2025-01-03"]}
    assert result.message == "4 rows share 2 key(s) (symbol, date)"


def test_one_unique_key_column_is_not_enough_when_another_repeats_with_it():
    # contract_symbol repeats across dates, date repeats across contracts: only the pair is a key
    bars = pa.table({"contract_symbol": ["X", "X", "Y", "Y"], "date": [D1, D2, D1, D1],
                     "open": [1.0] * 4, "high": [1.0] * 4, "low": [1.0] * 4, "close": [1.0] * 4})
    result = _checks(OPTIONS_BARS, bars)["options_bars_duplicate_pk"]
    assert result.metrics["duplicate_rows"] == 2 and result.metrics["sample"] == ["Y|2025-01-02", "Y|2025-01-02"]


def test_dates_going_backwards_within_a_group_and_null_dates():
    table = _candles(symbol=["AAA", "BBB", "AAA", None, None, "BBB"], date=[D2, D1, D1, D2, D1, None],
                     open=[1.0] * 6, high=[1.0] * 6, low=[1.0] * 6, close=[1.0] * 6)
    by = _checks(CANDLES_DAILY, table)
    assert by["candles_monotonic_date"].metrics == {"rows_checked": 6, "out_of_order_pairs": 2,
                                                    "out_of_order_groups": 2, "invalid_date_rows": 1}
    assert by["candles_fresh"].metrics["latest_date"] == "2025-01-03"


def test_rows_dated_after_the_session_and_days_beyond_nanosecond_timestamps():
    by = _checks(CANDLES_DAILY, _candles(date=[D2, LATER]))
    assert by["candles_no_future_dates"].metrics == {"rows_checked": 2, "future_rows": 1, "session": "2025-01-03"}
    assert by["candles_fresh"].status == "pass"
    # Days outside datetime64[ns] (1677-2262) are read as they are, not wrapped round: the "no
    # date" sentinel 9999-12-31 is after the session (it was read as 1816 and passed).
    far = _checks(CANDLES_DAILY, _candles(date=[D2, dt.date(9999, 12, 31)]))
    assert far["candles_no_future_dates"].metrics["future_rows"] == 1
    assert far["candles_no_future_dates"].status == "fail"
    early = _checks(CANDLES_DAILY, _candles(date=[dt.date(1, 1, 1), D2]))
    assert early["candles_no_future_dates"].metrics["future_rows"] == 0
    assert early["candles_fresh"].metrics["latest_date"] == "2025-01-03"


def test_negative_prices_are_counted_by_column():
    by = _checks(CANDLES_DAILY, _candles(low=[-1.0, None], close=[-0.5, float("nan")]))
    assert by["candles_no_negative_prices"].metrics == {
        "rows_checked": 2, "negative_rows": 1, "negative_cells": 2, "negative_by_column": {"low": 1, "close": 1},
        "price_columns": ["open", "high", "low", "close"]}


def test_crossed_quotes_count_only_two_sided_quotes():
    table = _snapshot([{"strike": 100.0, "bid": 2.0, "ask": 1.0}, {"strike": 101.0, "bid": 0.0, "ask": 1.0},
                       {"strike": 102.0, "bid": 1.0, "ask": 2.0}, {"strike": 103.0, "bid": None, "ask": 1.0}])
    result = _checks(OPTIONS_SNAPSHOT_FILE, table)["snapshot_crossed_quotes"]
    assert result.status == "fail"
    assert result.metrics == {"rows_checked": 4, "two_sided_quotes": 2, "crossed_quotes": 1, "crossed_ratio": 0.5,
                              "threshold": 0.01}


def test_contract_symbols_that_do_not_parse_or_do_not_match_their_row():
    table = _snapshot([
        {"strike": 100.0},  # good
        {"contract_symbol": " " + occ(E1, "call", 101.0) + " ", "strike": 101.0},  # padding is stripped: good
        {"contract_symbol": "XYZ250230C00100000", "strike": 102.0},  # February 30th
        {"contract_symbol": occ(E1, "call", 103.0).lower(), "strike": 103.0},
        {"contract_symbol": "ABC250117C00104000", "strike": 104.0},  # another underlying's root
        {"contract_symbol": occ(E1, "put", 105.0), "strike": 105.0},  # the row says call
        {"contract_symbol": occ(E1, "call", 106.0), "strike": 106.5},  # the row's strike differs
    ])
    result = _checks(OPTIONS_SNAPSHOT_FILE, table)["snapshot_parseable_contract_symbol"]
    assert result.metrics == {
        "rows_checked": 7, "unparseable_contracts": 3, "inconsistent_contracts": 2, "unparseable_ratio": 3 / 7,
        "sample": ["XYZ250230C00100000", "xyz250117c00103000", "ABC250117C00104000", "XYZ250117P00105000",
                   "XYZ250117C00106000"]}


def test_option_types_and_iv_sources_outside_their_values_are_listed_nulls_as_na():
    table = _snapshot([{"strike": 100.0}, {"strike": 101.0, "iv_source": "guess"}, {"strike": 102.0, "iv_source": "guess"}])
    table = table.set_column(table.schema.get_field_index("option_type"), "option_type",
                             pa.array(["call", None, "Put"], pa.string()))
    by = _checks(OPTIONS_SNAPSHOT_FILE, table)
    assert by["snapshot_valid_option_type"].metrics == {"rows_checked": 3, "invalid_rows": 2,
                                                       "invalid_values": ["<NA>", "Put"]}
    assert by["snapshot_valid_iv_source"].metrics == {"rows_checked": 3, "invalid_rows": 2, "invalid_values": ["guess"]}


def test_null_iv_counts_live_contracts_only():
    table = _snapshot([{"strike": 100.0, "implied_volatility": None}, {"strike": 101.0, "implied_volatility": 0.0},
                       {"strike": 102.0}, {"expiry": SESSION, "strike": 103.0, "implied_volatility": None}])
    assert _checks(OPTIONS_SNAPSHOT_FILE, table)["snapshot_null_iv_ratio"].metrics == {
        "rows_checked": 4, "live_contracts": 3, "null_iv_contracts": 2, "null_iv_ratio": 2 / 3, "threshold": 0.2}


def _flow(rows: list[tuple[int, str, str, str | None]]) -> pa.Table:
    """Flow rows of (window_size, group_by, status, contract_symbol), keyed by their position."""
    return pa.table({
        "symbol": ["XYZ"] * len(rows), "from_date": [D1] * len(rows), "to_date": [D2] * len(rows),
        "window_size": pa.array([r[0] for r in rows], pa.int32()), "group_by": [r[1] for r in rows],
        "row_key": [f"k{i}" for i in range(len(rows))], "status": [r[2] for r in rows],
        "contract_symbol": pa.array([r[3] for r in rows], pa.string()),
    })


def test_vanished_contracts_are_counted_in_the_smallest_window_against_the_unexpired_ones():
    table = _flow([(1, "contract", "disappeared", "XYZ250117P00090000"), (1, "contract", "disappeared", None),
                   (1, "contract", "matched", "XYZ250117C00100000"), (1, "contract", "new", "XYZ250117C00110000"),
                   (1, "expiry", "disappeared", None), (5, "contract", "disappeared", "XYZ250117C00120000")])
    result = _checks(OPTIONS_FLOW, table)["flow_vanished_contracts"]
    assert result.status == "fail"
    assert result.metrics == {"rows_checked": 4, "vanished_contracts": 2, "unexpired_before": 3,
                              "vanished_ratio": 2 / 3, "threshold": 0.02, "sample": ["XYZ250117P00090000", "nan"]}
    assert _checks(OPTIONS_FLOW, _flow([(1, "total", "matched", None)]))["flow_vanished_contracts"].metrics[
        "rows_checked"] == 0


def test_flow_row_keys_repeat_only_within_a_partition():
    table = _flow([(1, "contract", "matched", "A"), (5, "contract", "matched", "A")])
    table = table.set_column(table.schema.get_field_index("row_key"), "row_key", pa.array(["k", "k"]))
    assert _checks(OPTIONS_FLOW, table)["flow_unique_row_key"].status == "pass"  # two windows: two partitions
    assert _checks(OPTIONS_FLOW, table.slice(0, 1).append_column("x", pa.array([1])).drop_columns(["x"])
                   .take([0, 0]))["flow_unique_row_key"].metrics["duplicate_rows"] == 2


@pytest.mark.parametrize("column", [
    pa.array([1.5, float("nan"), None, 1.5]),  # floats: pandas reads NaN and null alike
    pa.array(["a", "b", "a", None]).dictionary_encode(),
    pa.array(["a", "b", "a", None], pa.large_string()),
    pa.array([True, None, True, False]),
    pa.array([None, None, None, None], pa.null()),
], ids=["float", "dictionary", "large_string", "bool", "null"])
def test_other_column_types_are_read_the_pandas_way(column):
    """Keys, dates and numbers of the types the stages do not write still give the pandas answers."""
    days = pa.array(["2025-01-02", "2025-01-03", "2025-01-03", None])  # text dates: parsed by pandas
    candles = pa.table({"symbol": column, "date": days, "open": column if column.type != pa.null() else [1.0] * 4,
                        "high": [1.0] * 4, "low": [1.0] * 4, "close": [1.0] * 4})
    _checks(CANDLES_DAILY, candles)
    _checks(OPTIONS_BARS, candles.rename_columns(["contract_symbol", *candles.column_names[1:]]))


# -- any table: the Arrow reading agrees with the pandas one ----------------------------------------
_POOL = {  # values a cell may take, by the column's Arrow type
    "text": [None, "", " \t", "call", "put", "disappeared", "matched", "contract", "XYZ250117C00100000", "é"],
    "float": [None, float("nan"), -1.0, 0.0, 2.5, 1e300],
    "date": [None, D1, D2, LATER, dt.date(9999, 12, 31), dt.date(1, 1, 1)],
    "int": [None, 0, -1, 5],
}


def _pool(kind: pa.DataType) -> list[Any]:
    if pa.types.is_string(kind):
        return _POOL["text"]
    if pa.types.is_floating(kind):
        return _POOL["float"]
    if pa.types.is_date32(kind):
        return _POOL["date"]
    return _POOL["int"]


_BASES = {
    CANDLES_DAILY: lambda: _candles(),
    OPTIONS_SNAPSHOT_FILE: lambda: _snapshot([{"strike": 100.0}, {"strike": 105.0, "option_type": "put"},
                                              {"strike": 110.0, "expiry": SESSION}]),
    OPTIONS_FLOW: lambda: _flow([(1, "contract", "matched", "XYZ250117C00100000"), (1, "contract", "new", "A"),
                                 (1, "expiry", "matched", None), (5, "contract", "disappeared", "B")]),
}


@st.composite
def _edited(draw: st.DrawFn) -> tuple[str, pa.Table]:
    asset_key = draw(st.sampled_from(sorted(_BASES)))
    table = _BASES[asset_key]()
    for _ in range(draw(st.integers(0, 4))):
        edit = draw(st.sampled_from(("cell", "cell", "duplicate", "reverse", "drop")))
        if edit == "cell" and table.num_rows:
            name = draw(st.sampled_from(table.column_names))
            i = draw(st.integers(0, table.num_rows - 1))
            column = table.column(name)
            values = column.to_pylist()
            values[i] = draw(st.sampled_from(_pool(column.type)))
            table = table.set_column(table.schema.get_field_index(name), pa.field(name, column.type),
                                     pa.array(values, column.type))
        elif edit == "duplicate" and table.num_rows:
            table = pa.concat_tables([table, table.slice(draw(st.integers(0, table.num_rows - 1)), 1)])
        elif edit == "reverse":
            table = table.take(pa.array(range(table.num_rows - 1, -1, -1), pa.int64()))
        elif edit == "drop":
            table = table.slice(0, draw(st.integers(0, table.num_rows)))
    return asset_key, table


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_edited())
def test_any_edited_table_is_checked_as_its_pandas_conversion(edited: tuple[str, pa.Table]) -> None:
    asset_key, table = edited
    _checks(asset_key, table)
