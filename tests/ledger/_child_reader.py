"""A reader process for the multi-process tests: polls the ledger, read-only, as the portal and a
follower (the Dagster sensor) would.

    python tests/ledger/_child_reader.py LEDGER.duckdb --duration 20 [--interval 0.1] [--follow] [--stop-file PATH]

Per poll: ``health()``; with ``--follow``, then ``events(since=last, limit=--batch)`` from the last
seq it has seen until it has caught up. Prints
``ok <last_seq> <runs>`` per successful health poll, ``followed <seq>`` for the last seq it has
followed, ``gap <expected> <got>`` if the followed events skip or repeat a seq, and
``error <type>: <message>`` per failed poll.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import ledger


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--follow", action="store_true", help="also follow the events after each health poll")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--stop-file", default=None, help="poll once more after this file appears, then stop")
    args = parser.parse_args()
    failures = 0
    led = ledger.open(args.path, read_only=True, lock_timeout_seconds=60)
    from ledger.calendar import TradingCalendar

    TradingCalendar.xnys()  # built once per process, before the clock starts: polls measure the lock, not imports
    followed = 0
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        stopping = args.stop_file is not None and os.path.exists(args.stop_file)
        try:
            report = led.health()
            print(f"ok {report['last_seq']} {len(report['latest_runs'])}", flush=True)
            while args.follow and (batch := led.events(since=followed, limit=args.batch)):  # catch up by batches
                for e in batch:
                    if e.seq != followed + 1:
                        print(f"gap {followed + 1} {e.seq}", flush=True)
                    followed = e.seq
            if args.follow:
                print(f"followed {followed}", flush=True)
        except Exception as e:
            failures += 1
            print(f"error {type(e).__name__}: {e}", flush=True)
        if stopping:
            break
        time.sleep(args.interval)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
