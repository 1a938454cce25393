"""Benchmark: every portal page rendered with Streamlit's AppTest on a ledger of 1,000,000 events.

Run with ``python -m tests.bench.bench_portal`` (``--quick``: 100,000 events). The ledger is built
with batched appends (the file opened per batch of ~20,000 events) of realistic run, asset and check
events: 16 symbols, every job every session back from the latest completed one, about 2% of runs
failing with one of a few fingerprints, a failed check now and then. Each page is rendered once to
warm Streamlit's imports, then N times with the query cache cleared before each render (so every
query really runs); the figure is the median render time. Target: under 1 s per page.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ledger.calendar import TradingCalendar
from ledger.duckdb_store import DuckDBEventStore
from ledger.events import AssetFailed, AssetMaterialized, ChecksEvaluated, RunFailed, RunStarted, RunSucceeded
from ledger.fingerprint import fingerprint
from ledger.ids import new_uuid7
from stages import registry

SYMBOLS = ("AAPL", "AMZN", "GOOG", "IWM", "META", "MSFT", "NVDA", "QQQ", "SPY", "TSLA", "AMD", "NFLX", "JPM",
           "XOM", "DIA", "BRK.B")
PAGES = ("views/health.py", "views/gaps.py", "views/runs.py", "views/data.py", "views/symbol.py")
APP = Path(__file__).resolve().parents[2] / "frontends" / "portal" / "app.py"
ERRORS = (
    ("TimeoutError", "provider timed out after {n} s fetching {sym} bars for {day}"),
    ("ValueError", "no previous snapshot for {sym} on {day}"),
    ("HTTPError", "429 Too Many Requests for {sym} (retry after {n} s)"),
)


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2004, 1, 2, 22, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _session_events(day: dt.date, i: int) -> list[Any]:
    """Every job's run for one session: started, materialized per scope, checked, finished."""
    part = day.isoformat()
    out: list[Any] = []
    for j, spec in enumerate(registry.JOBS):
        asset = registry.asset(spec.asset_key)
        scopes = SYMBOLS if asset.per_symbol else (registry.ALL_SCOPE,)
        rid = new_uuid7()
        out.append(RunStarted(run_id=rid, job_name=spec.name, triggered_by="schedule", provider="synthetic",
                              partition_key=part, scope_keys=scopes, code_version=spec.code_version,
                              args={"as_of": part, "symbols": list(scopes)}, app_version="0.1.0"))
        failed = (i * 7 + j) % 50 == 0
        for k, scope in enumerate(scopes):
            if failed and k == 0:
                out.append(AssetFailed(run_id=rid, asset_key=spec.asset_key, partition_key=part, scope_key=scope,
                                       error_type="TimeoutError", error_message="provider timed out"))
                continue
            mat = AssetMaterialized(run_id=rid, asset_key=spec.asset_key, partition_key=part, scope_key=scope,
                                    asset_kind=asset.kind, rows=250 + k, bytes=65_536,
                                    min_data_time=f"{part}T14:30:00+00:00", max_data_time=f"{part}T21:00:00+00:00",
                                    code_version=spec.code_version)
            out.append(mat)
            bad = (i + k + j) % 97 == 0
            out.append(ChecksEvaluated(run_id=rid, asset_key=spec.asset_key, partition_key=part, scope_key=scope,
                                       checks=[{"check_name": "row_count_positive" if not bad else "spot_matches_candle",
                                                "severity": "error" if not bad else "warn",
                                                "status": "fail" if bad else "pass", "metrics": {"rows": 250 + k},
                                                "message": "spot differs by 3%" if bad else ""}],
                                       materialization_id=mat.event_id))
        if failed:
            etype, template = ERRORS[(i + j) % len(ERRORS)]
            msg = template.format(n=30 + i % 20, sym=scopes[0], day=part)
            out.append(RunFailed(run_id=rid, error_type=etype, error_message=msg,
                                 error_fingerprint=fingerprint(etype, msg), stack_hash="bench"))
        else:
            out.append(RunSucceeded(run_id=rid))
    return out


def build(path: Path, events: int, *, batch: int = 20_000) -> dict[str, Any]:
    """A ledger of about ``events`` events ending at the latest completed session."""
    cal = TradingCalendar.xnys()
    per_session = len(_session_events(dt.date(2026, 1, 2), 1))
    latest = cal.latest_completed_session(dt.datetime.now(dt.UTC), 30)
    days = cal.last_sessions(max(1, events // per_session), latest)
    clock = _Clock()
    store = DuckDBEventStore(path, clock=clock, auto_reap=False)
    t0 = time.perf_counter()
    pending: list[Any] = []
    for i, day in enumerate(days):
        pending.extend(_session_events(day, i))
        if len(pending) >= batch or i == len(days) - 1:
            clock.now = cal.session_close(day) + dt.timedelta(minutes=45)
            store.append(pending)  # the file opened per batch
            pending = []
    return {"events": store.last_seq(), "sessions": len(days), "build_seconds": round(time.perf_counter() - t0, 1)}


def measure(path: Path, *, repeats: int) -> dict[str, dict[str, float]]:
    """Median (and min/max) AppTest render time per page, query cache cleared before each render."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["OPTIONS_HELPER_DUCKDB_PATH"] = str(path)
    os.environ["OPTIONS_HELPER_DATA_ROOT"] = str(path.parent / "data")
    out: dict[str, dict[str, float]] = {}
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()  # warm: imports, calendar, first connection
    for page in PAGES:
        at.switch_page(page).run()
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
        times = []
        for _ in range(repeats):
            st.cache_data.clear()
            t0 = time.perf_counter()
            at.switch_page(page).run()
            times.append(time.perf_counter() - t0)
        cached = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            at.switch_page(page).run()
            cached.append(time.perf_counter() - t0)
        name = page.removeprefix("views/").removesuffix(".py")
        out[name] = {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
                     "max_s": round(max(times), 3), "cached_median_s": round(statistics.median(cached), 3)}
    return out


def run(quick: bool = False) -> dict[str, Any]:
    events = 100_000 if quick else 1_000_000
    repeats = 3 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        built = build(path, events)
        print(f"ledger: {built['events']:,} events over {built['sessions']:,} sessions, "
              f"built in {built['build_seconds']} s", file=sys.stderr)
        pages = measure(path, repeats=repeats)
    print(f"{'page':<10} {'median':>8} {'min':>8} {'max':>8} {'cached':>8}   (AppTest render, seconds)")
    for name, f in pages.items():
        print(f"{name:<10} {f['median_s']:>8.3f} {f['min_s']:>8.3f} {f['max_s']:>8.3f} {f['cached_median_s']:>8.3f}")
    worst = max(f["median_s"] for f in pages.values())
    print(f"slowest page median {worst:.3f} s (target < 1 s) on {built['events']:,} events")
    return {"ledger": built, "pages": pages, "slowest_median_s": worst, "target_s": 1.0,
            "meets_target": worst < 1.0}


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
