"""Event payloads and the mapper: every event type round-trips through the row mapper and the
DuckDB store, whatever its strings and JSON hold; corrupt stored rows raise typed errors."""

from __future__ import annotations

import json
import typing

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import IntegrityError, MissingUpcasterError, OptionsHelperError, UnknownEventTypeError
from ledger.events import (
    CHECK_STATUSES,
    ENVELOPE_FIELDS,
    EVENT_TYPES,
    SEVERITIES,
    TRIGGERS,
    UPCASTERS,
    CheckEvaluated,
    RunStarted,
    RunSucceeded,
    from_row,
    to_row,
)
from ledger.redact import redact_event
from tests.fuzz._util import FUZZ

TEXT = st.text(max_size=40)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**62), 2**62) | TEXT | st.floats(
    allow_nan=False, allow_infinity=False)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=12)
CHOICES = {"triggered_by": TRIGGERS, "severity": SEVERITIES, "status": CHECK_STATUSES}


def _strategy(name: str, annotation: str) -> st.SearchStrategy:
    if name in CHOICES:
        return st.sampled_from(CHOICES[name])
    if name == "status":  # BackfillFinished
        return st.sampled_from(("success", "failed"))
    if name == "checks":  # ChecksEvaluated: results with distinct names
        result = st.fixed_dictionaries({
            "check_name": st.text(min_size=1, max_size=40), "severity": st.sampled_from(SEVERITIES),
            "status": st.sampled_from(CHECK_STATUSES), "metrics": st.dictionaries(TEXT, JSON, max_size=4),
            "message": TEXT})
        return st.lists(result, max_size=4, unique_by=lambda c: c["check_name"])
    optional = "None" in annotation
    base: st.SearchStrategy
    if annotation.startswith("dict"):
        base = st.dictionaries(TEXT, JSON, max_size=4)
    elif annotation.startswith("tuple[tuple"):
        base = st.lists(st.tuples(TEXT, TEXT, TEXT), max_size=3)
    elif annotation.startswith("tuple"):
        base = st.lists(TEXT, max_size=4)
    elif annotation.startswith("int"):
        base = st.integers(-(2**62), 2**62)
    elif annotation.startswith("float"):
        base = st.floats(min_value=0.001, max_value=1e9, allow_nan=False)
    else:
        base = TEXT
    return (st.none() | base) if optional else base


def events_of(cls: type) -> st.SearchStrategy:
    fields = {}
    for f in attrs.fields(cls):
        if f.name in ("event_id", "materialization_seq"):
            continue
        fields[f.name] = _strategy(f.name, str(f.type))
    return st.builds(cls, **fields)


ALL_EVENTS = st.one_of(*[events_of(c) for c in EVENT_TYPES.values()])


@FUZZ
@given(ALL_EVENTS)
def test_every_event_round_trips_through_the_row_mapper(event):
    row = to_row(event)
    json.loads(row.payload)  # canonical JSON
    back = from_row(**attrs.asdict(row))
    assert back == event


@pytest.fixture(scope="module")
def memory_store():
    from ledger.duckdb_store import DuckDBEventStore

    return DuckDBEventStore(":memory:", auto_reap=False)


@settings(parent=FUZZ, max_examples=max(5, FUZZ.max_examples // 2))
@given(st.dictionaries(TEXT, JSON, max_size=5), TEXT)
def test_any_json_args_and_job_name_survive_the_store(memory_store, args, job_name):
    """Whatever a caller puts in args/job names is stored and read back as it was (but for values
    under secret-named keys, masked), or refused with a typed error (never a driver or codec
    exception)."""
    event = RunStarted(run_id=f"r-{id(args)}-{len(memory_store.read())}", job_name=job_name, args=args)
    try:
        stored = memory_store.append([event])
    except OptionsHelperError:
        return
    back = memory_store.read(since_seq=stored[0].seq - 1, limit=1)[0].event
    assert back == redact_event(event, ())


# The ways a stored payload can be corrupt that the reader must refuse, each naming the bad event.
CORRUPTIONS = ("missing_field", "value_outside_choices", "not_json", "not_an_object", "wrong_container")
CONTAINERS = {"args", "extra", "metrics", "scope_keys", "cells", "checks"}  # fields built by a converter
VALIDATED = {RunStarted: {"triggered_by": TRIGGERS},  # fields whose value must be one of a few choices
             CheckEvaluated: {"severity": SEVERITIES, "status": CHECK_STATUSES}}


def _required(cls: type) -> list[str]:
    """Payload fields without a default (the envelope comes from the row's own columns)."""
    return [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING and f.name not in ENVELOPE_FIELDS]


def _applicable(cls: type) -> list[str]:
    names = {f.name for f in attrs.fields(cls)}
    kinds = ["not_json", "not_an_object"]
    if _required(cls):
        kinds.append("missing_field")
    if cls in VALIDATED:
        kinds.append("value_outside_choices")
    if names & CONTAINERS:
        kinds.append("wrong_container")
    return kinds


def _corrupt(kind: str, event: object, payload: dict, draw: st.DrawFn) -> str:
    names = {f.name for f in attrs.fields(type(event))}
    if kind == "not_json":
        return json.dumps(payload)[:-1]  # truncated: the closing brace is gone
    if kind == "not_an_object":
        return json.dumps(draw(st.sampled_from([[1, 2], 42, "text", None])))
    if kind == "missing_field":
        del payload[draw(st.sampled_from(_required(type(event))))]
    elif kind == "value_outside_choices":
        field = draw(st.sampled_from(sorted(VALIDATED[type(event)])))
        payload[field] = draw(st.sampled_from(["bogus", "", 1, None]))
    elif kind == "wrong_container":
        payload[draw(st.sampled_from(sorted(names & CONTAINERS)))] = draw(st.sampled_from([5, 1.5, True]))
    return json.dumps(payload)


@st.composite
def corrupt_rows(draw: st.DrawFn) -> tuple[str, dict]:
    event = draw(ALL_EVENTS)
    kind = draw(st.sampled_from(_applicable(type(event))))
    row = attrs.asdict(to_row(event))
    row["payload"] = _corrupt(kind, event, json.loads(row["payload"]), draw)
    return kind, row


@FUZZ
@given(corrupt_rows())
def test_a_corrupt_stored_payload_is_an_integrity_error_naming_the_event(case):
    """A stored row whose payload is not JSON, not an object, lacks a required field, holds a value
    outside its choices or a scalar where a container belongs is refused with IntegrityError naming
    the event's type and id (never a bare TypeError/ValueError, never a half-read event)."""
    kind, row = case
    with pytest.raises(IntegrityError) as caught:
        from_row(**row)
    assert f"stored {row['event_type']} event {row['event_id']}" in str(caught.value), kind


@FUZZ
@given(st.sampled_from(sorted(EVENT_TYPES)), st.integers(0, 3),
       st.dictionaries(st.sampled_from(["run_id", "job_name", "asset_key", "rows", "severity", "status",
                                        "check_name", "cells", "backfill_id", "x"]), JSON, max_size=6))
def test_any_stored_payload_is_read_as_its_type_or_refused_by_type(event_type, version, payload):
    """Whatever a stored payload holds, reading it gives an event of the row's type carrying the row's
    envelope and the payload's fields, or one of two typed refusals: no upcaster for an old version,
    IntegrityError naming the event for a payload the type cannot be built from."""
    cls = EVENT_TYPES[event_type]
    envelope = {"event_id": "e1", "run_id": "r1", "asset_key": "a", "partition_key": "2026-01-02",
                "scope_key": "SPY"}
    row = {"event_type": event_type, "schema_version": version, **envelope, "payload": json.dumps(payload)}
    if version < cls.SCHEMA_VERSION:  # no upcaster is registered for any type
        with pytest.raises(MissingUpcasterError, match=f"no upcaster for {event_type} v{version} -> v{version + 1}"):
            from_row(**row)
        return
    names = {f.name for f in attrs.fields(cls)}
    missing = set(_required(cls)) - set(payload)
    outside = {k for k, options in VALIDATED.get(cls, {}).items() if k in payload and payload[k] not in options}
    try:
        event = from_row(**row)
    except IntegrityError as e:
        assert f"stored {event_type} event e1" in str(e)
        assert missing or outside or names & CONTAINERS & set(payload), (payload, str(e))
        return
    assert not missing and not outside, (missing, outside)
    assert type(event) is cls
    assert {k: getattr(event, k) for k in envelope if k in names} == {k: v for k, v in envelope.items() if k in names}
    for key, value in payload.items():
        if key in names and key not in envelope and key not in CONTAINERS:
            assert getattr(event, key) == value, key


@FUZZ
@given(st.dictionaries(TEXT, JSON_SCALARS, max_size=4))
def test_upcasters_apply_in_order_and_a_missing_step_is_a_conflict(monkeypatch_session, payload):
    """The upcast chain: v1 -> v2 -> v3 applied in order on read; a gap in the chain is refused."""
    calls: list[int] = []

    def v1(d: dict) -> dict:
        calls.append(1)
        return {**d, "v2": True}

    def v2(d: dict) -> dict:
        calls.append(2)
        return {**d, "v3": True}

    with monkeypatch_session.context() as m:
        m.setattr(RunSucceeded, "SCHEMA_VERSION", 3)
        m.setitem(UPCASTERS, ("run_succeeded", 1), v1)
        m.setitem(UPCASTERS, ("run_succeeded", 2), v2)
        event = from_row(event_type="run_succeeded", schema_version=1, event_id="e", run_id="r", asset_key=None,
                         partition_key=None, scope_key=None, payload=json.dumps(payload))
        assert calls == [1, 2] and event.run_id == "r"
        m.delitem(UPCASTERS, ("run_succeeded", 2))
        with pytest.raises(MissingUpcasterError, match="no upcaster"):
            from_row(event_type="run_succeeded", schema_version=1, event_id="e", run_id="r", asset_key=None,
                     partition_key=None, scope_key=None, payload=json.dumps(payload))


@pytest.fixture(scope="module")
def monkeypatch_session():
    with pytest.MonkeyPatch.context() as m:
        yield m


@pytest.mark.parametrize("text", [
    "\ud800",
    "a\x00b", "\U0001f600 \u202e", "x" * 10_000])
def test_odd_strings_in_args_are_stored_or_refused_cleanly(memory_store, text):
    """Lone surrogates, NULs, bidi marks, long strings: stored unchanged or a typed error."""
    event = RunStarted(run_id=f"odd-{len(memory_store.read())}", job_name=text, args={text: text})
    try:
        stored = memory_store.append([event])
    except OptionsHelperError:
        return
    assert memory_store.read(since_seq=stored[0].seq - 1, limit=1)[0].event == event


def test_unknown_event_type_is_a_conflict():
    with pytest.raises(UnknownEventTypeError, match="unknown event type"):
        from_row(event_type="from_the_future", schema_version=1, event_id="e", run_id=None, asset_key=None,
                 partition_key=None, scope_key=None, payload="{}")


assert typing  # (annotations are compared as strings above)
