"""OCC option symbols: the one parser and formatter every provider and stage uses.

The compact OSI form used by Alpaca and most APIs is ``ROOT YYMMDD C|P SSSSSSSS``:

* ``ROOT``: the option root, 1-6 characters of ``A-Z`` and ``0-9`` (adjusted series after a
  corporate action carry a digit: ``AAPL1``). The 21-character OCC form pads the root with
  spaces to 6 characters (``"AAPL  240621C00190000"``); both forms are accepted.
* ``YYMMDD``: the expiry (years 2000-2099).
* ``C`` or ``P``.
* ``SSSSSSSS``: the strike times 1000, zero-padded to 8 digits (``00182500`` is 182.5).

**Share classes.** OCC roots have no dot: the options on ``BRK.B`` trade under the root
``BRKB`` (``BRKB240621C00400000``). ``format_occ`` therefore drops dots from the underlying
(:func:`occ_root`), and ``parse_occ`` returns the root as the ``underlying`` unless the caller
passes the ticker it asked about (``parse_occ(sym, underlying="BRK.B")``), which is then checked
against the root and returned instead. Providers always pass it, so rows carry ``BRK.B``.
The fields are parsed from the right, so a root ending in digits is never confused with the date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

import attrs

from ledger.errors import UsageError

_OCC_RE = re.compile(r"^(?P<root>[A-Z0-9]{1,6}) *(?P<date>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")
# Tickers as exchanges list them: letters and digits, optionally one class suffix after a dot.
_TICKER_RE = re.compile(r"^[A-Z][A-Z0-9]{0,5}(\.[A-Z0-9]{1,3})?$")
MAX_STRIKE = 99_999.999


@attrs.frozen(kw_only=True)
class OccSymbol:
    """A parsed option contract symbol."""

    underlying: str
    expiry: dt.date
    option_type: str  # "call" | "put"
    strike: float

    @property
    def root(self) -> str:
        return occ_root(self.underlying)

    @property
    def symbol(self) -> str:
        return format_occ(self.underlying, self.expiry, self.option_type, self.strike)


def is_ticker(symbol: str) -> bool:
    """A well-formed equity ticker (``AAPL``, ``BRK.B``); case-sensitive, as the API is."""
    return isinstance(symbol, str) and bool(_TICKER_RE.match(symbol))


def require_ticker(symbol: str) -> str:
    """``symbol`` itself, or a ``UsageError`` phrased like the API's "invalid symbol"."""
    if not is_ticker(symbol):
        raise UsageError(
            f"invalid symbol {symbol!r}: a ticker is 1-6 upper-case letters or digits starting with a letter, "
            "optionally with a class suffix such as BRK.B"
        )
    return symbol


def occ_root(underlying: str) -> str:
    """The OCC root of a ticker: the ticker without its dot (``BRK.B`` -> ``BRKB``)."""
    root = underlying.replace(".", "")
    if not re.fullmatch(r"[A-Z0-9]{1,6}", root):
        raise UsageError(f"{underlying!r} cannot be an OCC option root (1-6 characters A-Z, 0-9 once dots are dropped)")
    return root


def _option_type(value: str) -> str:
    v = value.strip().lower()
    if v in ("c", "call"):
        return "call"
    if v in ("p", "put"):
        return "put"
    raise UsageError(f"option type must be 'call' or 'put', got {value!r}")


def strike_to_milli(strike: float) -> int:
    """The strike in thousandths, checked to be representable in the 8-digit OCC field."""
    milli = round(float(strike) * 1000)
    if not (0 < milli <= 99_999_999) or abs(milli - float(strike) * 1000) > 1e-6 * max(1.0, milli):
        raise UsageError(f"strike {strike!r} cannot be written in an OCC symbol (0 < strike <= {MAX_STRIKE}, step 0.001)")
    return milli


def format_occ(underlying: str, expiry: dt.date, option_type: str, strike: float) -> str:
    """The compact OCC symbol: ``format_occ("BRK.B", date(2024, 6, 21), "call", 400)`` is ``BRKB240621C00400000``."""
    if not 2000 <= expiry.year <= 2099:
        raise UsageError(f"expiry {expiry} is outside the OCC symbol range (2000-2099)")
    cp = "C" if _option_type(option_type) == "call" else "P"
    return f"{occ_root(underlying)}{expiry:%y%m%d}{cp}{strike_to_milli(strike):08d}"


def is_occ(symbol: str) -> bool:
    try:
        parse_occ(symbol)
    except UsageError:
        return False
    return True


def parse_occ(symbol: str, *, underlying: str | None = None) -> OccSymbol:
    """Parse an OCC symbol; ``underlying`` (the ticker asked about) replaces the dot-less root.

    Raises ``UsageError`` naming the expected form on anything else.
    """
    if not isinstance(symbol, str):
        raise UsageError(f"an OCC option symbol must be a string, got {type(symbol).__name__}")
    m = _OCC_RE.match(symbol.strip())
    if m is None:
        raise UsageError(
            f"{symbol!r} is not an OCC option symbol; expected ROOT+YYMMDD+C|P+strike*1000 in 8 digits, "
            "e.g. AAPL240621C00190000"
        )
    raw = m["date"]
    try:
        expiry = dt.date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:]))
    except ValueError:
        raise UsageError(f"{symbol!r} has an impossible expiry date {raw!r} (YYMMDD)") from None
    milli = int(m["strike"])
    if milli == 0:
        raise UsageError(f"{symbol!r} has a zero strike")
    root = m["root"]
    name = root
    if underlying is not None:
        base = occ_root(underlying)
        # An adjusted series after a corporate action appends a digit to the root (AAPL1).
        if not (root == base or (root.startswith(base) and root[len(base):].isdigit())):
            raise UsageError(f"{symbol!r} has root {root!r}, which is not an option root of {underlying!r}")
        name = underlying
    return OccSymbol(
        underlying=name, expiry=expiry, option_type="call" if m["cp"] == "C" else "put", strike=milli / 1000.0
    )


@attrs.frozen(kw_only=True, eq=False)
class OccColumns:
    """Many parsed OCC symbols as parallel numpy arrays (``parse_occ_many``)."""

    root: Any  # object array of str: the dot-less root, as ``parse_occ(s).underlying``
    expiry: Any  # datetime64[D]
    is_call: Any  # bool
    strike_milli: Any  # int64, the strike in thousandths


def parse_occ_many(symbols: Sequence[str]) -> OccColumns:
    """``[parse_occ(s) for s in symbols]`` as columns, parsed by Arrow string kernels instead of
    a regular expression per symbol (a chain has thousands); the same parts and, for the first
    symbol ``parse_occ`` rejects, the same ``UsageError``.

    A symbol the kernels do not take (RE2 knows only ASCII digits and a narrower whitespace) is
    handed to ``parse_occ`` itself, which decides.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(symbols)
    try:
        text = pa.array(symbols, pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        text = pa.nulls(n, pa.string())  # something that is not a string: parse_occ says what
    parts = pc.extract_regex(pc.utf8_trim_whitespace(text), _OCC_RE.pattern)
    milli = np.array(pc.struct_field(parts, "strike").cast(pa.int64()).fill_null(0))
    raw_dates = pc.struct_field(parts, "date")
    distinct = pc.unique(raw_dates).drop_null().to_pylist()
    days: list[dt.date | None] = []
    for raw in distinct:
        try:
            days.append(dt.date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:])))
        except ValueError:
            days.append(None)  # NaT: parse_occ says why
    where = pc.index_in(raw_dates, pa.array(distinct, pa.string())).fill_null(len(distinct)).to_numpy()
    expiry = np.array([*days, None], dtype="datetime64[D]")[where]
    root = pc.struct_field(parts, "root").to_numpy(zero_copy_only=False).astype(object)
    is_call = np.array(pc.equal(pc.struct_field(parts, "cp"), "C").fill_null(False), dtype=bool)
    for i in np.flatnonzero(np.isnat(expiry) | (milli == 0)).tolist():  # in order: the first error is raised
        occ = parse_occ(symbols[i])
        root[i], expiry[i], is_call[i] = occ.underlying, np.datetime64(occ.expiry, "D"), occ.option_type == "call"
        milli[i] = round(occ.strike * 1000)
    return OccColumns(root=root, expiry=expiry, is_call=is_call, strike_milli=milli)


__all__ = [
    "OccColumns",
    "OccSymbol",
    "format_occ",
    "is_occ",
    "is_ticker",
    "occ_root",
    "parse_occ",
    "parse_occ_many",
    "require_ticker",
    "strike_to_milli",
]
