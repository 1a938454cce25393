"""A ledger-driven stand-in for ``daily`` / ``backfill``: the same commits the runner makes.

Each job run is recorded with ``Ledger.run``; every (asset, symbol) partition is committed with its
data rows (``data_writer``, partition replacement stamped with the run id) and its check, in one
transaction; snapshot and report files are staged to ``<final>.<run_id>.tmp`` (fsynced), committed,
then renamed over the final path (the pipeline's publish protocol, ``stages/jobs/_files.py``).

    python -m tests.soak.children.sim_writer --db X --data-root D --mode daily --seed 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import random
import sys
import time
import uuid
from pathlib import Path

from tests.soak.children import _ack

# Not the pipeline's watchlist, so the stand-in and the real pipeline never share a partition.
SYMBOLS = ("META", "GOOGL", "AMD", "BRK.B", "NFLX", "ORCL", "INTC", "CSCO", "PEP", "KO", "XOM", "JPM")


def _stage(data_root: Path, rel: str, data: bytes, run_id: str) -> tuple[Path, Path, str]:
    final = data_root / rel
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f"{final.name}.{run_id}.tmp")
    with temp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return final, temp, hashlib.sha256(data).hexdigest()


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        import ledger

        self.args = args
        self.rng = random.Random(args.seed)
        self.root = Path(args.data_root)
        self.led = ledger.open(args.db, lease_seconds=args.lease, lock_timeout_seconds=args.lock_timeout)
        _ack.emit("OPEN", {"pid": os.getpid()})
        # Weekdays stand in for sessions (exchange_calendars costs seconds to import).
        days = [dt.date(2025, 12, 31) - dt.timedelta(days=i) for i in range(args.window * 2)]
        self.sessions = sorted(d for d in days if d.weekday() < 5)[-args.window:]
        self.symbols = list(SYMBOLS[: args.symbols])
        self.trigger = {"daily": "cli", "backfill": "backfill", "appender": "python"}[args.mode]

    def pace(self) -> None:
        if self.args.pace:
            time.sleep(self.rng.uniform(0, 2 * self.args.pace))

    # -- jobs ----------------------------------------------------------------------------------
    def candles(self, day: dt.date, backfill_id: str | None) -> None:
        d = day.isoformat()
        with self.led.run("ingest_candles", triggered_by=self.trigger, partition_key=d, scope_keys=self.symbols,
                          backfill_id=backfill_id, provider="synthetic") as run:
            for sym in self.symbols:
                close = round(self.rng.uniform(50, 500), 2)
                ts = dt.datetime.combine(day, dt.time(20, 0), tzinfo=dt.UTC)
                m = run.materialized("candles_daily", d, sym, rows=1, min_data_time=ts.isoformat(),
                                     max_data_time=ts.isoformat(), data_version=f"{close:.2f}", code_version="1")
                c = run.check(asset_key="candles_daily", partition_key=d, scope_key=sym, check_name="ohlc_consistent",
                              severity="error", status="pass", materialization_id=m.event_id)

                def write(con, sym=sym, close=close, ts=ts, run_id=run.run_id):  # type: ignore[no-untyped-def]
                    con.execute("DELETE FROM candles_daily WHERE symbol = ? AND date = ?", [sym, day])
                    con.execute("INSERT INTO candles_daily (symbol, date, ts, open, high, low, close, volume, vwap, "
                                "trade_count, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [sym, day, ts, close, close * 1.01, close * 0.99, close, 1_000_000, close, 5000, run_id])

                run.commit([m, c], data_writer=write)
                run.heartbeat()
                self.pace()

    def snapshots(self, day: dt.date, backfill_id: str | None) -> None:
        d = day.isoformat()
        with self.led.run("snapshot_options", triggered_by=self.trigger, partition_key=d, scope_keys=self.symbols,
                          backfill_id=backfill_id, provider="synthetic") as run:
            for sym in self.symbols:
                rel = f"lake/options_snapshots/symbol={sym}/date={d}/chain.parquet"
                data = self.rng.randbytes(self.rng.randint(2_000, 40_000))
                final, temp, sha = _stage(self.root, rel, data, run.run_id)
                m = run.materialized("options_snapshot_file", d, sym, asset_kind="file", rows=400, bytes=len(data),
                                     path=rel, sha256=sha, code_version="1")
                c = run.check(asset_key="options_snapshot_file", partition_key=d, scope_key=sym,
                              check_name="chain_not_empty", severity="error", status="pass", materialization_id=m.event_id)

                def write(con, sym=sym, rel=rel, n=len(data), sha=sha, run_id=run.run_id):  # type: ignore[no-untyped-def]
                    con.execute("DELETE FROM options_snapshot_files WHERE symbol = ? AND date = ?", [sym, day])
                    con.execute("INSERT INTO options_snapshot_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [sym, day, rel, n, sha, 400, 100.0, "synthetic", run_id])

                run.commit([m, c], data_writer=write)
                os.replace(temp, final)  # publish only after the commit
                run.heartbeat()
                self.pace()

    def derived(self, day: dt.date, backfill_id: str | None) -> None:
        """One transaction for every symbol: a bigger commit."""
        d = day.isoformat()
        with self.led.run("compute_derived", triggered_by=self.trigger, partition_key=d, scope_keys=self.symbols,
                          backfill_id=backfill_id) as run:
            events = []
            for sym in self.symbols:
                m = run.materialized("derived_metrics", d, sym, rows=1, code_version="1")
                events += [m, run.check(asset_key="derived_metrics", partition_key=d, scope_key=sym,
                                        check_name="iv_in_range", severity="warn",
                                        status=self.rng.choice(["pass", "pass", "fail"]), materialization_id=m.event_id)]

            def write(con, run_id=run.run_id):  # type: ignore[no-untyped-def]
                con.execute("DELETE FROM derived_metrics WHERE date = ? AND symbol IN (SELECT unnest(?))",
                            [day, self.symbols])
                con.executemany("INSERT INTO derived_metrics (symbol, date, spot, atm_iv_near, run_id) VALUES (?, ?, ?, ?, ?)",
                                [[s, day, 100.0, 0.25, run_id] for s in self.symbols])

            run.complete(events, data_writer=write)

    def briefing(self, day: dt.date, backfill_id: str | None) -> None:
        d = day.isoformat()
        with self.led.run("build_briefing", triggered_by=self.trigger, partition_key=d, scope_keys=["ALL"],
                          backfill_id=backfill_id) as run:
            rel = f"reports/briefing/{d}.md"
            data = (f"# Briefing {d} (SYNTHETIC DATA)\n" + "x" * self.rng.randint(100, 5000)).encode()
            final, temp, sha = _stage(self.root, rel, data, run.run_id)
            m = run.materialized("briefing_markdown", d, "ALL", asset_kind="file", rows=1, bytes=len(data), path=rel,
                                 sha256=sha)

            def write(con, run_id=run.run_id):  # type: ignore[no-untyped-def]
                con.execute("DELETE FROM report_files WHERE kind = 'briefing_markdown' AND date = ?", [day])
                con.execute("INSERT INTO report_files VALUES ('briefing_markdown', ?, ?, ?, ?, ?)",
                            [day, rel, len(data), sha, run_id])

            run.complete([m], data_writer=write)
            os.replace(temp, final)

    def failing(self, day: dt.date, backfill_id: str | None) -> None:
        """A run that fails part-way: its committed partitions stay, the run is marked failed."""
        d = day.isoformat()
        try:
            with self.led.run("ingest_options_bars", triggered_by=self.trigger, partition_key=d,
                              scope_keys=self.symbols, backfill_id=backfill_id) as run:
                sym = self.symbols[0]
                run.commit([run.asset_failed("options_bars", d, sym, error_type="TransientProviderError",
                                             error_message="429 storm")])
                raise RuntimeError("provider gave up")
        except RuntimeError:
            pass

    def daily(self, day: dt.date, backfill_id: str | None = None) -> None:
        self.candles(day, backfill_id)
        self.snapshots(day, backfill_id)
        self.derived(day, backfill_id)
        if self.rng.random() < 0.2:
            self.failing(day, backfill_id)
        self.briefing(day, backfill_id)

    def backfill(self) -> None:
        import ledger

        k = self.rng.randint(2, 5)
        start = self.rng.randrange(0, len(self.sessions) - k)
        days = self.sessions[start:start + k]
        bf = str(uuid.uuid4())
        cells = [(a, day.isoformat(), s) for day in days for s in self.symbols
                 for a in ("candles_daily", "options_snapshot_file", "derived_metrics")]
        self.led.append([ledger.BackfillPlanned(backfill_id=bf, cells=cells, args={"start": days[0].isoformat()})])
        for day in days:
            self.daily(day, bf)
        self.led.append([ledger.BackfillFinished(backfill_id=bf, status="success")])

    def appender(self) -> None:
        """Small Python runs (the third writer in the contention harness)."""
        day = self.rng.choice(self.sessions)
        with self.led.run("python_probe", triggered_by="python", partition_key=day.isoformat()) as run:
            run.commit([run.skipped("options_bars", day.isoformat(), self.rng.choice(self.symbols), reason="probe")])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--mode", choices=("daily", "backfill", "appender"), default="daily")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--symbols", type=int, default=6)
    p.add_argument("--window", type=int, default=20, help="sessions the runs cycle over (re-runs replace)")
    p.add_argument("--lease", type=float, default=300.0)
    p.add_argument("--lock-timeout", type=float, default=60.0)
    p.add_argument("--pace", type=float, default=0.0, help="mean sleep between commits, seconds")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: --runs)")
    p.add_argument("--runs", type=int, default=10**9)
    p.add_argument("--keep-wal", action="store_true", help="skip checkpoints on close (WAL replay on reopen)")
    args = p.parse_args(argv)
    if args.keep_wal:
        _ack.keep_wal()
    _ack.install(print_ids=args.duration == 0)
    sim = Sim(args)
    deadline = time.monotonic() + args.duration if args.duration else None
    i = sim.rng.randrange(len(sim.sessions))
    done = 0
    ops_failed = 0
    while done < args.runs and (deadline is None or time.monotonic() < deadline):
        try:
            if args.mode == "daily":
                sim.daily(sim.sessions[i % len(sim.sessions)])
                i += 1
            elif args.mode == "backfill":
                sim.backfill()
            else:
                sim.appender()
                time.sleep(args.pace)
        except Exception as e:  # counted: the contention harness requires zero
            ops_failed += 1
            _ack.emit("ERR", {"type": type(e).__name__, "message": str(e)[:300]})
            if deadline is None:
                raise
        done += 1
    _ack.emit("STATS", _ack.stats({"runs": done, "failed": ops_failed}))
    return 1 if ops_failed else 0


if __name__ == "__main__":
    sys.exit(main())
