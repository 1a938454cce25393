"""OCC option symbols: one parser and formatter, tested as a specification."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import UsageError
from stages.occ import OccSymbol, format_occ, is_occ, is_ticker, occ_root, parse_occ, parse_occ_many


def test_a_compact_symbol_parses_into_its_four_parts():
    assert parse_occ("AAPL240621C00190000") == OccSymbol(
        underlying="AAPL", expiry=dt.date(2024, 6, 21), option_type="call", strike=190.0
    )


def test_fractional_strikes_and_puts():
    occ = parse_occ("SPY240119P00472500")
    assert (occ.option_type, occ.strike) == ("put", 472.5)


def test_the_padded_21_character_form_is_accepted():
    assert parse_occ("AAPL  240621C00190000") == parse_occ("AAPL240621C00190000")


def test_share_classes_drop_the_dot_and_get_it_back_from_the_caller():
    assert format_occ("BRK.B", dt.date(2024, 6, 21), "call", 400) == "BRKB240621C00400000"
    assert parse_occ("BRKB240621C00400000").underlying == "BRKB"
    assert parse_occ("BRKB240621C00400000", underlying="BRK.B").underlying == "BRK.B"
    assert occ_root("BRK.B") == "BRKB"


def test_roots_with_digits_are_parsed_from_the_right():
    occ = parse_occ("AAPL1240621C00190000", underlying="AAPL")  # an adjusted series
    assert occ.expiry == dt.date(2024, 6, 21) and occ.underlying == "AAPL"
    assert parse_occ("SPXW240621P05000000").strike == 5000.0


@pytest.mark.parametrize(
    "bad",
    ["", "AAPL", "AAPL240621X00190000", "AAPL241321C00190000", "AAPL240621C0019000", "aapl240621C00190000",
     "TOOLONGX240621C00190000", "AAPL240621C00000000", "AAPL240230C00190000"],
)
def test_anything_else_is_a_usage_error(bad):
    assert not is_occ(bad)
    with pytest.raises(UsageError):
        parse_occ(bad)


def test_a_root_that_does_not_belong_to_the_underlying_is_rejected():
    with pytest.raises(UsageError, match="not an option root"):
        parse_occ("MSFT240621C00190000", underlying="AAPL")


def test_unrepresentable_strikes_are_rejected():
    with pytest.raises(UsageError):
        format_occ("AAPL", dt.date(2024, 6, 21), "call", 100_000)
    with pytest.raises(UsageError):
        format_occ("AAPL", dt.date(2024, 6, 21), "call", 1.0005)


@pytest.mark.parametrize(("ticker", "ok"), [("AAPL", True), ("BRK.B", True), ("F", True), ("aapl", False),
                                             ("AA PL", False), ("", False), ("1ABC", False), ("ABCDEFG", False)])
def test_ticker_shapes(ticker, ok):
    assert is_ticker(ticker) is ok


# The parts of any valid OCC symbol (``format_occ(root, expiry, call/put, milli / 1000)``).
VALID_SYMBOL_PARTS = {
    "root": st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True),
    "expiry": st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    "call": st.booleans(),
    "milli": st.integers(1, 99_999_999),
}


@settings(max_examples=100, deadline=None)
@given(**VALID_SYMBOL_PARTS)
def test_format_then_parse_is_the_identity(root, expiry, call, milli):
    symbol = format_occ(root, expiry, "call" if call else "put", milli / 1000)
    occ = parse_occ(symbol)
    assert (occ.underlying, occ.expiry, occ.option_type, round(occ.strike * 1000)) == (
        root, expiry, "call" if call else "put", milli)
    assert occ.symbol == symbol


def _as_rows(columns) -> list[tuple]:
    return [(str(r), e.item(), "call" if c else "put", int(m) / 1000.0)
            for r, e, c, m in zip(columns.root, columns.expiry, columns.is_call, columns.strike_milli, strict=True)]


def test_parsing_many_at_once_gives_what_parse_occ_gives_one_by_one():
    symbols = ["AAPL240621C00190000", " SPY  240119P00472500\n", "AAPL1240621C00190000", "SPXW240621P05000000",
               "BRKB991231C99999999", "X000101P00000001"]
    expected = [(o.underlying, o.expiry, o.option_type, o.strike) for o in map(parse_occ, symbols)]
    assert _as_rows(parse_occ_many(symbols)) == expected
    assert _as_rows(parse_occ_many([])) == []


@pytest.mark.parametrize(
    "bad", ["AAPL241321C00190000", "AAPL240230C00190000", "AAPL240621C00000000", "aapl240621C00190000", "", None, 7],
)
def test_parsing_many_raises_parse_occs_error_for_the_first_bad_symbol(bad):
    symbols = ["AAPL240621C00190000", bad, "AAPL240621X00190000"]
    with pytest.raises(UsageError) as expected:
        parse_occ(bad)
    with pytest.raises(UsageError) as got:
        parse_occ_many(symbols)
    assert str(got.value) == str(expected.value)


def test_symbols_only_python_reads_are_left_to_parse_occ():
    # Arabic-Indic digits match Python's \d (and int() reads them) but not RE2's.
    symbol = "AAPL\u0662\u0664\u0660\u0666\u0662\u0661C00190000"
    assert _as_rows(parse_occ_many([symbol])) == [("AAPL", dt.date(2024, 6, 21), "call", 190.0)]


@settings(max_examples=100, deadline=None)
@given(**VALID_SYMBOL_PARTS)
def test_parsing_many_matches_parse_occ_on_any_valid_symbol(root, expiry, call, milli):
    symbol = format_occ(root, expiry, "call" if call else "put", milli / 1000)
    o = parse_occ(symbol)
    assert _as_rows(parse_occ_many([symbol, symbol])) == [(o.underlying, o.expiry, o.option_type, o.strike)] * 2
