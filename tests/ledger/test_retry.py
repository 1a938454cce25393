"""The one retry helper (ledger.retry, on tenacity): a bounded budget, exponential backoff with
jitter, a server's Retry-After as a floor, terminal errors at once, and a test mode that never
sleeps. The lock retry of ledger.connection runs on it, against a real held file."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger import retry
from ledger.connection import connect
from ledger.errors import LedgerLockedError
from tests.ledger.test_connection import HOLDER


class Transient(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("try again")
        self.retry_after = retry_after


class GaveUp(Exception):
    pass


class Clock:
    """A manual clock: sleeping moves it on and is recorded."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []  # type: ignore[var-annotated]

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, error: Exception | None = None) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error or Transient()
        return "done"

    return calls, attempt


def run(attempt: object, clock: Clock, **kw: object) -> object:
    options: dict[str, object] = dict(
        transient=lambda e: isinstance(e, Transient), budget_seconds=10.0, backoff=retry.Backoff(initial=0.5, maximum=4.0),
        give_up=lambda e, n, s: GaveUp(f"{n} attempts in {s:.1f}s"), clock=clock, sleep=clock.sleep,
        rng=random.Random(7))
    options.update(kw)
    return retry.call(attempt, **options)  # type: ignore[arg-type]


def test_transient_failures_are_retried_with_growing_jittered_waits() -> None:
    clock = Clock()
    calls, attempt = failing(4)
    assert run(attempt, clock) == "done" and len(calls) == 5
    for n, wait in enumerate(clock.sleeps, start=1):
        schedule = min(4.0, 0.5 * 2 ** (n - 1))
        assert schedule * 0.5 <= wait < schedule  # half fixed, half random
    assert clock.sleeps[-1] > clock.sleeps[0]


def test_the_budget_bounds_the_waits_and_then_the_callers_error_is_raised() -> None:
    clock = Clock()
    calls, attempt = failing(1000)
    with pytest.raises(GaveUp) as caught:
        run(attempt, clock, budget_seconds=5.0)
    assert sum(clock.sleeps) <= 5.0 and clock.now <= 5.0  # never waits past the budget
    assert str(caught.value).startswith(f"{len(calls)} attempts")
    assert caught.value.__cause__ is None  # nothing chained unless give_up chains it


def test_with_clamp_the_last_wait_ends_at_the_budget_for_one_more_try() -> None:
    clock = Clock()
    _calls, attempt = failing(1000)
    with pytest.raises(GaveUp):
        run(attempt, clock, budget_seconds=5.0, clamp_to_budget=True)
    assert clock.now == pytest.approx(5.0)


def test_a_servers_retry_after_is_a_floor() -> None:
    clock = Clock()
    _calls, attempt = failing(1, Transient(retry_after=3.0))
    assert run(attempt, clock, not_before=lambda e: getattr(e, "retry_after", None)) == "done"
    assert clock.sleeps == [3.0]


def test_a_terminal_error_is_raised_at_once_unchanged() -> None:
    clock = Clock()
    calls, attempt = failing(1, KeyError("terminal"))
    with pytest.raises(KeyError):
        run(attempt, clock)
    assert len(calls) == 1 and clock.sleeps == []


def test_the_hook_sees_each_failed_attempt_and_its_wait_and_cap_lowers_the_maximum() -> None:
    clock = Clock()
    seen: list[retry.Attempt] = []
    _calls, attempt = failing(6)
    run(attempt, clock, before_wait=seen.append, cap=lambda: 1.0)
    assert [a.number for a in seen] == [1, 2, 3, 4, 5, 6]
    assert [a.wait for a in seen] == clock.sleeps and max(clock.sleeps) < 1.0


def test_test_mode_never_sleeps_yet_spends_the_budget() -> None:
    calls, attempt = failing(1000)
    started = time.perf_counter()
    with retry.testing(), pytest.raises(GaveUp):
        retry.call(attempt, transient=lambda e: isinstance(e, Transient), budget_seconds=60.0,
                   backoff=retry.Backoff(initial=1.0, maximum=8.0), give_up=lambda e, n, s: GaveUp(str(s)))
    assert time.perf_counter() - started < 1.0  # a minute of backoff, not slept
    assert len(calls) > 5
    assert not retry.is_testing()


def test_a_locked_file_in_test_mode_gives_up_at_once_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    with connect(path, read_only=False):
        pass
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        with retry.testing(), pytest.raises(LedgerLockedError, match=f"PID {child.pid}"), \
                connect(path, read_only=False, timeout_seconds=30):
            pass
        assert time.perf_counter() - started < 10.0  # 30 s of budget, spent without sleeping through it
    finally:
        child.kill()
        child.wait()
