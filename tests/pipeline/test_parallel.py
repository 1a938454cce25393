"""The daily on every core (``stages.parallel``): the same results as a serial run, a symbol that
fails in a worker recorded failed while the rest succeed, and a worker killed mid-run leaves no
partial commit."""

from __future__ import annotations

import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

import ledger
import stages
from ledger.config import Settings
from ledger.errors import SymbolNotFoundError
from stages import datastore, parallel
from tests.pipeline.conftest import NOW, SESSIONS, FaultyProvider

# Enough symbols for the pool to take them (stages.parallel.worker_count), in several batches.
SYMBOLS = ("SPY", "QQQ", "IWM", "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL")
# Envelope and payload fields that differ between two runs of the same work: ids, times, process.
VOLATILE = {"host", "pid", "pid_start", "materialization_id", "parent_run_id"}


class ForkableFaulty(FaultyProvider):
    """The test's fault-injecting provider, declared safe to fork like the synthetic one it wraps."""

    process_safe = True


def settings_in(root: Path, workers: int) -> Settings:
    return Settings(duckdb_path=root / "warehouse" / "options.duckdb", data_root=root / "data",
                    watchlists={"default": SYMBOLS}, workers=workers)


def run_sessions(s: Settings, provider: Any) -> None:
    for day in SESSIONS:
        result = stages.run_daily(as_of=day, settings=s, provider=provider, now=NOW)
        assert result.ok, result.to_dict()


def data_rows(s: Settings) -> dict[str, list[dict[str, Any]]]:
    with ledger.open(s.duckdb_path, read_only=True).reader() as con:
        return {t: [{k: v for k, v in row.items() if k != "run_id"} for row in datastore.table_rows(con, t).to_pylist()]
                for t in datastore.TABLES}


def events(s: Settings) -> list[tuple[Any, ...]]:
    """Every event as (seq, type, asset, partition, scope, payload) without ids, times or process."""
    with ledger.open(s.duckdb_path, read_only=True).reader() as con:
        rows = con.execute("SELECT seq, event_type, asset_key, partition_key, scope_key, payload "
                           "FROM meta.events ORDER BY seq").fetchall()
    return [(*row[:5], {k: v for k, v in json.loads(row[5]).items() if k not in VOLATILE}) for row in rows]


def files(s: Settings) -> dict[str, str]:
    root = Path(s.data_root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_pool_takes_this_many_symbols() -> None:
    assert parallel.worker_count(2, len(SYMBOLS), provider_safe=True) == 2
    assert len(parallel.batches(SYMBOLS, 2)) > 2
    assert parallel.worker_count(1, len(SYMBOLS), provider_safe=True) == 1
    assert parallel.worker_count(2, len(SYMBOLS), provider_safe=False) == 1
    assert parallel.worker_count(2, 2, provider_safe=True) == 1


def test_parallel_daily_equals_a_serial_one(tmp_path: Path, synthetic: Any) -> None:
    serial, pooled = settings_in(tmp_path / "serial", workers=1), settings_in(tmp_path / "pooled", workers=2)
    run_sessions(serial, synthetic)
    run_sessions(pooled, synthetic)
    assert data_rows(pooled) == data_rows(serial)
    assert files(pooled) == files(serial)
    assert events(pooled) == events(serial)
    assert ledger.open(pooled.duckdb_path).verify().ok


def test_a_symbol_failing_in_a_worker_fails_alone(tmp_path: Path, synthetic: Any) -> None:
    s = settings_in(tmp_path, workers=2)
    provider = ForkableFaulty(synthetic, fail={"option_chain": {"NVDA": SymbolNotFoundError("NVDA is not listed today")}})
    result = stages.run_job("snapshot_options", as_of=SESSIONS[0], settings=s, provider=provider, now=NOW)
    by_symbol = {o.scope_key: o for o in result.outcomes}
    assert by_symbol["NVDA"].status == "failed" and "not listed" in (by_symbol["NVDA"].error or "")
    assert {o.status for k, o in by_symbol.items() if k != "NVDA"} == {"success"}
    assert result.ok  # one symbol failing does not fail the run
    with ledger.open(s.duckdb_path, read_only=True).reader() as con:
        failed = con.execute("SELECT scope_key FROM meta.events WHERE run_id = ? AND event_type = 'asset_failed'",
                             [result.run_id]).fetchall()
        stored = con.execute("SELECT count(*) FROM options_snapshot_files").fetchone()[0]
    assert failed == [("NVDA",)] and stored == len(SYMBOLS) - 1


def test_a_worker_killed_mid_run_leaves_no_partial_commit(tmp_path: Path, synthetic: Any) -> None:
    s = settings_in(tmp_path, workers=2)
    runner_pid = os.getpid()

    def kill_the_worker(_n: int) -> None:
        if os.getpid() != runner_pid:  # in a worker: die as an OOM kill would
            os.kill(os.getpid(), signal.SIGKILL)

    provider = ForkableFaulty(synthetic, fail={"option_chain": {"TSLA": kill_the_worker}})
    result = stages.run_job("snapshot_options", as_of=SESSIONS[0], settings=s, provider=provider, now=NOW)
    assert result.status == "failed" and "BrokenProcessPool" in (result.error or "")
    with ledger.open(s.duckdb_path, read_only=True).reader() as con:
        status = con.execute("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [result.run_id]).fetchone()
        materialized = con.execute("SELECT count(*) FROM meta.events WHERE event_type = 'asset_materialized'"
                                   ).fetchone()[0]
        stored = con.execute("SELECT count(*) FROM options_snapshot_files").fetchone()[0]
    assert status == ("failed",) and materialized == 0 and stored == 0
    assert not [p for p in Path(s.data_root).rglob("*") if p.is_file()]  # no staged file left behind
    assert ledger.open(s.duckdb_path).verify().ok


def test_workers_come_from_the_environment_or_the_config_file(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger.config import load_settings
    from ledger.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).workers == 0  # one per CPU
    (tmp_path / "options-helper.toml").write_text("[stages]\nworkers = 1\n")
    assert load_settings(environ={}).workers == 1
    assert load_settings(environ={"OPTIONS_HELPER_WORKERS": "3"}).workers == 3
    with pytest.raises(ConfigError, match="whole number"):
        load_settings(environ={"OPTIONS_HELPER_WORKERS": "two"})
    (tmp_path / "options-helper.toml").write_text("[stages]\nworkers = -1\n")
    with pytest.raises(ConfigError, match="workers"):
        load_settings(environ={})


def test_a_runs_spool_is_gone_once_it_commits_and_old_leftovers_are_swept(tmp_path: Path, synthetic: Any) -> None:
    from stages.jobs import _files

    s = settings_in(tmp_path, workers=2)
    leftover = _files.spool_folder(s.data_root, "a-run-that-died")
    leftover.mkdir(parents=True)
    os.utime(leftover, (0, 0))  # untouched for decades
    for job in ("ingest_candles", "snapshot_options"):
        assert stages.run_job(job, as_of=SESSIONS[0], settings=s, provider=synthetic, now=NOW).ok
    assert not (Path(s.data_root) / _files.SPOOL_DIR).exists() or not any((Path(s.data_root) / _files.SPOOL_DIR).iterdir())
