"""A reader polling the ledger: ``options-helper health --json`` (CLI ``main``), or the portal's
queries (``frontends.portal.queries``, the same per-query read-only connections the pages use).

    python -m tests.soak.children.reader --db X --mode health --duration 120 --every 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time

from tests.soak.children import _ack


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--mode", choices=("health", "portal"), default="health")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--every", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.mode == "health":
        _ack.count_lock_waits("ledger.duckdb_store", "ledger.connection")
        from frontends.cli.app import main as cli

        def op() -> None:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(io.StringIO()) as err:
                rc = cli(["--duckdb-path", args.db, "health", "--json"])
            if rc != 0:
                raise RuntimeError(f"health exited {rc}: {err.getvalue().strip()[:200]}")
    else:
        from frontends.portal import queries

        _ack.count_lock_waits("ledger.duckdb_store", "ledger.connection")  # the portal reads through the Ledger

        def op() -> None:
            queries.health(args.db)
            queries.runs(args.db)

    _ack.emit("OPEN")
    deadline = time.monotonic() + args.duration
    done = failed = 0
    latencies = []
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            op()
        except Exception as e:
            failed += 1
            _ack.emit("ERR", {"type": type(e).__name__, "message": str(e)[:300]})
        latencies.append(round(time.perf_counter() - t0, 4))
        done += 1
        time.sleep(args.every)
    _ack.emit("STATS", _ack.stats({"ops": done, "failed": failed, "latencies": latencies}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
