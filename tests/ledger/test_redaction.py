"""Secrets never reach the ledger: secret-named arguments and every known secret value are masked."""

from __future__ import annotations

import json

import pytest

import ledger
from ledger.redact import REDACTED, remember_secret


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
