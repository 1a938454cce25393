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
        return {"as_of": self.as_of.isoformat(), "status": "success" if self.ok else "failed",
                "window": self.window, "group_by": self.group_by, "top": self.top,
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
        stored, day = by_symbol.get(symbol, {}), as_of
        chain: list[tuple[dt.date, dt.date, int]] = []
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
    refresh: bool = False,
    resume: bool = False,
    triggered_by: str = "python",
    progress: Any = None,
) -> FlowView:
    """The flow view of ``symbols`` for the window of ``window`` pairs ending at ``as_of``.

    ``refresh``: first run the ``compute_flow`` job for ``as_of`` (``resume``: leaving out the
    symbols it already materialized with the current code), as the gap planner's
    ``options-helper flow --as-of D`` expects. ``compute``: then compute the pairs the window
    needs that are not stored (the job, for the sessions concerned). A symbol without the
    session's snapshot fails in the job and shows no data."""
    from stages.registry import COMPUTE_FLOW
    from stages.runner import run_job

    check_options(window, group_by, top)
    symbols = list(dict.fromkeys(symbols))
    runs: list[JobResult] = []
    if refresh:
        runs.append(run_job(COMPUTE_FLOW, as_of=as_of, symbols=symbols, settings=settings, resume=resume,
                            triggered_by=triggered_by, progress=progress))
    found = read_chains(settings, symbols, as_of, window) if settings.duckdb_path.exists() else {s: [] for s in symbols}
    if compute:
        tried = {(s, as_of) for s in symbols} if refresh else set()
        found, more = _compute_missing(settings, symbols, as_of, window, found, triggered_by, progress, tried)
        runs += more
    return FlowView(as_of=as_of, window=window, group_by=group_by, top=top,
                    symbols=tuple(_symbol_views(settings, found, as_of, window, group_by, top)), runs=tuple(runs))


def _compute_missing(settings: Settings, symbols: Sequence[str], as_of: dt.date, window: int,
                     found: dict[str, list[tuple[dt.date, dt.date, int]]], triggered_by: str,
                     progress: Any, tried: set[tuple[str, dt.date]],
                     ) -> tuple[dict[str, list[tuple[dt.date, dt.date, int]]], list[JobResult]]:
    """Run ``compute_flow`` for the session each incomplete chain needs next, until every chain
    is complete or cannot grow (no snapshot, or the job skipped or failed it)."""
    from stages.registry import COMPUTE_FLOW
    from stages.runner import run_job

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
    keys = [(s, to_date, chain[-1][1], chain[0][0]) for s, chain in found.items() for to_date, _, _ in chain]
    rows: pa.Table | None = None
    if keys:
        pairs = pa.table({"symbol": [k[0] for k in keys], "to_date": pa.array([k[1] for k in keys], pa.date32()),
                          "window_start": pa.array([k[2] for k in keys], pa.date32()),
                          "window_end": pa.array([k[3] for k in keys], pa.date32())})
        rows = _read(settings, lambda con: datastore.flow_window(con, pairs, group_by, top))
    frames = _by_symbol(rows)
    return [symbol_view(symbol, chain, frames.get(symbol), as_of=as_of, window=window, group_by=group_by, top=top)
            for symbol, chain in found.items()]


def _by_symbol(rows: pa.Table | None) -> dict[str, list[dict[str, Any]]]:
    """The netted rows per symbol, as dicts (a few per symbol: plain Python), each with its class
    (classified once over every row: the rule on the window's sums and its start OI)."""
    from stages.analytics._tables import arrow_float
    from stages.analytics.flow import classify_flow

    out: dict[str, list[dict[str, Any]]] = {}
    if rows is None or rows.num_rows == 0:
        return out
    classes = classify_flow(arrow_float(rows, "delta_oi"), arrow_float(rows, "oi_start"), arrow_float(rows, "volume"))
    for r, flow_class in zip(rows.to_pylist(), classes.tolist(), strict=True):
        r["flow_class"] = flow_class
        out.setdefault(r["symbol"], []).append(r)
    return out


def _zone_order(r: dict[str, Any]) -> tuple[Any, ...]:
    def last(v: Any) -> tuple[bool, Any]:  # None sorts last
        return (v is None, v if v is not None else 0)

    return (-abs(r["delta_oi_notional"]), last(r["expiry"]), last(r["strike"]), last(r["option_type"]),
            last(r["contract_symbol"]))


def _zone_row(r: dict[str, Any]) -> dict[str, Any]:
    from stages.analytics.flow import CLASS_EXPIRED

    n_pairs = r["n_pairs"]
    matched = n_pairs - r["n_new"] - r["n_disappeared"] - r["n_expired"]
    status = ("matched" if matched == n_pairs else "new" if r["n_new"] == n_pairs else
              "disappeared" if r["n_disappeared"] == n_pairs else "expired" if r["n_expired"] == n_pairs else "mixed")
    flow_class = CLASS_EXPIRED if r["n_expired"] == n_pairs else r["flow_class"]
    return {c: r.get(c) for c in ZONE_COLUMNS} | {"status": status, "flow_class": flow_class}


def symbol_view(symbol: str, chain: Sequence[tuple[dt.date, dt.date, int]], rows: Sequence[dict[str, Any]] | None, *,
                as_of: dt.date, window: int, group_by: str, top: int) -> SymbolFlow:
    """One symbol's view from its netted rows (``datastore.flow_window``'s, as dicts, in zone order)."""
    from stages.analytics.flow import GROUP_TOTAL

    if not chain or not rows:
        return SymbolFlow(symbol=symbol, to_date=as_of, from_date=None, window=window, pairs=0, gap_sessions=0,
                          group_by=group_by, calls_delta_oi_notional=None, puts_delta_oi_notional=None, building=(),
                          unwinding=(), expired_contracts=0, expired_oi=None, expired_notional=None,
                          disappeared_contracts=0, note=f"no flow data for {symbol} ending {as_of}: need a snapshot "
                          f"of {as_of} and an earlier one")
    totals = {r["option_type"]: r for r in rows if r["group_by"] == GROUP_TOTAL}
    grouped = [r for r in rows if r["group_by"] == group_by and r["delta_oi_notional"] is not None]

    def zone(sign: int) -> tuple[dict[str, Any], ...]:
        part = [r for r in grouped if (r["delta_oi_notional"] > 0 if sign > 0 else r["delta_oi_notional"] < 0)]
        part.sort(key=_zone_order)  # by |net ΔOI$|, then expiry, strike, type, contract
        return tuple(_zone_row(r) for r in part[:top])

    def summed(column: str) -> float | None:
        values = [r[column] for r in totals.values() if r.get(column) is not None]
        return float(sum(values)) if values else None

    def of_type(kind: str) -> float | None:
        value = totals.get(kind, {}).get("delta_oi_notional")
        return None if value is None else float(value)

    note = None
    if len(chain) < window:
        note = f"only {len(chain)} of {window} session pairs stored for {symbol} (no earlier snapshot)"
    return SymbolFlow(
        symbol=symbol, to_date=chain[0][0], from_date=chain[-1][1], window=window, pairs=len(chain),
        gap_sessions=sum(g for _, _, g in chain), group_by=group_by,
        calls_delta_oi_notional=of_type("call"), puts_delta_oi_notional=of_type("put"),
        building=zone(1), unwinding=zone(-1),
        expired_contracts=int(sum(r["n_expired"] or 0 for r in totals.values())),
        expired_oi=summed("expired_oi"), expired_notional=summed("expired_notional"),
        disappeared_contracts=int(sum(r["n_disappeared"] or 0 for r in totals.values())),
        snapshot_dates=(chain[-1][1], *(to for to, _, _ in reversed(chain))), note=note,
    )


__all__ = ["MAX_TOP", "MAX_WINDOW", "FlowView", "SymbolFlow", "chains", "check_options", "flow_view", "read_chains",
           "symbol_view"]
