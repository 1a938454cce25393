"""Open-interest and volume flow between sessions (the ``options_flow`` asset).

The original tool's formulas (reference 2.4), with its defects fixed:

- **Outer join** on ``contract_symbol``: a contract in the previous snapshot but not in this one
  is reported with ``status='disappeared'`` and ``delta_oi = -oi_prev`` (its open interest is
  gone: expired, delisted, or dropped by the source); a contract listed since is
  ``status='new'`` with ``delta_oi = oi``. Contracts in both are ``'matched'``. The original's
  left join silently lost disappeared contracts and left new ones unclassified.
- ``mark`` = mid if bid > 0 and ask > 0, else last > 0, else ask > 0, else bid > 0; taken from
  this session's quote, or the previous session's for a disappeared contract (its last known
  price). ``delta`` likewise. ``spot`` is this session's.
- ``delta_oi_notional = delta_oi*mark*100``, ``volume_notional = volume*mark*100``,
  ``delta_notional = delta_oi*delta*spot*100``. ``volume`` is this session's; it is null for a
  disappeared contract (nothing was observed).
- ``flow_class``: ``threshold = max(10, 0.10*max(oi_prev, 0))``; ``delta_oi >= threshold`` is
  ``building``, ``<= -threshold`` ``unwinding``; else ``volume >= max(50, 0.50*max(oi_prev, 0))``
  is ``churn``; else, or when ``delta_oi`` is unknown, ``unknown``. For aggregated rows the same
  rule is applied to the group's sums, with ``oi_prev`` = the group's open interest at the start
  of the window (``oi_start``): for a one-session window grouped by contract this is exactly
  the per-contract class.
- No rows are dropped for null keys (the original's groupby did that silently).

Aggregation (``group_by`` in ``contract``, ``strike``, ``expiry``, ``expiry-strike``) sums the
per-contract rows of every session pair in the window. ``n_pairs`` is the number of
(contract, session pair) rows aggregated: 1 for a contract over a one-session window, the
number of contracts at the strike for ``strike`` grouping, times the number of pairs for wider
windows. ``n_contracts`` counts distinct contracts. ``row_key`` follows the original: the
non-empty ``|``-joined parts ``contract_symbol|expiry|option_type|strike`` (contract),
``option_type|strike`` (strike), ``option_type|expiry`` (expiry),
``option_type|expiry|strike`` (expiry-strike), strike as ``%.8f`` with trailing zeros trimmed,
``row-000123`` when every part is empty and ``|1``, ``|2``... on repeats, so it is unique within
a partition ``(symbol, from_date, to_date, window_size, group_by)``.

Inputs are snapshot tables (``SNAPSHOT_SCHEMA``; ``pyarrow.Table`` or pandas); ``contract_flow``
returns the per-contract pandas frame, ``compute_flow`` / ``compute_flow_window`` a
``pyarrow.Table`` in ``FLOW_SCHEMA``. Everything is vectorised numpy over Arrow columns: the
join is one ``pd.factorize`` of the contract symbols, each grouping one ``np.unique`` of
combined key codes and ``np.bincount`` sums (``tests/bench/bench_flow.py`` has the figures).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import StageError
from stages.analytics._tables import arrow_date, arrow_float, arrow_str, sort_rank, to_arrow

GROUP_CONTRACT = "contract"
GROUP_STRIKE = "strike"
GROUP_EXPIRY = "expiry"
GROUP_EXPIRY_STRIKE = "expiry-strike"
FLOW_GROUP_BYS = (GROUP_CONTRACT, GROUP_STRIKE, GROUP_EXPIRY, GROUP_EXPIRY_STRIKE)

_GROUP_KEYS: dict[str, tuple[str, ...]] = {
    GROUP_CONTRACT: ("contract_symbol", "expiry", "option_type", "strike"),
    GROUP_STRIKE: ("option_type", "strike"),
    GROUP_EXPIRY: ("option_type", "expiry"),
    GROUP_EXPIRY_STRIKE: ("option_type", "expiry", "strike"),
}

STATUS_MATCHED, STATUS_NEW, STATUS_DISAPPEARED, STATUS_MIXED = "matched", "new", "disappeared", "mixed"
FLOW_CLASSES = ("building", "unwinding", "churn", "unknown")

#: Columns that identify a flow partition; ``row_key`` is unique within one.
FLOW_PARTITION_COLUMNS = ("symbol", "from_date", "to_date", "window_size", "group_by")

#: One row per (partition, row_key). Columns not in a grouping's key are null
#: (e.g. ``contract_symbol`` and ``expiry`` for ``strike`` rows).
FLOW_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("as_of", pa.date32(), nullable=False),
        pa.field("from_date", pa.date32(), nullable=False),
        pa.field("to_date", pa.date32(), nullable=False),
        pa.field("window_size", pa.int32(), nullable=False),
        pa.field("group_by", pa.string(), nullable=False),
        pa.field("row_key", pa.string(), nullable=False),
        pa.field("contract_symbol", pa.string()),
        pa.field("expiry", pa.date32()),
        pa.field("option_type", pa.string()),
        pa.field("strike", pa.float64()),
        pa.field("delta_oi", pa.float64()),
        pa.field("delta_oi_notional", pa.float64()),
        pa.field("volume_notional", pa.float64()),
        pa.field("delta_notional", pa.float64()),
        pa.field("volume", pa.float64()),
        pa.field("oi_start", pa.float64()),
        pa.field("oi_end", pa.float64()),
        pa.field("n_pairs", pa.int64(), nullable=False),
        pa.field("n_contracts", pa.int64(), nullable=False),
        pa.field("n_new", pa.int64(), nullable=False),
        pa.field("n_disappeared", pa.int64(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("flow_class", pa.string(), nullable=False),
    ]
)

_SNAPSHOT_NEEDS = ("contract_symbol", "expiry", "option_type", "strike", "open_interest", "as_of")
_SUMMED = ("delta_oi", "delta_oi_notional", "volume_notional", "delta_notional", "volume")


def mark_price(bid: np.ndarray, ask: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Best-effort mark: mid if bid > 0 and ask > 0, else last > 0, else ask > 0, else bid > 0, else NaN."""
    return np.select(
        [(bid > 0) & (ask > 0), last > 0, ask > 0, bid > 0],
        [0.5 * (bid + ask), last, ask, bid],
        default=np.nan,
    )


def classify_flow(delta_oi: np.ndarray, oi_prev: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """The original thresholds, vectorised; ``unknown`` where ``delta_oi`` is NaN."""
    base = np.maximum(np.nan_to_num(oi_prev, nan=0.0), 0.0)
    threshold = np.maximum(10.0, 0.10 * base)
    churn = np.maximum(50.0, 0.50 * base)
    known = np.isfinite(delta_oi)
    with np.errstate(invalid="ignore"):
        return np.select(
            [~known, delta_oi >= threshold, delta_oi <= -threshold, volume >= churn],
            ["unknown", "building", "unwinding", "churn"],
            default="unknown",
        )


# A session's prepared arrays: one entry per column, all the same length.
Arrays = dict[str, np.ndarray]


def _option_type(table: pa.Table) -> np.ndarray:
    raw = pc.utf8_lower(pc.utf8_trim_whitespace(table.column("option_type").cast(pa.string())))
    low = raw.to_numpy(zero_copy_only=False).astype(object)
    out = np.full(len(low), None, dtype=object)  # anything but call/put stays null
    out[np.isin(low, ["c", "call"])] = "call"
    out[np.isin(low, ["p", "put"])] = "put"
    return out


def _prepare(snapshot: pa.Table | pd.DataFrame, what: str) -> tuple[Arrays, np.datetime64, float]:
    table = to_arrow(snapshot)
    if table.num_rows == 0:
        raise StageError(f"the {what} snapshot is empty; flow needs two non-empty sessions")
    missing = [c for c in _SNAPSHOT_NEEDS if c not in table.column_names]
    if missing:
        raise StageError(f"the {what} snapshot is missing column(s) {', '.join(missing)}")
    days = np.unique(arrow_date(table, "as_of"))
    if len(days) != 1 or np.isnat(days[0]):
        raise StageError(f"the {what} snapshot must hold exactly one as_of date, found {len(days)}")
    day = days[0]
    symbols = arrow_str(table, "contract_symbol")
    if pd.isna(symbols).any():
        raise StageError(f"the {what} snapshot of {day} has rows without a contract_symbol")
    codes, uniques = pd.factorize(symbols)
    if len(uniques) != len(symbols):
        repeated = uniques[np.bincount(codes) > 1][:3]
        raise StageError(f"the {what} snapshot of {day} repeats contract(s) {', '.join(repeated)}; de-duplicate it first")
    spots = arrow_float(table, "spot")
    spot = float(spots[np.isfinite(spots)][0]) if np.isfinite(spots).any() else float("nan")
    arrays = {
        "contract_symbol": symbols,
        "expiry": arrow_date(table, "expiry"),
        "option_type": _option_type(table),
        "strike": arrow_float(table, "strike"),
        "oi": arrow_float(table, "open_interest"),
        "volume": arrow_float(table, "volume"),
        "mark": mark_price(arrow_float(table, "bid"), arrow_float(table, "ask"), arrow_float(table, "last")),
        "delta": arrow_float(table, "delta"),
    }
    return arrays, day, spot


def _pair(current: pa.Table | pd.DataFrame, previous: pa.Table | pd.DataFrame) -> Arrays:
    """Per-contract flow arrays for one session pair (see ``contract_flow``)."""
    cur, to_day, spot = _prepare(current, "current")
    prev, from_day, prev_spot = _prepare(previous, "previous")
    if not from_day < to_day:
        raise StageError(f"the previous snapshot ({from_day}) must be before the current one ({to_day})")
    if not np.isfinite(spot):
        spot = prev_spot

    # Outer join on contract_symbol: one code per distinct contract, then each side's row (or -1).
    n_cur = len(cur["contract_symbol"])
    codes, uniques = pd.factorize(np.concatenate([cur["contract_symbol"], prev["contract_symbol"]]))
    cur_row = np.full(len(uniques), -1)
    prev_row = np.full(len(uniques), -1)
    cur_row[codes[:n_cur]] = np.arange(n_cur)
    prev_row[codes[n_cur:]] = np.arange(len(codes) - n_cur)
    in_cur, in_prev = cur_row >= 0, prev_row >= 0

    def side(arrays: Arrays, rows: np.ndarray, column: str) -> np.ndarray:
        return arrays[column][np.maximum(rows, 0)]  # rows of -1 are masked by the caller

    def pick(column: str) -> np.ndarray:
        # This session's value where the contract is listed today, else the previous one's.
        return np.where(in_cur, side(cur, cur_row, column), side(prev, prev_row, column))

    # An absent side means the contract did not exist there: zero open interest, not unknown.
    oi = np.where(in_cur, side(cur, cur_row, "oi"), 0.0)
    oi_prev = np.where(in_prev, side(prev, prev_row, "oi"), 0.0)
    delta_oi = oi - oi_prev
    volume = np.where(in_cur, side(cur, cur_row, "volume"), np.nan)
    mark, delta = pick("mark"), pick("delta")
    n = len(uniques)
    out: Arrays = {
        "contract_symbol": np.asarray(uniques, dtype=object),
        "expiry": pick("expiry").astype("datetime64[D]"),
        "option_type": pick("option_type"),
        "strike": pick("strike"),
        "status": np.select([in_cur & in_prev, in_cur], [STATUS_MATCHED, STATUS_NEW], default=STATUS_DISAPPEARED).astype(object),
        "from_date": np.full(n, from_day, dtype="datetime64[D]"),
        "to_date": np.full(n, to_day, dtype="datetime64[D]"),
        "oi_prev": oi_prev,
        "oi": oi,
        "delta_oi": delta_oi,
        "volume": volume,
        "mark": mark,
        "delta": delta,
        "spot": np.full(n, spot),
        "delta_oi_notional": delta_oi * mark * 100.0,
        "volume_notional": volume * mark * 100.0,
        "delta_notional": delta_oi * delta * spot * 100.0,
        "flow_class": classify_flow(delta_oi, oi_prev, volume).astype(object),
    }
    order = np.lexsort([sort_rank(out[c]) for c in ("contract_symbol", "option_type", "strike", "expiry")])
    return {k: v[order] for k, v in out.items()}


def contract_flow(current: pa.Table | pd.DataFrame, previous: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Per-contract flow from ``previous`` to ``current`` (two snapshots of one underlying).

    Returns a pandas frame, one row per contract in either snapshot, sorted by
    (expiry, strike, option_type, contract_symbol), with ``contract_symbol, expiry,
    option_type, strike, status, from_date, to_date, oi_prev, oi, delta_oi, volume, mark,
    delta, spot, delta_oi_notional, volume_notional, delta_notional, flow_class``.
    Raises ``StageError`` on an empty snapshot, duplicate contracts, a snapshot holding several
    dates, or ``previous`` not strictly before ``current``.
    """
    return pd.DataFrame(_pair(current, previous))


def compute_flow(
    current: pa.Table | pd.DataFrame,
    previous: pa.Table | pd.DataFrame,
    *,
    symbol: str | None = None,
    group_bys: Sequence[str] = FLOW_GROUP_BYS,
) -> pa.Table:
    """Flow rows (``FLOW_SCHEMA``) from the previous session's snapshot to this one's, every grouping."""
    return compute_flow_window([previous, current], symbol=symbol, group_bys=group_bys)


def compute_flow_window(
    snapshots: Sequence[pa.Table | pd.DataFrame],
    *,
    symbol: str | None = None,
    group_bys: Sequence[str] = FLOW_GROUP_BYS,
) -> pa.Table:
    """Net flow over consecutive snapshots (oldest first; ``window_size = len(snapshots) - 1``).

    ``symbol`` defaults to the snapshots' ``underlying``. Rows are ordered by grouping (in
    ``group_bys`` order), then option_type, expiry, strike, contract_symbol.
    """
    if len(snapshots) < 2:
        raise StageError(f"flow needs at least two snapshots, got {len(snapshots)}")
    unknown = [g for g in group_bys if g not in _GROUP_KEYS]
    if unknown:
        raise StageError(f"unknown flow grouping(s) {', '.join(unknown)}; use {', '.join(FLOW_GROUP_BYS)}")
    snapshots = [to_arrow(s) for s in snapshots]
    symbol = symbol or _underlying(snapshots[-1])
    each = [_pair(snapshots[i], snapshots[i - 1]) for i in range(1, len(snapshots))]
    pairs = {k: np.concatenate([p[k] for p in each]) for k in each[0]}
    start, end = pairs["from_date"].min(), pairs["to_date"].max()
    pairs["oi_start"] = np.where(pairs["from_date"] == start, pairs["oi_prev"], np.nan)
    pairs["oi_end"] = np.where(pairs["to_date"] == end, pairs["oi"], np.nan)

    parts = [_aggregate(pairs, group_by) for group_by in group_bys]
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    rows = len(out.get("row_key", ()))
    out |= {
        "symbol": np.full(rows, symbol, dtype=object),
        "as_of": np.full(rows, end, dtype="datetime64[D]"),
        "from_date": np.full(rows, start, dtype="datetime64[D]"),
        "to_date": np.full(rows, end, dtype="datetime64[D]"),
        "window_size": np.full(rows, len(snapshots) - 1, dtype=np.int64),
    }
    return _to_flow_table(out, rows)


def _underlying(table: pa.Table) -> str:
    names = {str(n).upper() for n in arrow_str(table, "underlying") if n is not None}
    if len(names) != 1:
        raise StageError(f"cannot tell the flow's symbol: the snapshot names {len(names)} underlyings; pass symbol=")
    return names.pop()


def _aggregate(pairs: Arrays, group_by: str) -> Arrays:
    keys = _GROUP_KEYS[group_by]
    # Group codes combined in output sort order, so np.unique also sorts the groups (nulls last).
    combined = np.zeros(len(pairs["contract_symbol"]), dtype=np.int64)
    for key in (c for c in ("option_type", "expiry", "strike", "contract_symbol") if c in keys):
        codes, uniques = pd.factorize(pairs[key], sort=True, use_na_sentinel=False)
        combined = combined * len(uniques) + codes
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    size = len(first)

    def total(values: np.ndarray) -> np.ndarray:
        known = np.isfinite(values)
        sums = np.bincount(inverse, weights=np.where(known, values, 0.0), minlength=size)
        return np.where(np.bincount(inverse, weights=known, minlength=size) > 0, sums, np.nan)  # min_count=1

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=mask, minlength=size).astype(np.int64)

    contract_codes = pd.factorize(pairs["contract_symbol"])[0].astype(np.int64)
    width = int(contract_codes.max()) + 1
    distinct = np.unique(inverse.astype(np.int64) * width + contract_codes)
    status = pairs["status"]
    out: Arrays = {column: total(pairs[column]) for column in (*_SUMMED, "oi_start", "oi_end")}
    n_pairs = np.bincount(inverse, minlength=size).astype(np.int64)
    n_new, n_gone = count(status == STATUS_NEW), count(status == STATUS_DISAPPEARED)
    n_matched = count(status == STATUS_MATCHED)
    out |= {
        "n_pairs": n_pairs,
        "n_contracts": np.bincount(distinct // width, minlength=size).astype(np.int64),
        "n_new": n_new,
        "n_disappeared": n_gone,
        "status": np.select([n_matched == n_pairs, n_new == n_pairs, n_gone == n_pairs],
                            [STATUS_MATCHED, STATUS_NEW, STATUS_DISAPPEARED], default=STATUS_MIXED).astype(object),
        "flow_class": classify_flow(out["delta_oi"], out["oi_start"], out["volume"]).astype(object),
        "group_by": np.full(size, group_by, dtype=object),
    }
    blanks = {"contract_symbol": np.full(size, None, dtype=object),
              "expiry": np.full(size, np.datetime64("NaT"), dtype="datetime64[D]"),
              "option_type": np.full(size, None, dtype=object),
              "strike": np.full(size, np.nan)}
    for column, blank in blanks.items():
        out[column] = pairs[column][first] if column in keys else blank
    out["row_key"] = row_keys(out, group_by)
    return out


def _strike_text(strike: np.ndarray) -> np.ndarray:
    # Format each distinct strike once (a chain has tens of strikes, not thousands).
    distinct, inverse = np.unique(strike, return_inverse=True)
    finite = np.isfinite(distinct)
    text = np.char.mod("%.8f", np.where(finite, distinct, 0.0))
    text = np.char.rstrip(np.char.rstrip(text, "0"), ".")
    return np.where(finite, text, "").astype(object)[inverse.reshape(-1)]


def row_keys(rows: Mapping[str, Any] | pd.DataFrame, group_by: str) -> np.ndarray:
    """The original's ``row_key`` for rows of one partition, in their order (see the module doc)."""
    parts: list[np.ndarray] = []
    for column in _GROUP_KEYS[group_by]:
        values = np.asarray(rows[column])
        if column == "strike":
            parts.append(_strike_text(values.astype(float)))
        elif column == "expiry":
            days = values.astype("datetime64[D]")
            parts.append(np.where(np.isnat(days), "", np.datetime_as_string(days, unit="D")).astype(object))
        else:
            missing = pd.isna(values)
            parts.append(np.where(missing, "", values.astype(str) if values.dtype != object else values).astype(object))
    key = np.full(len(parts[0]), "", dtype=object)
    for part in parts:
        key = np.where(part == "", key, np.where(key == "", part, key + "|" + part))
    empty = np.flatnonzero(key == "")
    if empty.size:
        key[empty] = np.char.mod("row-%06d", empty).astype(object)
    codes, uniques = pd.factorize(key)
    if len(uniques) == len(key):
        return key
    # Repeats (possible only with null key parts): the n-th repeat of a key gets "|n".
    repeat = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
    again = np.flatnonzero(repeat > 0)
    key[again] = key[again] + np.char.mod("|%d", repeat[again]).astype(object)
    return key


def _to_flow_table(columns: Arrays, rows: int) -> pa.Table:
    arrays = []
    for field in FLOW_SCHEMA:
        values = columns.get(field.name, np.full(rows, None, dtype=object))
        if pa.types.is_floating(field.type):
            arrays.append(pa.array(values, mask=~np.isfinite(values), type=field.type))
        elif pa.types.is_integer(field.type):
            arrays.append(pa.array(values.astype(np.int64), type=field.type))
        elif pa.types.is_date(field.type):
            arrays.append(pa.array(values, mask=np.isnat(values), type=field.type))
        else:
            arrays.append(pa.array(values, type=field.type, from_pandas=True))  # None -> null
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


__all__ = [
    "FLOW_CLASSES",
    "FLOW_GROUP_BYS",
    "FLOW_PARTITION_COLUMNS",
    "FLOW_SCHEMA",
    "GROUP_CONTRACT",
    "GROUP_EXPIRY",
    "GROUP_EXPIRY_STRIKE",
    "GROUP_STRIKE",
    "STATUS_DISAPPEARED",
    "STATUS_MATCHED",
    "STATUS_MIXED",
    "STATUS_NEW",
    "classify_flow",
    "compute_flow",
    "compute_flow_window",
    "contract_flow",
    "mark_price",
    "row_keys",
]
