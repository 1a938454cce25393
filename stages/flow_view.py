"""The flow console's data (``options-helper flow``): per symbol, the net flow over a window of
session pairs ending at a session, grouped, as building and unwinding zones, with the expired line.

Only one-session pairs are stored (``options_flow`` rows with ``window_size = 1``); a window of
N is the chain of the N stored pairs ending at the session, each pair starting where the next
one ends (after a missed session a pair spans more: its ``from_date`` is the latest earlier
snapshot), netted on read in DuckDB (``datastore.flow_window``). Pairs that are not stored are
computed first when ``compute=True`` (the ``compute_flow`` job, one run per session needed).

    from stages.flow_view import flow_view
    view = flow_view(settings, as_of=dt.date(2026, 11, 23), symbols=["SPY"], window=5, group_by="strike")
    view.symbols[0].building[:3]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from ledger.errors import UsageError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from ledger.config import Settings
    from stages.results import JobResult

MAX_WINDOW, MAX_TOP = 30, 100
# Columns of a zone row (per grouping, the key columns that are not null come first).
ZONE_COLUMNS = ("row_key", "contract_symbol", "expiry", "option_type", "strike", "delta_oi", "delta_oi_notional",
                "volume_notional", "delta_notional", "oi_start", "oi_end", "n_pairs", "status", "flow_class")


@attrs.frozen(kw_only=True)
class SymbolFlow:
    """One symbol's view: ``pairs`` of the ``window`` requested were found (fewer near the start
    of its history); ``note`` says why there is less or no data."""

    symbol: str
    to_date: dt.date
    from_date: dt.date | None
    window: int
    pairs: int
    gap_sessions: int
    group_by: str
    calls_delta_oi_notional: float | None
    puts_delta_oi_notional: float | None
    building: tuple[dict[str, Any], ...]
    unwinding: tuple[dict[str, Any], ...]
    expired_contracts: int
    expired_oi: float | None
    expired_notional: float | None
    disappeared_contracts: int
    snapshot_dates: tuple[dt.date, ...] = ()
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from stages.results import json_safe

        return json_safe(attrs.asdict(self))  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class FlowView:
    as_of: dt.date
    window: int
    group_by: str
    top: int
    symbols: tuple[SymbolFlow, ...]
    runs: tuple[JobResult, ...] = ()

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "window": self.window, "group_by": self.group_by, "top": self.top,
                "symbols": [s.to_dict() for s in self.symbols], "runs": [r.to_dict() for r in self.runs]}


def check_options(window: int, group_by: str, top: int) -> None:
    from stages.analytics.flow import VIEW_GROUP_BYS

    if not 1 <= window <= MAX_WINDOW:
        raise UsageError(f"--window must be between 1 and {MAX_WINDOW}, got {window}")
    if group_by not in VIEW_GROUP_BYS:
        raise UsageError(f"--group-by must be one of {', '.join(VIEW_GROUP_BYS)}, got {group_by!r}")
    if not 1 <= top <= MAX_TOP:
        raise UsageError(f"--top must be between 1 and {MAX_TOP}, got {top}")


def chains(pairs: Sequence[tuple[Any, ...]], symbols: Sequence[str], as_of: dt.date,
           window: int) -> dict[str, list[tuple[dt.date, dt.date, int]]]:
    """Per symbol, the stored pairs ``(to_date, from_date, gap_sessions)`` of the window, newest
    first: the pair ending at ``as_of``, then the one ending at its ``from_date``, and so on."""
    by_symbol: dict[str, dict[dt.date, tuple[dt.date, int]]] = {}
    for symbol, to_date, from_date, gap in pairs:
        by_symbol.setdefault(symbol, {})[to_date] = (from_date, int(gap))
    out: dict[str, list[tuple[dt.date, dt.date, int]]] = {}
    for symbol in symbols:
        stored, chain, day = by_symbol.get(symbol, {}), [], as_of
        while len(chain) < window and day in stored:
            from_date, gap = stored[day]
            chain.append((day, from_date, gap))
            day = from_date
        out[symbol] = chain
    return out


def _read(settings: Settings, fn: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
    import ledger
    from ledger.errors import DatabaseNotFoundError

    if not settings.duckdb_path.exists():
        raise DatabaseNotFoundError(f"no database at {settings.duckdb_path}; create one with `options-helper db init` "
                                    "and run `options-helper daily` first")
    led = ledger.open(settings.duckdb_path, create=False, lock_timeout_seconds=settings.lock_timeout_seconds)
    with led.reader() as con:
        return fn(con)


def _lookback_start(as_of: dt.date, window: int, settings: Settings) -> dt.date:
    # A generous bound on the calendar days a chain of ``window`` pairs can span.
    return as_of - dt.timedelta(days=(window + 1) * (settings.flow_max_gap_sessions * 2 + 4))


def read_chains(settings: Settings, symbols: Sequence[str], as_of: dt.date,
                window: int) -> dict[str, list[tuple[dt.date, dt.date, int]]]:
    from stages import datastore

    start = _lookback_start(as_of, window, settings)
    rows = _read(settings, lambda con: datastore.flow_pairs(con, symbols, start, as_of))
    return chains(rows, symbols, as_of, window)


def flow_view(
    settings: Settings,
    *,
    as_of: dt.date,
    symbols: Sequence[str],
    window: int = 1,
    group_by: str = "contract",
    top: int = 10,
    compute: bool = True,
    triggered_by: str = "python",
    progress: Any = None,
) -> FlowView:
    """The flow view of ``symbols`` for the window of ``window`` pairs ending at ``as_of``.

    With ``compute``, the pairs the window needs that are not stored are computed first (the
    ``compute_flow`` job for the sessions concerned); a symbol without the session's snapshot
    fails in that job and shows no data."""
    check_options(window, group_by, top)
    symbols = list(dict.fromkeys(symbols))
    runs: list[JobResult] = []
    found = read_chains(settings, symbols, as_of, window) if settings.duckdb_path.exists() else {s: [] for s in symbols}
    if compute:
        found, runs = _compute_missing(settings, symbols, as_of, window, found, triggered_by, progress)
    return FlowView(as_of=as_of, window=window, group_by=group_by, top=top,
                    symbols=tuple(_symbol_views(settings, found, as_of, window, group_by, top)), runs=tuple(runs))


def _compute_missing(settings: Settings, symbols: Sequence[str], as_of: dt.date, window: int,
                     found: dict[str, list[tuple[dt.date, dt.date, int]]], triggered_by: str,
                     progress: Any) -> tuple[dict[str, list[tuple[dt.date, dt.date, int]]], list[JobResult]]:
    """Run ``compute_flow`` for the session each incomplete chain needs next, until every chain
    is complete or cannot grow (no snapshot, or the job skipped or failed it)."""
    from stages.registry import COMPUTE_FLOW
    from stages.runner import run_job

    tried: set[tuple[str, dt.date]] = set()
    runs: list[JobResult] = []
    for _ in range(window):
        needed: dict[dt.date, list[str]] = {}
        for symbol in symbols:
            chain = found.get(symbol, [])
            if len(chain) >= window:
                continue
            day = chain[-1][1] if chain else as_of
            if (symbol, day) not in tried:
                needed.setdefault(day, []).append(symbol)
        if not needed:
            break
        for day, names in sorted(needed.items(), reverse=True):
            tried.update((s, day) for s in names)
            runs.append(run_job(COMPUTE_FLOW, as_of=day, symbols=names, settings=settings,
                                triggered_by=triggered_by, progress=progress))
        found = read_chains(settings, symbols, as_of, window)
    return found, runs


def _symbol_views(settings: Settings, found: dict[str, list[tuple[dt.date, dt.date, int]]], as_of: dt.date,
                  window: int, group_by: str, top: int) -> list[SymbolFlow]:
    import pyarrow as pa

    from stages import datastore
    from stages.analytics.flow import GROUP_TOTAL

    keys = [(s, to_date, chain[-1][1], chain[0][0]) for s, chain in found.items() for to_date, _, _ in chain]
    rows: pa.Table | None = None
    if keys:
        pairs = pa.table({"symbol": [k[0] for k in keys], "to_date": pa.array([k[1] for k in keys], pa.date32()),
                          "window_start": pa.array([k[2] for k in keys], pa.date32()),
                          "window_end": pa.array([k[3] for k in keys], pa.date32())})
        rows = _read(settings, lambda con: datastore.flow_window(con, pairs, [group_by, GROUP_TOTAL]))
    return [symbol_view(symbol, chain, rows, as_of=as_of, window=window, group_by=group_by, top=top)
            for symbol, chain in found.items()]


def symbol_view(symbol: str, chain: Sequence[tuple[dt.date, dt.date, int]], rows: pa.Table | None, *,
                as_of: dt.date, window: int, group_by: str, top: int) -> SymbolFlow:
    """One symbol's view from the netted rows (``datastore.flow_window``) of its chain."""
    import numpy as np
    import pyarrow.compute as pc

    from stages.analytics._tables import clean
    from stages.analytics.flow import CLASS_EXPIRED, GROUP_TOTAL, classify_flow

    empty = dict(calls_delta_oi_notional=None, puts_delta_oi_notional=None, building=(), unwinding=(),
                 expired_contracts=0, expired_oi=None, expired_notional=None, disappeared_contracts=0)
    if not chain or rows is None:
        return SymbolFlow(symbol=symbol, to_date=as_of, from_date=None, window=window, pairs=0, gap_sessions=0,
                          group_by=group_by, note=f"no flow data for {symbol} ending {as_of}: need a snapshot of "
                          f"{as_of} and an earlier one", **empty)  # type: ignore[arg-type]
    mine = rows.filter(pc.equal(rows.column("symbol"), symbol)).to_pandas(date_as_object=True)
    totals = mine[mine["group_by"] == GROUP_TOTAL].set_index("option_type")
    grouped = mine[mine["group_by"] == group_by].copy()
    grouped["flow_class"] = classify_flow(grouped["delta_oi"].to_numpy(float), grouped["oi_start"].to_numpy(float),
                                          grouped["volume"].to_numpy(float))
    grouped.loc[(grouped["n_expired"] == grouped["n_pairs"]).to_numpy(), "flow_class"] = CLASS_EXPIRED
    matched = grouped["n_pairs"] - grouped["n_new"] - grouped["n_disappeared"] - grouped["n_expired"]
    grouped["status"] = np.select(
        [matched == grouped["n_pairs"], grouped["n_new"] == grouped["n_pairs"],
         grouped["n_disappeared"] == grouped["n_pairs"], grouped["n_expired"] == grouped["n_pairs"]],
        ["matched", "new", "disappeared", "expired"], default="mixed")
    net = grouped["delta_oi_notional"]
    grouped = grouped.assign(_abs=net.abs(), _expiry=grouped["expiry"].astype(str), _strike=grouped["strike"])

    def zone(mask: Any) -> tuple[dict[str, Any], ...]:
        part = grouped[mask.fillna(False).to_numpy(bool)]
        part = part.sort_values(["_abs", "_expiry", "_strike", "option_type", "contract_symbol"],
                                ascending=[False, True, True, True, True], kind="mergesort", na_position="last")
        return tuple({c: clean(v) for c, v in zip(ZONE_COLUMNS, r, strict=True)}
                     for r in part.head(top)[list(ZONE_COLUMNS)].itertuples(index=False, name=None))

    def total(kind: str, column: str) -> float | None:
        value = totals[column].get(kind) if column in totals else None
        return clean(value) if value is not None else None

    def summed(column: str) -> float | None:
        values = totals[column].dropna() if column in totals else []
        return float(values.sum()) if len(values) else None

    dates = (chain[-1][1], *(to for to, _, _ in reversed(chain)))
    note = None
    if len(chain) < window:
        note = f"only {len(chain)} of {window} session pairs stored for {symbol} (no earlier snapshot)"
    return SymbolFlow(
        symbol=symbol, to_date=chain[0][0], from_date=chain[-1][1], window=window, pairs=len(chain),
        gap_sessions=sum(g for _, _, g in chain), group_by=group_by,
        calls_delta_oi_notional=total("call", "delta_oi_notional"), puts_delta_oi_notional=total("put", "delta_oi_notional"),
        building=zone(net > 0), unwinding=zone(net < 0),
        expired_contracts=int(totals["n_expired"].sum()) if "n_expired" in totals else 0,
        expired_oi=summed("expired_oi"), expired_notional=summed("expired_notional"),
        disappeared_contracts=int(totals["n_disappeared"].sum()) if "n_disappeared" in totals else 0,
        snapshot_dates=dates, note=note,
    )


__all__ = ["MAX_TOP", "MAX_WINDOW", "FlowView", "SymbolFlow", "chains", "check_options", "flow_view", "read_chains",
           "symbol_view"]
