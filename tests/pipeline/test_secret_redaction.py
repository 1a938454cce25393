"""Secrets never reach the ledger, the results or the CLI's error line, whoever raised the message:
the ledger masks every payload text against the known secret values before hashing and storing it."""

from __future__ import annotations

import json
from typing import Any

import pytest

import ledger
import stages
from frontends.cli.app import main
from ledger.config import Settings
from ledger.errors import ConfigError, OptionsHelperError, SymbolNotFoundError
from ledger.redact import REDACTED
from tests.pipeline.conftest import DAY2, NOW, FaultyProvider

SECRET = "planted-secret-value-8d2f"


@pytest.fixture(autouse=True)
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def _nowhere(settings: Settings) -> None:
    """The secret is in no event, no projection row and no byte of the file."""
    led = ledger.open(settings.duckdb_path)
    with led.reader() as con:
        for table in ("events", "ingestion_runs", "ingestion_run_assets", "asset_checks", "partition_status"):
            rows = con.execute(f"SELECT * FROM meta.{table}").fetchall()
            assert SECRET not in json.dumps(rows, default=str), table
    assert SECRET.encode() not in settings.duckdb_path.read_bytes()


def test_a_symbol_failing_with_the_secret_in_its_message_stores_it_masked(settings: Settings, synthetic: Any) -> None:
    # An exception raised outside the provider adapter, which masks only its own errors.
    provider = FaultyProvider(synthetic, fail={"stock_bars": {"NOPE": SymbolNotFoundError(f"NOPE: key {SECRET} refused")}})
    result = stages.run_job("ingest_candles", as_of=DAY2, symbols=["SPY", "NOPE"], settings=settings,
                            provider=provider, now=NOW)
    nope = result.outcome("NOPE")
    assert nope is not None and nope.status == "failed"
    assert nope.error == f"NOPE: key {REDACTED} refused"
    assert SECRET not in json.dumps(result.to_dict(), default=str)
    led = ledger.open(settings.duckdb_path)
    (failed,) = [s.event for s in led.events() if s.event_type == "asset_failed"]
    assert failed.error_message == f"NOPE: key {REDACTED} refused"
    with led.reader() as con:
        (extra,) = con.execute("SELECT extra_json->>'error' FROM meta.ingestion_run_assets WHERE scope_key = 'NOPE'"
                               ).fetchone()
    assert extra == f"NOPE: key {REDACTED} refused"
    _nowhere(settings)


def test_a_check_message_a_skip_reason_and_metrics_are_masked(settings: Settings) -> None:
    led = ledger.open(settings.duckdb_path)
    with led.run("ingest_candles", partition_key="2026-11-20", scope_keys=["SPY", "IWM"]) as run:
        mat = run.materialized("candles_daily", "2026-11-20", "SPY", rows=1)
        run.complete([
            mat,
            run.check(asset_key="candles_daily", partition_key="2026-11-20", scope_key="SPY", check_name="c",
                      severity="warn", status="fail", message=f"saw {SECRET} in a header",
                      metrics={"token": "abc", "seen": [SECRET]}, materialization_id=mat.event_id),
            ledger.AssetSkipped(run_id=run.run_id, asset_key="candles_daily", partition_key="2026-11-20",
                                scope_key="IWM", reason=f"no data for {SECRET}", extra={"password": "x"}),
        ])
    (check,) = led.store.projection("asset_checks")
    assert check["message"] == f"saw {REDACTED} in a header"
    assert check["metrics_json"] == {"token": REDACTED, "seen": [REDACTED]}
    skipped = [r for r in led.store.projection("ingestion_run_assets") if r["status"] == "skipped"]
    assert skipped[0]["extra_json"] == {"password": REDACTED, "reason": f"no data for {REDACTED}"}
    assert led.verify().ok  # the chain hashes what was stored: the masked payloads
    _nowhere(settings)


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "with --debug"])
@pytest.mark.parametrize(("raised", "shown", "exit_code"), [
    (ConfigError(f"the key {SECRET} is malformed; fix it in your env file"), "is malformed", ConfigError.exit_code),
    (RuntimeError(f"unexpected reply quoting {SECRET}"), "internal error: RuntimeError", OptionsHelperError.exit_code),
], ids=["our error", "a bug"])
def test_the_cli_error_line_and_traceback_are_masked(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], debug: list[str],
                                                     raised: Exception, shown: str, exit_code: int) -> None:
    def leaky(*args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(stages, "run_job", leaky)
    code = main([*debug, "--duckdb-path", str(settings.duckdb_path), "--data-root", str(settings.data_root),
                 "--provider", "synthetic", "ingest", "candles", "--as-of", "2026-11-20", "--symbols", "SPY"])
    err = capsys.readouterr().err
    assert code == exit_code
    assert shown in err and REDACTED in err and SECRET not in err
    assert ("Traceback (most recent call last)" in err) == bool(debug)
