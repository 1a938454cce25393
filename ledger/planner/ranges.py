"""The plan's answer from the cells to fix: ranges (gaps and islands along each scope's sessions)
and steps (one command per island, symbols with the same island grouped)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import attrs
import numpy as np

from ledger.planner.grid import CODE, Layout
from ledger.planner.model import ALL_SCOPE, REASONS, GapRange, PlannerAsset, PlanStep


def _islands(key: np.ndarray, value: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Runs of consecutive ``key`` (sorted) with equal ``value``: (start offsets, lengths)."""
    if not len(key):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    brk = np.empty(len(key), bool)
    brk[0] = True
    np.not_equal(np.diff(key), 1, out=brk[1:])
    if value is not None:
        brk[1:] |= value[1:] != value[:-1]
    starts = np.flatnonzero(brk)
    return starts, np.diff(starts, append=len(key))


def collapse(layout: Layout, reasons: Sequence[tuple[np.ndarray, np.ndarray]],
             reported: Sequence[tuple[int, PlannerAsset]],
             universe_option: str | None) -> tuple[tuple[GapRange, ...], tuple[PlanStep, ...], dict[str, int]]:
    """Ranges per (asset, scope, reason), steps per (asset, session range, symbols), and the count
    of cells per reason, for the reported assets in graph order."""
    days = layout.days
    n_days = len(days)
    names = ("", *REASONS)
    unrec = CODE["unrecoverable"]
    totals = np.zeros(len(REASONS) + 1, np.int64)
    ranges: list[GapRange] = []
    steps: list[PlanStep] = []
    for i, a in reported:
        idx, code = reasons[i]
        totals += np.bincount(code, minlength=len(REASONS) + 1)
        w = layout.width[i]
        scopes = list(layout.syms) if a.per_symbol else [ALL_SCOPE]
        # Scope-major keys with a gap of one between scopes, so runs never cross scopes.
        session, scope = np.divmod(idx, max(w, 1))
        key = scope * (n_days + 1) + session
        order = np.argsort(key, kind="stable")
        key, code = key[order], code[order]
        starts, lengths = _islands(key, code)
        scope_of, first = np.divmod(key[starts], n_days + 1)
        ranges.extend(_gap_ranges(a.key, [scopes[s] for s in scope_of.tolist()], first.tolist(), lengths.tolist(),
                                  [names[v] for v in code[starts].tolist()], days))
        # Steps: islands of cells to fix (any reason but unrecoverable), symbols with the same
        # island grouped, ordered by first session, last session, then symbol.
        fix = key[code != unrec]
        starts, lengths = _islands(fix)
        s_arr, lo_arr = np.divmod(fix[starts], n_days + 1)
        hi_arr = lo_arr + lengths - 1
        order = np.lexsort((s_arr, hi_arr, lo_arr))
        s_arr, lo_arr, hi_arr = s_arr[order], lo_arr[order], hi_arr[order]
        cut = np.flatnonzero((np.diff(lo_arr) != 0) | (np.diff(hi_arr) != 0)) + 1
        bounds = np.concatenate([[0], cut, [len(order)]]).tolist() if len(order) else [0]
        s_list, lo_list, hi_list = s_arr.tolist(), lo_arr.tolist(), hi_arr.tolist()
        for b0, b1 in itertools.pairwise(bounds):
            lo, hi = lo_list[b0], hi_list[b0]
            steps.append(_step(len(steps) + 1, a, [scopes[s] for s in s_list[b0:b1]], days[lo], days[hi],
                               hi - lo + 1, universe_option))
    counts = {r: int(totals[CODE[r]]) for r in REASONS if totals[CODE[r]]}
    return tuple(ranges), tuple(steps), counts


def _plain_init(cls: type) -> bool:
    """Whether ``cls``'s ``__init__`` only stores its arguments in slots (nothing to validate,
    convert or run after), so an instance can be built by setting the slots directly."""
    return ("__slots__" in cls.__dict__ and not hasattr(cls, "__attrs_post_init__")
            and all(f.validator is None and f.converter is None and f.on_setattr in (None, attrs.setters.NO_OP)
                    for f in attrs.fields(cls)))


_FAST_RANGES = _plain_init(GapRange) and [f.name for f in attrs.fields(GapRange)] == [
    "asset_key", "scope_key", "start", "end", "sessions", "reason"]


def _gap_ranges(asset_key: str, scopes: list[str], first: list[int], lengths: list[int], reasons: list[str],
                days: Sequence[dt.date]) -> list[GapRange]:
    """``GapRange`` objects, built by setting their slots: a plan can hold a hundred thousand
    ranges, and the generated keyword ``__init__`` of a frozen class costs about twice as much."""
    if not _FAST_RANGES:  # pragma: no cover - the class gained a validator, converter or hook
        return [GapRange(asset_key=asset_key, scope_key=sc, start=days[lo], end=days[lo + n - 1], sessions=n,
                         reason=r) for sc, lo, n, r in zip(scopes, first, lengths, reasons, strict=True)]
    new = object.__new__
    set_asset, set_scope, set_start, set_end, set_sessions, set_reason = (
        getattr(GapRange, f).__set__ for f in ("asset_key", "scope_key", "start", "end", "sessions", "reason"))
    out: list[GapRange] = []
    append = out.append
    for sc, lo, n, r in zip(scopes, first, lengths, reasons, strict=True):
        g = new(GapRange)
        set_asset(g, asset_key)
        set_scope(g, sc)
        set_start(g, days[lo])
        set_end(g, days[lo + n - 1])
        set_sessions(g, n)
        set_reason(g, r)
        append(g)
    return out


def _step(n: int, a: PlannerAsset, scopes: list[str], lo: dt.date, hi: dt.date, sessions: int,
          universe_option: str | None) -> PlanStep:
    symbols = tuple(scopes) if a.per_symbol else ()
    if a.per_symbol:
        sym_opt = f" --symbols {','.join(symbols)}"
    else:
        sym_opt = f" {universe_option}" if universe_option else ""
    if sessions == 1 and a.cli_command:
        command = f"options-helper {a.cli_command} --as-of {lo.isoformat()}{sym_opt}"
    else:
        command = (f"options-helper backfill --assets {a.key}{sym_opt} "
                   f"--start {lo.isoformat()} --end {hi.isoformat()}")
    return PlanStep(step=n, job=a.job, asset_key=a.key, symbols=symbols, start=lo, end=hi, sessions=sessions,
                    command=command)
