"""A reader process for the multi-process test: polls ``Ledger.health()`` as the portal would.

    python tests/ledger/_child_reader.py LEDGER.duckdb --duration 20 [--interval 0.1]

Prints ``ok <last_seq> <runs>`` per successful poll and ``error <type>: <message>`` per failed one.
"""

from __future__ import annotations

import argparse
import sys
import time

import ledger


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    failures = 0
    led = ledger.open(args.path, create=False, lock_timeout_seconds=60)
    deadline = time.monotonic() + args.duration
    while time.monotonic() < deadline:
        try:
            report = led.health()
            print(f"ok {report['last_seq']} {len(report['latest_runs'])}", flush=True)
        except Exception as e:
            failures += 1
            print(f"error {type(e).__name__}: {e}", flush=True)
        time.sleep(args.interval)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
