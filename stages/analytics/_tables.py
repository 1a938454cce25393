"""Small conversions shared by the analytics modules (private).

The public functions take and return ``pyarrow.Table``; internally the arithmetic runs on numpy
arrays (taken from Arrow columns with ``arrow_*``, or from pandas frames with ``num``/``dates``)
and group-bys (``group_sums`` replaces pandas' where a symbol's work is hot). These helpers keep
the conversion rules in one place: dates become ``datetime.date`` objects (never timestamps),
missing numbers become NaN, and a pandas frame is accepted wherever a table is, so tests and
notebooks can pass either.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ledger.errors import StageError


def to_pandas(table: pa.Table | pd.DataFrame | None) -> pd.DataFrame:
    """A pandas copy of ``table`` (an empty frame for None); date columns stay ``datetime.date``."""
    if table is None:
        return pd.DataFrame()
    if isinstance(table, pd.DataFrame):
        return table.copy()
    if isinstance(table, pa.Table):
        # One symbol's table: Arrow's thread pool costs more CPU than the conversion (half of it).
        return table.to_pandas(date_as_object=True, use_threads=False)
    raise TypeError(f"expected a pyarrow Table or pandas DataFrame, got {type(table).__name__}")


def require_columns(frame: pd.DataFrame | pa.Table, columns: Iterable[str], what: str) -> None:
    names = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
    missing = [c for c in columns if c not in names]
    if missing:
        raise StageError(
            f"{what} is missing column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, names)) or 'no columns'}"
        )


def num(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column ``column`` as float64 with NaN for missing values (all-NaN if the column is absent)."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values.dtype):  # already numeric: to_numeric would return it as is
        values = pd.to_numeric(values, errors="coerce")
    return values.to_numpy(dtype=float, na_value=np.nan)


def dates(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column ``column`` as ``datetime64[D]`` (NaT for missing or unparseable)."""
    if column not in frame.columns:
        return np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[D]")
    parsed = pd.to_datetime(frame[column], errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # an instant's day in UTC
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    # In the unit pandas parsed (s, ms, us): through nanoseconds, a day after 2262 wrapped round to
    # one before 1677 (9999-12-31, a common "no date" sentinel, read as 1816) and passed the checks.
    return parsed.to_numpy().astype("datetime64[D]")


def to_date(value: Any) -> dt.date | None:
    """A ``datetime.date`` from a date, datetime, numpy/pandas timestamp or ISO string; None if missing."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, float) and math.isnan(value):
        return None
    stamp = pd.Timestamp(value)
    return None if pd.isna(stamp) else stamp.date()


def clean(value: Any) -> Any:
    """A JSON-friendly scalar: NaN/NaT -> None, numpy scalars -> Python, dates -> ISO strings."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is pd.NaT:
        return None
    return value


def opt_float(value: Any) -> float | None:
    """A finite float or None."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


# -- Arrow-native column access (the fast path: no pandas objects per column) -----------------
#: What a report cell shows for a missing value.
DASH = "—"


def fmt_num(value: Any, digits: int = 2) -> str:
    """A number with thousands separators for a report cell, or the dash when it is missing."""
    v = opt_float(value)
    return DASH if v is None else f"{v:,.{digits}f}"


def to_arrow(table: pa.Table | pd.DataFrame) -> pa.Table:
    """``table`` as a pyarrow Table (pandas frames are converted once)."""
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pd.DataFrame):
        return pa.Table.from_pandas(table, preserve_index=False)
    raise TypeError(f"expected a pyarrow Table or pandas DataFrame, got {type(table).__name__}")


def arrow_float(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with NaN for nulls (all-NaN when absent)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False).astype(float, copy=False)


def arrow_date(table: pa.Table, name: str) -> np.ndarray:
    """A column as ``datetime64[D]`` with NaT for nulls (all-NaT when absent)."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.datetime64("NaT"), dtype="datetime64[D]")
    column = table.column(name)
    if not pa.types.is_date32(column.type):
        column = column.cast(pa.date32())
    return column.to_numpy(zero_copy_only=False).astype("datetime64[D]")


def arrow_str(table: pa.Table, name: str) -> np.ndarray:
    """A column as an object array of ``str`` with None for nulls."""
    if name not in table.column_names:
        return np.full(table.num_rows, None, dtype=object)
    return table.column(name).cast(pa.string()).to_numpy(zero_copy_only=False).astype(object, copy=False)


def group_sums(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct key (sorted; NaN keys left out): the sum of its non-NaN ``values`` and their count.

    Each key's values are added in row order with Kahan compensation, exactly as pandas' groupby
    ``sum`` and ``mean`` (``sum / count``) do, so results match them bit for bit (a plain
    ``np.bincount`` can differ in the last digits). Vectorised across keys: one step per row of
    the largest group.
    """
    keys, values = np.asarray(keys, dtype=float), np.asarray(values, dtype=float)
    distinct = np.unique(keys[~np.isnan(keys)])
    ok = ~np.isnan(keys) & ~np.isnan(values)
    group, values = np.searchsorted(distinct, keys[ok]), values[ok]
    counts = np.bincount(group, minlength=len(distinct))
    # The k-th value of every group, for k = 0, 1, ...: rows ordered by (position in group, row).
    by_group = np.argsort(group, kind="stable")
    position = np.empty(len(group), dtype=np.int64)
    position[by_group] = np.arange(len(group)) - np.repeat(np.cumsum(counts) - counts, counts)
    by_position = np.argsort(position, kind="stable")
    bounds = np.searchsorted(position[by_position], np.arange(int(counts.max(initial=0)) + 1))
    total = np.zeros(len(distinct))
    compensation = np.zeros(len(distinct))
    with np.errstate(invalid="ignore"):  # inf - inf: pandas drops that compensation too
        for lo, hi in itertools.pairwise(bounds):
            rows = by_position[lo:hi]
            g = group[rows]
            y = values[rows] - compensation[g]
            t = total[g] + y
            c = (t - total[g]) - y
            compensation[g] = np.where(np.isnan(c), 0.0, c)
            total[g] = t
    return distinct, total, counts


def sort_rank(values: np.ndarray) -> np.ndarray:
    """Integer ranks that sort like ``values`` with missing values last (for ``np.lexsort``)."""
    codes, _ = pd.factorize(values, sort=True, use_na_sentinel=False)
    return codes
