"""Secrets never reach the ledger: secret-named arguments and every known secret value are masked."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ledger
from ledger.errors import InvalidUnicodeError
from ledger.events import (
    AssetFailed,
    AssetMaterialized,
    AssetSkipped,
    CheckEvaluated,
    ChecksEvaluated,
    Event,
    RunStarted,
    to_row,
)
from ledger.redact import REDACTED, is_secret_name, redact_event, redacted_rows, remember_secret


def test_secret_named_args_and_secret_values_are_masked_in_args_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("APCA_API_SECRET_KEY", "env-secret-value-0001")
    remember_secret("file-secret-value-0002")  # as the credentials loader does for an env file
    led = ledger.open(tmp_path / "l.duckdb")
    with pytest.raises(RuntimeError), led.run(
        "ingest_candles",
        args={"api_key": "anything", "note": "uses env-secret-value-0001 and file-secret-value-0002", "n": 3},
    ):
        raise RuntimeError("auth failed for file-secret-value-0002")
    (run,) = led.runs()
    stored = json.dumps([e.event.__dict__ if hasattr(e.event, "__dict__") else str(e.event) for e in led.events()],
                        default=str)
    raw = (tmp_path / "l.duckdb").read_bytes()
    for secret in ("env-secret-value-0001", "file-secret-value-0002", "anything"):
        assert secret not in stored
        assert secret.encode() not in raw
    assert run["error_message"] == f"auth failed for {REDACTED}"


# -- the append's fast path: serialise first, walk only what could hold a secret ------------------
# Secrets with characters JSON escapes, and key names the rule treats as secret only by case
# folding (a Kelvin sign, a long s, a dotless i), where a plain lower-casing would miss them.
_SECRETS = ["s3cr3t-value-0001", 'quote"and\\slash-0002', "tab\tand\nnewline-0003"]
# Keys whose JSON text differs from their name ("private\tkey" is secret, "private\\tkey" would not
# be), and values that read like keys in the JSON text.
_KEYS = st.sampled_from(["rows", "note", "api_key", "TOKEN", "Authority", "passwd", "x", "\u212aey",
                         "\u017fecret", "credent\u0131al", "caf\u00e9", "duplicate_keys", "private\tkey",
                         'q"api_key', "back\\slash_token"])
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(_SECRETS),
    st.sampled_from(['api_key":', '\\":"token":', 'duplicate_keys', '":{"api_key":"']),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=4), st.sampled_from(_SECRETS), st.text(max_size=4)),
)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.tuples(inner) | st.dictionaries(_KEYS, inner, max_size=3)


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    _nested, max_leaves=8,
)
_EVENTS = st.one_of(
    st.builds(lambda extra, path: AssetMaterialized(run_id="r", asset_key="a", partition_key="p", scope_key="s",
                                                     extra=extra, path=path),
              st.dictionaries(_KEYS, _JSONISH, max_size=3), _TEXT | st.none()),
    st.builds(lambda metrics, message: CheckEvaluated(run_id="r", asset_key="a", partition_key="p", scope_key="s",
                                                      check_name="c", severity="warn", status="fail",
                                                      metrics=metrics, message=message),
              st.dictionaries(_KEYS, _JSONISH, max_size=3), _TEXT),
    st.builds(lambda metrics, message: ChecksEvaluated(
        run_id="r", asset_key="a", partition_key="p", scope_key="s", checks=[
            {"check_name": "no_duplicate_keys", "severity": "error", "status": "pass", "metrics": {"duplicate_keys": 0}},
            {"check_name": "c", "severity": "warn", "status": "fail", "metrics": metrics, "message": message}]),
              st.dictionaries(_KEYS, _JSONISH, max_size=3), _TEXT),
    st.builds(lambda args: RunStarted(run_id="r", job_name="j", args=args, scope_keys=("s",)),
              st.dictionaries(_KEYS, _JSONISH, max_size=3)),
    st.builds(lambda message: AssetFailed(run_id="r", asset_key="a", partition_key="p", scope_key="s",
                                          error_message=message), _TEXT),
)


@given(events=st.lists(_EVENTS, min_size=1, max_size=4), some=st.lists(st.sampled_from(_SECRETS), unique=True))
@settings(max_examples=300, deadline=None)
def test_the_fast_path_masks_exactly_what_the_full_walk_masks(events: list[Event], some: list[str]) -> None:
    walked = [redact_event(e, some) for e in events]
    masked, rows = redacted_rows(events, some)
    assert masked == walked
    assert rows == [to_row(e) for e in walked]


def test_a_payload_refused_only_for_what_masking_removes_is_stored_masked() -> None:
    # Not valid Unicode, but under a secret-named key: the walk masks it, so the append accepts it.
    event = AssetSkipped(run_id="r", asset_key="a", partition_key="p", scope_key="s", extra={"api_key": "\udcff"})
    (masked,), (row,) = redacted_rows([event], [])
    assert masked.extra == {"api_key": REDACTED}  # type: ignore[attr-defined]
    assert json.loads(row.payload)["extra"] == {"api_key": REDACTED}
    with pytest.raises(InvalidUnicodeError):
        redacted_rows([attrs.evolve(event, extra={"note": "\udcff"})], [])


@pytest.mark.parametrize("name", ["api_key", "APCA_API_KEY_ID", "ALPACA_SECRET_KEY", "apiKey", "x-api-key", "key", "KEY",
                                  "private_key", "client_secret", "accessToken", "password", "passwd", "auth",
                                  "Authorization", "credentials"])
def test_names_of_secrets_are_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["duplicate_keys", "row_key", "sort_keys", "keyboard", "monkey", "author", "rows_checked"])
def test_names_that_only_contain_a_secret_word_are_not(name: str) -> None:
    """A check's ``duplicate_keys`` metric was stored as ``***`` whenever it was not 0."""
    assert not is_secret_name(name)


def test_a_duplicate_keys_metric_is_stored_as_counted() -> None:
    check = CheckEvaluated(run_id="r", asset_key="candles_daily", partition_key="2026-11-20", scope_key="SPY",
                           check_name="candles_unique_symbol_date", severity="error", status="fail",
                           metrics={"duplicate_keys": 2, "api_key": "abc"}, message="2 duplicate keys")
    assert redact_event(check, []).metrics == {"duplicate_keys": 2, "api_key": "***"}
