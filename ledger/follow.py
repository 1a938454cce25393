"""Following the log: read the events after a ``seq``, in order, a page at a time.

This is how consumers of the ledger are built (the Dagster mirror, the OpenLineage export): a
consumer remembers the last ``seq`` it handled (its cursor, kept in its own store, never inside
the ledger's database) and asks for the events after it. ``seq`` is gap-free, commit-ordered and
never rewritten (``db rebuild`` folds the projections again; it does not touch the log), so a
consumer that saves its cursor after handling a page sees every event exactly once, across
restarts, with nothing but read-only reads.

    import ledger
    from ledger.follow import follow, read_page

    led = ledger.open("data/warehouse/options.duckdb")
    for page in follow(led, since=cursor, batch=1000):
        for stored in page.events:        # StoredEvent, typed: stored.event is a RunStarted, ...
            handle(stored)
        cursor = page.cursor              # save it after the page is handled

A cursor beyond the log's last ``seq`` means the consumer is looking at another (or a restored)
file: ``read_page`` says so (``Page.behind``) instead of returning nothing in silence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from ledger.duckdb_store import DuckDBEventStore
from ledger.errors import DatabaseNotFoundError, UsageError
from ledger.events import RunStarted, StoredEvent

DEFAULT_BATCH = 1000


class EventSource(Protocol):
    """What a follower reads: a ``Ledger`` (``ledger.open(path)``) or an event store."""

    def last_seq(self) -> int: ...


@attrs.frozen(kw_only=True)
class Page:
    """One page of the log after ``since``.

    ``events`` are in ``seq`` order, at most the batch asked for; ``cursor`` is the seq to resume
    after (the last event's, or ``since`` when the page is empty); ``more`` says the page was full
    (there may be more to read now). ``head`` is the log's last seq for an empty page (caught up,
    or behind), else None.
    """

    since: int
    events: tuple[StoredEvent, ...]
    more: bool
    head: int | None = None

    @property
    def cursor(self) -> int:
        return self.events[-1].seq if self.events else self.since

    @property
    def behind(self) -> bool:
        """The cursor is past the end of this log: a different, restored or truncated file."""
        return self.head is not None and self.head < self.since


def _read(source: object, since: int, limit: int | None) -> list[StoredEvent]:
    # A Ledger reads with ``events(since=, limit=)``; a store with ``read(since_seq=, limit=)``.
    events = getattr(source, "events", None)
    if callable(events):
        return list(events(since=since, limit=limit))
    return list(source.read(since_seq=since, limit=limit))  # type: ignore[attr-defined]


def read_page(source: EventSource, since: int = 0, batch: int = DEFAULT_BATCH) -> Page:
    """The events after ``since`` (at most ``batch``), typed, in seq order.

    Reads the log's head first, so a follower that is caught up costs one small query and learns
    whether its cursor is still inside this log (``Page.behind``); then at most ``batch`` events.
    """
    if since < 0:
        raise UsageError(f"a cursor is a seq >= 0, got {since}")
    if batch < 1:
        raise UsageError(f"the batch size must be at least 1, got {batch}")
    # The head first (one small read of the checkpoint row): a follower that is caught up, the
    # common case of a poll, costs one connection and no scan of the log.
    head = source.last_seq()
    if head <= since:
        return Page(since=since, events=(), more=False, head=head)
    events = _read(source, since, batch)
    return Page(since=since, events=tuple(events), more=len(events) >= batch)


def follow(source: EventSource, since: int = 0, batch: int = DEFAULT_BATCH) -> Iterator[Page]:
    """Pages after ``since`` until the log's current end (the last page is not full).

    Stops at the end instead of waiting: a consumer that polls (a sensor tick, a cron export)
    calls it again later with the cursor it saved. Stops at an empty page that is ``behind``
    too, after yielding it, so the caller can say so.
    """
    while True:
        page = read_page(source, since, batch)
        if page.events or page.behind:
            yield page
        if not page.more:
            return
        since = page.cursor


def run_starts(source: object, run_ids: Iterable[str], known: Sequence[StoredEvent] = ()) -> dict[str, RunStarted]:
    """The ``RunStarted`` event of each run, from ``known`` events where it is there, else read
    from the log (a run's first event is its start). A follower needs it for runs whose start
    lies before its cursor: the trigger, the job and the parent are recorded there only."""
    out = {s.event.run_id: s.event for s in known if isinstance(s.event, RunStarted)}
    for run_id in sorted(set(run_ids) - set(out)):
        first = _read_run(source, run_id)
        if first is not None and isinstance(first.event, RunStarted):
            out[run_id] = first.event
    return out


def run_events(source: object, run_id: str, *, until: int | None = None) -> list[StoredEvent]:
    """Every event of one run (up to seq ``until``), in order: for a follower that meets a run's
    end without having seen its start (the start lies before its cursor)."""
    events = getattr(source, "events", None)
    if callable(events):
        found = [s for s in events(run_id=run_id) if until is None or s.seq <= until]
    else:
        found = source.read(run_id=run_id, until_seq=until)  # type: ignore[attr-defined]
    return list(found)


def open_follower(path: str | os.PathLike[str]) -> DuckDBEventStore:
    """The ledger at ``path`` for a follower: the store of a read-only open (never created or
    migrated; no reaping)."""
    from ledger.api import open as open_ledger

    if not Path(path).exists():
        raise DatabaseNotFoundError(f"no database at {path}; create one with `options-helper db init`")
    return open_ledger(path, read_only=True).store


def _read_run(source: object, run_id: str) -> StoredEvent | None:
    events = getattr(source, "events", None)
    if callable(events):
        found = events(run_id=run_id, limit=1)
    else:
        found = source.read(run_id=run_id, limit=1)  # type: ignore[attr-defined]
    return found[0] if found else None


__all__ = ["DEFAULT_BATCH", "EventSource", "Page", "follow", "open_follower", "read_page", "run_events", "run_starts"]
