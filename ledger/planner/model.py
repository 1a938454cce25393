"""The planner's inputs and answer: the asset graph as plain data, and the plan's ranges and steps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

ALL_SCOPE = "ALL"
REASONS = ("unrecoverable", "failed", "abandoned", "upstream_missing", "missing", "check_failed", "stale")
# Reasons of cells with no usable data (the cell does not exist, or its latest attempt failed).
ABSENT_REASONS = ("failed", "abandoned", "upstream_missing", "missing")


@attrs.frozen(kw_only=True)
class PlannerAsset:
    """One node of the asset graph, as the planner needs it.

    ``upstream``: ``(asset_key, lag)`` pairs, lag 0 (same session) or 1 (previous session).
    ``recoverable_before``: whether the asset can be produced for past sessions at all (a
    live-only provider dataset cannot); ``plan_gaps``'s ``unrecoverable`` mapping says from when.
    ``lag_reach``: how many sessions back a lag-1 input may be taken from when the previous
    session's cell cannot be produced (flow compares with the latest earlier snapshot): with
    ``lag_reach > 1`` such a cell does not block this one if an input cell within the reach is
    materialized.
    """

    key: str
    upstream: tuple[tuple[str, int], ...] = attrs.field(default=(), converter=lambda us: tuple((k, int(lag)) for k, lag in us))
    per_symbol: bool = True
    job: str = ""
    cli_command: str = ""
    code_version: str | None = None
    recoverable_before: bool = True
    lag_reach: int = 1


@attrs.frozen(kw_only=True)
class GapRange:
    """Consecutive sessions of one (asset, scope) cell row with the same reason."""

    asset_key: str
    scope_key: str
    start: dt.date
    end: dt.date
    sessions: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"asset_key": self.asset_key, "scope_key": self.scope_key, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "sessions": self.sessions, "reason": self.reason}


@attrs.frozen(kw_only=True)
class PlanStep:
    """One command of the plan: one job over consecutive sessions for a group of symbols."""

    step: int
    job: str
    asset_key: str
    symbols: tuple[str, ...]  # () for ALL-scoped assets
    start: dt.date
    end: dt.date
    sessions: int
    command: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "job": self.job, "asset_key": self.asset_key, "symbols": list(self.symbols),
                "start": self.start.isoformat(), "end": self.end.isoformat(), "sessions": self.sessions,
                "command": self.command}


@attrs.frozen(kw_only=True)
class GapPlan:
    """The result of ``plan_gaps``: what is wrong (``ranges``) and how to fix it (``steps``)."""

    start: dt.date
    end: dt.date
    sessions: int
    symbols: tuple[str, ...]
    assets: tuple[str, ...]
    cells_expected: int
    cells_missing: int  # cells the plan can fix (every reason but unrecoverable)
    cells_unrecoverable: int
    reasons: Mapping[str, int]
    ranges: tuple[GapRange, ...]
    steps: tuple[PlanStep, ...]
    lookback_session: dt.date | None = None
    lookback_assets: tuple[str, ...] = ()
    # The analysed sessions (lookback first, when there is one), to expand ranges into cells.
    session_days: tuple[dt.date, ...] = attrs.field(default=(), repr=False, eq=False)

    @property
    def ok(self) -> bool:
        return self.cells_missing == 0

    def cells(self, *, include_unrecoverable: bool = False) -> list[tuple[str, dt.date, str]]:
        """Every cell of the plan as ``(asset_key, session, scope_key)``, in plan order."""
        index = {d: i for i, d in enumerate(self.session_days)}
        out: list[tuple[str, dt.date, str]] = []
        for r in self.ranges:
            if r.reason == "unrecoverable" and not include_unrecoverable:
                continue
            i = index[r.start]
            out.extend((r.asset_key, d, r.scope_key) for d in self.session_days[i : i + r.sessions])
        rank = {a: i for i, a in enumerate(self.assets)}
        out.sort(key=lambda c: (c[1], rank.get(c[0], len(rank)), c[2]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "sessions": self.sessions,
            "symbols": list(self.symbols),
            "assets": list(self.assets),
            "cells_expected": self.cells_expected,
            "cells_missing": self.cells_missing,
            "cells_unrecoverable": self.cells_unrecoverable,
            "reasons": dict(self.reasons),
            "lookback": {"session": self.lookback_session.isoformat() if self.lookback_session else None,
                         "assets": list(self.lookback_assets)},
            "ranges": [r.to_dict() for r in self.ranges],
            "steps": [s.to_dict() for s in self.steps],
        }
