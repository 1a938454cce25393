"""Provider faults through the local Alpaca server (``tests/providers/fake_alpaca.py``).

``options-helper --provider alpaca ingest candles`` runs (in this process, through the CLI's
``main``) against the fake server while it misbehaves: a short 429 burst and a few 5xx (the run
must retry and succeed), slow responses (succeed), a 429 storm longer than the retry budget,
truncated JSON, wrong types and a pagination loop (the run must fail cleanly: exit 2-10 with one
line, the run ``failed``). After each: no data row of a failed run, a successful run's rows all
present, lineage holds and ``db verify`` passes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.soak.common import HarnessResult, lineage_violations

AS_OF = dt.date(2026, 6, 1)
BARS = "/v2/stocks/bars"


def _scenarios(Reply: Any, bar: Any) -> list[tuple[str, str, Callable[[Any], None]]]:
    good = {"bars": {"SPY": [bar(AS_OF, 500.0)]}, "next_page_token": None}

    def slow(fake: Any) -> None:
        original = fake.handle

        def handle(path: str, q: dict[str, str], headers: Any) -> Any:
            if path.startswith(BARS):
                time.sleep(1.5)
            return original(path, q, headers)

        fake.handle = handle

    return [
        ("429 burst (3), then data", "success", lambda f: f.fail(BARS, *[Reply(status=429, headers={"Retry-After": "0"})] * 3)),
        ("5xx (500, 502, 503), then data", "success",
         lambda f: f.fail(BARS, Reply(status=500, body={"message": "boom"}), Reply(status=502, body=b"<html>bad gateway</html>"),
                          Reply(status=503, body={}))),
        ("slow responses (1.5 s each)", "success", slow),
        ("429 storm beyond the retry budget", "failed",
         lambda f: f.fail(BARS, *[Reply(status=429, headers={"Retry-After": "1"})] * 400)),
        ("truncated JSON", "failed", lambda f: f.fail(BARS, *[Reply(status=200, body=b'{"bars": {"SPY": [{"t": "2026-')] * 20)),
        ("wrong types", "failed",
         lambda f: f.fail(BARS, *[Reply(status=200, body={"bars": {"SPY": [{**bar(AS_OF, 1.0), "o": "abc", "v": [1]}]},
                                                   "next_page_token": None})] * 20)),
        ("bars is a list, not a map", "failed",
         lambda f: f.fail(BARS, *[Reply(status=200, body={"bars": [1, 2, 3], "next_page_token": None})] * 20)),
        ("pagination loop (same token forever)", "failed",
         lambda f: f.fail(BARS, *[Reply(status=200, body={**good, "next_page_token": "again"})] * 600)),
        ("empty 200 body", "failed", lambda f: f.fail(BARS, *[Reply(status=200, body=b"")] * 20)),
    ]


def run(*, workdir: Path, quick: bool = False) -> HarnessResult:
    res = HarnessResult("alpaca_faults")
    t0 = time.monotonic()
    if importlib.util.find_spec("alpaca") is None or importlib.util.find_spec("tests.providers.fake_alpaca") is None:
        res.skipped = "alpaca-py or tests/providers/fake_alpaca.py is not installed"
        return res
    from frontends.cli.app import main as cli
    from ledger.connection import connect
    from ledger.verify import verify_file
    from tests.providers.fake_alpaca import KEY, SECRET, FakeAlpaca, Reply, bar

    rows = []
    partial = 0
    for name, expect, inject in _scenarios(Reply, bar):
        db = workdir / f"{len(rows):02d}.duckdb"
        cfg = workdir / f"{len(rows):02d}.toml"
        cfg.write_text("[alpaca]\nretry_budget_seconds = 4\nrequests_per_second = 200\n")
        with FakeAlpaca(page_size=50) as fake:
            days = [AS_OF - dt.timedelta(days=i) for i in range(420)]
            fake.add_stock_bars("SPY", [bar(d, 400 + i * 0.1) for i, d in enumerate(sorted(days)) if d.weekday() < 5])
            inject(fake)
            env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET, "APCA_API_DATA_URL": fake.url,
                   "APCA_API_BASE_URL": fake.url, "OPTIONS_HELPER_CONFIG": str(cfg)}
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            err = io.StringIO()
            t1 = time.perf_counter()
            try:
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                    rc = cli(["--duckdb-path", str(db), "--data-root", str(workdir / "data"), "--provider", "alpaca",
                              "ingest", "candles", "--as-of", AS_OF.isoformat(), "--symbols", "SPY"])
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            seconds = time.perf_counter() - t1
            requests = len(fake.seen(BARS))
        lines = [x for x in err.getvalue().splitlines() if x.strip()]
        last = lines[-1][:140] if lines else ""
        status = "?"
        if db.exists():
            with connect(db, read_only=True) as con:
                got = con.execute("SELECT status, run_id FROM meta.ingestion_runs WHERE job_name = 'ingest_candles' "
                                  "ORDER BY started_at DESC LIMIT 1").fetchone()
                status = got[0] if got else "no run"
                run_rows = con.execute("SELECT count(*) FROM candles_daily WHERE run_id = ?", [got[1]]).fetchone()[0] if got else 0
                lineage, _ = lineage_violations(con, None)
            res.violations += [f"{name}: {p}" for p in lineage]
            if status == "failed" and run_rows:
                partial += 1
                res.violations.append(f"{name}: the failed run left {run_rows} candle row(s)")
            if status == "success" and not run_rows:
                res.violations.append(f"{name}: the run succeeded without rows")
            report = verify_file(str(db))
            if not report.ok:
                res.violations += [f"{name}: db verify: {p}" for p in report.problems]
        if rc == 1:
            res.violations.append(f"{name}: exit 1 (internal error): {last}")
        if "loop" in name and requests > 50:
            res.violations.append(f"{name}: the adapter followed the same page token {requests} times "
                                  "(a repeated next_page_token is not detected)")
        if status != expect:
            res.violations.append(f"{name}: expected the run {expect}, got {status} (exit {rc}: {last})")
        rows.append((name, expect, status, rc, requests, f"{seconds:.1f}", last))
    res.figures["scenarios"] = len(rows)
    res.figures["partial commits"] = partial
    for name, expect, status, rc, requests, seconds, last in rows:
        res.figures[name] = f"{status} (expected {expect}), exit {rc}, {requests} requests, {seconds} s" + (
            f"; {last}" if rc else "")
    res.seconds = time.monotonic() - t0
    return res
