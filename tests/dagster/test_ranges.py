"""``dagster_partition_ranges``: a gap plan's ranges as Dagster partition ranges, per asset."""

from __future__ import annotations

import pytest

from frontends.dagster.ranges import dagster_partition_ranges
from stages import registry

pytestmark = pytest.mark.dagster


def _range(asset: str, scope: str, start: str, end: str, reason: str = "missing") -> dict[str, object]:
    return {"asset_key": asset, "scope_key": scope, "start": start, "end": end, "sessions": 0, "reason": reason}


def test_symbols_collapse_and_sessions_merge_across_closures() -> None:
    plan = {"ranges": [
        _range(registry.OPTIONS_FLOW, "AAPL", "2025-01-06", "2025-01-08"),
        _range(registry.OPTIONS_FLOW, "MSFT", "2025-01-10", "2025-01-14", "stale"),  # 01-09: market closed
        _range(registry.CANDLES_DAILY, "AAPL", "2025-01-17", "2025-01-17"),
        _range(registry.CANDLES_DAILY, "AAPL", "2025-01-21", "2025-01-22"),  # 01-20: MLK day -> one range
        _range(registry.OPTIONS_SNAPSHOT_FILE, "AAPL", "2024-01-02", "2024-01-05", "unrecoverable"),
    ]}
    out = dagster_partition_ranges(plan)
    assert [(r["asset_key"], r["partition_range"], r["sessions"]) for r in out] == [
        (registry.CANDLES_DAILY, "2025-01-17...2025-01-22", 3),
        (registry.OPTIONS_FLOW, "2025-01-06...2025-01-14", 6),
    ]
    flow = out[1]
    assert flow["symbols"] == ["AAPL", "MSFT"] and flow["reasons"] == ["missing", "stale"]
    assert flow["job"] == registry.COMPUTE_FLOW
    assert flow["command"] == ("dagster job backfill -m frontends.dagster.defs -j compute_flow "
                               "--from 2025-01-06 --to 2025-01-14 --noprompt")


def test_empty_plan_and_steps_fallback() -> None:
    assert dagster_partition_ranges({"ranges": [], "steps": []}) == []
    steps = {"steps": [{"step": 1, "job": registry.BUILD_BRIEFING, "asset_key": registry.BRIEFING_MARKDOWN,
                        "symbols": [], "start": "2026-11-23", "end": "2026-11-25", "sessions": 3, "command": "x"}]}
    [only] = dagster_partition_ranges(steps)
    assert only["partition_range"] == "2026-11-23...2026-11-25" and only["sessions"] == 3


def test_ranges_are_valid_dagster_partition_ranges() -> None:
    dg = pytest.importorskip("dagster")
    from frontends.dagster.defs.partitions import SESSIONS

    [r] = dagster_partition_ranges({"ranges": [_range(registry.DERIVED_METRICS, "SPY", "2025-12-22", "2026-01-06")]})
    keys = SESSIONS.get_partition_keys_in_range(dg.PartitionKeyRange(r["start"], r["end"]))
    assert len(keys) == r["sessions"] and "2025-12-25" not in keys and "2026-01-01" not in keys
