"""Shared pieces of the soak harnesses: child processes, invariant checks, figures, tables."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

REPO = Path(__file__).resolve().parents[2]

# asset key -> (data table, scope column, partition column, extra filter) for the lineage joins.
ASSET_TABLES: dict[str, tuple[str, str, str, str]] = {
    "candles_daily": ("candles_daily", "symbol", "date", ""),
    "options_bars": ("options_bars", "underlying", "date", ""),
    "options_snapshot_file": ("options_snapshot_files", "symbol", "date", ""),
    "options_flow": ("options_flow", "symbol", "to_date", ""),
    "derived_metrics": ("derived_metrics", "symbol", "date", ""),
    "briefing_markdown": ("report_files", "'ALL'", "date", "kind = 'briefing_markdown'"),
    "dashboard_views": ("report_files", "'ALL'", "date", "kind = 'dashboard_views'"),
}
FILE_TABLES = ("options_snapshot_files", "report_files")


@attrs.define
class HarnessResult:
    """One harness's outcome: figures for the table, violations (each fails `make soak`)."""

    name: str
    figures: dict[str, Any] = attrs.field(factory=dict)
    violations: list[str] = attrs.field(factory=list)
    skipped: str | None = None
    notes: list[str] = attrs.field(factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIPPED"
        return "FAIL" if self.violations else "ok"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env["DAGSTER_DISABLE_TELEMETRY"] = "1"
    env.update(extra or {})
    return env


class Child:
    """A child process whose stdout lines are collected by a thread (never blocks the parent)."""

    def __init__(self, module: str, args: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=str(cwd or REPO), env=child_env(env), bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr_tail: list[str] = []
        self.open_at: float | None = None
        self._out = threading.Thread(target=self._pump, args=(self.proc.stdout, self._keep_out), daemon=True)
        self._err = threading.Thread(target=self._pump, args=(self.proc.stderr, self._keep_err), daemon=True)
        self._out.start()
        self._err.start()

    def _keep_out(self, line: str) -> None:
        if self.open_at is None and line.startswith("OPEN"):
            self.open_at = time.monotonic()
        self.lines.put(line)

    def _keep_err(self, line: str) -> None:
        self.stderr_tail.append(line)
        del self.stderr_tail[:-40]

    @staticmethod
    def _pump(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL, this child only

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._out.join(timeout=5)
        self._err.join(timeout=5)
        return rc

    def drain(self) -> list[str]:
        out = []
        while True:
            try:
                out.append(self.lines.get_nowait())
            except queue.Empty:
                return out


def parse_lines(lines: Iterable[str]) -> list[tuple[str, Any]]:
    out = []
    for line in lines:
        tag, _, body = line.partition(" ")
        try:
            out.append((tag, json.loads(body) if body else None))
        except json.JSONDecodeError:
            out.append((tag, body))
    return out


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def summary(values: Sequence[float], unit: str = "s", digits: int = 3) -> str:
    if not values:
        return "n/a"
    return (f"p50 {pct(values, 50):.{digits}f} {unit}, p99 {pct(values, 99):.{digits}f} {unit}, "
            f"max {max(values):.{digits}f} {unit} (n={len(values)})")


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def table_exists(con: Any, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ? AND table_schema = 'main'", [name]
    ).fetchone()[0])


def lineage_violations(con: Any, data_root: Path | None) -> tuple[list[str], dict[str, int]]:
    """Data rows without their materialization, materializations without their rows or file.

    - every data row's ``run_id`` has a successful ``ingestion_run_assets`` row for the same
      (asset, scope) whose partition is the row's date or whose data period (min/max data time)
      covers it (a candles run also writes the missing history it fetched);
    - every materialized cell of ``partition_status`` whose ``rows`` > 0 has data rows written by
      ``materialized_run_id`` (the rows are replaced per partition, so the latest writer owns them);
    - every file row points at a file with that sha256 (or at the run's staged temp, which the
      publish step renames after the commit: counted as ``pending_publish``).
    """
    problems: list[str] = []
    info = {"data_rows": 0, "files_checked": 0, "pending_publish": 0}
    for asset, (table, scope, part, extra) in ASSET_TABLES.items():
        if not table_exists(con, table):
            continue
        where = f"WHERE {extra}" if extra else ""
        n = con.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]
        info["data_rows"] += int(n)
        orphan = con.execute(
            f"""SELECT d.run_id, {scope} AS scope, strftime(d.{part}, '%Y-%m-%d') AS part
                FROM (SELECT * FROM {table} {where}) d
                LEFT JOIN meta.ingestion_run_assets a
                  ON a.run_id = d.run_id AND a.asset_key = ? AND a.status = 'success'
                 AND a.scope_key = {scope}
                 AND (a.partition_key = strftime(d.{part}, '%Y-%m-%d')
                      OR CAST(d.{part} AS DATE) BETWEEN CAST(a.min_event_ts AS DATE) AND CAST(a.max_event_ts AS DATE))
                WHERE a.run_id IS NULL LIMIT 3""", [asset]).fetchall()
        for r in orphan:
            problems.append(f"{table} row {r[1]}/{r[2]} written by run {r[0]} has no materialization of {asset}")
        missing = con.execute(
            f"""SELECT p.scope_key, p.partition_key, p.materialized_run_id FROM meta.partition_status p
                WHERE p.asset_key = ? AND p.materialized_seq IS NOT NULL AND coalesce(p.rows, 0) > 0
                  AND NOT EXISTS (SELECT 1 FROM (SELECT * FROM {table} {where}) d
                                  WHERE d.run_id = p.materialized_run_id AND {scope} = p.scope_key
                                    AND strftime(d.{part}, '%Y-%m-%d') = p.partition_key) LIMIT 3""",
            [asset]).fetchall()
        for r in missing:
            problems.append(f"{asset} {r[0]}/{r[1]} materialized by run {r[2]} has no rows in {table}")
    if data_root is not None:
        for table in FILE_TABLES:
            if not table_exists(con, table):
                continue
            for rel, sha, run_id in con.execute(f"SELECT path, sha256, run_id FROM {table}").fetchall():
                info["files_checked"] += 1
                final = data_root / rel
                if sha256_file(final) == sha:
                    continue
                temp = final.with_name(f"{final.name}.{run_id}.tmp")
                if sha256_file(temp) == sha:
                    info["pending_publish"] += 1
                    continue
                problems.append(f"{table}: {rel} (run {run_id}) is missing or its sha256 differs")
    return problems, info


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def projection_counts(con: Any) -> dict[str, int]:
    from ledger.projections import PROJECTION_TABLES

    out = {"events": int(con.execute("SELECT count(*) FROM meta.events").fetchone()[0])}
    for t in PROJECTION_TABLES:
        out[t] = int(con.execute(f"SELECT count(*) FROM meta.{t}").fetchone()[0])
    return out


def file_bytes(path: Path) -> int:
    total = path.stat().st_size if path.exists() else 0
    wal = Path(str(path) + ".wal")
    return total + (wal.stat().st_size if wal.exists() else 0)
