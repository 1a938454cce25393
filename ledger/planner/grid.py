"""The analysed cells as flat integer grids, and the planner's rules run over them (numpy).

Every analysed cell has a slot in one flat array (``Layout``): asset ``i`` owns the rows of its
(session, scope) grid, row-major. The reads fill three such arrays (row status, the seq a
dependent compares with, the failed or abandoned run that targeted the cell) plus the cells whose
check failed; ``propagate`` walks the assets in graph order and returns, per asset, the cells with
something to do and their reason. Dense work is limited to a few vectorised passes per asset that
find the candidate cells (not materialized, or with an upstream that changes or is newer); the
rules themselves run on those candidates only, which are few in a healthy ledger.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence

import attrs
import numpy as np

from ledger.planner.model import REASONS, PlannerAsset

# Reason codes: 0 = nothing to do, else 1 + the reason's index in REASONS.
CODE = {r: i + 1 for i, r in enumerate(REASONS)}
# The status of a cell's row, as read: the low two bits; bit 2 set when its code version is stale.
NONE, MATERIALIZED, SKIPPED, FAILED, CODE_STALE = 0, 1, 2, 3, 4
NO_SEQ = np.iinfo(np.int64).min  # "no vseq" (SQL NULL) in the int64 grids
# The latest failed run that targeted a cell, in the runs grid.
RUN_FAILED, RUN_ABANDONED = 1, 2
# Bits a cell passes to its dependents: it will change (present, in the plan); it is absent and
# fixable; it is absent and cannot be produced.
WILL_CHANGE, ABSENT_FIXABLE, ABSENT_BLOCKED = 1, 2, 4


@attrs.frozen
class Layout:
    """Where each analysed cell lives in one flat array: asset ``i`` owns ``size(i)`` slots from
    ``base[i]``, row-major by (session index, scope id); an ALL-scoped asset has one column."""

    sub: tuple[PlannerAsset, ...]
    days: tuple[dt.date, ...]
    syms: tuple[str, ...]
    width: tuple[int, ...]
    base: tuple[int, ...]
    first_idx: tuple[int, ...]
    day_array: np.ndarray = attrs.field(eq=False)  # ``days`` as datetime64[D]
    day_keys: tuple[str, ...] = ()  # ``days`` as partition keys (YYYY-MM-DD)

    @classmethod
    def of(cls, sub: Sequence[PlannerAsset], days: np.ndarray, syms: Sequence[str],
           first_idx: Mapping[str, int]) -> Layout:
        """``days``: the analysed sessions, as a sorted datetime64[D] array."""
        width = tuple(len(syms) if a.per_symbol else 1 for a in sub)
        base = tuple(int(b) for b in np.cumsum([0, *(len(days) * w for w in width)])[:-1])
        dates, keys = _sessions(days.astype("datetime64[D]").tobytes())
        return cls(tuple(sub), dates, tuple(syms), width, base, tuple(first_idx[a.key] for a in sub), days, keys)

    @property
    def total(self) -> int:
        return len(self.days) * sum(self.width)

    @property
    def needs_seqs(self) -> bool:
        """Whether any analysed asset compares seqs with an upstream one (else vseq is unused)."""
        return any(a.upstream for a in self.sub)

    def grid(self, flat: np.ndarray, i: int) -> np.ndarray:
        """Asset ``i``'s part of ``flat`` as a (sessions, scopes) view."""
        n = len(self.days) * self.width[i]
        return flat[self.base[i] : self.base[i] + n].reshape(len(self.days), self.width[i])


@functools.lru_cache(maxsize=16)
def _sessions(raw: bytes) -> tuple[tuple[dt.date, ...], tuple[str, ...]]:
    """Sessions (datetime64[D], as bytes) as dates and as partition keys: the calendar does not
    change, and a plan's windows repeat (the default 20 sessions, a backfill's range)."""
    days = np.frombuffer(raw, dtype="datetime64[D]")
    return tuple(days.tolist()), tuple(np.datetime_as_string(days, unit="D").tolist())


@attrs.frozen(eq=False)
class CellReads:
    """What the reads found, as flat arrays over the layout."""

    status: np.ndarray  # uint8: NONE / MATERIALIZED / SKIPPED / FAILED, | CODE_STALE
    vseq: np.ndarray  # int64: the seq a dependent compares with, NO_SEQ when none
    runs: np.ndarray  # uint8: 0, RUN_FAILED or RUN_ABANDONED (only where there is no row)
    checked: np.ndarray  # bool: a materialized cell whose current materialization failed an error check


def propagate(layout: Layout, reads: CellReads, cutoffs: Mapping[str, dt.date]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per analysed asset, in graph order: the cells with something to do, as (flat index within
    the asset's grid, ascending; reason code).

    A cell passes three bits to its dependents (will change; absent and fixable; absent and
    blocked) and its vseq; a lag-1 edge is a shift by one session, an ALL cell reads the OR (bits)
    and max (vseq) over every symbol of its session. Per cell, first match wins: see the package
    docstring for the reasons."""
    index = {a.key: i for i, a in enumerate(layout.sub)}
    feeds = {up for a in layout.sub for up, _ in a.upstream}
    n_days = len(layout.days)
    bits_of: list[np.ndarray | None] = []
    vseq_of: list[np.ndarray] = []
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for i, a in enumerate(layout.sub):
        w, first, base = layout.width[i], layout.first_idx[i], layout.base[i]
        code, vseq = layout.grid(reads.status, i), layout.grid(reads.vseq, i)
        up_bits, newer = _upstream(a, layout, index, bits_of, vseq_of, vseq, reads.status)
        # Candidates: everything but a current materialization whose inputs are unchanged and
        # older; the ones with a failed check are added below (they look current).
        cand = code != MATERIALIZED
        if up_bits is not None:
            cand |= up_bits != 0
        if newer is not None:
            cand |= newer
        cand[:first] = False
        idx = np.flatnonzero(cand)
        chk = np.flatnonzero(layout.grid(reads.checked, i)[first:]) + first * w
        if len(chk):
            idx = np.union1d(idx, chk)

        c = code.ravel()[idx]
        s = c & 3
        ub = up_bits.ravel()[idx] if up_bits is not None else np.zeros(len(idx), np.uint8)
        none = s == NONE
        fixable_up = (ub & ABSENT_FIXABLE) != 0
        stale = ((c & CODE_STALE) != 0) | ((ub & (WILL_CHANGE | ABSENT_FIXABLE)) != 0)
        if newer is not None:
            stale |= newer.ravel()[idx] & (vseq.ravel()[idx] != NO_SEQ)
        run = reads.runs[base + idx]
        reason = np.select(
            [s == FAILED, none & (run == RUN_FAILED), none & (run == RUN_ABANDONED), none & fixable_up, none,
             (s == MATERIALIZED) & reads.checked[base + idx], (s == SKIPPED) & fixable_up, stale],
            [CODE[r] for r in ("failed", "failed", "abandoned", "upstream_missing", "missing",
                               "check_failed", "upstream_missing", "stale")],
            0).astype(np.uint8)
        keep = reason != 0
        idx, reason, s, ub = idx[keep], reason[keep], s[keep], ub[keep]
        present = (s == MATERIALIZED) | (s == SKIPPED)
        cutoff = cutoffs.get(a.key)
        cutoff_idx = -1 if cutoff is None else int(np.searchsorted(layout.day_array, np.datetime64(cutoff, "D")))
        blocked = (idx // max(w, 1) < cutoff_idx) | (~present & ((ub & ABSENT_BLOCKED) != 0))
        reason[blocked] = CODE["unrecoverable"]
        out.append((idx, reason))

        if a.key in feeds:
            bits = np.zeros((n_days, w), np.uint8)
            bits.ravel()[idx] = np.where(blocked, np.where(present, 0, ABSENT_BLOCKED),
                                         np.where(present, WILL_CHANGE, ABSENT_FIXABLE))
            bits_of.append(bits)
            if first:
                vseq = vseq.copy()
                vseq[:first] = NO_SEQ
        else:
            bits_of.append(None)
        vseq_of.append(vseq)
    return out


def _upstream(a: PlannerAsset, layout: Layout, index: Mapping[str, int], bits_of: Sequence[np.ndarray | None],
              vseq_of: Sequence[np.ndarray], vseq: np.ndarray,
              status: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(up_bits, newer) of asset ``a``'s grid: the OR of its upstream cells' bits, and where an
    upstream cell's vseq is newer than the cell's own (None when ``a`` has no upstream)."""
    if not a.upstream:
        return None, None
    up_bits = np.zeros(vseq.shape, np.uint8)
    newer = np.zeros(vseq.shape, bool)
    for up, lag in a.upstream:
        j = index[up]
        ub, uv = bits_of[j], vseq_of[j]
        assert ub is not None  # every upstream asset keeps its bits
        if layout.sub[j].per_symbol and not a.per_symbol:
            ub = np.bitwise_or.reduce(ub, axis=1, keepdims=True)
            uv = np.max(uv, axis=1, keepdims=True, initial=NO_SEQ)
        if lag:  # the previous session's cell; the first session has none
            shifted = ub[:-lag]
            if a.lag_reach > 1 and ub.shape == up_bits.shape:
                shifted = _reach_back(shifted, layout.grid(status, j)[:-lag], a.lag_reach)
            up_bits[lag:] |= shifted
            newer[lag:] |= uv[:-lag] > vseq[lag:]
        else:
            up_bits |= ub
            newer |= uv > vseq
    return up_bits, newer


def _reach_back(bits: np.ndarray, status: np.ndarray, reach: int) -> np.ndarray:
    """A lag-1 input's bits with ``lag_reach``: where the input cell is absent and cannot be
    produced but one of the ``reach - 1`` cells before it (same scope) is materialized, the
    dependent takes that one instead (no bits). ``bits`` and ``status`` are aligned (row r = the
    input cell of the dependent's row r + lag)."""
    blocked = (bits & ABSENT_BLOCKED) != 0
    if not blocked.any():
        return bits
    present = (status & 3) == MATERIALIZED
    earlier = np.zeros_like(present)
    for k in range(1, reach):
        earlier[k:] |= present[:-k]
    return np.where(blocked & earlier, bits & ~np.uint8(ABSENT_BLOCKED), bits).astype(bits.dtype)
