"""``options-helper lineage export``: follow the ledger after a cursor, send OpenLineage events.

The export reads the log a page at a time (``ledger.follow``), emits one event per run start and
one per run end, in seq order, through the ``openlineage-python`` client (HTTP or file transport),
and remembers the last seq it handled in a small JSON state file next to its output (for
``--file out.jsonl``: ``out.jsonl.cursor.json``; for ``--url``: beside the database, named after
the URL and namespace). ``--since SEQ`` starts after SEQ instead of the saved cursor. The state
is saved after each page and whenever the export stops, with the seq of the last event whose
OpenLineage event was sent, so a rerun after a failure sends each event once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ledger.errors import LedgerError, LineageExportError, MissingExtraError, UsageError
from ledger.events import AssetMaterialized, CheckEvaluated, ChecksEvaluated, RunStarted, StoredEvent

DEFAULT_ENDPOINT = "api/v1/lineage"
DEFAULT_BATCH = 1000


@attrs.frozen(kw_only=True)
class ExportResult:
    since: int
    cursor: int
    events_read: int
    emitted: dict[str, int]
    target: str
    state_file: str

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "emitted_total": sum(self.emitted.values())}


def state_file_for(*, database: Path, namespace: str, file: Path | None, url: str | None) -> Path:
    """Where the export's cursor lives by default: next to its output."""
    if file is not None:
        return file.with_name(file.name + ".cursor.json")
    digest = hashlib.sha256(f"{url}\n{namespace}".encode()).hexdigest()[:12]
    return database.with_name(f"{database.name}.lineage-{digest}.cursor.json")


def read_state(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        doc = json.loads(path.read_text())
        seq = int(doc["cursor"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"the lineage state file {path} is unreadable ({e}); delete it, or pass --since SEQ") from e
    if seq < 0:
        raise UsageError(f"the lineage state file {path} holds a negative cursor; delete it, or pass --since SEQ")
    return seq


def write_state(path: Path, seq: int, *, target: str, namespace: str, database: Path) -> None:
    """Atomically: a crash leaves the previous cursor or this one, never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"cursor": seq, "target": target, "namespace": namespace, "database": str(database),
                               "updated_at": dt.datetime.now(dt.UTC).isoformat()}, indent=1) + "\n")
    os.replace(tmp, path)


def _client() -> Any:
    try:
        from openlineage.client import OpenLineageClient
    except ImportError as e:
        raise MissingExtraError.for_extra("lineage", "openlineage-python") from e
    return OpenLineageClient


def http_transport(url: str, *, timeout: float = 10.0) -> Any:
    """The client's HTTP transport; a URL with a path posts there, else to ``/api/v1/lineage``."""
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--url must be an http(s) URL such as http://127.0.0.1:5000, got {url!r}")
    base = f"{parts.scheme}://{parts.netloc}/"
    endpoint = parts.path.lstrip("/") or DEFAULT_ENDPOINT
    return HttpTransport(HttpConfig(url=base, endpoint=endpoint, timeout=timeout,
                                    retry={"total": 2, "backoff_factor": 0.2,
                                           "status_forcelist": [500, 502, 503, 504],
                                           "allowed_methods": ["POST"]}))


def file_transport(path: Path) -> Any:
    """The client's file transport: one JSON event per line, appended."""
    from openlineage.client.transport.file import FileConfig, FileTransport

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def export(
    *,
    database: Path,
    data_root: Path,
    url: str | None = None,
    file: Path | None = None,
    namespace: str | None = None,
    since: int | None = None,
    state_file: Path | None = None,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Send the OpenLineage events of the ledger events after the cursor; see the module doc."""
    if (url is None) == (file is None):
        raise UsageError("give exactly one of --url URL or --file PATH")
    client_cls = _client()  # first: without the extra, say so before anything else
    from frontends.lineage.events import DEFAULT_NAMESPACE, TERMINAL, Where, end_event, start_event
    from ledger.follow import follow, open_follower, run_events

    namespace = namespace or DEFAULT_NAMESPACE
    database = Path(database).resolve()
    file = Path(file).resolve() if file is not None else None
    source = open_follower(database)
    target = url if url is not None else str(file)
    state = state_file or state_file_for(database=database, namespace=namespace, file=file, url=url)
    start = since if since is not None else read_state(state)
    if start < 0:
        raise UsageError(f"--since must be a seq >= 0, got {start}")
    transport = http_transport(url) if url is not None else file_transport(Path(file))  # type: ignore[arg-type]
    client = client_cls(transport=transport)
    where = Where(database=database, data_root=Path(data_root).resolve(), namespace=namespace)

    handled, read = start, 0
    emitted: Counter[str] = Counter()
    started: dict[str, RunStarted] = {}
    buffered: dict[str, list[StoredEvent]] = {}

    def send(event: Any, stored: StoredEvent) -> None:
        try:
            client.emit(event)
        except Exception as e:  # the transport's own errors (HTTP status, connection, I/O)
            raise LineageExportError(
                f"could not send the OpenLineage {event.eventType.value} event of ledger seq {stored.seq} to {target}: "
                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}; events up to seq {handled} were sent "
                f"and saved in {state}; rerun the same command to continue"
            ) from e
        emitted[event.eventType.value] += 1

    try:
        for page in follow(source, start, batch):
            if page.behind:
                raise LedgerError(
                    f"the ledger {database} ends at seq {page.head}, before the export's cursor {start} ({state}): "
                    "it is a different or restored file. Delete the state file or pass --since 0 to export it from "
                    "the start")
            for stored in page.events:
                event = stored.event
                run_id = event.run_id
                if isinstance(event, RunStarted):
                    started[event.run_id] = event
                    buffered[event.run_id] = []
                    send(start_event(stored, where), stored)
                elif isinstance(event, AssetMaterialized | CheckEvaluated | ChecksEvaluated) and run_id in buffered:
                    buffered[run_id].append(stored)
                elif isinstance(event, TERMINAL) and run_id is not None:
                    if run_id in buffered:
                        first, mine = started.pop(run_id), buffered.pop(run_id)
                    else:  # its start lies before the cursor: read the run from the log
                        mine = run_events(source, run_id, until=stored.seq)
                        first = next((s.event for s in mine if isinstance(s.event, RunStarted)), None)  # type: ignore[assignment]
                    if first is not None:
                        send(end_event(stored, first, mine, where), stored)
                handled = stored.seq
                read += 1
            write_state(state, handled, target=target, namespace=namespace, database=database)
            if progress:
                progress(read, handled)
    finally:
        if handled != start or not state.exists():
            write_state(state, handled, target=target, namespace=namespace, database=database)
        close = getattr(client, "close", None)
        if callable(close):
            close()
    return ExportResult(since=start, cursor=handled, events_read=read, emitted=dict(emitted), target=target,
                        state_file=str(state))


__all__ = ["DEFAULT_ENDPOINT", "ExportResult", "LineageExportError", "export", "read_state", "state_file_for",
           "write_state"]
