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
``pyarrow.Table`` in ``FLOW_SCHEMA``. Everything is vectorised (one merge, numpy, one groupby
per grouping).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ledger.errors import StageError
from stages.analytics._tables import dates, num, require_columns, to_pandas
from stages.analytics.snapshot import normalize_option_type

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


def _session(frame: pd.DataFrame, what: str) -> np.datetime64:
    days = np.unique(dates(frame, "as_of"))
    if len(days) != 1 or np.isnat(days[0]):
        raise StageError(f"the {what} snapshot must hold exactly one as_of date, found {len(days)}")
    return days[0]


def _prepare(snapshot: pa.Table | pd.DataFrame, what: str) -> tuple[pd.DataFrame, np.datetime64, float]:
    frame = to_pandas(snapshot)
    if frame.empty:
        raise StageError(f"the {what} snapshot is empty; flow needs two non-empty sessions")
    require_columns(frame, _SNAPSHOT_NEEDS, f"the {what} snapshot")
    day = _session(frame, what)
    symbols = frame["contract_symbol"].astype("string")
    if symbols.isna().any():
        raise StageError(f"the {what} snapshot of {day} has rows without a contract_symbol")
    if symbols.duplicated().any():
        sample = symbols[symbols.duplicated()].head(3).tolist()
        raise StageError(f"the {what} snapshot of {day} repeats contract(s) {', '.join(sample)}; de-duplicate it first")
    spots = num(frame, "spot")
    spot = float(spots[np.isfinite(spots)][0]) if np.isfinite(spots).any() else float("nan")
    bid, ask, last = num(frame, "bid"), num(frame, "ask"), num(frame, "last")
    prepared = pd.DataFrame(
        {
            "contract_symbol": symbols.to_numpy(dtype=object),
            "expiry": dates(frame, "expiry"),
            "option_type": normalize_option_type(frame["option_type"]).to_numpy(dtype=object),
            "strike": num(frame, "strike"),
            "oi": num(frame, "open_interest"),
            "volume": num(frame, "volume"),
            "mark": mark_price(bid, ask, last),
            "delta": num(frame, "delta"),
        }
    )
    return prepared, day, spot


def contract_flow(current: pa.Table | pd.DataFrame, previous: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Per-contract flow from ``previous`` to ``current`` (two snapshots of one underlying).

    Returns a pandas frame, one row per contract in either snapshot, sorted by
    (expiry, strike, option_type, contract_symbol), with ``contract_symbol, expiry,
    option_type, strike, status, from_date, to_date, oi_prev, oi, delta_oi, volume, mark,
    delta, spot, delta_oi_notional, volume_notional, delta_notional, flow_class``.
    Raises ``StageError`` on an empty snapshot, duplicate contracts, a snapshot holding several
    dates, or ``previous`` not strictly before ``current``.
    """
    cur, to_day, spot = _prepare(current, "current")
    prev, from_day, prev_spot = _prepare(previous, "previous")
    if not from_day < to_day:
        raise StageError(f"the previous snapshot ({from_day}) must be before the current one ({to_day})")
    if not np.isfinite(spot):
        spot = prev_spot

    m = cur.merge(prev, on="contract_symbol", how="outer", suffixes=("", "_p"), indicator=True, sort=False)
    side = m["_merge"].to_numpy()
    in_cur = side != "right_only"
    in_prev = side != "left_only"

    def pick(column: str) -> np.ndarray:
        # This session's value where the contract is listed today, else the previous one's.
        return np.where(in_cur, m[column].to_numpy(), m[f"{column}_p"].to_numpy())

    # An absent side means the contract did not exist there: zero open interest, not unknown.
    oi = np.where(in_cur, m["oi"].to_numpy(dtype=float), 0.0)
    oi_prev = np.where(in_prev, m["oi_p"].to_numpy(dtype=float), 0.0)
    delta_oi = oi - oi_prev
    volume = np.where(in_cur, m["volume"].to_numpy(dtype=float), np.nan)
    mark = pick("mark").astype(float)
    delta = pick("delta").astype(float)

    out = pd.DataFrame(
        {
            "contract_symbol": m["contract_symbol"].to_numpy(dtype=object),
            "expiry": pick("expiry").astype("datetime64[D]"),
            "option_type": pick("option_type"),
            "strike": pick("strike").astype(float),
            "status": np.select([in_cur & in_prev, in_cur], [STATUS_MATCHED, STATUS_NEW], default=STATUS_DISAPPEARED),
            "from_date": from_day,
            "to_date": to_day,
            "oi_prev": oi_prev,
            "oi": oi,
            "delta_oi": delta_oi,
            "volume": volume,
            "mark": mark,
            "delta": delta,
            "spot": spot,
            "delta_oi_notional": delta_oi * mark * 100.0,
            "volume_notional": volume * mark * 100.0,
            "delta_notional": delta_oi * delta * spot * 100.0,
            "flow_class": classify_flow(delta_oi, oi_prev, volume),
        }
    )
    out = out.sort_values(["expiry", "strike", "option_type", "contract_symbol"], kind="mergesort", na_position="last")
    return out.reset_index(drop=True)


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
    symbol = symbol or _underlying(snapshots[-1])
    pairs = pd.concat(
        [contract_flow(snapshots[i], snapshots[i - 1]) for i in range(1, len(snapshots))], ignore_index=True
    )
    start, end = pairs["from_date"].min(), pairs["to_date"].max()
    pairs["oi_start"] = np.where(pairs["from_date"] == start, pairs["oi_prev"], np.nan)
    pairs["oi_end"] = np.where(pairs["to_date"] == end, pairs["oi"], np.nan)
    pairs["is_new"] = (pairs["status"] == STATUS_NEW).astype(np.int64)
    pairs["is_gone"] = (pairs["status"] == STATUS_DISAPPEARED).astype(np.int64)
    pairs["is_matched"] = (pairs["status"] == STATUS_MATCHED).astype(np.int64)

    frames = [_aggregate(pairs, group_by) for group_by in group_bys]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FLOW_SCHEMA.names)
    out["symbol"] = symbol
    out["as_of"] = end
    out["from_date"] = start
    out["to_date"] = end
    out["window_size"] = len(snapshots) - 1
    return _to_flow_table(out)


def _underlying(snapshot: pa.Table | pd.DataFrame) -> str:
    frame = to_pandas(snapshot)
    names = frame["underlying"].dropna().astype(str).str.upper().unique() if "underlying" in frame else []
    if len(names) != 1:
        raise StageError(f"cannot tell the flow's symbol: the snapshot names {len(names)} underlyings; pass symbol=")
    return str(names[0])


def _aggregate(pairs: pd.DataFrame, group_by: str) -> pd.DataFrame:
    keys = list(_GROUP_KEYS[group_by])
    grouped = pairs.groupby(keys, dropna=False, sort=False)
    sums = grouped[[*_SUMMED, "oi_start", "oi_end"]].sum(min_count=1)
    counts = grouped[["is_new", "is_gone", "is_matched"]].sum()
    agg = sums.join(counts)
    agg["n_pairs"] = grouped.size()
    agg["n_contracts"] = grouped["contract_symbol"].nunique(dropna=False)
    agg = agg.reset_index()
    n = agg["n_pairs"].to_numpy()
    agg["status"] = np.select(
        [agg["is_matched"].to_numpy() == n, agg["is_new"].to_numpy() == n, agg["is_gone"].to_numpy() == n],
        [STATUS_MATCHED, STATUS_NEW, STATUS_DISAPPEARED],
        default=STATUS_MIXED,
    )
    agg["flow_class"] = classify_flow(
        agg["delta_oi"].to_numpy(dtype=float), agg["oi_start"].to_numpy(dtype=float), agg["volume"].to_numpy(dtype=float)
    )
    agg = agg.rename(columns={"is_new": "n_new", "is_gone": "n_disappeared"}).drop(columns="is_matched")
    for column in ("contract_symbol", "expiry", "strike"):
        if column not in agg:
            agg[column] = None if column == "contract_symbol" else (np.nan if column == "strike" else np.datetime64("NaT"))
    agg = agg.sort_values(
        ["option_type", "expiry", "strike", "contract_symbol"], kind="mergesort", na_position="last"
    ).reset_index(drop=True)
    agg["group_by"] = group_by
    agg["row_key"] = row_keys(agg, group_by)
    return agg


def _strike_text(strike: np.ndarray) -> np.ndarray:
    finite = np.isfinite(strike)
    text = np.char.mod("%.8f", np.where(finite, strike, 0.0))
    text = np.char.rstrip(np.char.rstrip(text, "0"), ".")
    return np.where(finite, text, "").astype(object)


def _text(values: pd.Series) -> np.ndarray:
    return values.astype("string").fillna("").to_numpy(dtype=object)


def row_keys(rows: pd.DataFrame, group_by: str) -> np.ndarray:
    """The original's ``row_key`` for rows of one partition, in their order (see the module doc)."""
    parts: list[np.ndarray] = []
    for column in _GROUP_KEYS[group_by]:
        if column == "strike":
            parts.append(_strike_text(rows["strike"].to_numpy(dtype=float)))
        elif column == "expiry":
            days = rows["expiry"].to_numpy(dtype="datetime64[D]")
            parts.append(np.where(np.isnat(days), "", np.datetime_as_string(days, unit="D")).astype(object))
        else:
            parts.append(_text(rows[column]))
    key = np.full(len(rows), "", dtype=object)
    for part in parts:
        key = np.where(part == "", key, np.where(key == "", part, key + "|" + part))
    fallback = np.char.mod("row-%06d", np.arange(len(rows))).astype(object)
    key = np.where(key == "", fallback, key)
    repeat = pd.Series(key).groupby(key, sort=False).cumcount().to_numpy()
    suffix = np.char.mod("|%d", repeat).astype(object)
    return np.where(repeat > 0, key + suffix, key)


def _to_flow_table(frame: pd.DataFrame) -> pa.Table:
    arrays = []
    for field in FLOW_SCHEMA:
        column = frame[field.name]
        if pa.types.is_floating(field.type):
            values = column.to_numpy(dtype=float)
            arrays.append(pa.array(values, mask=~np.isfinite(values), type=field.type))
        elif pa.types.is_integer(field.type):
            arrays.append(pa.array(column.to_numpy(dtype=np.int64), type=field.type))
        elif pa.types.is_date(field.type):
            days = np.asarray(column.to_numpy(), dtype="datetime64[D]")
            arrays.append(pa.array(days, mask=np.isnat(days), type=field.type))
        else:
            # from_pandas: NaN / None / pd.NA all become null.
            arrays.append(pa.array(column.to_numpy(dtype=object), type=field.type, from_pandas=True))
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
