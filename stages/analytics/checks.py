"""Quality checks that run on the rows a stage is about to write, before they are committed.

Each check is a ``Check``: a callable ``(table, *, session, scope_key) -> CheckResult``, where
``table`` is a ``pyarrow.Table`` (or pandas DataFrame) of the rows to be written — or, for the
file assets ``briefing_markdown`` and ``dashboard_views``, the rendered text. Because the rows
have not been through a primary key or an ORDER BY yet, duplicates, disorder and mis-dated rows
really can occur, and every check here can fail on the data it is given (the original's checks
against stored DuckDB tables mostly could not).

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
from stages.analytics._tables import dates, num, to_pandas
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
        # Bodies never mutate their input, so a caller's DataFrame is used as is (no copy).
        data = table if self.text_input or isinstance(table, pd.DataFrame) else to_pandas(table)
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


# -- check bodies -------------------------------------------------------------------------------
def _missing(frame: pd.DataFrame, columns: Sequence[str]) -> Outcome | None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        return False, {"rows_checked": len(frame), "missing_columns": absent}, f"missing column(s): {', '.join(absent)}"
    return None


def _strings(frame: pd.DataFrame, column: str) -> pa.Array:
    """A column as an Arrow string array with nulls, as ``astype("string")`` reads it (other
    values by their ``str``); strings and all-null columns convert without a Python loop."""
    series = frame[column]
    try:
        values = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        values = None
    if values is None or not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
                              or pa.types.is_null(values.type)):
        values = pa.array(series.astype("string"), type=pa.string(), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.string())


def duplicate_keys(keys: Sequence[str]) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, keys)) is not None:
            return bad
        dup = frame.duplicated(list(keys), keep=False).to_numpy()
        n_keys = int(frame.loc[dup, list(keys)].drop_duplicates().shape[0])
        sample = frame.loc[dup, list(keys)].head(_SAMPLE).astype(str).agg("|".join, axis=1).tolist() if dup.any() else []
        metrics = {"rows_checked": len(frame), "duplicate_rows": int(dup.sum()), "duplicate_keys": n_keys, "sample": sample}
        if dup.any():
            return False, metrics, f"{int(dup.sum())} rows share {n_keys} key(s) ({', '.join(keys)})"
        return True, metrics, f"no duplicate ({', '.join(keys)})"

    return body


def required_columns(columns: Sequence[str]) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, columns)) is not None:
            return bad
        by_column: dict[str, int] = {}
        null_rows = np.zeros(len(frame), dtype=bool)
        for column in columns:
            nulls = frame[column].isna().to_numpy(dtype=bool)
            # A blank string is as useless as a null in a key column.
            if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
                nulls = nulls | _blank(frame, column)
            if n := int(nulls.sum()):
                by_column[column] = n
            null_rows |= nulls
        metrics = {"rows_checked": len(frame), "null_rows": int(null_rows.sum()), "null_cells_by_column": by_column}
        if null_rows.any():
            return False, metrics, f"{int(null_rows.sum())} rows have nulls in required column(s) {', '.join(by_column)}"
        return True, metrics, "no nulls in required columns"

    return body


def _blank(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Rows whose value reads as an empty string once whitespace is trimmed (``str.strip()`` of
    the ``string`` dtype, which is Arrow's ``utf8_trim_whitespace``); other types are never blank."""
    try:
        values = pa.array(frame[column], from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        values = _strings(frame, column)  # mixed types: each value by its str()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return np.zeros(len(frame), dtype=bool)  # dates, numbers, ...: their text is never empty
    blank = pc.equal(pc.utf8_trim_whitespace(values), "")
    return pc.fill_null(blank, False).to_numpy(zero_copy_only=False)


def monotonic_dates(date_column: str, by: Sequence[str]) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    """Within each ``by`` group, in the given row order, dates must not go backwards."""

    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, [date_column, *by])) is not None:
            return bad
        days = dates(frame, date_column)
        invalid = int(np.isnat(days).sum())
        codes = frame.groupby(list(by), sort=False, dropna=False).ngroup().to_numpy() if by else np.zeros(len(frame))
        order = np.argsort(codes, kind="stable")  # keeps each group's rows in their given order
        d, c = days[order], codes[order]
        with np.errstate(invalid="ignore"):
            back = (c[1:] == c[:-1]) & (d[1:] < d[:-1])
        groups = int(np.unique(c[1:][back]).size)
        metrics = {"rows_checked": len(frame), "out_of_order_pairs": int(back.sum()), "out_of_order_groups": groups,
                   "invalid_date_rows": invalid}
        if back.any() or invalid:
            return False, metrics, f"{int(back.sum())} out-of-order pairs in {groups} group(s), {invalid} unparseable dates"
        return True, metrics, f"{date_column} increases within every group"

    return body


def fresh(date_column: str) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    """The newest row is dated the session (staleness)."""

    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, [date_column])) is not None:
            return bad
        days = dates(frame, date_column)
        days = days[~np.isnat(days)]
        latest = str(days.max()) if days.size else None
        metrics = {"rows_checked": len(frame), "latest_date": latest, "session": session.isoformat()}
        if latest is None:
            return False, metrics, f"no dated rows for the session {session}"
        if days.max() < np.datetime64(session, "D"):
            return False, metrics, f"stale: newest {date_column} is {latest}, the session is {session}"
        return True, metrics, f"newest {date_column} is the session {session}"

    return body


def dated_no_later_than_session(date_column: str) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, [date_column])) is not None:
            return bad
        days = dates(frame, date_column)
        future = days > np.datetime64(session, "D")
        metrics = {"rows_checked": len(frame), "future_rows": int(future.sum()), "session": session.isoformat()}
        if future.any():
            return False, metrics, f"{int(future.sum())} rows are dated after the session {session}"
        return True, metrics, f"no row dated after {session}"

    return body


def dated_session(date_column: str) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    """Every row belongs to the session's partition (a mis-dated write would overwrite another day)."""

    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, [date_column])) is not None:
            return bad
        days = dates(frame, date_column)
        wrong = days != np.datetime64(session, "D")  # NaT compares unequal: counted too
        found = sorted({str(d) for d in np.unique(days[wrong])})[:_SAMPLE]
        metrics = {"rows_checked": len(frame), "misdated_rows": int(wrong.sum()), "dates_found": found}
        if not len(frame):
            return False, metrics, f"no rows for the session {session}"
        if wrong.any():
            return False, metrics, f"{int(wrong.sum())} rows are not dated {session} ({', '.join(found)})"
        return True, metrics, f"every {date_column} is {session}"

    return body


def non_negative(columns: Sequence[str]) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        present = [c for c in columns if c in frame.columns]
        if not present:
            return False, {"rows_checked": len(frame), "missing_columns": list(columns)}, "no price columns"
        values = np.column_stack([num(frame, c) for c in present])
        negative = values < 0
        cells = {c: int(n) for c, n in zip(present, negative.sum(axis=0), strict=True) if n}
        metrics = {"rows_checked": len(frame), "negative_rows": int(negative.any(axis=1).sum()),
                   "negative_cells": int(negative.sum()), "negative_by_column": cells, "price_columns": present}
        if negative.any():
            return False, metrics, f"{int(negative.sum())} negative values in {', '.join(cells)}"
        return True, metrics, f"no negative values in {', '.join(present)}"

    return body


def parseable_occ(symbol_column: str, underlying_column: str | None) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    """Every contract symbol parses as OCC and agrees with the row's expiry, type and strike (when present).

    Acceptance is ``stages.occ.parse_occ``'s, evaluated over the whole column at once
    (``_occ_columns.parse_occ_column``; a test holds the two to the same answers)."""
    from stages.analytics._occ_columns import parse_occ_column

    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, [symbol_column])) is not None:
            return bad
        symbols = _strings(frame, symbol_column)
        owners = _strings(frame, underlying_column) if underlying_column and underlying_column in frame else None
        parsed = parse_occ_column(symbols, owners)
        ok = parsed.ok
        inconsistent = np.zeros(len(frame), dtype=bool)
        if {"expiry", "option_type", "strike"} <= set(frame.columns) and ok.any():
            types = pc.fill_null(pc.utf8_lower(_strings(frame, "option_type")), "").to_numpy(zero_copy_only=False)
            inconsistent = ok & (
                (parsed.expiry != dates(frame, "expiry"))
                | (parsed.option_type != types)
                | ~np.isclose(parsed.strike, num(frame, "strike"), rtol=0, atol=1e-6)
            )
        bad_rows = ~ok | inconsistent
        sample = pc.fill_null(symbols.filter(pa.array(bad_rows)).slice(0, _SAMPLE), "").to_pylist()
        metrics: dict[str, Any] = {"rows_checked": len(frame), "unparseable_contracts": int((~ok).sum()),
                   "inconsistent_contracts": int(inconsistent.sum()),
                   "unparseable_ratio": float((~ok).mean()) if len(frame) else 0.0,
                   "sample": [str(s) for s in sample]}
        if bad_rows.any():
            return False, metrics, (f"{int((~ok).sum())} unparseable and {int(inconsistent.sum())} inconsistent "
                                    f"contract symbols (e.g. {', '.join(metrics['sample'])})")
        return True, metrics, "every contract symbol parses as OCC and matches its row"

    return body


def null_iv_ratio(threshold: float) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, ["implied_volatility", "expiry"])) is not None:
            return bad
        live = dates(frame, "expiry") > np.datetime64(session, "D")
        iv = num(frame, "implied_volatility")
        missing = live & ~(np.isfinite(iv) & (iv > 0))
        n_live = int(live.sum())
        ratio = float(missing.sum() / n_live) if n_live else 0.0
        metrics = {"rows_checked": len(frame), "live_contracts": n_live, "null_iv_contracts": int(missing.sum()),
                   "null_iv_ratio": ratio, "threshold": threshold}
        if ratio > threshold:
            return False, metrics, f"{ratio:.1%} of live contracts have no implied volatility (threshold {threshold:.0%})"
        return True, metrics, f"{ratio:.1%} of live contracts lack IV"

    return body


def crossed_quotes_ratio(threshold: float) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, ["bid", "ask"])) is not None:
            return bad
        bid, ask = num(frame, "bid"), num(frame, "ask")
        two_sided = (bid > 0) & (ask > 0)
        crossed = two_sided & (bid > ask)
        n = int(two_sided.sum())
        ratio = float(crossed.sum() / n) if n else 0.0
        metrics = {"rows_checked": len(frame), "two_sided_quotes": n, "crossed_quotes": int(crossed.sum()),
                   "crossed_ratio": ratio, "threshold": threshold}
        if ratio > threshold:
            return False, metrics, f"{ratio:.1%} of two-sided quotes are crossed (bid > ask; threshold {threshold:.0%})"
        return True, metrics, f"{ratio:.1%} of two-sided quotes are crossed"

    return body


def allowed_values(column: str, allowed: Sequence[str]) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, [column])) is not None:
            return bad
        values = frame[column].astype("string")
        wrong = ~values.isin(list(allowed)).fillna(False).to_numpy(dtype=bool)
        found = sorted({str(v) for v in values[wrong].unique()})[:_SAMPLE]
        metrics = {"rows_checked": len(frame), "invalid_rows": int(wrong.sum()), "invalid_values": found}
        if wrong.any():
            return False, metrics, f"{int(wrong.sum())} rows have {column} outside {', '.join(allowed)}"
        return True, metrics, f"every {column} is one of {', '.join(allowed)}"

    return body


def within(columns: Sequence[str], low: float, high: float) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, columns)) is not None:
            return bad
        values = np.column_stack([num(frame, c) for c in columns])
        out = np.isfinite(values) & ((values < low) | (values > high))
        metrics = {"rows_checked": len(frame), "out_of_range_cells": int(out.sum()), "range": [low, high]}
        if out.any():
            return False, metrics, f"{int(out.sum())} values of {', '.join(columns)} outside [{low}, {high}]"
        return True, metrics, f"{', '.join(columns)} within [{low}, {high}]"

    return body


def flow_window_order(frame: pd.DataFrame, session: dt.date) -> Outcome:
    if (bad := _missing(frame, ["from_date", "to_date"])) is not None:
        return bad
    backwards = ~(dates(frame, "from_date") < dates(frame, "to_date"))
    metrics = {"rows_checked": len(frame), "bad_window_rows": int(backwards.sum())}
    if backwards.any():
        return False, metrics, f"{int(backwards.sum())} rows have from_date not before to_date"
    return True, metrics, "every window runs forward"


def flow_vanished_contracts(threshold: float) -> Callable[[pd.DataFrame, dt.date], Outcome]:
    """Contracts of the earlier snapshot missing from the later one although not expired
    (``status = 'disappeared'`` contract rows), against the earlier snapshot's unexpired ones."""
    def body(frame: pd.DataFrame, session: dt.date) -> Outcome:
        if (bad := _missing(frame, ["group_by", "status", "contract_symbol"])) is not None:
            return bad
        contracts = frame[frame["group_by"] == "contract"]
        if "window_size" in contracts and len(contracts):
            contracts = contracts[contracts["window_size"] == contracts["window_size"].min()]
        status = contracts["status"].astype("string")
        vanished = (status == "disappeared").fillna(False).to_numpy(bool)
        before = int(status.isin(["matched", "disappeared"]).fillna(False).sum())
        ratio = float(vanished.sum()) / before if before else 0.0
        sample = sorted(map(str, contracts.loc[vanished, "contract_symbol"]))[:_SAMPLE]
        metrics = {"rows_checked": len(contracts), "vanished_contracts": int(vanished.sum()),
                   "unexpired_before": before, "vanished_ratio": ratio, "threshold": threshold, "sample": sample}
        if ratio > threshold:
            return False, metrics, (f"{int(vanished.sum())} of {before} unexpired contracts ({ratio:.1%}) vanished from "
                                    f"the chain before expiry (threshold {threshold:.0%}): a provider gap or delistings; "
                                    "their change is unknown and left out of the flow")
        return True, metrics, f"{int(vanished.sum())} contracts vanished before expiry ({ratio:.1%})"

    return body


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
    data = table if isinstance(table, str) else to_pandas(table)  # convert once for every check
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
