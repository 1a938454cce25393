"""Quality checks that run on the rows a stage is about to write, before they are committed.

Each check is a ``Check``: a callable ``(table, *, session, scope_key) -> CheckResult``, where
``table`` is a ``pyarrow.Table`` (or pandas DataFrame) of the rows to be written — or, for the
file assets ``briefing_markdown`` and ``dashboard_views``, the rendered text. Because the rows
have not been through a primary key or an ORDER BY yet, duplicates, disorder and mis-dated rows
really can occur, and every check here can fail on the data it is given (the original's checks
against stored DuckDB tables mostly could not).

The checks were defined on the rows' pandas conversion. ``run_checks`` reads the rows through one
``Rows``: columns of the types the stages write (text, numbers, ``date32``) straight from their
Arrow buffers, each converted once for all the asset's checks; other types and pandas input go
through pandas. The two readings give the same results (``tests/stages/test_checks*.py``); the
pandas copy per scope it replaced was most of the checks' time.

Severity: structural problems (duplicate keys, nulls in key columns, disorder, negative prices,
unparseable contract symbols, rows dated after the session) are ``error``; quality ratios and
staleness are ``warn``. Thresholds:

==========================  =========================================================
``*_fresh``                 warn when the newest row is older than the session
``snapshot_null_iv_ratio``  warn when > 20% of live contracts (DTE > 0) have no IV
``snapshot_crossed_quotes`` warn when > 1% of two-sided quotes have bid > ask
``flow_vanished_contracts`` warn when > 2% of the earlier snapshot's live contracts are
                            missing from the later one before their expiry (a data gap)
==========================  =========================================================

Assumed columns: candles ``symbol, date, open, high, low, close``; option bars
``contract_symbol, date, open, high, low, close``; snapshots ``SNAPSHOT_SCHEMA``; flow
``FLOW_SCHEMA``; derived ``DERIVED_SCHEMA``. A missing column fails the check that needs it.
``checks_for(asset_key)`` lists an asset's checks; ``run_checks`` runs them all and
``skip_checks`` reports them skipped with a reason (e.g. ``no_rows``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from html.parser import HTMLParser
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import UsageError
from stages.analytics._tables import dates, num
from stages.registry import (
    BRIEFING_MARKDOWN,
    CANDLES_DAILY,
    DASHBOARD_VIEWS,
    DERIVED_METRICS,
    OPTIONS_BARS,
    OPTIONS_FLOW,
    OPTIONS_SNAPSHOT_FILE,
)

SEVERITIES = ("warn", "error")
STATUSES = ("pass", "fail", "skip")
NULL_IV_WARN_RATIO = 0.20
CROSSED_QUOTES_WARN_RATIO = 0.01
VANISHED_WARN_RATIO = 0.02
_SAMPLE = 5


@attrs.frozen(kw_only=True)
class CheckResult:
    """The outcome of one check on one scope (a symbol, ``SYMBOL|date`` or ``ALL``)."""

    asset_key: str
    check_name: str
    severity: str = attrs.field(validator=attrs.validators.in_(SEVERITIES))
    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    scope_key: str
    metrics: dict[str, Any] = attrs.field(factory=dict)
    message: str

    @property
    def failed(self) -> bool:
        return self.status == "fail"


# What a check body returns: passed?, metrics, message.
Outcome = tuple[bool, dict[str, Any], str]


@attrs.frozen(kw_only=True)
class Check:
    """A named check of one asset; call it as ``check(table, session=..., scope_key=...)``."""

    asset_key: str
    name: str
    severity: str = attrs.field(validator=attrs.validators.in_(SEVERITIES))
    description: str
    body: Callable[[Any, dt.date], Outcome] = attrs.field(repr=False)
    text_input: bool = False  # the file assets are checked on their rendered text

    def __call__(self, table: Any, *, session: dt.date, scope_key: str) -> CheckResult:
        data = table if self.text_input or isinstance(table, Rows) else Rows(table)
        passed, metrics, message = self.body(data, session)
        return CheckResult(
            asset_key=self.asset_key, check_name=self.name, severity=self.severity,
            status="pass" if passed else "fail", scope_key=scope_key, metrics=metrics, message=message,
        )

    def skip(self, *, scope_key: str, reason: str) -> CheckResult:
        return CheckResult(
            asset_key=self.asset_key, check_name=self.name, severity=self.severity, status="skip",
            scope_key=scope_key, metrics={"reason": reason}, message=f"check skipped ({reason})",
        )


# -- reading the rows ---------------------------------------------------------------------------
# The checks were defined on the pandas conversion of the rows (``to_pandas(date_as_object=True)``
# read with ``_tables.num`` / ``_tables.dates`` and friends). ``Rows`` gives the same values
# straight from the Arrow buffers for the column types the stages write, and goes through that
# pandas conversion for any other type and for pandas input, so a result never depends on the path.


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind)


def _hashes_like_pandas(kind: pa.DataType) -> bool:
    """Arrow equality of these values is pandas' equality of their conversion (floats are not:
    pandas merges NaN with null)."""
    return _is_text(kind) or pa.types.is_integer(kind) or pa.types.is_date32(kind)


class Rows:
    """The rows one ``run_checks`` call checks (a ``pyarrow.Table`` or pandas DataFrame), read
    column by column; each column is converted once and shared by the asset's checks (read-only).

    ``check(Rows(table), ...)`` lets several checks share the conversions, as ``run_checks`` does."""

    def __init__(self, data: pa.Table | pd.DataFrame | None) -> None:
        if data is None:
            data = pd.DataFrame()
        if not isinstance(data, pa.Table | pd.DataFrame):
            raise TypeError(f"expected a pyarrow Table or pandas DataFrame, got {type(data).__name__}")
        self._arrow = data if isinstance(data, pa.Table) else None
        self._frame = data if isinstance(data, pd.DataFrame) else None
        self.columns: list[Any] = list(data.columns) if isinstance(data, pd.DataFrame) else data.column_names
        self.n = len(data)
        self._memo: dict[tuple[str, str], Any] = {}

    def _kind(self, column: str) -> pa.DataType | None:
        """The Arrow type of ``column`` when the rows are a table, else None (read through pandas)."""
        return self._arrow.schema.field(column).type if self._arrow is not None else None

    def _keys_on_arrow(self, keys: Sequence[str]) -> bool:
        """Whether rows can be told apart by ``keys`` on Arrow: a table whose key types compare
        as pandas compares their conversion."""
        return self._arrow is not None and all(_hashes_like_pandas(self._arrow.schema.field(k).type) for k in keys)

    def _arrow_column(self, column: str) -> pa.Array:
        assert self._arrow is not None
        return self._arrow.column(column).combine_chunks()

    def table(self, columns: Sequence[str]) -> pa.Table | None:
        """``columns`` as Arrow, or None when the rows are a pandas frame."""
        return self._arrow.select(list(columns)) if self._arrow is not None else None

    def pandas(self, columns: Sequence[str]) -> pd.DataFrame:
        """A pandas frame with (at least) ``columns``, as the checks were defined on."""
        if self._frame is not None:
            return self._frame
        assert self._arrow is not None
        return self._arrow.select(list(columns)).to_pandas(date_as_object=True, use_threads=False)

    def _once(self, what: str, column: str, read: Callable[[], Any]) -> Any:
        key = (what, column)
        if key not in self._memo:
            value = read()
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            self._memo[key] = value
        return self._memo[key]

    def num(self, column: str) -> np.ndarray:
        """float64 with NaN for missing values (``_tables.num``)."""
        def read() -> np.ndarray:
            kind = self._kind(column)
            if kind is not None and _is_number(kind):
                return np.asarray(self._arrow_column(column).to_numpy(zero_copy_only=False), dtype=float)
            return num(self.pandas([column]), column)

        return self._once("num", column, read)

    def dates(self, column: str) -> np.ndarray:
        """``datetime64[D]`` with NaT for missing values, as ``_tables.dates`` reads them."""
        def read() -> np.ndarray:
            kind = self._kind(column)
            if kind is not None and pa.types.is_date32(kind):
                return self._arrow_column(column).to_numpy(zero_copy_only=False).astype("datetime64[D]")
            return dates(self.pandas([column]), column)

        return self._once("dates", column, read)

    def strings(self, column: str) -> pa.Array:
        """An Arrow string array with nulls, as ``astype("string")`` reads the column."""
        def read() -> pa.Array:
            kind = self._kind(column)
            if kind is not None and (_is_text(kind) or pa.types.is_null(kind)):
                return self._arrow_column(column).cast(pa.string())
            return _strings(self.pandas([column])[column])

        return self._once("strings", column, read)

    def nulls(self, column: str) -> np.ndarray:
        """Rows with no value: null, NaN or NaT, or (text) blank once whitespace is trimmed."""
        def read() -> np.ndarray:
            kind = self._kind(column)
            if kind is not None and (_is_text(kind) or _is_number(kind) or pa.types.is_date32(kind)):
                values = self._arrow_column(column)
                missing = pc.is_null(values, nan_is_null=True)
                if _is_text(kind):
                    missing = pc.or_kleene(missing, pc.equal(pc.utf8_trim_whitespace(values), ""))
                return pc.fill_null(missing, True).to_numpy(zero_copy_only=False)
            return _pandas_nulls(self.pandas([column])[column])

        return self._once("nulls", column, read)

    def all_distinct(self, keys: Sequence[str]) -> bool:
        """True when no two rows share ``keys`` (decided on Arrow for the key types whose equality
        is pandas'); False when they may (the caller then counts with pandas)."""
        if not self._keys_on_arrow(keys):
            return False
        assert self._arrow is not None
        # One key column without a repeated value is enough (the finest key is listed last): one
        # hash pass over it instead of grouping by every key (the flow's row_key: half the time).
        if any(pc.count_distinct(self._arrow.column(k), mode="all").as_py() == self.n for k in reversed(keys)):
            return True
        return self._arrow.select(list(keys)).group_by(list(keys), use_threads=False).aggregate([]).num_rows == self.n

    def group_codes(self, keys: Sequence[str]) -> np.ndarray:
        """An integer per row, equal for rows with equal ``keys`` (nulls form a group), as
        ``groupby(keys, dropna=False).ngroup()`` groups them."""
        if not self._keys_on_arrow(keys):
            return self.pandas(keys).groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
        codes = np.zeros(self.n, dtype=np.int64)
        for key in keys:
            encoded = pc.dictionary_encode(self._arrow_column(key), null_encoding="encode")
            column_codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
            codes = np.unique(codes * len(encoded.dictionary) + column_codes, return_inverse=True)[1]
        return codes


def _strings(series: pd.Series) -> pa.Array:
    """A column as an Arrow string array with nulls, as ``astype("string")`` reads it (other
    values by their ``str``); strings and all-null columns convert without a Python loop."""
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        values = None
    if values is None or not (_is_text(values.type) or pa.types.is_null(values.type)):
        values = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string())


def _pandas_nulls(series: pd.Series) -> np.ndarray:
    nulls = series.isna().to_numpy(dtype=bool)
    # A blank string is as useless as a null in a key column.
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        nulls = nulls | _blank(series)
    return nulls


def _blank(series: pd.Series) -> np.ndarray:
    """Rows whose value reads as an empty string once whitespace is trimmed (``str.strip()`` of
    the ``string`` dtype, which is Arrow's ``utf8_trim_whitespace``); other types are never blank."""
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        values = _strings(series)  # mixed types: each value by its str()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not _is_text(values.type):
        return np.zeros(len(series), dtype=bool)  # dates, numbers, ...: their text is never empty
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    return pc.fill_null(blank, False).to_numpy(zero_copy_only=False)


# -- check bodies -------------------------------------------------------------------------------
def _missing(rows: Rows, columns: Sequence[str]) -> Outcome | None:
    absent = [c for c in columns if c not in rows.columns]
    if absent:
        return False, {"rows_checked": rows.n, "missing_columns": absent}, f"missing column(s): {', '.join(absent)}"
    return None


def duplicate_keys(keys: Sequence[str]) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, keys)) is not None:
            return bad
        if rows.all_distinct(keys):  # the usual case, decided without pandas
            metrics = {"rows_checked": rows.n, "duplicate_rows": 0, "duplicate_keys": 0, "sample": []}
            return True, metrics, f"no duplicate ({', '.join(keys)})"
        frame = rows.pandas(keys)
        dup = frame.duplicated(list(keys), keep=False).to_numpy()
        n_keys = int(frame.loc[dup, list(keys)].drop_duplicates().shape[0])
        # a missing key reads <NA> (pandas 3's astype(str) keeps it missing, which join refuses)
        sample = (frame.loc[dup, list(keys)].head(_SAMPLE).astype(str).fillna("<NA>").agg("|".join, axis=1).tolist()
                  if dup.any() else [])
        metrics = {"rows_checked": rows.n, "duplicate_rows": int(dup.sum()), "duplicate_keys": n_keys, "sample": sample}
        if dup.any():
            return False, metrics, f"{int(dup.sum())} rows share {n_keys} key(s) ({', '.join(keys)})"
        return True, metrics, f"no duplicate ({', '.join(keys)})"

    return body


def required_columns(columns: Sequence[str]) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, columns)) is not None:
            return bad
        by_column: dict[str, int] = {}
        null_rows = np.zeros(rows.n, dtype=bool)
        for column in columns:
            nulls = rows.nulls(column)
            if n := int(nulls.sum()):
                by_column[column] = n
            null_rows |= nulls
        metrics = {"rows_checked": rows.n, "null_rows": int(null_rows.sum()), "null_cells_by_column": by_column}
        if null_rows.any():
            return False, metrics, f"{int(null_rows.sum())} rows have nulls in required column(s) {', '.join(by_column)}"
        return True, metrics, "no nulls in required columns"

    return body


def monotonic_dates(date_column: str, by: Sequence[str]) -> Callable[[Rows, dt.date], Outcome]:
    """Within each ``by`` group, in the given row order, dates must not go backwards."""

    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, [date_column, *by])) is not None:
            return bad
        days = rows.dates(date_column)
        invalid = int(np.isnat(days).sum())
        codes = rows.group_codes(by) if by else np.zeros(rows.n)
        order = np.argsort(codes, kind="stable")  # keeps each group's rows in their given order
        d, c = days[order], codes[order]
        with np.errstate(invalid="ignore"):
            back = (c[1:] == c[:-1]) & (d[1:] < d[:-1])
        groups = int(np.unique(c[1:][back]).size)
        metrics = {"rows_checked": rows.n, "out_of_order_pairs": int(back.sum()), "out_of_order_groups": groups,
                   "invalid_date_rows": invalid}
        if back.any() or invalid:
            return False, metrics, f"{int(back.sum())} out-of-order pairs in {groups} group(s), {invalid} unparseable dates"
        return True, metrics, f"{date_column} increases within every group"

    return body


def fresh(date_column: str) -> Callable[[Rows, dt.date], Outcome]:
    """The newest row is dated the session (staleness)."""

    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, [date_column])) is not None:
            return bad
        days = rows.dates(date_column)
        days = days[~np.isnat(days)]
        latest = str(days.max()) if days.size else None
        metrics = {"rows_checked": rows.n, "latest_date": latest, "session": session.isoformat()}
        if latest is None:
            return False, metrics, f"no dated rows for the session {session}"
        if days.max() < np.datetime64(session, "D"):
            return False, metrics, f"stale: newest {date_column} is {latest}, the session is {session}"
        return True, metrics, f"newest {date_column} is the session {session}"

    return body


def dated_no_later_than_session(date_column: str) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, [date_column])) is not None:
            return bad
        future = rows.dates(date_column) > np.datetime64(session, "D")
        metrics = {"rows_checked": rows.n, "future_rows": int(future.sum()), "session": session.isoformat()}
        if future.any():
            return False, metrics, f"{int(future.sum())} rows are dated after the session {session}"
        return True, metrics, f"no row dated after {session}"

    return body


def dated_session(date_column: str) -> Callable[[Rows, dt.date], Outcome]:
    """Every row belongs to the session's partition (a mis-dated write would overwrite another day)."""

    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, [date_column])) is not None:
            return bad
        days = rows.dates(date_column)
        wrong = days != np.datetime64(session, "D")  # NaT compares unequal: counted too
        found = sorted({str(d) for d in np.unique(days[wrong])})[:_SAMPLE]
        metrics = {"rows_checked": rows.n, "misdated_rows": int(wrong.sum()), "dates_found": found}
        if not rows.n:
            return False, metrics, f"no rows for the session {session}"
        if wrong.any():
            return False, metrics, f"{int(wrong.sum())} rows are not dated {session} ({', '.join(found)})"
        return True, metrics, f"every {date_column} is {session}"

    return body


def non_negative(columns: Sequence[str]) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        present = [c for c in columns if c in rows.columns]
        if not present:
            return False, {"rows_checked": rows.n, "missing_columns": list(columns)}, "no price columns"
        values = np.column_stack([rows.num(c) for c in present])
        negative = values < 0
        cells = {c: int(n) for c, n in zip(present, negative.sum(axis=0), strict=True) if n}
        metrics = {"rows_checked": rows.n, "negative_rows": int(negative.any(axis=1).sum()),
                   "negative_cells": int(negative.sum()), "negative_by_column": cells, "price_columns": present}
        if negative.any():
            return False, metrics, f"{int(negative.sum())} negative values in {', '.join(cells)}"
        return True, metrics, f"no negative values in {', '.join(present)}"

    return body


def parseable_occ(symbol_column: str, underlying_column: str | None) -> Callable[[Rows, dt.date], Outcome]:
    """Every contract symbol parses as OCC and agrees with the row's expiry, type and strike (when present).

    Acceptance is ``stages.occ.parse_occ``'s, evaluated over the whole column at once
    (``_occ_columns.parse_occ_column``; a test holds the two to the same answers)."""
    from stages.analytics._occ_columns import parse_occ_column

    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, [symbol_column])) is not None:
            return bad
        symbols = rows.strings(symbol_column)
        owners = rows.strings(underlying_column) if underlying_column and underlying_column in rows.columns else None
        parsed = parse_occ_column(symbols, owners)
        ok = parsed.ok
        inconsistent = np.zeros(rows.n, dtype=bool)
        if {"expiry", "option_type", "strike"} <= set(rows.columns) and ok.any():
            types = pc.fill_null(pc.utf8_lower(rows.strings("option_type")), "").to_numpy(zero_copy_only=False)
            inconsistent = ok & (
                (parsed.expiry != rows.dates("expiry"))
                | (parsed.option_type != types)
                | ~np.isclose(parsed.strike, rows.num("strike"), rtol=0, atol=1e-6)
            )
        bad_rows = ~ok | inconsistent
        sample = pc.fill_null(symbols.filter(pa.array(bad_rows)).slice(0, _SAMPLE), "").to_pylist()
        metrics: dict[str, Any] = {"rows_checked": rows.n, "unparseable_contracts": int((~ok).sum()),
                   "inconsistent_contracts": int(inconsistent.sum()),
                   "unparseable_ratio": float((~ok).mean()) if rows.n else 0.0,
                   "sample": [str(s) for s in sample]}
        if bad_rows.any():
            return False, metrics, (f"{int((~ok).sum())} unparseable and {int(inconsistent.sum())} inconsistent "
                                    f"contract symbols (e.g. {', '.join(metrics['sample'])})")
        return True, metrics, "every contract symbol parses as OCC and matches its row"

    return body


def null_iv_ratio(threshold: float) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, ["implied_volatility", "expiry"])) is not None:
            return bad
        live = rows.dates("expiry") > np.datetime64(session, "D")
        iv = rows.num("implied_volatility")
        missing = live & ~(np.isfinite(iv) & (iv > 0))
        n_live = int(live.sum())
        ratio = float(missing.sum() / n_live) if n_live else 0.0
        metrics = {"rows_checked": rows.n, "live_contracts": n_live, "null_iv_contracts": int(missing.sum()),
                   "null_iv_ratio": ratio, "threshold": threshold}
        if ratio > threshold:
            return False, metrics, f"{ratio:.1%} of live contracts have no implied volatility (threshold {threshold:.0%})"
        return True, metrics, f"{ratio:.1%} of live contracts lack IV"

    return body


def crossed_quotes_ratio(threshold: float) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, ["bid", "ask"])) is not None:
            return bad
        bid, ask = rows.num("bid"), rows.num("ask")
        two_sided = (bid > 0) & (ask > 0)
        crossed = two_sided & (bid > ask)
        n = int(two_sided.sum())
        ratio = float(crossed.sum() / n) if n else 0.0
        metrics = {"rows_checked": rows.n, "two_sided_quotes": n, "crossed_quotes": int(crossed.sum()),
                   "crossed_ratio": ratio, "threshold": threshold}
        if ratio > threshold:
            return False, metrics, f"{ratio:.1%} of two-sided quotes are crossed (bid > ask; threshold {threshold:.0%})"
        return True, metrics, f"{ratio:.1%} of two-sided quotes are crossed"

    return body


def allowed_values(column: str, allowed: Sequence[str]) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, [column])) is not None:
            return bad
        values = rows.strings(column)
        wrong = pc.invert(pc.fill_null(pc.is_in(values, value_set=pa.array(list(allowed), pa.string())), False))
        found = sorted({"<NA>" if v is None else v for v in pc.unique(values.filter(wrong)).to_pylist()})[:_SAMPLE]
        n_wrong = int(pc.sum(wrong).as_py() or 0)
        metrics = {"rows_checked": rows.n, "invalid_rows": n_wrong, "invalid_values": found}
        if n_wrong:
            return False, metrics, f"{n_wrong} rows have {column} outside {', '.join(allowed)}"
        return True, metrics, f"every {column} is one of {', '.join(allowed)}"

    return body


def within(columns: Sequence[str], low: float, high: float) -> Callable[[Rows, dt.date], Outcome]:
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, columns)) is not None:
            return bad
        values = np.column_stack([rows.num(c) for c in columns])
        out = np.isfinite(values) & ((values < low) | (values > high))
        metrics = {"rows_checked": rows.n, "out_of_range_cells": int(out.sum()), "range": [low, high]}
        if out.any():
            return False, metrics, f"{int(out.sum())} values of {', '.join(columns)} outside [{low}, {high}]"
        return True, metrics, f"{', '.join(columns)} within [{low}, {high}]"

    return body


def flow_window_order(rows: Rows, session: dt.date) -> Outcome:
    if (bad := _missing(rows, ["from_date", "to_date"])) is not None:
        return bad
    backwards = ~(rows.dates("from_date") < rows.dates("to_date"))
    metrics = {"rows_checked": rows.n, "bad_window_rows": int(backwards.sum())}
    if backwards.any():
        return False, metrics, f"{int(backwards.sum())} rows have from_date not before to_date"
    return True, metrics, "every window runs forward"


def flow_vanished_contracts(threshold: float) -> Callable[[Rows, dt.date], Outcome]:
    """Contracts of the earlier snapshot missing from the later one although not expired
    (``status = 'disappeared'`` contract rows), against the earlier snapshot's unexpired ones."""
    def body(rows: Rows, session: dt.date) -> Outcome:
        if (bad := _missing(rows, ["group_by", "status", "contract_symbol"])) is not None:
            return bad
        n_rows, vanished, before, sample = _vanished(rows)
        ratio = float(vanished) / before if before else 0.0
        metrics = {"rows_checked": n_rows, "vanished_contracts": vanished,
                   "unexpired_before": before, "vanished_ratio": ratio, "threshold": threshold, "sample": sample}
        if ratio > threshold:
            return False, metrics, (f"{vanished} of {before} unexpired contracts ({ratio:.1%}) vanished from "
                                    f"the chain before expiry (threshold {threshold:.0%}): a provider gap or delistings; "
                                    "their change is unknown and left out of the flow")
        return True, metrics, f"{vanished} contracts vanished before expiry ({ratio:.1%})"

    return body


def _vanished(rows: Rows) -> tuple[int, int, int, list[str]]:
    """Contract rows of the smallest window: how many, how many vanished, how many were unexpired
    before (matched or vanished), a sample of the vanished symbols."""
    columns = ["group_by", "status", "contract_symbol", *(["window_size"] if "window_size" in rows.columns else [])]
    table = rows.table(columns)
    plain = table is not None and all(_is_text(table.schema.field(c).type) for c in columns[:3]) and (
        len(columns) == 3 or pa.types.is_integer(table.schema.field("window_size").type))
    if table is None or not plain:
        frame = rows.pandas(columns)
        contracts = frame[frame["group_by"] == "contract"]
        if "window_size" in contracts and len(contracts):
            contracts = contracts[contracts["window_size"] == contracts["window_size"].min()]
        status = contracts["status"].astype("string")
        vanished = (status == "disappeared").fillna(False).to_numpy(bool)
        before = int(status.isin(["matched", "disappeared"]).fillna(False).sum())
        sample = sorted(map(str, contracts.loc[vanished, "contract_symbol"]))[:_SAMPLE]
        return len(contracts), int(vanished.sum()), before, sample
    contracts = table.filter(pc.fill_null(pc.equal(table["group_by"], "contract"), False))
    if "window_size" in columns and contracts.num_rows:
        sizes = contracts["window_size"]
        contracts = contracts.filter(pc.fill_null(pc.equal(sizes, pc.min(sizes)), False))
    status = contracts["status"]
    is_vanished = pc.fill_null(pc.equal(status, "disappeared"), False)
    vanished = contracts["contract_symbol"].filter(is_vanished)
    before = pc.sum(pc.fill_null(pc.is_in(status, value_set=pa.array(["matched", "disappeared"])), False)).as_py()
    # the symbols by the str() of their pandas values, as the check was defined (a null reads "nan")
    sample = sorted(map(str, vanished.to_pandas()))[:_SAMPLE] if len(vanished) else []
    return contracts.num_rows, len(vanished), int(before or 0), sample


def text_mentions(*needles: str, session_date: bool = True) -> Callable[[str, dt.date], Outcome]:
    def body(text: str, session: dt.date) -> Outcome:
        text = text or ""
        wanted = [*needles, *([session.isoformat()] if session_date else [])]
        absent = [n for n in wanted if n.lower() not in text.lower()]
        metrics = {"bytes": len(text.encode()), "missing": absent}
        if not text.strip():
            return False, metrics, "the document is empty"
        if absent:
            return False, metrics, f"the document does not mention {', '.join(absent)}"
        return True, metrics, "non-empty and names the session"

    return body


def self_contained_html(text: str, session: dt.date) -> Outcome:
    text = text or ""
    lowered = text.lower()
    external = lowered.count("http://") + lowered.count("https://") + lowered.count("src=\"//")
    parser = _TagCounter()
    error = None
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; anything it raises is a broken document
        error = str(exc)
    metrics = {"bytes": len(text.encode()), "external_references": external, "tags": parser.tags, "parse_error": error}
    if not text.strip() or parser.tags == 0 or error:
        return False, metrics, "the dashboard is empty or does not parse as HTML"
    if external:
        return False, metrics, f"the dashboard has {external} external reference(s); it must open offline"
    return True, metrics, "self-contained HTML"


class _TagCounter(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags += 1


# -- the registry -------------------------------------------------------------------------------
_PRICES = ("open", "high", "low", "close")


def _c(asset_key: str, name: str, severity: str, description: str, body: Callable, *, text: bool = False) -> Check:
    return Check(asset_key=asset_key, name=name, severity=severity, description=description, body=body, text_input=text)


@functools.cache  # built once, on first use (it imports stages.occ); immutable afterwards
def _build_registry() -> dict[str, tuple[Check, ...]]:
    from stages.analytics.snapshot import IV_SOURCES

    return {
        CANDLES_DAILY: (
            _c(CANDLES_DAILY, "candles_unique_symbol_date", "error", "one row per (symbol, date)",
               duplicate_keys(("symbol", "date"))),
            _c(CANDLES_DAILY, "candles_required_columns", "error", "no nulls in symbol, date, close",
               required_columns(("symbol", "date", "close"))),
            _c(CANDLES_DAILY, "candles_monotonic_date", "error", "dates increase per symbol",
               monotonic_dates("date", ("symbol",))),
            _c(CANDLES_DAILY, "candles_no_negative_prices", "error", "open/high/low/close >= 0", non_negative(_PRICES)),
            _c(CANDLES_DAILY, "candles_no_future_dates", "error", "no candle after the session",
               dated_no_later_than_session("date")),
            _c(CANDLES_DAILY, "candles_fresh", "warn", "the newest candle is the session's", fresh("date")),
        ),
        OPTIONS_BARS: (
            _c(OPTIONS_BARS, "options_bars_duplicate_pk", "error", "one bar per (contract, date)",
               duplicate_keys(("contract_symbol", "date"))),
            _c(OPTIONS_BARS, "options_bars_required_columns", "error", "no nulls in contract_symbol, date, close",
               required_columns(("contract_symbol", "date", "close"))),
            _c(OPTIONS_BARS, "options_bars_monotonic_date", "error", "dates increase per contract",
               monotonic_dates("date", ("contract_symbol",))),
            _c(OPTIONS_BARS, "options_bars_no_negative_prices", "error", "open/high/low/close >= 0", non_negative(_PRICES)),
            _c(OPTIONS_BARS, "options_bars_parseable_contract_symbol", "error", "contract symbols are OCC",
               parseable_occ("contract_symbol", "underlying")),
            _c(OPTIONS_BARS, "options_bars_no_future_dates", "error", "no bar after the session",
               dated_no_later_than_session("date")),
            _c(OPTIONS_BARS, "options_bars_fresh", "warn", "the newest bar is the session's", fresh("date")),
        ),
        OPTIONS_SNAPSHOT_FILE: (
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_unique_contract", "error", "one row per contract",
               duplicate_keys(("contract_symbol",))),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_required_columns", "error", "no nulls in key columns and spot",
               required_columns(("contract_symbol", "underlying", "expiry", "option_type", "strike", "spot", "as_of"))),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_valid_option_type", "error", "option_type is call or put",
               allowed_values("option_type", ("call", "put"))),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_valid_iv_source", "error", "iv_source is a known value",
               allowed_values("iv_source", IV_SOURCES)),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_dated_session", "error", "every as_of is the session",
               dated_session("as_of")),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_no_negative_prices", "error", "strike/bid/ask/last/spot >= 0",
               non_negative(("strike", "bid", "ask", "last", "spot", "volume", "open_interest"))),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_parseable_contract_symbol", "error",
               "contract symbols are OCC and match expiry/type/strike", parseable_occ("contract_symbol", "underlying")),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_null_iv_ratio", "warn",
               f"<= {NULL_IV_WARN_RATIO:.0%} of live contracts lack IV", null_iv_ratio(NULL_IV_WARN_RATIO)),
            _c(OPTIONS_SNAPSHOT_FILE, "snapshot_crossed_quotes", "warn",
               f"<= {CROSSED_QUOTES_WARN_RATIO:.0%} of two-sided quotes crossed",
               crossed_quotes_ratio(CROSSED_QUOTES_WARN_RATIO)),
        ),
        OPTIONS_FLOW: (
            _c(OPTIONS_FLOW, "flow_unique_row_key", "error", "row_key unique per partition",
               duplicate_keys(("symbol", "from_date", "to_date", "window_size", "group_by", "row_key"))),
            _c(OPTIONS_FLOW, "flow_no_null_primary_keys", "error", "no nulls in the partition key and row_key",
               required_columns(("symbol", "from_date", "to_date", "window_size", "group_by", "row_key"))),
            _c(OPTIONS_FLOW, "flow_window_order", "error", "from_date before to_date", flow_window_order),
            _c(OPTIONS_FLOW, "flow_dated_session", "error", "every to_date is the session", dated_session("to_date")),
            _c(OPTIONS_FLOW, "flow_vanished_contracts", "warn",
               f"<= {VANISHED_WARN_RATIO:.0%} of unexpired contracts vanish before expiry",
               flow_vanished_contracts(VANISHED_WARN_RATIO)),
        ),
        DERIVED_METRICS: (
            _c(DERIVED_METRICS, "derived_no_duplicate_keys", "error", "one row per (symbol, date)",
               duplicate_keys(("symbol", "date"))),
            _c(DERIVED_METRICS, "derived_required_columns", "error", "no nulls in symbol, date, spot",
               required_columns(("symbol", "date", "spot"))),
            _c(DERIVED_METRICS, "derived_dated_session", "error", "every date is the session", dated_session("date")),
            _c(DERIVED_METRICS, "derived_no_negative_prices", "error", "spot, walls, ratios >= 0",
               non_negative(("spot", "call_wall", "put_wall", "gamma_peak_strike", "pc_oi", "pc_vol", "atm_iv_near"))),
            _c(DERIVED_METRICS, "derived_ranks_in_range", "error", "percentile and IV rank within [0, 100]",
               within(("atm_iv_near_percentile", "iv_rank_252d"), 0.0, 100.0)),
        ),
        BRIEFING_MARKDOWN: (
            _c(BRIEFING_MARKDOWN, "briefing_markdown_nonempty", "error", "non-empty, names the session, has the disclaimer",
               text_mentions("not financial advice"), text=True),
        ),
        DASHBOARD_VIEWS: (
            _c(DASHBOARD_VIEWS, "dashboard_self_contained", "error", "parses as HTML with no external references",
               self_contained_html, text=True),
        ),
    }


def checks_for(asset_key: str) -> list[Check]:
    """The checks of ``asset_key`` (a key from ``stages.registry``), in a fixed order."""
    registry = _build_registry()
    if asset_key not in registry:
        raise UsageError(f"no checks are registered for asset {asset_key!r}; known: {', '.join(registry)}")
    return list(registry[asset_key])


def run_checks(
    asset_key: str, table: pa.Table | pd.DataFrame | str, *, session: dt.date, scope_key: str
) -> list[CheckResult]:
    """Every check of ``asset_key`` on ``table``; a check that raises propagates (that is a bug, not a finding)."""
    checks = checks_for(asset_key)
    data = table if isinstance(table, str) else Rows(table)  # each column read once for every check
    return [check(data, session=session, scope_key=scope_key) for check in checks]


def skip_checks(asset_key: str, *, scope_key: str, reason: str) -> list[CheckResult]:
    """Every check of ``asset_key`` reported as skipped, e.g. when the stage produced no rows."""
    return [check.skip(scope_key=scope_key, reason=reason) for check in checks_for(asset_key)]


def failed(results: Sequence[CheckResult], severity: str | None = None) -> list[CheckResult]:
    """The failures among ``results`` (of one severity, if given)."""
    return [r for r in results if r.failed and (severity is None or r.severity == severity)]


def summarize(results: Sequence[CheckResult]) -> Mapping[str, int]:
    """Counts by status, for logs and payloads."""
    return {status: sum(r.status == status for r in results) for status in STATUSES}


__all__ = [
    "CROSSED_QUOTES_WARN_RATIO",
    "NULL_IV_WARN_RATIO",
    "VANISHED_WARN_RATIO",
    "Check",
    "CheckResult",
    "checks_for",
    "failed",
    "run_checks",
    "skip_checks",
    "summarize",
]
