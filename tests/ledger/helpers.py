"""Builders shared by the ledger tests: a fixed clock, realistic runs, projection snapshots."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from hypothesis import Phase, settings

from ledger.events import AssetMaterialized, ChecksEvaluated, Event, RunStarted, RunSucceeded
from tests.ledger.model import KEYS, TABLES, ModelLedger

T0 = dt.datetime(2025, 3, 6, 21, 0, tzinfo=dt.UTC)
SESSION = "2025-03-06"
SYMBOLS = ("AAPL", "BRK.B", "MSFT", "SPY", "TSLA", "NVDA", "QQQ")

# Hypothesis budgets: DuckDB costs ~10 ms per projection statement, so the default stays small.
# HYPOTHESIS_PROFILE=ci or nightly runs longer. The default state machine does not shrink a failure
# (shrinking steps that each commit to a file takes minutes): it reports the steps as generated, and
# Hypothesis's example database replays them first on the next run; ci and nightly shrink.
_PROFILES = {
    "default": dict(max_examples=10, stateful_step_count=15),
    "ci": dict(max_examples=60, stateful_step_count=40),
    "nightly": dict(max_examples=300, stateful_step_count=80),
}
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
_budget = _PROFILES.get(PROFILE, _PROFILES["default"])
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
STATEFUL = settings(max_examples=_budget["max_examples"], stateful_step_count=_budget["stateful_step_count"],
                    deadline=None, **({"phases": _NO_SHRINK} if PROFILE == "default" else {}))
# Properties over pure code (no database) can afford many more examples.
PURE = settings(max_examples=_budget["max_examples"] * 25, deadline=None)
DB_PROPERTY = settings(max_examples=_budget["max_examples"] * 2, deadline=None)


class FixedClock:
    """An injectable clock that only moves when told to."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


def realistic_run(
    run_id: str,
    *,
    n_materializations: int = 5,
    n_checks: int = 5,
    partition_key: str = SESSION,
    asset_key: str = "candles_daily",
    job_name: str = "ingest_candles",
    lease_seconds: float = 300.0,
    finish: bool = True,
) -> list[Event]:
    """One run as the CLI records it: started, a materialization per symbol, the checks of each in one
    event linked to it, succeeded."""
    mats = [
        AssetMaterialized(
            run_id=run_id, asset_key=asset_key, partition_key=partition_key,
            scope_key=SYMBOLS[i % len(SYMBOLS)], rows=250 + i, bytes=4096 * (i + 1),
            min_data_time=f"{partition_key}T00:00:00+00:00", max_data_time=f"{partition_key}T00:00:00+00:00",
            code_version="1", data_version=f"dv-{i}", extra={"provider": "synthetic"},
        )
        for i in range(n_materializations)
    ]
    # check i validates materialization i mod n; each materialization's checks in one event
    results: dict[int, list[dict[str, Any]]] = {}
    for i in range(n_checks):
        results.setdefault(i % len(mats) if mats else -1, []).append(dict(
            check_name=f"check_{i}", severity="error" if i % 2 else "warn", status="pass" if i % 3 else "fail",
            metrics={"n": i}, message="ok" if i % 3 else "gap"))
    checks = [
        ChecksEvaluated(
            run_id=run_id, asset_key=asset_key, partition_key=partition_key,
            scope_key=mats[m].scope_key if m >= 0 else "ALL", checks=listed,
            materialization_id=mats[m].event_id if m >= 0 else None,
        )
        for m, listed in results.items()
    ]
    events: list[Event] = [RunStarted(run_id=run_id, job_name=job_name, triggered_by="cli",
                                      scope_keys=[m.scope_key for m in mats], partition_key=partition_key,
                                      lease_seconds=lease_seconds, args={"symbols": "AAPL"})]
    events += mats + checks
    if finish:
        events.append(RunSucceeded(run_id=run_id))
    return events


def keyed(table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in primary-key order, so two backends compare independently of SQL collation."""
    keys = KEYS[table]
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))


def snapshot(store: Any, *, as_of_seq: int | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every projection of ``store``, keyed-ordered (a DuckDB store folds ``as_of_seq`` once)."""
    from ledger.duckdb_store import DuckDBEventStore
    from ledger.queries import normalise_rows

    if as_of_seq is not None and isinstance(store, DuckDBEventStore):
        with store.as_of(as_of_seq) as con:
            return {t: keyed(t, normalise_rows(con.execute(f"SELECT * FROM meta.{t}"))) for t in TABLES}
    if isinstance(store, ModelLedger):
        return {t: keyed(t, rows) for t, rows in store.projections(as_of_seq=as_of_seq).items()}
    return {t: keyed(t, store.projection(t, as_of_seq=as_of_seq)) for t in TABLES}


def log_tail(store: Any) -> list[tuple[int, str]]:
    """(seq, event_type) of the whole log: what 'nothing was written' compares."""
    return [(s.seq, s.event_type) for s in store.read()]


def differences(got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Where two snapshots differ, one line per (table, key, column), to read in a failure."""
    out = []
    for table in TABLES:
        keys = KEYS[table]
        g = {tuple(r[k] for k in keys): r for r in got.get(table, [])}
        w = {tuple(r[k] for k in keys): r for r in want.get(table, [])}
        for key in sorted(g.keys() | w.keys(), key=str):
            if key not in g or key not in w:
                out.append(f"{table} {key}: {'missing' if key not in g else 'unexpected'}")
                continue
            out += [f"{table} {key} {c}: got {g[key].get(c)!r}, want {w[key].get(c)!r}"
                    for c in sorted(g[key].keys() | w[key].keys()) if g[key].get(c) != w[key].get(c)]
    return out
