"""Instrument the ledger in a child process: one line per commit, flushed, with no code change.

``install()`` wraps ``DuckDBEventStore.append`` so that ``C+`` is printed when a commit starts and
``ACK {json}`` once it has returned (the events are durable: the process acknowledged them), and
injects an ``on_lock_wait`` callback into every store so lock waits are counted.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

WAITS: list[float] = []
COUNTS = {"commits": 0, "events": 0, "errors": 0}
_lock = threading.Lock()


def emit(tag: str, body: Any = None) -> None:
    line = tag if body is None else f"{tag} {json.dumps(body, default=str, separators=(',', ':'))}"
    with _lock:  # the real stdout: commands' own output may be redirected meanwhile
        sys.__stdout__.write(line + "\n")
        sys.__stdout__.flush()


def install(*, print_ids: bool = True) -> None:
    from ledger import duckdb_store

    store_cls = duckdb_store.DuckDBEventStore
    original_append = store_cls.append

    def append(self: Any, events: Any, **kw: Any) -> Any:
        emit("C+")
        stored = original_append(self, events, **kw)
        COUNTS["commits"] += 1
        COUNTS["events"] += len(stored)
        if print_ids:
            emit("ACK", {"ids": [s.event.event_id for s in stored],
                         "runs": sorted({s.event.run_id for s in stored if s.event.run_id}),
                         "seq": [stored[0].seq, stored[-1].seq] if stored else None})
        else:
            emit("ACK", {"n": len(stored), "seq": [stored[0].seq, stored[-1].seq] if stored else None})
        return stored

    store_cls.append = append  # type: ignore[method-assign]
    count_lock_waits("ledger.duckdb_store", "ledger.verify")


def count_lock_waits(*modules: str) -> None:
    """Make every ``connect`` in ``modules`` report its lock wait into ``WAITS``."""
    import importlib

    for name in modules:
        module = importlib.import_module(name)
        original = getattr(module, "connect", None)
        if original is None:
            continue

        def connect(*args: Any, _original: Any = original, **kw: Any) -> Any:
            if kw.get("on_wait") is None:
                kw["on_wait"] = WAITS.append
            return _original(*args, **kw)

        module.connect = connect


def stats(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**COUNTS, "waits": [round(w, 5) for w in WAITS], "t": time.time(), **(extra or {})}


def keep_wal() -> None:
    """Skip the checkpoint when a write connection closes, so the WAL grows (up to DuckDB's 16 MiB
    auto-checkpoint) and the next open must replay it: kills then land during WAL replay."""
    from contextlib import contextmanager

    from ledger import duckdb_store

    original = duckdb_store.connect

    @contextmanager
    def connect(path: Any, *, read_only: bool, **kw: Any) -> Any:
        with original(path, read_only=read_only, **kw) as con:
            if not read_only and str(path) != ":memory:":
                con.execute("PRAGMA disable_checkpoint_on_shutdown")
            yield con

    duckdb_store.connect = connect  # type: ignore[assignment]
