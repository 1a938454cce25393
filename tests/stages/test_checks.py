"""Every registered check passes on clean rows and fails on a crafted bad table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import attrs
import pandas as pd
import pyarrow as pa
import pytest

from stages.analytics.briefing import SymbolBriefing, build_briefing
from stages.analytics.checks import CheckResult, checks_for, failed, run_checks, skip_checks, summarize
from stages.analytics.dashboard import DashboardInputs, render_dashboard
from stages.analytics.derived import compute_derived
from stages.analytics.flow import compute_flow
from stages.registry import (
    ASSET_KEYS,
    BRIEFING_MARKDOWN,
    CANDLES_DAILY,
    DASHBOARD_VIEWS,
    DERIVED_METRICS,
    OPTIONS_BARS,
    OPTIONS_FLOW,
    OPTIONS_SNAPSHOT_FILE,
)
from tests.stages.conftest import SESSION

NOW = dt.datetime(2025, 1, 3, 22, 0, tzinfo=dt.UTC)


def _candles() -> pd.DataFrame:
    days = [dt.date(2025, 1, 2), SESSION]
    return pd.DataFrame({"symbol": ["AAA", "AAA", "BBB", "BBB"], "date": days * 2,
                         "open": [10.0, 11, 20, 21], "high": [11.0, 12, 21, 22], "low": [9.0, 10, 19, 20],
                         "close": [10.5, 11.5, 20.5, 21.5], "volume": [100, 200, 300, 400]})


def _bars() -> pd.DataFrame:
    frame = _candles().rename(columns={"symbol": "contract_symbol"})
    frame["contract_symbol"] = ["XYZ250117C00100000"] * 2 + ["XYZ250117P00095000"] * 2
    return frame


@pytest.fixture
def clean(flow_sessions, derived_snapshot) -> dict[str, object]:
    previous, current = flow_sessions
    derived = compute_derived(derived_snapshot, None, None, symbol="XYZ", as_of=SESSION)
    markdown, _ = build_briefing(SESSION, [SymbolBriefing(symbol="XYZ", as_of=SESSION, derived=derived.to_pylist()[0])],
                                 synthetic=True, generated_at=NOW)
    html = render_dashboard(SESSION, DashboardInputs(), synthetic=True, generated_at=NOW)
    return {
        CANDLES_DAILY: _candles(),
        OPTIONS_BARS: _bars(),
        OPTIONS_SNAPSHOT_FILE: derived_snapshot.to_pandas(),
        OPTIONS_FLOW: compute_flow(current, previous).to_pandas(),
        DERIVED_METRICS: derived.to_pandas(),
        BRIEFING_MARKDOWN: markdown,
        DASHBOARD_VIEWS: html,
    }


def _set(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if frame[column].dtype != object and isinstance(value, str | type(None)):
            frame[column] = frame[column].astype(object)
        frame.loc[frame.index[row], column] = value
        return frame

    return mutate


def _dup_first(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[0]]], ignore_index=True)


def _reverse(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[::-1].reset_index(drop=True)


def _drop_last_day(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["date"] < SESSION].reset_index(drop=True)


def _no_iv(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["implied_volatility"] = None
    return frame


def _crossed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["bid"], frame["ask"] = 2.0, 1.0
    return frame


def _vanish_one(frame: pd.DataFrame) -> pd.DataFrame:
    # one of the 6 unexpired contracts of the earlier snapshot missing from the later one: 17% > 2%
    frame = frame.copy()
    first = frame.index[(frame["group_by"] == "contract") & (frame["status"] == "matched")][0]
    frame.loc[first, "status"] = "disappeared"
    return frame


# check_name -> how to break the clean table so that check (and, ideally, only it) fails
BREAKERS: dict[str, Callable] = {
    "candles_unique_symbol_date": _dup_first,
    "candles_required_columns": _set("close", 1, None),
    "candles_monotonic_date": _reverse,
    "candles_no_negative_prices": _set("low", 2, -1.0),
    "candles_no_future_dates": _set("date", 3, dt.date(2025, 1, 6)),
    "candles_fresh": _drop_last_day,
    "options_bars_duplicate_pk": _dup_first,
    "options_bars_required_columns": _set("contract_symbol", 0, None),
    "options_bars_monotonic_date": _reverse,
    "options_bars_no_negative_prices": _set("close", 0, -0.05),
    "options_bars_parseable_contract_symbol": _set("contract_symbol", 0, "NOT-A-CONTRACT"),
    "options_bars_no_future_dates": _set("date", 0, dt.date(2025, 2, 1)),
    "options_bars_fresh": _drop_last_day,
    "snapshot_unique_contract": _dup_first,
    "snapshot_required_columns": _set("spot", 0, None),
    "snapshot_valid_option_type": _set("option_type", 0, "straddle"),
    "snapshot_valid_iv_source": _set("iv_source", 0, "guess"),
    "snapshot_dated_session": _set("as_of", 0, dt.date(2025, 1, 2)),
    "snapshot_no_negative_prices": _set("bid", 0, -0.10),
    "snapshot_parseable_contract_symbol": _set("strike", 0, 123.0),  # symbol no longer matches its row
    "snapshot_null_iv_ratio": _no_iv,
    "snapshot_crossed_quotes": _crossed,
    "flow_unique_row_key": _dup_first,
    "flow_no_null_primary_keys": _set("row_key", 0, ""),
    "flow_window_order": _set("from_date", 0, dt.date(2025, 1, 6)),
    "flow_dated_session": _set("to_date", 1, dt.date(2025, 1, 2)),
    "flow_vanished_contracts": _vanish_one,
    "derived_no_duplicate_keys": _dup_first,
    "derived_required_columns": _set("spot", 0, None),
    "derived_dated_session": _set("date", 0, dt.date(2025, 1, 2)),
    "derived_no_negative_prices": _set("call_wall", 0, -5.0),
    "derived_ranks_in_range": _set("atm_iv_near_percentile", 0, 140.0),
    "briefing_markdown_nonempty": lambda text: text.replace("not financial advice", ""),
    "dashboard_self_contained": lambda html: html.replace("</main>", '<img src="https://cdn.example/x.png"></main>'),
}


def _all_checks():
    return [(key, check) for key in ASSET_KEYS for check in checks_for(key)]


def test_every_asset_has_checks_and_every_check_has_a_breaker():
    names = {check.name for _, check in _all_checks()}
    assert names == set(BREAKERS)
    assert {key for key, _ in _all_checks()} == set(ASSET_KEYS)


@pytest.mark.parametrize(("asset_key", "check"), _all_checks(), ids=lambda v: getattr(v, "name", v))
def test_passes_on_clean_and_fails_on_broken(asset_key, check, clean):
    good = check(clean[asset_key], session=SESSION, scope_key="XYZ")
    assert isinstance(good, CheckResult)
    assert good.status == "pass", good.message
    assert good.asset_key == asset_key and good.check_name == check.name and good.scope_key == "XYZ"

    bad = check(BREAKERS[check.name](clean[asset_key]), session=SESSION, scope_key="XYZ")
    assert bad.status == "fail", f"{check.name} did not fail: {bad.message}"
    assert bad.severity == check.severity and bad.message


def test_structural_checks_are_errors_and_ratios_warn():
    severities = {check.name: check.severity for _, check in _all_checks()}
    assert severities["snapshot_null_iv_ratio"] == "warn"
    assert severities["snapshot_crossed_quotes"] == "warn"
    assert severities["candles_fresh"] == "warn"
    assert severities["snapshot_unique_contract"] == "error"
    assert severities["candles_monotonic_date"] == "error"


def test_missing_column_fails_rather_than_passes(clean):
    results = run_checks(CANDLES_DAILY, clean[CANDLES_DAILY].drop(columns=["date"]), session=SESSION, scope_key="AAA")
    by = {r.check_name: r for r in results}
    assert by["candles_monotonic_date"].status == "fail"
    assert by["candles_monotonic_date"].metrics["missing_columns"] == ["date"]


def test_run_skip_and_summaries(clean):
    results = run_checks(OPTIONS_SNAPSHOT_FILE, _crossed(clean[OPTIONS_SNAPSHOT_FILE]), session=SESSION, scope_key="XYZ")
    assert [r.check_name for r in failed(results)] == ["snapshot_crossed_quotes"]
    assert failed(results, "error") == []
    assert summarize(results) == {"pass": len(results) - 1, "fail": 1, "skip": 0}
    skipped = skip_checks(OPTIONS_FLOW, scope_key="XYZ", reason="no_rows")
    assert {r.status for r in skipped} == {"skip"} and skipped[0].metrics == {"reason": "no_rows"}


def test_check_result_is_frozen_and_validated():
    result = CheckResult(asset_key=CANDLES_DAILY, check_name="x", severity="warn", status="pass",
                         scope_key="ALL", metrics={}, message="ok")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.status = "fail"  # type: ignore[misc]
    with pytest.raises(ValueError):
        CheckResult(asset_key=CANDLES_DAILY, check_name="x", severity="fatal", status="pass",
                    scope_key="ALL", metrics={}, message="")


@pytest.mark.parametrize(("asset_key", "check"), [(k, c) for k, c in _all_checks() if not c.text_input],
                         ids=lambda v: getattr(v, "name", v))
def test_a_table_is_checked_as_its_pandas_conversion(asset_key, check, clean):
    """Arrow input is read from its buffers, pandas input through pandas: clean or broken, the same results."""
    for frame in (clean[asset_key], BREAKERS[check.name](clean[asset_key])):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        assert check(table, session=SESSION, scope_key="XYZ") == check(
            table.to_pandas(date_as_object=True), session=SESSION, scope_key="XYZ")
