"""The vectorised OCC parser behind the parseable-contract checks agrees with ``stages.occ.parse_occ``."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import UsageError
from stages.analytics._occ_columns import parse_occ_column
from stages.analytics.checks import checks_for
from stages.occ import format_occ, parse_occ
from stages.registry import OPTIONS_BARS

TICKERS = ("AAPL", "BRK.B", "SPY", "X", "GOOGL", "A1", "ABCDEF")
# Characters that trip a careless port: Unicode digits and spaces, str.strip()'s ASCII controls.
ODD = ("\u0663", "\uff11", "\xa0", "\u2003", "\x1c", "\x1f", "\x0b", "\t", "\n", " ", "c", "p", ".", "-", "0", "9")


@st.composite
def valid_symbol(draw: st.DrawFn) -> str:
    ticker = draw(st.sampled_from(TICKERS))
    expiry = draw(st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)))
    strike = draw(st.integers(1, 99_999_999)) / 1000
    symbol = format_occ(ticker, expiry, draw(st.sampled_from(("call", "put"))), strike)
    root = symbol[:-15]
    if draw(st.booleans()):  # adjusted series: a digit after the root
        root = (root + draw(st.sampled_from("0123456789")))[:6]
    if draw(st.booleans()):  # the 21-character form pads the root with spaces
        root = root.ljust(6)
    pad = st.text(st.sampled_from(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\xa0\u2003"), max_size=2)
    return draw(pad) + root + symbol[-15:] + draw(pad)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    symbol = draw(valid_symbol())
    i = draw(st.integers(0, len(symbol)))
    op = draw(st.sampled_from(("replace", "insert", "delete", "lower", "date", "zero")))
    if op == "replace" and i < len(symbol):
        return symbol[:i] + draw(st.sampled_from(ODD)) + symbol[i + 1:]
    if op == "insert":
        return symbol[:i] + draw(st.sampled_from(ODD)) + symbol[i:]
    if op == "delete" and i < len(symbol):
        return symbol[:i] + symbol[i + 1:]
    if op == "lower":
        return symbol.lower()
    stripped = symbol.strip()
    if op == "date":  # an impossible or edge calendar day in place of the expiry
        day = draw(st.sampled_from(("000101", "240229", "230229", "241301", "240431", "240100", "991231", "000000")))
        return stripped[:-15] + day + stripped[-9:]
    return stripped[:-8] + "00000000"


symbols = st.one_of(valid_symbol(), mutated(), st.text(st.sampled_from("AB12CP 0\u0663\xa0."), max_size=24), st.none())
underlyings = st.one_of(st.none(), st.just(""), st.sampled_from(TICKERS), st.sampled_from(("brk.b", "TOOLONG1", "BR\u0663", "B.R.K")))


def _scalar(symbol: str | None, underlying: str | None) -> tuple[bool, object, str, float]:
    # The checks read a null symbol as "" and a null underlying as no underlying.
    try:
        occ = parse_occ(symbol or "", underlying=underlying or None)
    except UsageError:
        return False, None, "", float("nan")
    return True, occ.expiry, occ.option_type, occ.strike


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(symbols, underlyings), min_size=1, max_size=40))
def test_vectorised_parse_agrees_with_parse_occ(rows: list[tuple[str | None, str | None]]) -> None:
    parsed = parse_occ_column(pa.array([s for s, _ in rows], pa.string()), pa.array([u for _, u in rows], pa.string()))
    for i, (symbol, underlying) in enumerate(rows):
        ok, expiry, option_type, strike = _scalar(symbol, underlying)
        assert bool(parsed.ok[i]) == ok, (symbol, underlying)
        if ok:
            assert parsed.expiry[i] == np.datetime64(expiry, "D"), (symbol, underlying)
            assert parsed.option_type[i] == option_type and parsed.strike[i] == strike, (symbol, underlying)
        else:
            assert np.isnat(parsed.expiry[i]) and parsed.option_type[i] == "" and np.isnan(parsed.strike[i])


@settings(max_examples=100)
@given(st.lists(symbols, min_size=1, max_size=20))
def test_without_an_underlying_column_roots_are_not_checked(column: list[str | None]) -> None:
    parsed = parse_occ_column(pa.array(column, pa.string()))
    assert [bool(v) for v in parsed.ok] == [_scalar(s, None)[0] for s in column]


def test_the_check_counts_what_parse_occ_rejects() -> None:
    good = format_occ("AAPL", dt.date(2025, 1, 17), "call", 190)
    frame = pd.DataFrame({"contract_symbol": [good, "AAPL250230C00190000", None, 42, "AAPL 250117C00190000"],
                          "underlying": ["AAPL", "AAPL", "AAPL", "AAPL", "MSFT"]})
    [check] = [c for c in checks_for(OPTIONS_BARS) if c.name == "options_bars_parseable_contract_symbol"]
    result = check(frame, session=dt.date(2025, 1, 3), scope_key="AAPL")
    assert result.status == "fail"
    assert result.metrics["unparseable_contracts"] == 4
    assert result.metrics["sample"] == ["AAPL250230C00190000", "", "42", "AAPL 250117C00190000"]
    assert check(frame.iloc[[0]], session=dt.date(2025, 1, 3), scope_key="AAPL").status == "pass"
