"""Two writer processes and one reader process share one ledger file.

DuckDB admits one read-write process or many read-only ones per file, so every open waits its
turn with jittered backoff. For ~20 s (``-m slow``: 120 s) both writers record runs and the reader
polls ``health()`` as the portal does. Rules: no operation fails, every acknowledged run is in the
log with all of its events (and nothing else is), the reader never sees the log go backwards, and
``verify`` passes at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ledger
from tests.ledger.children import Child

EVENTS_PER_RUN = 1 + 5 + 5 + 1  # started, materializations, checks, succeeded


def _two_writers_and_a_reader(path: Path, seconds: float) -> None:
    ledger.open(path)
    duration = str(seconds)
    writers = [Child("_child_writer.py", str(path), "--lease", "60", "--duration", duration, "--tag", tag)
               for tag in ("A", "B")]
    reader = Child("_child_reader.py", str(path), "--duration", duration, "--interval", "0.1")
    codes = [c.finish(timeout=seconds + 240) for c in (*writers, reader)]
    errors = [line for c in (*writers, reader) for line in c.lines if line.startswith("error")]
    assert not errors, errors[:5]
    assert codes == [0, 0, 0], [(code, c.stderr()[-1500:]) for code, c in zip(codes, (*writers, reader), strict=True)]

    acknowledged = [set(w.values("committed")) for w in writers]
    assert all(acknowledged), "each writer must have committed at least one run"
    polls = [int(v.split()[0]) for v in reader.values("ok")]
    assert len(polls) >= 10, "the reader barely got in"
    fewer, more = sorted(len(a) for a in acknowledged)
    assert fewer * 5 >= more, f"one writer starved the other: {fewer} runs against {more}"
    assert polls == sorted(polls), "the reader saw the log go backwards"

    led = ledger.open(path, create=False)
    runs = {r["run_id"]: r["status"] for r in led.runs(limit=1_000_000)}
    everyone = acknowledged[0] | acknowledged[1]
    assert runs == dict.fromkeys(everyone, "success")
    assert led.last_seq() == EVENTS_PER_RUN * len(everyone), "an event was lost or one too many was written"
    report = led.verify()
    assert report.ok, report.problems
    print(f"multi-process: runs A={len(acknowledged[0])} B={len(acknowledged[1])}, reader polls={len(polls)}, "
          f"events={report.last_seq}")


@pytest.mark.timeout(300)
def test_two_writers_and_a_polling_reader_all_succeed_and_lose_nothing(tmp_path: Path) -> None:
    _two_writers_and_a_reader(tmp_path / "ledger.duckdb", seconds=20)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_writers_and_a_polling_reader_for_two_minutes(tmp_path: Path) -> None:
    _two_writers_and_a_reader(tmp_path / "ledger.duckdb", seconds=120)
