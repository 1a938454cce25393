"""The plan's answer from the cells to fix: ranges (gaps and islands along each scope's sessions)
and steps (one command per island, symbols with the same island grouped).

The islands are found with numpy on the few cells to fix; what costs here is building the answer's
Python objects (a plan can hold a hundred thousand ranges), one ``GapRange`` per island and one
``PlanStep`` per group of symbols with the same island.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

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
    iso = layout.day_keys
    n_days = len(days)
    names = ("", *REASONS)
    unrec = CODE["unrecoverable"]
    totals = np.zeros(len(REASONS) + 1, np.int64)
    ranges: list[GapRange] = []
    steps: list[PlanStep] = []
    for i, a in reported:
        idx, code = reasons[i]
        totals += np.bincount(code, minlength=len(REASONS) + 1)
        scopes = list(layout.syms) if a.per_symbol else [ALL_SCOPE]
        # Scope-major keys with a gap of one between scopes, so runs never cross scopes.
        session, scope = np.divmod(idx, max(layout.width[i], 1))
        key = scope * (n_days + 1) + session
        order = np.argsort(key, kind="stable")
        key, code = key[order], code[order]
        starts, lengths = _islands(key, code)
        scope_of, first = np.divmod(key[starts], n_days + 1)
        ranges += _gap_ranges(a.key, [scopes[s] for s in scope_of.tolist()], first.tolist(), lengths.tolist(),
                              [names[v] for v in code[starts].tolist()], days)
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
            steps.append(_step(len(steps) + 1, a, [scopes[s] for s in s_list[b0:b1]], days, iso, lo, hi,
                               universe_option))
    counts = {r: int(totals[CODE[r]]) for r in REASONS if totals[CODE[r]]}
    return tuple(ranges), tuple(steps), counts


def _gap_ranges(asset_key: str, scopes: list[str], first: list[int], lengths: list[int], reasons: list[str],
                days: Sequence[dt.date]) -> list[GapRange]:
    return [GapRange(asset_key=asset_key, scope_key=sc, start=days[lo], end=days[lo + n - 1], sessions=n, reason=r)
            for sc, lo, n, r in zip(scopes, first, lengths, reasons, strict=True)]


def _step(n: int, a: PlannerAsset, scopes: list[str], days: Sequence[dt.date], iso: Sequence[str], lo: int,
          hi: int, universe_option: str | None) -> PlanStep:
    """Step ``n``: ``a``'s job over sessions ``lo``..``hi`` (indexes into ``days``, whose ISO
    strings are ``iso``) for ``scopes``."""
    symbols = tuple(scopes) if a.per_symbol else ()
    if a.per_symbol:
        sym_opt = f" --symbols {','.join(symbols)}"
    else:
        sym_opt = f" {universe_option}" if universe_option else ""
    if lo == hi and a.cli_command:
        command = f"options-helper {a.cli_command} --as-of {iso[lo]}{sym_opt}"
    else:
        command = f"options-helper backfill --assets {a.key}{sym_opt} --start {iso[lo]} --end {iso[hi]}"
    return PlanStep(step=n, job=a.job, asset_key=a.key, symbols=symbols, start=days[lo], end=days[hi],
                    sessions=hi - lo + 1, command=command)
