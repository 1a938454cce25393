"""The event store interface, shared rules, and the in-memory backend.

Rules every backend keeps (the contract suite in tests/ledger checks them on each):
- ``seq`` is gap-free and commit-ordered, starting at 1; ``event_id`` is unique.
- A batch is atomic: if any member conflicts, nothing of the batch is written.
- Conflicts: a duplicate event id; a second ``RunStarted`` for a run; an event for a run that was
  never started; an event for a run that already succeeded or failed; ``expected_last_seq`` not
  matching the log's head.
- ``materialization_seq`` of ``CheckEvaluated`` and ``ChecksEvaluated`` is resolved from
  ``materialization_id`` at append time.
- Runs whose lease expired without a terminal event are marked abandoned by the next append
  (``auto_reap``) or by ``reap()``. The DuckDB store also abandons, when a run starts and on
  ``reap()``, open runs whose process is gone from this host (``ledger.liveness``), lease or not.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, Protocol

import attrs

from ledger.errors import ConflictError
from ledger.events import (
    RUN_EVENT_STATUS,
    STATUS_RANK,
    CheckEvaluated,
    ChecksEvaluated,
    Event,
    RunAbandoned,
    RunFailed,
    RunStarted,
    RunSucceeded,
    StoredEvent,
    StoredRow,
)

GENESIS_HASH = "0" * 64


def event_hash(prev_hash: str, seq: int, recorded_at: dt.datetime, row: StoredRow) -> str:
    """SHA-256 over the canonical row and the previous hash (``hash_body``)."""
    return chain(prev_hash, seq, recorded_at, [row])[0]


def hash_body(prev_hash: str, seq: int, recorded_at: dt.datetime, row: StoredRow) -> str:
    """``canonical_json([prev_hash, seq, event_id, event_type, schema_version, recorded_at,
    run_id, asset_key, partition_key, scope_key, payload])``, byte for byte (a test checks), built
    without the generic encoder's per-call set-up."""
    return _body(prev_hash, seq, f"{_json_str(_iso_utc(recorded_at))},", row)


def _body(prev_hash: str, seq: int, when: str, row: StoredRow) -> str:
    """The hash body's one layout (``when`` is the JSON of recorded_at and its comma)."""
    text = _json_str
    return (
        f"[{text(prev_hash)},{int(seq)},{text(row.event_id)},{text(row.event_type)},{int(row.schema_version)},{when}"
        f"{text(row.run_id)},{text(row.asset_key)},{text(row.partition_key)},{text(row.scope_key)},"
        f"{text(row.payload)}]"
    )


def chain(prev_hash: str, first_seq: int, recorded_at: dt.datetime, rows: Sequence[StoredRow]) -> list[str]:
    """``event_hash`` of each row in turn, seqs from ``first_seq``, each chained to the previous
    hash; the batch's shared recorded_at is formatted once."""
    sha256 = hashlib.sha256
    when = f"{_json_str(_iso_utc(recorded_at))},"
    hashes = []
    for seq, row in enumerate(rows, start=int(first_seq)):
        prev_hash = sha256(_body(prev_hash, seq, when, row).encode()).hexdigest()
        hashes.append(prev_hash)
    return hashes


def _json_str(value: str | None) -> str:
    # json's own escaper for ensure_ascii=False (the C one when available).
    return "null" if value is None else encode_basestring(value)


@functools.lru_cache(maxsize=64)
def _iso_utc(recorded_at: dt.datetime) -> str:
    # A batch shares one recorded_at; format it once.
    return recorded_at.astimezone(dt.UTC).isoformat(timespec="microseconds")


class EventStore(Protocol):
    """One interface, several backends (in-memory, DuckDB in memory, DuckDB file)."""

    def append(
        self,
        events: Sequence[Event],
        *,
        expected_last_seq: int | None = None,
        data_writer: Callable[[Any], None] | None = None,
    ) -> list[StoredEvent]: ...

    def last_seq(self) -> int: ...

    def read(
        self, *, since_seq: int = 0, until_seq: int | None = None, run_id: str | None = None, limit: int | None = None
    ) -> list[StoredEvent]: ...

    def projection(self, table: str, *, as_of_seq: int | None = None) -> list[dict[str, Any]]: ...

    def reap(self, now: dt.datetime | None = None) -> list[StoredEvent]: ...

    def rebuild(self) -> None: ...


@attrs.frozen(kw_only=True)
class RunState:
    """What validation needs to know of an existing run."""

    rank: int
    lease_expires_at: dt.datetime | None


def validate_batch(
    events: Sequence[Event],
    existing_runs: dict[str, RunState],
    existing_event_ids: Iterable[str] = (),
) -> None:
    """Raise ``ConflictError`` if any member of the batch conflicts; pure, shared by backends."""
    seen_ids = set(existing_event_ids)
    ranks = {run_id: state.rank for run_id, state in existing_runs.items()}
    for event in events:
        if event.event_id in seen_ids:
            raise ConflictError(f"duplicate event id {event.event_id}")
        seen_ids.add(event.event_id)
        run_id = event.run_id
        if run_id is None:
            continue
        if isinstance(event, RunStarted):
            if run_id in ranks:
                raise ConflictError(f"run {run_id} was already started")
            ranks[run_id] = 0
            continue
        if run_id not in ranks:
            raise ConflictError(f"run {run_id} was never started; start it before recording its events")
        if ranks[run_id] >= STATUS_RANK["success"]:
            raise ConflictError(f"run {run_id} already finished; start a new run to record more")
        if isinstance(event, RunSucceeded | RunFailed | RunAbandoned):
            ranks[run_id] = max(ranks[run_id], STATUS_RANK[_terminal_status(event)])


def _terminal_status(event: Event) -> str:
    return RUN_EVENT_STATUS[event.EVENT_TYPE]


def expired_runs(runs: dict[str, RunState], now: dt.datetime) -> list[str]:
    return sorted(
        run_id for run_id, s in runs.items()
        if s.rank == 0 and s.lease_expires_at is not None and s.lease_expires_at < now
    )


def abandon_events(
    run_ids: Iterable[str], runs: dict[str, RunState], reasons: Mapping[str, str] | None = None
) -> list[Event]:
    """``RunAbandoned`` for each run; ``reasons`` says why where it is not the lease (a gone process)."""
    reasons = reasons or {}
    return [
        RunAbandoned(run_id=r, lease_expired_at=_iso(runs[r].lease_expires_at), reason=reasons[r]) if r in reasons
        else RunAbandoned(run_id=r, lease_expired_at=_iso(runs[r].lease_expires_at)) for r in run_ids
    ]


def to_reap(runs: dict[str, RunState], now: dt.datetime, gone: Mapping[str, str], alive: Iterable[str]) -> list[str]:
    """Open runs to abandon: lease expired, or process gone from this host (``ledger.liveness``);
    never a run in ``alive`` (the batch's own)."""
    keep = set(alive)
    doomed = set(expired_runs(runs, now)) | {r for r in gone if r in runs and runs[r].rank == 0}
    return sorted(doomed - keep)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds") if value else None


def resolve_check_links(events: Sequence[Event], seq_of: Callable[[str], int | None]) -> list[Event]:
    """Fill the ``materialization_seq`` of ``CheckEvaluated`` and ``ChecksEvaluated`` from their
    ``materialization_id``."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, CheckEvaluated | ChecksEvaluated) and event.materialization_id \
                and event.materialization_seq is None:
            seq = seq_of(event.materialization_id)
            if seq is None:
                names = event.check_name if isinstance(event, CheckEvaluated) else \
                    ", ".join(c["check_name"] for c in event.checks)
                raise ConflictError(
                    f"check {names} refers to materialization {event.materialization_id}, "
                    "which is not in the log"
                )
            event = attrs.evolve(event, materialization_seq=seq)
        out.append(event)
    return out


__all__ = [
    "GENESIS_HASH",
    "EventStore",
    "RunState",
    "chain",
    "event_hash",
    "validate_batch",
]
