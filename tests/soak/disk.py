"""Disk and file faults: a full file system and a read-only database.

A tmpfs of 24 MiB is mounted (we run as root; skipped with a message when ``mount`` is not
permitted) and holds the ledger and the data root. Full disk: a few Python runs (with data rows)
are acknowledged, then a filler file leaves 400 KiB, Python appends run until the disk is full,
and ``options-helper daily`` runs on the full disk. Read-only: the tmpfs is remounted read-only and ``daily``, ``health`` and
``db verify`` run against it. Each error must be clear (a typed error, CLI exit 2-10 with one
line, never 1 = internal error); afterwards every acknowledged event is present, ``db verify``
passes and a new append succeeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.soak.common import HarnessResult, child_env

SIZE = "24m"  # the ledger file reaches ~8 MiB after a few runs (a block per table), then plateaus
HEADROOM = 400 * 1024  # bytes left free by the filler
RUNS_BEFORE_FULL = 5  # runs acknowledged with space to spare, whose events must survive the full disk


def _cli(*args: str, timeout: float = 300) -> tuple[int, str]:
    exe = Path(sys.executable).with_name("options-helper")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "frontends.cli.app"]
    p = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, env=child_env())
    lines = [line for line in p.stderr.strip().splitlines() if line.strip()]
    return p.returncode, (lines[-1] if lines else "")[:240]


def _mount(point: Path, *opts: str) -> str | None:
    p = subprocess.run(["mount", *opts, point.as_posix()] if opts and opts[0] == "-o" and "remount" in opts[1]
                       else ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", point.as_posix()],
                       capture_output=True, text=True)
    return None if p.returncode == 0 else (p.stderr.strip() or f"mount exited {p.returncode}")


def _appends_until_full(db: Path, limit: int = 5000, start: int = 0) -> tuple[int, list[str], str | None]:
    """Runs with a data row until one fails (or ``limit`` runs): (runs completed, acknowledged
    event ids, the error as ``module.Class: first line`` untruncated, or None)."""
    import ledger

    led = ledger.open(db, lock_timeout_seconds=10)
    acked: list[str] = []
    payload = "x" * 4000
    for i in range(start, start + limit):
        try:
            with led.run("fill_disk", args={"blob": payload, "i": i}) as run:
                m = run.materialized("candles_daily", "2026-06-01", f"F{i:05d}", rows=1, extra={"blob": payload})

                def write(con, sym=f"F{i:05d}", run_id=run.run_id):  # type: ignore[no-untyped-def]
                    con.execute("INSERT INTO candles_daily (symbol, date, close, run_id) VALUES (?, DATE '2026-06-01', 1, ?)",
                                [sym, run_id])

                stored = run.complete([m], data_writer=write)
                acked += [s.event.event_id for s in stored]
        except Exception as e:
            text = f"{type(e).__module__}.{type(e).__name__}: {str(e).splitlines()[0]}"
            if e.__context__ is not None and e.__cause__ is None:
                c = e.__context__
                text += f" (raised while handling {type(c).__name__}: {str(c).splitlines()[0]})"
            return i - start, acked, text
    return limit, acked, None


def _after(db: Path, acked: list[str], res: HarnessResult, label: str) -> None:
    from ledger.connection import connect
    from ledger.verify import verify_file
    from tests.soak.common import lineage_violations

    with connect(db, read_only=True, timeout_seconds=10) as con:
        lost = con.execute("SELECT count(*) FROM (SELECT unnest(?) AS id) a ANTI JOIN meta.events e "
                           "ON e.event_id = a.id", [acked]).fetchone()[0] if acked else 0
        lineage, _ = lineage_violations(con, None)
    if lost:
        res.violations.append(f"{label}: {lost} acknowledged event(s) lost")
    res.violations += [f"{label}: {p}" for p in lineage]
    report = verify_file(str(db), timeout_seconds=10)
    if not report.ok:
        res.violations += [f"{label}: db verify: {p}" for p in report.problems]


def _clear(label: str, rc: int, line: str, res: HarnessResult, *, expect_ok: bool = False) -> str:
    if expect_ok and rc != 0:
        res.violations.append(f"{label}: expected success, exit {rc}: {line}")
    elif not expect_ok and rc == 0:
        res.violations.append(f"{label}: expected a clear failure, got exit 0")
    elif rc == 1:
        res.violations.append(f"{label}: exit 1 (internal error) instead of a clear error: {line}")
    return f"exit {rc}: {line}" if rc else "exit 0"


def _clear_or_ok(label: str, rc: int, line: str, res: HarnessResult) -> str:
    if rc == 1:
        res.violations.append(f"{label}: exit 1 (internal error): {line}")
    return f"exit {rc}: {line}" if rc else "exit 0"


def run(*, workdir: Path) -> HarnessResult:
    res = HarnessResult("disk")
    t0 = time.monotonic()
    point = workdir / "tmpfs"
    point.mkdir()
    err = _mount(point)
    if err:
        res.skipped = f"cannot mount a {SIZE} tmpfs ({err}); run as root to include the full-disk and read-only cases"
        return res
    try:
        db = point / "ledger.duckdb"
        data = point / "data"
        rc, line = _cli("--duckdb-path", str(db), "db", "init")
        _clear("db init", rc, line, res, expect_ok=True)
        # Some runs with space to spare: their events must survive what follows.
        n0, acked, error = _appends_until_full(db, limit=RUNS_BEFORE_FULL)
        if error:
            res.violations.append(f"append with free space failed: {error[:240]}")
        # Then fill the disk but HEADROOM and append until a commit fails.
        st = os.statvfs(point)
        filler = point / "filler"
        with filler.open("wb") as fh:
            fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - HEADROOM))
        n, acked_full, error = _appends_until_full(db, start=RUNS_BEFORE_FULL)
        acked += acked_full
        res.figures["full disk"] = (f"{n0} runs ({len(acked) - len(acked_full)} events) acknowledged first; "
                                    f"with {HEADROOM // 1024} KiB left {n} more run(s) ({len(acked_full)} events), "
                                    f"then: {(error or 'no error (disk never filled)')[:200]}")
        if error is None:
            res.violations.append("the disk never filled")
        elif "OptionsHelperError" not in error and ".errors." not in error:
            res.notes.append("the Python API raised an untranslated driver error on a full disk (see findings)")
        elif "DiskFullError" not in error:
            # ledger/transaction.py asks the file system why a commit failed: a full disk is DiskFullError.
            res.violations.append(f"a full disk at COMMIT was not reported as DiskFullError: {error[:200]}")
        rc, line = _cli("--duckdb-path", str(db), "--data-root", str(data), "daily", "--as-of", "2026-06-01",
                        "--symbols", "SPY")
        res.figures["daily on a full disk"] = _clear("daily on a full disk", rc, line, res)
        rc, line = _cli("--duckdb-path", str(db), "db", "verify")
        res.figures["db verify on the full disk"] = _clear("db verify (full disk)", rc, line, res, expect_ok=True)
        filler.unlink()
        _after(db, acked, res, "after the full disk")
        import ledger

        led = ledger.open(db)
        with led.run("after_full_disk") as r:
            r.complete([])
        res.figures["append after freeing space"] = "ok"
        # Read-only file system (root ignores file modes, so remount instead of chmod).
        err = _mount(point, "-o", "remount,ro")
        if err:
            res.notes.append(f"read-only remount not permitted: {err}")
        else:
            rc, line = _cli("--duckdb-path", str(db), "--data-root", str(data), "daily", "--as-of", "2026-06-01",
                            "--symbols", "SPY")
            res.figures["read-only file"] = _clear("daily on a read-only file", rc, line, res)
            # Readers: success, or at least a clear error (they open through ledger.open(), which
            # opens the file read-write to migrate it: reported as a finding, not a violation).
            rc, line = _cli("--duckdb-path", str(db), "health", "--json")
            res.figures["health on a read-only file"] = _clear_or_ok("health on a read-only file", rc, line, res)
            rc, line = _cli("--duckdb-path", str(db), "db", "verify")
            res.figures["db verify on a read-only file"] = _clear_or_ok("db verify (read-only)", rc, line, res)
            _mount(point, "-o", "remount,rw")
        _after(db, acked, res, "after the read-only mount")
        if os.geteuid() != 0:
            os.chmod(db, 0o444)
            rc, line = _cli("--duckdb-path", str(db), "db", "reap")
            res.figures["chmod 444 file, db reap"] = _clear("db reap on a 0444 file", rc, line, res)
            os.chmod(db, 0o644)
    finally:
        subprocess.run(["umount", "-l", point.as_posix()], capture_output=True)
    res.seconds = time.monotonic() - t0
    return res
