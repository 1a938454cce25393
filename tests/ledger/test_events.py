"""The mapper: every event type round-trips through its stored row, and old payloads are upcast."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import events as ev
from ledger.errors import MissingUpcasterError, UnknownEventTypeError
from ledger.ids import new_uuid7
from tests.ledger.helpers import PURE

text = st.text(max_size=12)
ids = st.uuids().map(str)
opt = lambda s: st.none() | s  # noqa: E731
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
iso_times = st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(lambda d: d.isoformat())
cell = {"run_id": ids, "asset_key": text, "partition_key": text, "scope_key": text}

STRATEGIES: dict[type[ev.Event], st.SearchStrategy[ev.Event]] = {
    ev.RunStarted: st.builds(
        ev.RunStarted, event_id=ids, run_id=ids, job_name=text, triggered_by=st.sampled_from(ev.TRIGGERS),
        parent_run_id=opt(ids), provider=opt(text), args=json_objects, partition_key=opt(text),
        scope_keys=st.lists(text, max_size=4), code_version=opt(text), backfill_id=opt(ids),
        lease_seconds=st.floats(0.001, 1e6), app_version=opt(text)),
    ev.RunHeartbeat: st.builds(ev.RunHeartbeat, event_id=ids, run_id=ids, lease_seconds=st.floats(0.001, 1e6)),
    ev.RunSucceeded: st.builds(ev.RunSucceeded, event_id=ids, run_id=ids),
    ev.RunFailed: st.builds(ev.RunFailed, event_id=ids, run_id=ids, error_type=text, error_message=st.text(),
                            error_fingerprint=opt(text), stack_hash=opt(text)),
    ev.RunAbandoned: st.builds(ev.RunAbandoned, event_id=ids, run_id=ids, reason=text, lease_expired_at=opt(iso_times)),
    ev.AssetMaterialized: st.builds(
        ev.AssetMaterialized, event_id=ids, **cell, asset_kind=st.sampled_from(["table", "file", "view"]),
        rows=st.integers(0, 2**62), bytes=opt(st.integers(0, 2**62)), min_data_time=opt(iso_times),
        max_data_time=opt(iso_times), code_version=opt(text), data_version=opt(text), path=opt(text),
        sha256=opt(text), extra=json_objects),
    ev.AssetFailed: st.builds(ev.AssetFailed, event_id=ids, **cell, error_type=text, error_message=st.text(),
                              extra=json_objects),
    ev.AssetSkipped: st.builds(ev.AssetSkipped, event_id=ids, **cell, reason=text, extra=json_objects),
    ev.CheckEvaluated: st.builds(
        ev.CheckEvaluated, event_id=ids, run_id=ids, asset_key=text, partition_key=opt(text), scope_key=text,
        check_name=text, severity=st.sampled_from(ev.SEVERITIES), status=st.sampled_from(ev.CHECK_STATUSES),
        metrics=json_objects, message=st.text(), materialization_id=opt(ids),
        materialization_seq=opt(st.integers(1, 2**62))),
    ev.ChecksEvaluated: st.builds(
        ev.ChecksEvaluated, event_id=ids, run_id=ids, asset_key=text, partition_key=opt(text), scope_key=text,
        checks=st.lists(st.fixed_dictionaries({
            "check_name": st.text(min_size=1, max_size=12), "severity": st.sampled_from(ev.SEVERITIES),
            "status": st.sampled_from(ev.CHECK_STATUSES), "metrics": json_objects, "message": st.text()}),
            max_size=4, unique_by=lambda c: c["check_name"]),
        materialization_id=opt(ids), materialization_seq=opt(st.integers(1, 2**62))),
    ev.BackfillPlanned: st.builds(ev.BackfillPlanned, event_id=ids, backfill_id=ids,
                                  cells=st.lists(st.tuples(text, text, text), max_size=5), args=json_objects),
    ev.BackfillFinished: st.builds(ev.BackfillFinished, event_id=ids, backfill_id=ids,
                                   status=st.sampled_from(["success", "failed"]), message=st.text()),
}


def from_stored(row: ev.StoredRow) -> ev.Event:
    return ev.from_row(event_type=row.event_type, schema_version=row.schema_version, event_id=row.event_id,
                       run_id=row.run_id, asset_key=row.asset_key, partition_key=row.partition_key,
                       scope_key=row.scope_key, payload=row.payload)


def test_every_event_type_has_a_round_trip_strategy() -> None:
    assert {cls.EVENT_TYPE for cls in STRATEGIES} == set(ev.EVENT_TYPES)


def test_event_type_names_are_stable_strings_not_python_paths() -> None:
    for name in ev.EVENT_TYPES:
        assert name.isidentifier() and name == name.lower() and "." not in name


@PURE
@given(event=st.one_of(*STRATEGIES.values()))
def test_every_event_round_trips_through_its_stored_row(event: ev.Event) -> None:
    row = ev.to_row(event)
    assert row.event_type == event.EVENT_TYPE and row.schema_version == event.SCHEMA_VERSION
    assert from_stored(row) == event
    # the payload is canonical JSON: serialising the same event again gives the same bytes
    assert ev.to_row(from_stored(row)).payload == row.payload
    assert json.loads(row.payload).keys().isdisjoint(ev.ENVELOPE_FIELDS)


def test_an_unknown_event_type_is_refused_with_a_hint() -> None:
    with pytest.raises(UnknownEventTypeError, match="newer than the code"):
        ev.from_row(event_type="run_teleported", schema_version=1, event_id="e", run_id=None, asset_key=None,
                    partition_key=None, scope_key=None, payload="{}")


# -- upcasting --------------------------------------------------------------------------------
# A heartbeat as an imagined schema version 0 stored it: the lease was whole minutes, named "lease".
STORED_V0_HEARTBEAT = {"event_type": "run_heartbeat", "schema_version": 0, "event_id": "0190a1b2-0000-7000-8000-000000000001",
                       "run_id": "run-1", "asset_key": None, "partition_key": None, "scope_key": None,
                       "payload": '{"lease":5}'}


@pytest.fixture
def v0_upcaster(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Registers a v0 -> v1 heartbeat upcaster in a private copy of the registry."""
    monkeypatch.setattr(ev, "UPCASTERS", dict(ev.UPCASTERS))

    @ev.upcaster("run_heartbeat", 0)
    def minutes_to_seconds(payload: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in payload.items() if k != "lease"}
        out["lease_seconds"] = float(payload["lease"]) * 60
        return out

    return minutes_to_seconds


def test_an_old_payload_is_upcast_on_read(v0_upcaster: Any) -> None:
    event = ev.from_row(**STORED_V0_HEARTBEAT)
    assert event == ev.RunHeartbeat(event_id=STORED_V0_HEARTBEAT["event_id"], run_id="run-1", lease_seconds=300.0)
    # written back, it is stored at the current version
    assert ev.to_row(event).schema_version == ev.RunHeartbeat.SCHEMA_VERSION


def test_an_upcaster_is_a_pure_function_of_the_payload(v0_upcaster: Any) -> None:
    payload = {"lease": 2}
    assert v0_upcaster(payload) == {"lease_seconds": 120.0}
    assert payload == {"lease": 2}


def test_a_missing_upcaster_is_refused() -> None:
    with pytest.raises(MissingUpcasterError, match="no upcaster for run_heartbeat v0"):
        ev.from_row(**STORED_V0_HEARTBEAT)


def test_upcasters_chain_across_several_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ev, "UPCASTERS", dict(ev.UPCASTERS))
    monkeypatch.setattr(ev.RunHeartbeat, "SCHEMA_VERSION", 2)
    ev.upcaster("run_heartbeat", 0)(lambda p: {"lease_minutes": p["lease"]})
    ev.upcaster("run_heartbeat", 1)(lambda p: {"lease_seconds": p["lease_minutes"] * 60.0})
    assert ev.from_row(**STORED_V0_HEARTBEAT).lease_seconds == 300.0


_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(
    prev=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    seq=st.integers(min_value=1, max_value=2**62),
    fields=st.tuples(_TEXT, _TEXT, st.integers(min_value=1, max_value=9), st.none() | _TEXT, st.none() | _TEXT,
                     st.none() | _TEXT, st.none() | _TEXT, _TEXT),
    micros=st.integers(min_value=0, max_value=10**15),
)
def test_the_hash_body_is_the_canonical_json_of_the_row_byte_for_byte(
    prev: str, seq: int, fields: tuple[Any, ...], micros: int
) -> None:
    # The fast path that builds the hashed text by hand must never change a hash: old files verify.
    import datetime as dt

    from ledger.store import hash_body

    event_id, event_type, version, run_id, asset_key, partition_key, scope_key, payload = fields
    at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)
    row = ev.StoredRow(event_id=event_id, event_type=event_type, schema_version=version, run_id=run_id,
                       asset_key=asset_key, partition_key=partition_key, scope_key=scope_key, payload=payload)
    expected = ev.canonical_json([prev, seq, event_id, event_type, version,
                                  at.isoformat(timespec="microseconds"), run_id, asset_key, partition_key,
                                  scope_key, payload])
    assert hash_body(prev, seq, at, row) == expected


@given(ms=st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_event_ids_are_uuid7_in_the_standard_text_form(ms: int) -> None:
    text = new_uuid7(ms)
    parsed = uuid.UUID(text)
    assert str(parsed) == text  # lower-case hex, dashes where uuid puts them
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == ms
    assert new_uuid7(ms) != text  # 74 random bits


def test_event_ids_sort_by_time() -> None:
    assert new_uuid7(1_700_000_000_000) < new_uuid7(1_700_000_000_001) < new_uuid7(1_800_000_000_000)
