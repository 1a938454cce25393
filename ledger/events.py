"""The event vocabulary of the ledger, and the mapper between events and stored rows.

Events are frozen, keyword-only attrs classes named in the past tense. Each has a stable
``EVENT_TYPE`` string (never a Python path) and a ``SCHEMA_VERSION``. The mapper turns an event
into the envelope columns of ``meta.events`` plus a JSON payload, and back; payloads written by
older schema versions are upcast on read by small pure functions registered in ``UPCASTERS``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Mapping
from json.encoder import encode_basestring
from typing import Any, ClassVar

import attrs

from ledger.errors import (
    IntegrityError,
    InvalidUnicodeError,
    MissingUpcasterError,
    PayloadNotJSONError,
    UnknownEventTypeError,
)
from ledger.ids import new_uuid7

RUN_STATUSES = ("started", "abandoned", "success", "failed")
# A run's status only moves up this rank (the one definition: validation and the projections use it).
STATUS_RANK = {"started": 0, "abandoned": 1, "success": 2, "failed": 3}
# The status each terminal run event sets.
RUN_EVENT_STATUS = {"run_abandoned": "abandoned", "run_succeeded": "success", "run_failed": "failed"}
TRIGGERS = ("cli", "dagster", "python", "backfill", "schedule")
SEVERITIES = ("warn", "error")
CHECK_STATUSES = ("pass", "fail", "skip")
# The fields of one check result in a ChecksEvaluated's list.
CHECK_RESULT_FIELDS = ("check_name", "severity", "status", "metrics", "message")


def _frozen_dict(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value or {})


def _tuple(value: Iterable[str]) -> tuple[str, ...]:
    # Not the builtin ``tuple`` as the converter: attrs reads a converter's signature, and a
    # builtin's is parsed from its text with tokenize, whose regex takes ~5 ms to compile in
    # every process that imports this module (every command).
    return tuple(value)


def _one_of(options: tuple[str, ...]) -> Callable[[Any, attrs.Attribute, Any], None]:
    def check(_inst: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in options:
            raise ValueError(f"{attribute.name} must be one of {options}, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event. ``event_id`` is assigned at construction so others can refer to it."""

    EVENT_TYPE: ClassVar[str] = ""
    SCHEMA_VERSION: ClassVar[int] = 1
    event_id: str = attrs.field(factory=new_uuid7)
    run_id: str | None = None


# -- runs -------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class RunStarted(Event):
    EVENT_TYPE: ClassVar[str] = "run_started"
    run_id: str
    job_name: str
    triggered_by: str = attrs.field(default="python", validator=_one_of(TRIGGERS))
    parent_run_id: str | None = None
    provider: str | None = None
    args: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    partition_key: str | None = None
    scope_keys: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    code_version: str | None = None
    backfill_id: str | None = None
    lease_seconds: float = 300.0
    app_version: str | None = None
    # Where the run's process lives, so that a run whose process is gone from this host is abandoned
    # at once instead of at the end of its lease (ledger.liveness). Events written before these
    # fields existed read back with None: their runs keep the lease rule alone.
    host: str | None = None
    pid: int | None = None
    pid_start: int | None = None  # the process's start time in clock ticks after boot (/proc/PID/stat)


@attrs.frozen(kw_only=True)
class RunHeartbeat(Event):
    EVENT_TYPE: ClassVar[str] = "run_heartbeat"
    run_id: str
    lease_seconds: float = 300.0


@attrs.frozen(kw_only=True)
class RunSucceeded(Event):
    EVENT_TYPE: ClassVar[str] = "run_succeeded"
    run_id: str


@attrs.frozen(kw_only=True)
class RunFailed(Event):
    EVENT_TYPE: ClassVar[str] = "run_failed"
    run_id: str
    error_type: str
    error_message: str
    error_fingerprint: str | None = None
    stack_hash: str | None = None


@attrs.frozen(kw_only=True)
class RunAbandoned(Event):
    EVENT_TYPE: ClassVar[str] = "run_abandoned"
    run_id: str
    reason: str = "lease expired without a terminal event"
    lease_expired_at: str | None = None  # ISO timestamp


# -- assets -----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class AssetMaterialized(Event):
    EVENT_TYPE: ClassVar[str] = "asset_materialized"
    run_id: str
    asset_key: str
    partition_key: str
    scope_key: str
    asset_kind: str = "table"
    rows: int = 0
    bytes: int | None = None
    min_data_time: str | None = None  # ISO timestamps of the data period written
    max_data_time: str | None = None
    code_version: str | None = None
    data_version: str | None = None
    path: str | None = None
    sha256: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen(kw_only=True)
class AssetFailed(Event):
    EVENT_TYPE: ClassVar[str] = "asset_failed"
    run_id: str
    asset_key: str
    partition_key: str
    scope_key: str
    asset_kind: str = "table"
    error_type: str = "Error"
    error_message: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen(kw_only=True)
class AssetSkipped(Event):
    EVENT_TYPE: ClassVar[str] = "asset_skipped"
    run_id: str
    asset_key: str
    partition_key: str
    scope_key: str
    asset_kind: str = "table"
    reason: str = ""
    extra: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)


# -- checks -----------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class CheckEvaluated(Event):
    EVENT_TYPE: ClassVar[str] = "check_evaluated"
    run_id: str
    asset_key: str
    partition_key: str | None
    scope_key: str
    check_name: str
    severity: str = attrs.field(validator=_one_of(SEVERITIES))
    status: str = attrs.field(validator=_one_of(CHECK_STATUSES))
    metrics: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)
    message: str = ""
    materialization_id: str | None = None  # event_id of the AssetMaterialized it validated
    materialization_seq: int | None = None  # its seq; resolved by the store at append time


def _check_results(values: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """The check results of a ``ChecksEvaluated``, each in its stored shape (every field present)."""
    if isinstance(values, str | bytes | Mapping):
        raise TypeError(f"checks must be a list of check results, got {type(values).__name__}")
    results = []
    for v in values:
        try:
            results.append({"check_name": v["check_name"], "severity": v["severity"], "status": v["status"],
                            "metrics": _frozen_dict(v.get("metrics")), "message": v.get("message") or ""})
        except (KeyError, TypeError, AttributeError):
            raise TypeError(f"each check must be a mapping with check_name, severity and status, got {v!r:.80}") from None
    names = [r["check_name"] for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"checks must have distinct names, got {names}")
    for r in results:
        if not isinstance(r["check_name"], str) or not r["check_name"]:
            raise ValueError(f"check_name must be a non-empty string, got {r['check_name']!r}")
        if r["severity"] not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {r['severity']!r}")
        if r["status"] not in CHECK_STATUSES:
            raise ValueError(f"status must be one of {CHECK_STATUSES}, got {r['status']!r}")
    return tuple(results)


@attrs.frozen(kw_only=True)
class ChecksEvaluated(Event):
    """The checks evaluated on one materialization, in one event: ``checks`` holds each result as
    ``CheckEvaluated`` would (check_name, severity, status, metrics, message). The runner records
    its checks so (one event per materialization instead of one per check: the log and the append
    carry a sixth of the rows). ``evaluations()`` gives each as a ``CheckEvaluated`` whose id is
    ``<event_id>/<check_name>``, the ``check_id`` of its ``meta.asset_checks`` row."""

    EVENT_TYPE: ClassVar[str] = "checks_evaluated"
    run_id: str
    asset_key: str
    partition_key: str | None
    scope_key: str
    checks: tuple[dict[str, Any], ...] = attrs.field(converter=_check_results)
    materialization_id: str | None = None  # event_id of the AssetMaterialized they validated
    materialization_seq: int | None = None  # its seq; resolved by the store at append time

    def evaluations(self) -> list[CheckEvaluated]:
        return [CheckEvaluated(event_id=f"{self.event_id}/{c['check_name']}", run_id=self.run_id,
                               asset_key=self.asset_key, partition_key=self.partition_key, scope_key=self.scope_key,
                               materialization_id=self.materialization_id,
                               materialization_seq=self.materialization_seq, **c)
                for c in self.checks]


def check_evaluations(event: Event) -> list[CheckEvaluated]:
    """Each check an event records, one ``CheckEvaluated`` apiece (none for other events)."""
    if isinstance(event, CheckEvaluated):
        return [event]
    if isinstance(event, ChecksEvaluated):
        return event.evaluations()
    return []


# -- backfills --------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class BackfillPlanned(Event):
    """A backfill's target cells, recorded before any of its runs start."""

    EVENT_TYPE: ClassVar[str] = "backfill_planned"
    backfill_id: str
    cells: tuple[tuple[str, str, str], ...] = attrs.field(
        converter=lambda cs: tuple(tuple(c) for c in cs)  # (asset_key, partition_key, scope_key)
    )
    args: dict[str, Any] = attrs.field(factory=dict, converter=_frozen_dict)


@attrs.frozen(kw_only=True)
class BackfillFinished(Event):
    EVENT_TYPE: ClassVar[str] = "backfill_finished"
    backfill_id: str
    status: str = "success"  # success | failed
    message: str = ""


EVENT_TYPES: dict[str, type[Event]] = {
    cls.EVENT_TYPE: cls
    for cls in (
        RunStarted, RunHeartbeat, RunSucceeded, RunFailed, RunAbandoned,
        AssetMaterialized, AssetFailed, AssetSkipped, CheckEvaluated, ChecksEvaluated,
        BackfillPlanned, BackfillFinished,
    )
}

# Envelope columns lifted out of the payload into their own columns of meta.events.
ENVELOPE_FIELDS = ("event_id", "run_id", "asset_key", "partition_key", "scope_key")

# (event_type, from_version) -> function upgrading a payload dict to from_version + 1.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upcaster(event_type: str, from_version: int) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], Callable[[dict[str, Any]], dict[str, Any]]]:
    def register(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        UPCASTERS[(event_type, from_version)] = fn
        return fn

    return register


@attrs.frozen(kw_only=True)
class StoredRow:
    """An event as stored, before the store assigns seq, recorded_at and hashes."""

    event_id: str
    event_type: str
    schema_version: int
    run_id: str | None
    asset_key: str | None
    partition_key: str | None
    scope_key: str | None
    payload: str  # canonical JSON


@attrs.frozen(kw_only=True)
class StoredEvent:
    """An event read back from the log, with its envelope."""

    seq: int
    recorded_at: dt.datetime
    prev_hash: str
    hash: str
    event: Event

    @property
    def event_type(self) -> str:
        return self.event.EVENT_TYPE


# One encoder, built once: json.dumps with non-default arguments builds a new encoder per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    text = _encode(value)
    return text if text.isascii() else _utf8(text)


# The C encoder behind _CANONICAL, built once instead of per call; without circular-reference
# markers, so a circular value recurses until RecursionError and is then encoded by _CANONICAL,
# which reports it as the ValueError it always raised.
_C_CANONICAL = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _CANONICAL.default, encode_basestring, None, ":", ",", True, False, False
) if getattr(json.encoder, "c_make_encoder", None) else None


def _encode(value: Any) -> str:
    if _C_CANONICAL is not None:
        try:
            return "".join(_C_CANONICAL(value, 0))
        except RecursionError:
            pass
    return _CANONICAL.encode(value)


@functools.cache
def _payload_fields(cls: type) -> tuple[str, ...]:
    return tuple(a.name for a in attrs.fields(cls) if a.name not in ENVELOPE_FIELDS)


@functools.cache
def _payload_keys(cls: type) -> tuple[tuple[str, str], ...]:
    """(field, its JSON key and colon) in canonical order: the keys sorted, as ``sort_keys`` does."""
    return tuple((name, f"{encode_basestring(name)}:") for name in sorted(_payload_fields(cls)))


def _scalar_json(value: Any, _str: Any = str, _int: Any = int, _float: Any = float) -> str | None:
    """The JSON encoder's text for a str, int, bool, float or None of exactly that type, else None."""
    kind = type(value)
    if kind is _str:
        return encode_basestring(value)
    if value is None:
        return "null"
    if kind is _int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is _float and value - value == 0.0:  # finite; the encoder words the error for nan and inf
        return float.__repr__(value)
    return None


def payload_json(event: Event) -> str:
    """``canonical_json`` of the event's payload fields, byte for byte (a test checks): scalar fields
    are written here, anything else (dicts, tuples, subclasses) by the encoder itself."""
    parts = []
    for name, key in _payload_keys(event.__class__):  # type: ignore[arg-type]
        value = getattr(event, name)
        text = _scalar_json(value)
        parts.append(key + (_encode(value) if text is None else text))
    text = "{" + ",".join(parts) + "}"
    return text if text.isascii() else _utf8(text)


def to_row(event: Event) -> StoredRow:
    # Events hold only JSON-able values (str, numbers, None, dicts, tuples), so a flat getattr is
    # enough: attrs.asdict's recursion costs more than the rest of an append's Python work.
    try:
        payload = payload_json(event)
    except InvalidUnicodeError:
        bad = next((a.name for a in attrs.fields(type(event)) if _has_surrogates(getattr(event, a.name))), "?")
        raise InvalidUnicodeError(
            f"{event.EVENT_TYPE} field {bad!r} is not valid Unicode (undecodable bytes?); pass UTF-8 text"
        ) from None
    except (TypeError, ValueError) as e:
        raise PayloadNotJSONError(
            f"{event.EVENT_TYPE} payload is not JSON-serialisable: {e}; give its fields strings, numbers, lists or dicts"
        ) from e
    run_id = getattr(event, "run_id", None)
    asset_key = getattr(event, "asset_key", None)
    partition_key = getattr(event, "partition_key", None)
    scope_key = getattr(event, "scope_key", None)
    return StoredRow(
        event_id=str(_utf8(event.event_id)),
        event_type=event.EVENT_TYPE,
        schema_version=event.SCHEMA_VERSION,
        run_id=_utf8(run_id),
        asset_key=_utf8(asset_key),
        partition_key=_utf8(partition_key),
        scope_key=_utf8(scope_key),
        payload=payload,
    )


def _has_surrogates(value: Any) -> bool:
    try:
        canonical_json(value)
    except (TypeError, ValueError, RecursionError):
        return True
    return False


def _utf8(value: Any) -> Any:
    """``value`` unchanged if it is storable UTF-8; lone surrogates (what Python makes of
    undecodable bytes in argv or file names) are refused rather than silently altered."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidUnicodeError(
                f"{value[:40]!r} is not valid Unicode (undecodable bytes?); pass UTF-8 text"
            ) from None
    return value


def from_row(
    *,
    event_type: str,
    schema_version: int,
    event_id: str,
    run_id: str | None,
    asset_key: str | None,
    partition_key: str | None,
    scope_key: str | None,
    payload: str | Mapping[str, Any],
) -> Event:
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventTypeError(
            f"unknown event type {event_type!r}; is this database newer than the code? Upgrade options-helper"
        )
    try:
        data = dict(json.loads(payload) if isinstance(payload, str) else payload)
    except (TypeError, ValueError) as e:
        raise IntegrityError(f"stored {event_type} event {event_id} has an unreadable payload ({e})") from e
    version = schema_version
    while version < cls.SCHEMA_VERSION:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise MissingUpcasterError(
                f"no upcaster for {event_type} v{version} -> v{version + 1}; this options-helper cannot read "
                "that event: upgrade it, or register the upcaster with @upcaster"
            )
        data = step(data)
        version += 1
    envelope = {"event_id": event_id, "run_id": run_id, "asset_key": asset_key,
                "partition_key": partition_key, "scope_key": scope_key}
    fields = {a.name for a in attrs.fields(cls)}
    kwargs = {k: v for k, v in {**data, **envelope}.items() if k in fields}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise IntegrityError(
            f"stored {event_type} event {event_id} cannot be read ({e}); run `options-helper db verify`"
        ) from e


__all__ = [
    "CHECK_RESULT_FIELDS",
    "CHECK_STATUSES",
    "EVENT_TYPES",
    "RUN_EVENT_STATUS",
    "RUN_STATUSES",
    "SEVERITIES",
    "STATUS_RANK",
    "TRIGGERS",
    "AssetFailed",
    "AssetMaterialized",
    "AssetSkipped",
    "BackfillFinished",
    "BackfillPlanned",
    "CheckEvaluated",
    "ChecksEvaluated",
    "Event",
    "RunAbandoned",
    "RunFailed",
    "RunHeartbeat",
    "RunStarted",
    "RunSucceeded",
    "StoredEvent",
    "StoredRow",
    "canonical_json",
    "check_evaluations",
    "from_row",
    "to_row",
    "upcaster",
]
