"""Open-interest and volume flow between sessions (the ``options_flow`` asset).

The original tool's formulas (reference 2.4), with its defects fixed:

- **Outer join** on ``contract_symbol``, every contract of either snapshot gets a status:

  ===============  ======================================================================  ===========
  ``matched``      in both snapshots: ``delta_oi = oi - oi_prev``                          classified
  ``new``          listed since: ``delta_oi = oi`` (a listing starts at zero)               classified
  ``expired``      in the earlier snapshot only, and its expiry is before the later         ``expired``
                   session: its open interest *rolled off*; that is not flow
  ``disappeared``  in the earlier snapshot only although it has not expired (a provider     ``unknown``
                   gap, a delisting): its change is unknown
  ===============  ======================================================================  ===========

  Expired and disappeared contracts keep a ``contract`` row (``oi_start`` = their last open
  interest) but their ``delta_oi`` and notionals are null, so they are in no grouped row and no
  total: ``strike``, ``expiry`` and ``expiry-strike`` rows are built from the live contracts
  (matched and new) only. What rolled off is reported apart: ``n_expired``, ``expired_oi`` and
  ``expired_notional`` (= open interest x last mark x 100) on the contract rows and on the
  per-type ``total`` rows. The original joined on today's contracts and dropped vanished ones.
- ``mark`` = mid if bid > 0 and ask > 0, else last > 0, else ask > 0, else bid > 0; taken from
  this session's quote, or the earlier session's for a contract that is gone (its last known
  price). ``delta`` likewise. ``spot`` is this session's.
- ``delta_oi_notional = delta_oi*mark*100``, ``volume_notional = volume*mark*100``,
  ``delta_notional = delta_oi*delta*spot*100``. ``volume`` is this session's.
- ``flow_class``: ``threshold = max(10, 0.10*max(oi_prev, 0))``; ``delta_oi >= threshold`` is
  ``building``, ``<= -threshold`` ``unwinding``; else ``volume >= max(50, 0.50*max(oi_prev, 0))``
  is ``churn``; else, or when ``delta_oi`` is unknown, ``unknown``; ``expired`` for an expired
  contract. For aggregated rows the same rule is applied to the group's sums, with ``oi_prev`` =
  the group's live open interest at the start of the window (``oi_start``): for a one-session
  window grouped by contract this is exactly the per-contract class.
- The two snapshots need not be consecutive sessions: after a missed session the flow is taken
  from the latest earlier snapshot (``from_date``); ``gap_sessions`` says how many sessions the
  pair spans (1 normally).
- No rows are dropped for null keys (the original's groupby did that silently).

Groupings (``group_by``): ``contract``, ``strike``, ``expiry``, ``expiry-strike`` as in the
original, plus ``total`` (one row per option type: the header's calls and puts ΔOI$, and what
expired). Each sums the per-contract rows of every session pair in the window. ``n_pairs`` is the
number of (contract, session pair) rows aggregated: 1 for a contract over a one-session window,
the number of live contracts at the strike for ``strike`` grouping, times the number of pairs
for wider windows. ``n_contracts`` counts distinct contracts. ``row_key`` follows the original:
the non-empty ``|``-joined parts ``contract_symbol|expiry|option_type|strike`` (contract),
``option_type|strike`` (strike), ``option_type|expiry`` (expiry),
``option_type|expiry|strike`` (expiry-strike), ``option_type`` (total), strike as ``%.8f`` with
trailing zeros trimmed, ``row-000123`` when every part is empty and ``|1``, ``|2``... on
repeats, so it is unique within a partition ``(symbol, from_date, to_date, window_size, group_by)``.

Inputs are snapshot tables (``SNAPSHOT_SCHEMA``; ``pyarrow.Table`` or pandas); ``contract_flow``
returns the per-contract pandas frame, ``compute_flow`` / ``compute_flow_window`` a
``pyarrow.Table`` in ``FLOW_SCHEMA``. Everything is vectorised numpy over Arrow columns: the
join is one ``pd.factorize`` of the contract symbols, each grouping one ``np.unique`` of
combined key codes and ``np.bincount`` sums (``tests/bench/bench_flow.py`` has the figures).
No Python string is handled per row: each key column's sort codes are computed once per window
(text ranked by Arrow), statuses and classes stay small integer codes until the output, and the
output's text columns (row keys included) are built in Arrow.
Windows of stored rows are netted on read (``stages.flow_view``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import StageError
from stages.analytics._tables import arrow_date, arrow_float, arrow_str, to_arrow

GROUP_CONTRACT = "contract"
GROUP_STRIKE = "strike"
GROUP_EXPIRY = "expiry"
GROUP_EXPIRY_STRIKE = "expiry-strike"
GROUP_TOTAL = "total"
#: The groupings a user picks from (``flow --group-by``).
VIEW_GROUP_BYS = (GROUP_CONTRACT, GROUP_STRIKE, GROUP_EXPIRY, GROUP_EXPIRY_STRIKE)
#: Every grouping stored per session pair: the views and the per-type totals.
FLOW_GROUP_BYS = (*VIEW_GROUP_BYS, GROUP_TOTAL)

_GROUP_KEYS: dict[str, tuple[str, ...]] = {
    GROUP_CONTRACT: ("contract_symbol", "expiry", "option_type", "strike"),
    GROUP_STRIKE: ("option_type", "strike"),
    GROUP_EXPIRY: ("option_type", "expiry"),
    GROUP_EXPIRY_STRIKE: ("option_type", "expiry", "strike"),
    GROUP_TOTAL: ("option_type",),
}
# Groupings built from the live contracts only (the others keep a row for every contract or type).
_LIVE_ONLY = frozenset({GROUP_STRIKE, GROUP_EXPIRY, GROUP_EXPIRY_STRIKE})

STATUS_MATCHED, STATUS_NEW, STATUS_DISAPPEARED, STATUS_MIXED = "matched", "new", "disappeared", "mixed"
STATUS_EXPIRED = "expired"
#: The statuses whose change is flow (the others are in no grouped row and no total).
LIVE_STATUSES = (STATUS_MATCHED, STATUS_NEW)
CLASS_EXPIRED = "expired"
FLOW_CLASSES = ("building", "unwinding", "churn", "unknown", CLASS_EXPIRED)
# Statuses and classes are small integer codes inside this module (an index into these tuples),
# text only in the output: comparing and building object arrays of strings costs per element.
_STATUSES = (STATUS_MATCHED, STATUS_NEW, STATUS_EXPIRED, STATUS_DISAPPEARED, STATUS_MIXED)
_MATCHED, _NEW, _EXPIRED, _DISAPPEARED, _MIXED = range(len(_STATUSES))
_BUILDING, _UNWINDING, _CHURN, _UNKNOWN, _CLASS_EXPIRED = range(len(FLOW_CLASSES))
#: The classification's constants (reference 2.4): building/unwinding when |ΔOI| >=
#: max(OI_MIN, OI_FACTOR * previous OI); else churn when volume >= max(VOLUME_MIN, VOLUME_FACTOR * previous OI).
OI_MIN, OI_FACTOR, VOLUME_MIN, VOLUME_FACTOR = 10.0, 0.10, 50.0, 0.50

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
        pa.field("n_expired", pa.int64(), nullable=False),
        pa.field("expired_oi", pa.float64()),
        pa.field("expired_notional", pa.float64()),
        pa.field("gap_sessions", pa.int32(), nullable=False),
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
    return np.asarray(FLOW_CLASSES)[_class_codes(delta_oi, oi_prev, volume)]


def _class_codes(delta_oi: np.ndarray, oi_prev: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """``classify_flow`` as indexes into ``FLOW_CLASSES``."""
    base = np.maximum(np.nan_to_num(oi_prev, nan=0.0), 0.0)
    threshold = np.maximum(OI_MIN, OI_FACTOR * base)
    churn = np.maximum(VOLUME_MIN, VOLUME_FACTOR * base)
    known = np.isfinite(delta_oi)
    with np.errstate(invalid="ignore"):
        return np.select(
            [~known, delta_oi >= threshold, delta_oi <= -threshold, volume >= churn],
            [_UNKNOWN, _BUILDING, _UNWINDING, _CHURN],
            default=_UNKNOWN,
        )


# A session's prepared arrays: one entry per column, all the same length.
Arrays = dict[str, np.ndarray]


def _option_type(table: pa.Table) -> np.ndarray:
    raw = pc.utf8_lower(pc.utf8_trim_whitespace(table.column("option_type").cast(pa.string())))
    out = np.full(table.num_rows, None, dtype=object)  # anything but call/put stays null
    for name, spellings in (("call", ["c", "call"]), ("put", ["p", "put"])):
        out[pc.is_in(raw, value_set=pa.array(spellings)).to_numpy(zero_copy_only=False)] = name
    return out


def _prepare(snapshot: pa.Table | pd.DataFrame, what: str) -> tuple[Arrays, np.datetime64, float]:
    table = to_arrow(snapshot)
    if table.num_rows == 0:
        raise StageError(f"the {what} snapshot is empty; flow needs two non-empty sessions")
    missing = [c for c in _SNAPSHOT_NEEDS if c not in table.column_names]
    if missing:
        raise StageError(f"the {what} snapshot is missing column(s) {', '.join(missing)}")
    days = pc.unique(table.column("as_of").cast(pa.date32()))  # a missing date counts as one more
    if len(days) != 1 or days.null_count:
        raise StageError(f"the {what} snapshot must hold exactly one as_of date, found {len(days)}")
    day = days.to_numpy(zero_copy_only=False).astype("datetime64[D]")[0]
    column = table.column("contract_symbol").cast(pa.string())
    if column.null_count:
        raise StageError(f"the {what} snapshot of {day} has rows without a contract_symbol")
    symbols = column.to_numpy(zero_copy_only=False).astype(object, copy=False)
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


def _pair(current: pa.Table | pd.DataFrame, previous: pa.Table | pd.DataFrame, gap_sessions: int | None = None) -> Arrays:
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

    expiry = pick("expiry").astype("datetime64[D]")
    gone = ~in_cur
    # Gone and past its expiry: it expired. Gone before its expiry (or with none known): vanished.
    expired = gone & (expiry < to_day)
    # A new listing starts at zero open interest; a contract that is gone has no change we know of
    # (an expired one's open interest rolled off: reported apart, in expired_oi).
    oi = np.where(in_cur, side(cur, cur_row, "oi"), np.where(expired, 0.0, np.nan))
    oi_prev = np.where(in_prev, side(prev, prev_row, "oi"), 0.0)
    delta_oi = np.where(gone, np.nan, oi - oi_prev)
    volume = np.where(in_cur, side(cur, cur_row, "volume"), np.nan)
    mark, delta = pick("mark"), pick("delta")
    n = len(uniques)
    status = np.select([in_cur & in_prev, in_cur, expired], [_MATCHED, _NEW, _EXPIRED], default=_DISAPPEARED)
    flow_class = _class_codes(delta_oi, oi_prev, volume)
    flow_class[expired] = _CLASS_EXPIRED
    if gap_sessions is None:  # weekdays between the two sessions (the job passes the calendar's count)
        gap_sessions = max(int(np.busday_count(from_day, to_day)), 1)
    out: Arrays = {
        "contract_symbol": np.asarray(uniques, dtype=object),
        "expiry": expiry,
        "option_type": pick("option_type"),
        "strike": pick("strike"),
        "status": status,
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
        "flow_class": flow_class,
        "expired_oi": np.where(expired, oi_prev, np.nan),
        "expired_notional": np.where(expired, oi_prev * mark * 100.0, np.nan),
        "gap_sessions": np.full(n, gap_sessions, dtype=np.int64),
    }
    order = np.lexsort([_sort_codes(out[c])[0] for c in ("contract_symbol", "option_type", "strike", "expiry")])
    return {k: v[order] for k, v in out.items()}


def contract_flow(current: pa.Table | pd.DataFrame, previous: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Per-contract flow from ``previous`` to ``current`` (two snapshots of one underlying).

    Returns a pandas frame, one row per contract in either snapshot, sorted by
    (expiry, strike, option_type, contract_symbol), with ``contract_symbol, expiry,
    option_type, strike, status, from_date, to_date, oi_prev, oi, delta_oi, volume, mark,
    delta, spot, delta_oi_notional, volume_notional, delta_notional, flow_class, expired_oi,
    expired_notional, gap_sessions``.
    Raises ``StageError`` on an empty snapshot, duplicate contracts, a snapshot holding several
    dates, or ``previous`` not strictly before ``current``.
    """
    arrays = _pair(current, previous)
    arrays["status"] = np.asarray(_STATUSES, dtype=object)[arrays["status"]]
    arrays["flow_class"] = np.asarray(FLOW_CLASSES, dtype=object)[arrays["flow_class"]]
    return pd.DataFrame(arrays)


def compute_flow(
    current: pa.Table | pd.DataFrame,
    previous: pa.Table | pd.DataFrame,
    *,
    symbol: str | None = None,
    group_bys: Sequence[str] = FLOW_GROUP_BYS,
    gap_sessions: int | None = None,
) -> pa.Table:
    """Flow rows (``FLOW_SCHEMA``) from an earlier session's snapshot to this one's, every grouping.

    ``gap_sessions``: the sessions the pair spans (default: the weekdays between the two dates)."""
    return compute_flow_window([previous, current], symbol=symbol, group_bys=group_bys,
                               gap_sessions=None if gap_sessions is None else [gap_sessions])


def compute_flow_window(
    snapshots: Sequence[pa.Table | pd.DataFrame],
    *,
    symbol: str | None = None,
    group_bys: Sequence[str] = FLOW_GROUP_BYS,
    gap_sessions: Sequence[int] | None = None,
) -> pa.Table:
    """Net flow over successive snapshots (oldest first; ``window_size = len(snapshots) - 1``).

    ``symbol`` defaults to the snapshots' ``underlying``; ``gap_sessions`` gives each pair's span
    in sessions (default: weekdays). Rows are ordered by grouping (in ``group_bys`` order), then
    option_type, expiry, strike, contract_symbol.
    """
    if len(snapshots) < 2:
        raise StageError(f"flow needs at least two snapshots, got {len(snapshots)}")
    unknown = [g for g in group_bys if g not in _GROUP_KEYS]
    if unknown:
        raise StageError(f"unknown flow grouping(s) {', '.join(unknown)}; use {', '.join(FLOW_GROUP_BYS)}")
    snapshots = [to_arrow(s) for s in snapshots]
    symbol = symbol or _underlying(snapshots[-1])
    if gap_sessions is not None and len(gap_sessions) != len(snapshots) - 1:
        raise StageError(f"gap_sessions has {len(gap_sessions)} values for {len(snapshots) - 1} session pairs")
    each = [_pair(snapshots[i], snapshots[i - 1], None if gap_sessions is None else gap_sessions[i - 1])
            for i in range(1, len(snapshots))]
    pairs = {k: np.concatenate([p[k] for p in each]) for k in each[0]}
    start, end = pairs["from_date"].min(), pairs["to_date"].max()
    span = int(sum(int(p["gap_sessions"][0]) for p in each if len(p["gap_sessions"])))
    pairs["oi_start"] = np.where(pairs["from_date"] == start, pairs["oi_prev"], np.nan)
    pairs["oi_end"] = np.where(pairs["to_date"] == end, pairs["oi"], np.nan)

    # Each key column's sort codes, once for every grouping (the live subset keeps their order).
    widths: dict[str, int] = {}
    for key in {k for g in group_bys for k in _GROUP_KEYS[g]}:
        pairs[_code(key)], widths[key] = _sort_codes(pairs[key])

    single = len(each) == 1  # one pair: every contract is one row, so n_contracts = n_pairs
    live_pairs: Arrays | None = None
    if any(g in _LIVE_ONLY for g in group_bys):  # expired and vanished contracts are in no grouped row
        status = pairs["status"]
        live = (status == _MATCHED) | (status == _NEW)
        live_pairs = pairs if live.all() else {k: v[live] for k, v in pairs.items()}
    parts = [_aggregate(live_pairs if live_pairs is not None and g in _LIVE_ONLY else pairs, g, widths, single)
             for g in group_bys]
    out = {k: _concat([p[k] for p in parts]) for k in parts[0]} if parts else {}
    rows = len(out.get("row_key", ()))
    out |= {
        "symbol": pa.repeat(pa.scalar(symbol, pa.string()), rows),
        "as_of": np.full(rows, end, dtype="datetime64[D]"),
        "from_date": np.full(rows, start, dtype="datetime64[D]"),
        "to_date": np.full(rows, end, dtype="datetime64[D]"),
        "window_size": np.full(rows, len(snapshots) - 1, dtype=np.int64),
        "gap_sessions": np.full(rows, span, dtype=np.int64),
    }
    return _to_flow_table(out, rows)


def _sort_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes that sort like ``values`` (0 for the least, missing last) and how many distinct
    values there are. Text is ranked in Arrow: numpy sorts an object array by Python comparisons."""
    if values.dtype != object:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=False)
        return codes, len(uniques)
    if not len(values):
        return np.zeros(0, np.int64), 0
    ranks = pc.rank(pa.array(values, pa.string(), from_pandas=True), tiebreaker="dense")  # 1.., nulls last
    codes = ranks.to_numpy().astype(np.int64) - 1
    return codes, int(codes.max()) + 1


def _underlying(table: pa.Table) -> str:
    names = {str(n).upper() for n in arrow_str(table, "underlying") if n is not None}
    if len(names) != 1:
        raise StageError(f"cannot tell the flow's symbol: the snapshot names {len(names)} underlyings; pass symbol=")
    return names.pop()


def _text(vocabulary: Sequence[str], codes: np.ndarray) -> pa.Array:
    """Codes as the text they stand for (an Arrow string array)."""
    return pa.array(vocabulary, pa.string()).take(codes)


def _code(column: str) -> str:
    return f"{column}:code"


def _aggregate(pairs: Arrays, group_by: str, widths: Mapping[str, int], single_pair: bool = False) -> Arrays:
    """One grouping's rows from the per-contract rows ``pairs`` (for the groupings by strike and
    expiry, the caller passes the live contracts only), which hold each key column's sort codes
    (``_code(column)``, ``widths[column]`` distinct values)."""
    keys = _GROUP_KEYS[group_by]
    status = pairs["status"]
    # Group codes combined in output sort order, so np.unique also sorts the groups (nulls last).
    combined = np.zeros(len(pairs["contract_symbol"]), dtype=np.int64)
    for key in (c for c in ("option_type", "expiry", "strike", "contract_symbol") if c in keys):
        combined = combined * widths[key] + pairs[_code(key)]
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    size = len(first)

    def total(values: np.ndarray) -> np.ndarray:
        known = np.isfinite(values)
        sums = np.bincount(inverse, weights=np.where(known, values, 0.0), minlength=size)
        return np.where(np.bincount(inverse, weights=known, minlength=size) > 0, sums, np.nan)  # min_count=1

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=mask, minlength=size).astype(np.int64)

    if group_by == GROUP_CONTRACT or size == 0:  # the key holds the contract symbol (never null)
        n_contracts = np.ones(size, np.int64)
    elif single_pair:
        n_contracts = np.bincount(inverse, minlength=size).astype(np.int64)
    else:
        contract_codes = pd.factorize(pairs["contract_symbol"])[0].astype(np.int64)
        width = int(contract_codes.max()) + 1
        distinct = np.unique(inverse.astype(np.int64) * width + contract_codes)
        n_contracts = np.bincount(distinct // width, minlength=size).astype(np.int64)
    out: Arrays = {column: total(pairs[column]) for column in (*_SUMMED, "expired_oi", "expired_notional")}
    if group_by == GROUP_TOTAL:  # the threshold's base is the live open interest
        live = (status == _MATCHED) | (status == _NEW)
        out["oi_start"] = total(np.where(live, pairs["oi_start"], np.nan))
        out["oi_end"] = total(np.where(live, pairs["oi_end"], np.nan))
    else:
        out["oi_start"], out["oi_end"] = total(pairs["oi_start"]), total(pairs["oi_end"])
    n_pairs = np.bincount(inverse, minlength=size).astype(np.int64)
    n_new, n_gone = count(status == _NEW), count(status == _DISAPPEARED)
    n_matched, n_expired = count(status == _MATCHED), count(status == _EXPIRED)
    flow_class = _class_codes(out["delta_oi"], out["oi_start"], out["volume"])
    flow_class[n_expired == n_pairs] = _CLASS_EXPIRED
    out |= {
        "n_pairs": n_pairs,
        "n_contracts": n_contracts,
        "n_new": n_new,
        "n_disappeared": n_gone,
        "n_expired": n_expired,
        "status": _text(_STATUSES, np.select([n_matched == n_pairs, n_new == n_pairs, n_gone == n_pairs,
                                              n_expired == n_pairs], [_MATCHED, _NEW, _DISAPPEARED, _EXPIRED],
                                             default=_MIXED)),
        "flow_class": _text(FLOW_CLASSES, flow_class),
        "group_by": pa.repeat(pa.scalar(group_by, pa.string()), size),
    }
    blanks = {"contract_symbol": np.full(size, None, dtype=object),
              "expiry": np.full(size, np.datetime64("NaT"), dtype="datetime64[D]"),
              "option_type": np.full(size, None, dtype=object),
              "strike": np.full(size, np.nan)}
    for column, blank in blanks.items():
        out[column] = pairs[column][first] if column in keys else blank
    out["row_key"] = _row_keys(out, group_by)
    return out


def _distinct_text(values: np.ndarray, text: Callable[[np.ndarray], np.ndarray]) -> pa.Array:
    """``text`` of each value, formatted once per distinct value (a chain has tens of strikes and
    expiries, not thousands); missing values (NaN, NaT) are null."""
    distinct, inverse = np.unique(values, return_inverse=True)
    missing = np.isnan(distinct) if distinct.dtype.kind == "f" else np.isnat(distinct)
    return pa.array(text(distinct), pa.string(), mask=missing).take(inverse.reshape(-1))


def _strike_text(strikes: np.ndarray) -> np.ndarray:
    finite = np.isfinite(strikes)  # infinite strikes format as "" (null) too, as NaN
    text = np.char.mod("%.8f", np.where(finite, strikes, 0.0))
    return np.where(finite, np.char.rstrip(np.char.rstrip(text, "0"), "."), "")


def _key_part(values: np.ndarray, column: str) -> pa.Array:
    """One column of ``row_key`` as text, null where it is missing or empty (a skipped part)."""
    if column == "strike":
        part = _distinct_text(values.astype(float), _strike_text)
    elif column == "expiry":
        part = _distinct_text(values.astype("datetime64[D]"), lambda days: np.datetime_as_string(days, unit="D"))
    else:
        text = values if values.dtype == object else values.astype(str).astype(object)
        part = pa.array(text, pa.string(), from_pandas=True)  # None, NaN: null
    return pc.if_else(pc.equal(part, ""), pa.scalar(None, pa.string()), part)


def _row_keys(rows: Mapping[str, Any] | pd.DataFrame, group_by: str) -> pa.Array:
    """``row_keys`` as an Arrow string array (joined in Arrow: no Python string per row)."""
    key: pa.Array | None = None
    for column in _GROUP_KEYS[group_by]:
        part = _key_part(np.asarray(rows[column]), column)
        # The non-empty parts joined with "|": a null part (or key) is skipped.
        key = part if key is None else pc.coalesce(pc.binary_join_element_wise(key, part, "|"), key, part)
    assert key is not None  # every grouping has a key column
    if key.null_count == 0 and len(pc.unique(key)) == len(key):
        return key
    keys = key.to_numpy(zero_copy_only=False).astype(object)
    empty = np.flatnonzero(pd.isna(keys))
    if empty.size:
        keys[empty] = np.char.mod("row-%06d", empty).astype(object)
    codes, uniques = pd.factorize(keys)
    if len(uniques) < len(keys):
        # Repeats (possible only with null key parts): the n-th repeat of a key gets "|n".
        repeat = pd.Series(codes).groupby(codes, sort=False).cumcount().to_numpy()
        again = np.flatnonzero(repeat > 0)
        keys[again] = keys[again] + np.char.mod("|%d", repeat[again]).astype(object)
    return pa.array(keys, pa.string())


def row_keys(rows: Mapping[str, Any] | pd.DataFrame, group_by: str) -> np.ndarray:
    """The original's ``row_key`` for rows of one partition, in their order (see the module doc)."""
    return _row_keys(rows, group_by).to_numpy(zero_copy_only=False).astype(object)


def _concat(parts: Sequence[Any]) -> Any:
    return pa.concat_arrays(parts) if isinstance(parts[0], pa.Array) else np.concatenate(parts)


def _to_flow_table(columns: Mapping[str, Any], rows: int) -> pa.Table:
    arrays = []
    for field in FLOW_SCHEMA:
        values = columns.get(field.name, np.full(rows, None, dtype=object))
        if isinstance(values, pa.Array):  # text built in Arrow
            arrays.append(values)
        elif pa.types.is_floating(field.type):
            arrays.append(pa.array(values, mask=~np.isfinite(values), type=field.type))
        elif pa.types.is_integer(field.type):
            arrays.append(pa.array(values.astype(np.int64), type=field.type))
        elif pa.types.is_date(field.type):
            arrays.append(pa.array(values, mask=np.isnat(values), type=field.type))
        else:
            arrays.append(pa.array(values, type=field.type, from_pandas=True))  # None -> null
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


__all__ = [
    "CLASS_EXPIRED",
    "FLOW_CLASSES",
    "FLOW_GROUP_BYS",
    "FLOW_PARTITION_COLUMNS",
    "FLOW_SCHEMA",
    "GROUP_CONTRACT",
    "GROUP_EXPIRY",
    "GROUP_EXPIRY_STRIKE",
    "GROUP_STRIKE",
    "GROUP_TOTAL",
    "LIVE_STATUSES",
    "OI_FACTOR",
    "OI_MIN",
    "STATUS_DISAPPEARED",
    "STATUS_EXPIRED",
    "STATUS_MATCHED",
    "STATUS_MIXED",
    "STATUS_NEW",
    "VIEW_GROUP_BYS",
    "VOLUME_FACTOR",
    "VOLUME_MIN",
    "classify_flow",
    "compute_flow",
    "compute_flow_window",
    "contract_flow",
    "mark_price",
    "row_keys",
]
