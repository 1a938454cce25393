"""The real pipeline as a kill / contention child: ``daily`` or ``backfill`` through the CLI's
``main``, with every ledger commit acknowledged on stdout (``children/_ack.py``).

    python -m tests.soak.children.pipeline_child --db X --data-root D --mode daily --seed 3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import io
import os
import random
import sys
import time
from pathlib import Path

from tests.soak.children import _ack


def available() -> bool:
    """True once `options-helper daily` and `options-helper backfill` have landed."""
    try:
        if importlib.util.find_spec("stages.runner") is None or importlib.util.find_spec("stages.backfills") is None:
            return False
        import typer

        from frontends.cli.app import app

        names = {c.name for c in typer.main.get_command(app).commands.values()}  # type: ignore[attr-defined]
        return {"daily", "backfill"} <= names
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--data-root", required=True)
    p.add_argument("--mode", choices=("daily", "backfill"), default="daily")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lease", type=float, default=300.0)
    p.add_argument("--symbols", default="SPY,AAPL,MSFT")
    p.add_argument("--duration", type=float, default=0.0)
    p.add_argument("--runs", type=int, default=10**9)
    p.add_argument("--keep-wal", action="store_true", help="skip checkpoints on close (WAL replay on reopen)")
    args = p.parse_args(argv)
    if args.keep_wal:
        _ack.keep_wal()
    cfg = Path(args.data_root).parent / f"soak-{os.getpid()}.toml"
    cfg.write_text(f"[ledger]\nlease_seconds = {args.lease}\n[watchlists]\ndefault = {args.symbols.split(',')!r}\n"
                   .replace("'", '"'))
    os.environ["OPTIONS_HELPER_CONFIG"] = str(cfg)
    _ack.install(print_ids=args.duration == 0)
    from frontends.cli.app import main as cli
    from ledger.calendar import TradingCalendar

    rng = random.Random(args.seed)
    sessions = TradingCalendar.xnys().last_sessions(15, dt.date(2026, 6, 30))
    base = ["--duckdb-path", args.db, "--data-root", args.data_root, "--provider", "synthetic"]
    _ack.emit("OPEN", {"pid": os.getpid()})
    deadline = time.monotonic() + args.duration if args.duration else None
    done = failed = 0
    try:
        while done < args.runs and (deadline is None or time.monotonic() < deadline):
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                rc = _one(cli, base, args, rng, sessions)
            done += 1
            if rc != 0:
                failed += 1
                _ack.emit("ERR", {"rc": rc, "output": sink.getvalue()[-300:]})
    finally:
        cfg.unlink(missing_ok=True)
    _ack.emit("STATS", _ack.stats({"runs": done, "failed": failed}))
    return 1 if failed else 0


def _one(cli, base, args, rng, sessions):  # type: ignore[no-untyped-def]
    """One `daily` for a random session, or one `backfill` over 2-4 sessions; the exit code."""
    if args.mode == "daily":
        return cli([*base, "daily", "--as-of", rng.choice(sessions).isoformat(), "--symbols", args.symbols])
    i = rng.randrange(0, len(sessions) - 3)
    return cli([*base, "backfill", "--start", sessions[i].isoformat(),
                "--end", sessions[i + rng.randint(1, 3)].isoformat(), "--symbols", args.symbols])


if __name__ == "__main__":
    sys.exit(main())
