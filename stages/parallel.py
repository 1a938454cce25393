"""A stage's per-scope work on every core: compute and check each scope, in worker processes.

The runner gathers a stage's inputs (short database reads), then hands the scopes to
``compute_scopes``, which runs ``compute`` and the asset's quality checks for each one and
yields what the commit needs: the ``PartitionResult`` without its ``check_input`` (the frame the
checks read, dropped once checked so memory does not grow with the watchlist) and the checks'
results. With more than one worker the scopes go out in batches to a pool of processes
**forked** from the runner after the inputs were gathered, so a worker inherits the stage, its
inputs and the provider without pickling them; each returns its batch's results (Arrow tables,
staged files) and the runner, the only process that opens the database read-write, commits
them all in the run's one transaction, exactly as a serial run would.

Workers never touch the ledger: a scope's provider, stage or usage error becomes that scope's
``failed`` result as in a serial run; any other exception (a bug, a killed worker:
``BrokenProcessPool``) propagates and fails the run, with nothing committed but the failure.
A scope's large writes (a symbol's flow rows) are spooled to Parquet in the run's spool folder
by whoever computed them and streamed into DuckDB at the commit, so neither the results in
flight nor the runner's memory grow with the watchlist.

The pool is used only where it can help and is safe: more than one worker configured
(``Settings.workers``, 0 = one per CPU), fork available (Linux, macOS), at least
``MIN_POOLED_SCOPES`` scopes, and a provider that is ``process_safe`` when the stage calls one
(the synthetic provider is; Alpaca's rate limiter and per-run cache live in one process, so its stages run
serially and spend their time waiting on the network, not on the CPU).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ledger.errors import LedgerError, OptionsHelperError
from stages import datastore
from stages.jobs.base import FAILED, SUCCESS, JobContext, PartitionResult

if TYPE_CHECKING:
    from stages.analytics.checks import CheckResult

# Scopes per batch at most: small enough that the two workers finish together and a batch's
# results stay small, large enough that each round trip carries real work.
MAX_BATCH = 16
# Fewer scopes than this stay in the runner: forking costs more than it saves on a handful.
MIN_POOLED_SCOPES = 8


@attrs.frozen
class ScopeDone:
    """One computed scope: the result to commit (without its check input) and its checks."""

    part: PartitionResult
    checks: tuple[CheckResult, ...] = ()


@attrs.frozen
class StageWork:
    """What a worker needs to compute any scope of one stage run."""

    ctx: JobContext
    compute: Callable[[JobContext, Any, str], PartitionResult]
    inputs: Any
    asset_key: str
    spool: Path | None = None  # where large writes wait for the commit (``datastore.spool``)


def is_per_scope_error(exc: BaseException) -> bool:
    """Errors that fail one scope; anything else (bugs, ledger trouble) fails the run."""
    return isinstance(exc, OptionsHelperError) and not isinstance(exc, LedgerError)


def compute_one(work: StageWork, scope: str) -> ScopeDone:
    """``compute`` one scope and run its checks on what it is about to write."""
    from stages.analytics.checks import run_checks

    try:
        part = work.compute(work.ctx, work.inputs, scope)
    except Exception as exc:
        if not is_per_scope_error(exc):
            raise
        part = PartitionResult(scope_key=scope, status=FAILED, error=str(exc), error_type=type(exc).__name__)
    checks: tuple[CheckResult, ...] = ()
    if part.status == SUCCESS:
        # A check that raises is a bug in the check, not a finding: it fails the run.
        checks = tuple(run_checks(work.asset_key, part.check_input, session=work.ctx.as_of, scope_key=scope))
    writes = part.writes
    if work.spool is not None:
        writes = tuple(datastore.spool(w, work.spool, f"{scope}-{i}") for i, w in enumerate(writes))
    return ScopeDone(part=attrs.evolve(part, check_input=None, writes=writes), checks=checks)


def worker_count(configured: int, scopes: int, provider_safe: bool) -> int:
    """How many processes compute ``scopes`` scopes: 1 (in the runner) unless a pool pays."""
    wanted = configured if configured > 0 else (os.cpu_count() or 1)
    if wanted < 2 or not provider_safe or scopes < MIN_POOLED_SCOPES:
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(wanted, scopes)


def batches(scopes: Sequence[str], workers: int) -> list[tuple[str, ...]]:
    """Consecutive batches, about four per worker so both finish together, at most MAX_BATCH."""
    size = max(1, min(MAX_BATCH, -(-len(scopes) // (workers * 4))))
    return [tuple(scopes[i:i + size]) for i in range(0, len(scopes), size)]


def compute_scopes(work: StageWork, scopes: Sequence[str], *, workers: int) -> Iterator[ScopeDone]:
    """Every scope's ``ScopeDone``, in ``scopes`` order, computed by ``workers`` processes."""
    if workers <= 1:
        for scope in scopes:
            yield compute_one(work, scope)
        return
    # The first scope here: it imports what the stage computes with (pandas, scipy, ...) before
    # the fork, so the workers inherit those modules instead of each importing them again.
    yield compute_one(work, scopes[0])
    scopes = scopes[1:]
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                  initializer=_install, initargs=(work,))
    try:
        # Submitted together, collected in order: each batch's results arrive as soon as it and
        # every batch before it are done, so the runner's progress moves while the pool works.
        futures = [pool.submit(_compute_batch, batch) for batch in batches(scopes, workers)]
        for future in futures:
            yield from future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_WORK: StageWork | None = None  # a worker's stage, installed when the pool forks it


def _install(work: StageWork) -> None:
    global _WORK
    _WORK = work
    import pyarrow as pa

    pa.set_cpu_count(1)  # one worker per core: Arrow's own threads would only contend


def _compute_batch(scopes: tuple[str, ...]) -> list[ScopeDone]:
    assert _WORK is not None, "a pool worker runs only after _install"
    return [compute_one(_WORK, scope) for scope in scopes]


__all__ = ["MAX_BATCH", "MIN_POOLED_SCOPES", "ScopeDone", "StageWork", "batches", "compute_one", "compute_scopes",
           "is_per_scope_error", "worker_count"]
