"""The one retry helper: a bounded budget of attempts with exponential backoff and jitter, on
tenacity. Used for a ledger file locked by another process (``ledger.connection``) and for every
market-data request (``stages.providers.alpaca_http``).

The policy, wherever it is used:

* attempt ``n`` failed with an error ``transient`` accepts: wait ``min(maximum, initial * 2**(n-1))``
  times a jitter factor drawn from [0.5, 1.0) (half the delay fixed, half random: retries of
  several processes spread out, and none waits less than half the schedule);
* never sooner than ``not_before(error)`` says (a server's ``Retry-After``);
* within ``budget_seconds`` from the first attempt: with ``clamp_to_budget`` the last wait is
  shortened to end at the budget (a lock may free at any moment: try once more at the deadline),
  otherwise a wait that would end past the budget is not taken (a provider's answer will not be
  different a moment later); then ``give_up(error, attempts, elapsed)`` names the error to raise;
* an error ``transient`` refuses is raised at once, unchanged.

Why tenacity and not stamina (see docs/architecture.md, "Retries"): stamina is a thin opinionated
layer over tenacity whose knobs are a fixed exponential schedule and a global testing switch; the
two loops it replaces need tenacity's own strategies: a wait that reads the error (Retry-After), a
stop that sees the upcoming wait (``upcoming_sleep``: give up before a wait that would overrun),
a hook before each wait (the lock's waiters-first mark), an injected clock and sleep.

Test mode: ``set_testing(True)`` (or ``with testing():``) makes every wait instant: nothing sleeps,
and the helper's clock moves on by the wait instead, so budgets run out as they would for real.
Callers that inject ``sleep``/``clock`` themselves (the provider tests' manual clock) keep theirs.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import attrs

if TYPE_CHECKING:
    import tenacity

_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class Backoff:
    """``initial`` seconds doubling per attempt up to ``maximum`` (``call``'s ``cap`` may lower it)."""

    initial: float
    maximum: float

    def delay(self, attempt: int, rng: random.Random | None = None, *, maximum: float | None = None) -> float:
        """The wait after failed attempt ``attempt`` (1-based), jittered."""
        cap = self.maximum if maximum is None else maximum
        base = min(cap, self.initial * 2.0 ** min(max(0, attempt - 1), 64))
        return base * (0.5 + 0.5 * (rng or random).random())


@attrs.frozen(kw_only=True)
class Attempt:
    """What a hook learns before a wait: the attempt that failed, its error, the wait, the time spent."""

    number: int
    error: BaseException
    wait: float
    elapsed: float


class _TestClock:
    """In test mode: a monotonic clock moved on by the waits instead of sleeping through them."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() + self._offset

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._offset += max(0.0, seconds)


_TESTING: _TestClock | None = None


def set_testing(on: bool) -> None:
    """Test mode on or off (process-wide): waits do not sleep, the retry clock jumps instead."""
    global _TESTING
    _TESTING = _TestClock() if on else None


def is_testing() -> bool:
    return _TESTING is not None


@contextmanager
def testing() -> Iterator[None]:
    previous = _TESTING
    set_testing(True)
    try:
        yield
    finally:
        globals()["_TESTING"] = previous


def monotonic() -> float:
    """The retry clock: ``time.monotonic``, or the test clock in test mode."""
    return _TESTING.now() if _TESTING is not None else time.monotonic()


def pause(seconds: float) -> None:
    """``time.sleep``, or a jump of the test clock in test mode."""
    if _TESTING is not None:
        _TESTING.sleep(seconds)
    else:
        time.sleep(seconds)


def call(
    attempt: Callable[[], _T],
    *,
    transient: Callable[[BaseException], bool],
    budget_seconds: float,
    backoff: Backoff,
    give_up: Callable[[BaseException, int, float], BaseException],
    clamp_to_budget: bool = False,
    not_before: Callable[[BaseException], float | None] | None = None,
    cap: Callable[[], float | None] | None = None,
    before_wait: Callable[[Attempt], None] | None = None,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
    rng: random.Random | None = None,
) -> _T:
    """``attempt()`` under the policy in the module doc. ``cap()`` may lower the backoff's maximum
    for the next wait; ``before_wait`` runs before each wait (counting, logging, marking).
    ``give_up``'s error is raised chained to its ``__cause__`` only (set it to chain the last error)."""
    now = clock or monotonic
    started = now()
    # The first attempt runs before tenacity is imported (~6 ms in every command: each opens the
    # ledger file through here), and nearly always succeeds. A transient failure is handed to
    # tenacity as its attempt 1, so the schedule from there is the same.
    try:
        return attempt()
    except BaseException as e:
        if not transient(e):
            raise
        first_failure: BaseException | None = e
    import tenacity

    def attempts() -> _T:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return attempt()

    def wait(state: tenacity.RetryCallState) -> float:
        error = _error(state)
        seconds = backoff.delay(state.attempt_number, rng, maximum=cap() if cap is not None else None)
        floor = not_before(error) if not_before is not None else None
        if floor is not None:
            seconds = max(seconds, floor)
        if clamp_to_budget:
            seconds = max(0.0, min(seconds, budget_seconds - (now() - started)))
        return seconds

    def stop(state: tenacity.RetryCallState) -> bool:
        elapsed = now() - started
        if clamp_to_budget:
            return elapsed >= budget_seconds
        return elapsed + state.upcoming_sleep > budget_seconds

    def hook(state: tenacity.RetryCallState) -> None:
        if before_wait is not None:
            before_wait(Attempt(number=state.attempt_number, error=_error(state), wait=state.upcoming_sleep,
                                elapsed=now() - started))

    def out_of_budget(state: tenacity.RetryCallState) -> _T:
        error = give_up(_error(state), state.attempt_number, now() - started)
        raise error from error.__cause__  # only what ``give_up`` chained (None: nothing)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(transient),
        wait=wait,
        stop=stop,
        before_sleep=hook,
        retry_error_callback=out_of_budget,
        sleep=sleep or pause,
        reraise=True,
    )
    return retrying(attempts)


def _error(state: tenacity.RetryCallState) -> BaseException:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    assert error is not None  # the hooks run only after a failed attempt
    return error


__all__ = ["Attempt", "Backoff", "call", "is_testing", "monotonic", "pause", "set_testing", "testing"]
