"""A writer process for the kill and multi-process tests (run with ``sys.executable``).

    python tests/ledger/_child_writer.py LEDGER.duckdb [--lease 1.5] [--duration 0] [--tag A]

Records runs in a loop, each as the CLI does (start; then materializations, checks, the data rows
and success in one transaction), and prints ``committed <run_id>`` (flushed) only after the commit
returned, so the parent knows exactly what was acknowledged. ``--duration 0`` loops until killed.
Any error is printed as ``error <type>: <message>`` and the process exits 1.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import duckdb

import ledger

SYMBOLS = ("AAPL", "MSFT", "SPY", "TSLA", "NVDA")
SESSIONS = ("2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06", "2025-03-07")


def record_one(led: ledger.Ledger, n: int, tag: str) -> str:
    session = SESSIONS[n % len(SESSIONS)]
    with led.run("ingest_candles", triggered_by="cli", scope_keys=SYMBOLS, partition_key=session,
                 args={"writer": tag, "n": n}) as run:
        mats = [run.materialized("candles_daily", session, s, rows=1, max_data_time=f"{session}T00:00:00+00:00",
                                 data_version=f"{tag}-{n}") for s in SYMBOLS]
        checks = [run.check(asset_key="candles_daily", partition_key=session, scope_key=m.scope_key,
                            check_name="non_empty", severity="error", status="pass",
                            materialization_id=m.event_id) for m in mats]

        def write_rows(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("CREATE TABLE IF NOT EXISTS main.kill_test_rows "
                        "(run_id VARCHAR, symbol VARCHAR, session DATE, close DOUBLE)")
            con.executemany("INSERT INTO main.kill_test_rows VALUES (?, ?, ?, ?)",
                            [[run.run_id, s, session, 100.0 + n] for s in SYMBOLS])

        run.complete([*mats, *checks], data_writer=write_rows)
    return run.run_id


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--lease", type=float, default=1.5)
    parser.add_argument("--duration", type=float, default=0.0)
    parser.add_argument("--tag", default="A")
    args = parser.parse_args()
    try:
        led = ledger.open(args.path, lease_seconds=args.lease, lock_timeout_seconds=60)
        print("ready", flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        for n in itertools.count():
            if deadline is not None and time.monotonic() >= deadline:
                break
            run_id = record_one(led, n, args.tag)
            print(f"committed {run_id}", flush=True)
    except Exception as e:  # the parent fails the test on this line
        print(f"error {type(e).__name__}: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
