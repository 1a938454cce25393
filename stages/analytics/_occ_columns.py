"""OCC contract symbols over a whole column (private): ``stages.occ.parse_occ``, vectorised.

``parse_occ_column(symbols, underlyings)`` accepts exactly the rows for which
``parse_occ(symbol, underlying=underlying or None)`` returns, and gives the same expiry, option
type and strike; it is what the ``*_parseable_contract_symbol`` checks run on a chain of 160k
contracts, where a Python call per row was most of the checks' time. The scalar parser stays
the definition: a test compares the two on generated symbols.

How the acceptance is kept the same:

* one RE2 pattern (``pyarrow.compute.match_substring_regex``) over the column, equal to
  ``_OCC_RE`` applied after ``str.strip()`` for ASCII text: ``str.strip`` removes the ASCII
  whitespace ``\\t\\n\\v\\f\\r\\x1c-\\x1f`` and the space, ``[A-Z0-9]`` is ASCII in both engines;
  a match only (``extract_regex``, which builds the groups, costs eight times as much): in a
  matching symbol the fields sit at fixed places from its end once trailing whitespace is trimmed
  (``yymmdd``, ``C``/``P``, eight strike digits), the root before them, so they are sliced out;
* rows with non-ASCII text (a symbol or underlying) go through ``parse_occ`` itself: Python's
  ``\\d`` and ``str.strip`` are Unicode-aware there, RE2's ASCII-only, so the pattern would differ;
* the calendar check (``datetime.date`` raising on an impossible day) is numpy month arithmetic;
* the root-versus-underlying rule runs in Python once per distinct (root, underlying) pair.
"""

from __future__ import annotations

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import UsageError

_WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.strip() removes, restricted to ASCII
_SPACE = r"[ \t\n\r\x0b\x0c\x1c-\x1f]*"
_PATTERN = (rf"^{_SPACE}(?P<root>[A-Z0-9]{{1,6}}) *(?P<yy>[0-9]{{2}})(?P<mm>[0-9]{{2}})(?P<dd>[0-9]{{2}})"
            rf"(?P<cp>[CP])(?P<strike>[0-9]{{8}}){_SPACE}$")


@attrs.frozen(kw_only=True, eq=False)
class ParsedColumn:
    """Per row: parsed?, and (where parsed) expiry, ``call``/``put`` and strike; NaT, ``""``, NaN elsewhere."""

    ok: np.ndarray  # bool
    expiry: np.ndarray  # datetime64[D]
    option_type: np.ndarray  # object: "call" | "put" | ""
    strike: np.ndarray  # float64


def _as_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    return values


def _ints(digits: pa.Array, ok: pa.Array) -> np.ndarray:
    """The digits as integers where ``ok`` (0 elsewhere, where they need not be digits)."""
    return pc.cast(pc.if_else(ok, digits, "0"), pa.int64()).to_numpy(zero_copy_only=False)


def _root_matches(root: str, underlying: str) -> bool:
    """``parse_occ``'s rule for the root of ``underlying`` (an empty underlying is not checked)."""
    from stages.occ import occ_root

    if not underlying:
        return True
    try:
        base = occ_root(underlying)
    except UsageError:
        return False
    # An adjusted series after a corporate action appends a digit to the root (AAPL1).
    return root == base or (root.startswith(base) and root[len(base):].isdigit())


def parse_occ_column(symbols: pa.Array | pa.ChunkedArray, underlyings: pa.Array | pa.ChunkedArray | None = None) -> ParsedColumn:
    """Parse every symbol (null: not parsed) against its row's underlying (null or ``""``: unchecked)."""
    symbols = _as_strings(symbols)
    n = len(symbols)
    owners = pc.fill_null(_as_strings(underlyings), "") if underlyings is not None else pa.repeat("", n).cast(pa.string())
    matched = pc.fill_null(pc.match_substring_regex(symbols, _PATTERN), False)
    ok = matched.to_numpy(zero_copy_only=False).copy()

    body = pc.utf8_rtrim(symbols, characters=_WHITESPACE)  # a match ends with the 15 fixed characters
    tail = pc.utf8_slice_codeunits(body, -15)
    yy, mm, dd, milli = (_ints(pc.utf8_slice_codeunits(tail, start, stop), matched)
                         for start, stop in ((0, 2), (2, 4), (4, 6), (7, 15)))
    month_ok = (mm >= 1) & (mm <= 12)
    months = np.where(month_ok, (yy + 30) * 12 + (mm - 1), 0).astype("datetime64[M]")  # 2000 is 30 years after 1970
    first = months.astype("datetime64[D]")
    days_in_month = ((months + 1).astype("datetime64[D]") - first).astype(np.int64)
    ok &= month_ok & (dd >= 1) & (dd <= days_in_month) & (milli != 0)

    # The root must belong to the underlying: decided once per distinct (root, underlying) pair.
    root = pc.utf8_ltrim(pc.utf8_rtrim(pc.utf8_slice_codeunits(body, 0, -15), characters=" "), characters=_WHITESPACE)
    roots = pc.if_else(matched, root, "")
    pairs = pc.binary_join_element_wise(roots, owners, "\x00").dictionary_encode()
    verdicts = np.array([_root_matches(*key.split("\x00", 1)) for key in pairs.dictionary.to_pylist()], dtype=bool)
    ok &= verdicts[pairs.indices.to_numpy(zero_copy_only=False)] if len(verdicts) else ok

    expiry = np.where(ok, first + (dd - 1), np.datetime64("NaT", "D"))
    calls = pc.fill_null(pc.equal(pc.utf8_slice_codeunits(tail, 6, 7), "C"), False).to_numpy(zero_copy_only=False)
    option_type = np.where(ok, np.where(calls, "call", "put"), "").astype(object)
    strike = np.where(ok, milli / 1000.0, np.nan)

    # Non-ASCII text: the scalar parser decides (Unicode digits and whitespace).
    ascii_text = pc.and_(pc.fill_null(pc.string_is_ascii(symbols), True), pc.string_is_ascii(owners))
    for i in np.flatnonzero(~ascii_text.to_numpy(zero_copy_only=False)):
        ok[i], expiry[i], option_type[i], strike[i] = _parse_one(symbols[i].as_py() or "", owners[i].as_py())
    return ParsedColumn(ok=ok, expiry=expiry, option_type=option_type, strike=strike)


def _parse_one(symbol: str, underlying: str) -> tuple[bool, np.datetime64, str, float]:
    from stages.occ import parse_occ

    try:
        occ = parse_occ(symbol, underlying=underlying or None)
    except UsageError:
        return False, np.datetime64("NaT", "D"), "", np.nan
    return True, np.datetime64(occ.expiry, "D"), occ.option_type, occ.strike


__all__ = ["ParsedColumn", "parse_occ_column"]
