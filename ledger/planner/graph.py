"""The asset graph as the planner walks it: checked once, then ancestors and lookback assets."""

from __future__ import annotations

from collections.abc import Sequence

from ledger.errors import UsageError
from ledger.planner.model import PlannerAsset


def check_graph(graph: Sequence[PlannerAsset]) -> dict[str, PlannerAsset]:
    """The graph by key, after checking it is in topological order with lags of 0 or 1."""
    by_key: dict[str, PlannerAsset] = {}
    for a in graph:
        if a.key in by_key:
            raise UsageError(f"asset {a.key!r} appears twice in the planner graph")
        for up, lag in a.upstream:
            if up not in by_key:
                raise UsageError(f"asset {a.key!r} depends on {up!r}, which is not before it in the graph; "
                                 "pass the graph in topological order")
            if lag not in (0, 1):
                raise UsageError(f"asset {a.key!r}: lag {lag} on {up!r} is not supported (0 or 1)")
        by_key[a.key] = a
    return by_key


def ancestors(graph: Sequence[PlannerAsset], keys: Sequence[str]) -> list[str]:
    """``keys`` and every asset they depend on, in graph order."""
    by_key = check_graph(graph)
    wanted = set(keys)
    for a in reversed(graph):
        if a.key in wanted:
            wanted.update(up for up, _ in a.upstream)
    return [k for k in by_key if k in wanted]


def lookback_assets(graph: Sequence[PlannerAsset]) -> list[str]:
    """Assets needed at the session before the window: lag-1 targets and their same-session inputs."""
    wanted = {up for a in graph for up, lag in a.upstream if lag == 1}
    for a in reversed(graph):
        if a.key in wanted:
            wanted.update(up for up, lag in a.upstream if lag == 0)
    return [a.key for a in graph if a.key in wanted]
