"""A small, realistic ledger for the portal tests, written through the ledger API.

Five sessions ending at the latest completed XNYS session; every job runs each session for three
symbols; one failed check; three failed runs sharing one error fingerprint (their messages differ
only in numbers and dates) and one with another; one abandoned run. Warehouse tables for the
Symbol page are written in the same transactions (``data_writer``) with ``CREATE TABLE IF NOT
EXISTS`` so the seed works before and after the data-table migration lands.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import ledger
from ledger.calendar import TradingCalendar
from ledger.events import RunSucceeded
from stages import registry

SYMBOLS = ("AAPL", "MSFT", "SPY")
SESSIONS = 5

_DATA_DDL = """
CREATE TABLE IF NOT EXISTS main.candles_daily (symbol VARCHAR, date DATE, ts TIMESTAMPTZ, open DOUBLE,
    high DOUBLE, low DOUBLE, close DOUBLE, volume BIGINT, vwap DOUBLE, trade_count BIGINT, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS main.derived_metrics (symbol VARCHAR, date DATE, spot DOUBLE, pc_oi DOUBLE,
    pc_vol DOUBLE, call_wall DOUBLE, put_wall DOUBLE, gamma_peak_strike DOUBLE, atm_iv_near DOUBLE,
    em_near_pct DOUBLE, skew_near_pp DOUBLE, rv_20d DOUBLE, rv_60d DOUBLE, iv_rv_20d DOUBLE,
    atm_iv_near_percentile DOUBLE, iv_term_slope DOUBLE, iv_rank_252d DOUBLE, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS main.options_flow (symbol VARCHAR, from_date DATE, to_date DATE, window_size INTEGER,
    group_by VARCHAR, row_key VARCHAR, as_of DATE, contract_symbol VARCHAR, expiry DATE, option_type VARCHAR,
    strike DOUBLE, delta_oi DOUBLE, delta_oi_notional DOUBLE, volume_notional DOUBLE, delta_notional DOUBLE,
    n_pairs INTEGER, flow_class VARCHAR, run_id VARCHAR);
CREATE TABLE IF NOT EXISTS main.report_files (kind VARCHAR, date DATE, path VARCHAR, bytes BIGINT,
    sha256 VARCHAR, run_id VARCHAR);
"""


_COLUMNS = {
    "candles_daily": ("symbol", "date", "ts", "open", "high", "low", "close", "volume", "vwap", "trade_count", "run_id"),
    "derived_metrics": ("symbol", "date", "spot", "pc_oi", "pc_vol", "call_wall", "put_wall", "gamma_peak_strike",
                        "atm_iv_near", "em_near_pct", "skew_near_pp", "rv_20d", "rv_60d", "iv_rv_20d",
                        "atm_iv_near_percentile", "iv_term_slope", "iv_rank_252d", "run_id"),
    "options_flow": ("symbol", "from_date", "to_date", "window_size", "group_by", "row_key", "as_of",
                     "contract_symbol", "expiry", "option_type", "strike", "delta_oi", "delta_oi_notional",
                     "volume_notional", "delta_notional", "n_pairs", "flow_class", "run_id"),
    "report_files": ("kind", "date", "path", "bytes", "sha256", "run_id"),
}


class _Clock:
    """A settable clock: the seed decides every recorded_at."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> dt.datetime:
        self.now = self.now + dt.timedelta(seconds=seconds)
        return self.now


def sessions(count: int = SESSIONS, now: dt.datetime | None = None) -> list[dt.date]:
    cal = TradingCalendar.xnys()
    latest = cal.latest_completed_session(now or dt.datetime.now(dt.UTC), 30)
    return cal.last_sessions(count, latest)


def _data_writer(symbol_rows: dict[str, list[tuple[Any, ...]]]) -> Any:
    def write(con: Any) -> None:
        con.execute(_DATA_DDL)
        for table, rows in symbol_rows.items():
            if rows:
                cols = _COLUMNS[table]
                marks = ", ".join("?" * len(cols))
                con.executemany(f"INSERT INTO main.{table} ({', '.join(cols)}) VALUES ({marks})", rows)
    return write


def seed(path: str | Path, *, data_root: str | Path | None = None, symbols: tuple[str, ...] = SYMBOLS) -> dict[str, Any]:
    """Write the seed ledger at ``path``; returns the ids the tests assert on."""
    days = sessions()
    cal = TradingCalendar.xnys()
    clock = _Clock(cal.session_close(days[0]) + dt.timedelta(minutes=40))
    led = ledger.open(path, clock=clock, lease_seconds=600)
    root = Path(data_root) if data_root else Path(path).parent / "data"
    info: dict[str, Any] = {"sessions": [d.isoformat() for d in days], "symbols": list(symbols), "run_ids": [],
                            "failed_run_ids": [], "data_root": str(root)}
    _write(led, clock, cal, days, symbols, root, info)
    info["last_seq"] = led.last_seq()
    return info


def _write(led: Any, clock: _Clock, cal: TradingCalendar, days: list[dt.date], symbols: tuple[str, ...],
           root: Path, info: dict[str, Any]) -> None:
    base = {"AAPL": 190.0, "MSFT": 410.0, "SPY": 520.0}
    for i, day in enumerate(days):
        clock.now = cal.session_close(day) + dt.timedelta(minutes=40)
        part = day.isoformat()
        # every job's run of the session: all started in one commit, all finished in the next
        contexts = []
        for spec in registry.JOBS:
            asset = registry.asset(spec.asset_key)
            scopes = list(symbols) if asset.per_symbol else [registry.ALL_SCOPE]
            contexts.append((spec, asset, scopes, led.run(
                spec.name, triggered_by="cli", provider="synthetic", partition_key=part, scope_keys=scopes,
                code_version=spec.code_version, args={"as_of": part, "symbols": scopes, "api_key": "PKTEST1234"})))
        led.append([ctx.started for *_, ctx in contexts])
        clock.tick(2 + i)
        events: list[Any] = []
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for spec, asset, scopes, run in contexts:
            for scope in scopes:
                mat = run.materialized(spec.asset_key, part, scope, rows=100 + i, bytes=4096,
                                       code_version=spec.code_version, min_data_time=f"{part}T00:00:00+00:00",
                                       max_data_time=f"{part}T21:00:00+00:00", asset_kind=asset.kind)
                events.append(mat)
                failing = spec.asset_key == "options_snapshot_file" and scope == "MSFT" and i == len(days) - 1
                events.append(run.check(asset_key=spec.asset_key, partition_key=part, scope_key=scope,
                                        check_name="row_count_positive" if not failing else "spot_matches_candle",
                                        severity="error" if not failing else "warn",
                                        status="fail" if failing else "pass",
                                        message="spot differs from the close by 3.2%" if failing else "",
                                        metrics={"rows": 100 + i}, materialization_id=mat.event_id))
                px = base.get(scope, 100.0) * (1 + 0.01 * math.sin(i + len(scope)))
                if spec.asset_key == "candles_daily":
                    rows.setdefault("candles_daily", []).append(
                        (scope, day, clock.now, px * 0.99, px * 1.01, px * 0.98, px, 1_000_000 + i, px, 5000,
                         run.run_id))
                if spec.asset_key == "derived_metrics":
                    rows.setdefault("derived_metrics", []).append(
                        (scope, day, px, 0.8, 0.9, px * 1.05, px * 0.95, px, 0.22 + 0.01 * i, 0.03, 2.0, 0.18,
                         0.2, 1.2, 40.0 + i, 0.01, 35.0 + i, run.run_id))
                if spec.asset_key == "options_flow":
                    for k, strike in enumerate((px * 0.95, px, px * 1.05)):
                        for kind in ("call", "put"):
                            rows.setdefault("options_flow", []).append(
                                (scope, days[max(0, i - 1)], day, 1, "strike", f"{kind}-{k}", day, None, None,
                                 kind, round(strike), 100.0 * (k - 1), 1e5 * (k - 1), 2e5, 5e4 * (k - 1), 1,
                                 "building", run.run_id))
            if spec.asset_key in ("briefing_markdown", "dashboard_views"):
                ext = "md" if spec.asset_key == "briefing_markdown" else "html"
                sub = "briefing" if ext == "md" else "dashboard"
                rel = f"reports/{sub}/{part}.{ext}"
                f = root / rel
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text("# Briefing (synthetic data)\n" if ext == "md" else "<html>synthetic</html>")
                rows.setdefault("report_files", []).append(
                    (spec.asset_key, day, rel, f.stat().st_size, "0" * 64, run.run_id))
            events.append(RunSucceeded(run_id=run.run_id))
            info["run_ids"].append(run.run_id)
        led.append(events, data_writer=_data_writer(rows))
        if i == 0:
            info["first_day_seq"] = led.last_seq()
        # the same failure, three sessions running, with different numbers: one fingerprint
        clock.tick(60)
        if i >= len(days) - 3:
            try:
                with led.run("ingest_options_bars", triggered_by="schedule", partition_key=part,
                             scope_keys=["SPY"], args={"as_of": part}) as run:
                    clock.tick(3)
                    raise TimeoutError(f"provider timed out after {30 + i} s fetching SPY bars for {part}")
            except TimeoutError:
                info["failed_run_ids"].append(run.run_id)
    # another failure kind
    clock.tick(30)
    try:
        with led.run("compute_flow", triggered_by="python", partition_key=days[-1].isoformat(),
                     scope_keys=["AAPL"]) as run:
            raise ValueError("no previous snapshot for AAPL")
    except ValueError:
        info["other_failed_run_id"] = run.run_id
    # an abandoned run: started with a short lease, never finished, reaped by the next writer
    clock.tick(10)
    ctx = led.run("build_dashboard", triggered_by="dagster", partition_key=days[-1].isoformat(),
                  scope_keys=["ALL"], lease_seconds=30)
    ctx.__enter__()
    info["abandoned_run_id"] = ctx.run_id
    clock.tick(600)
    led.reap()


__all__ = ["SESSIONS", "SYMBOLS", "seed", "sessions"]
