"""Dagster's own CLI loads and materializes the definitions in a subprocess, configured only by
environment variables (database, data root, a two-symbol config file, DAGSTER_HOME)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dagster")

import duckdb

from stages import registry
from tests.dagster.conftest import REPO, SESSIONS, make_env, subprocess_env

pytestmark = pytest.mark.dagster
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DAGSTER, *args], cwd=REPO, env=subprocess_env(env), capture_output=True, text=True,
                          timeout=300)


def test_dagster_cli_validates_and_materializes(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    validated = _run(["definitions", "validate", "-m", "frontends.dagster.defs"], env)
    assert validated.returncode == 0, validated.stderr[-3000:]

    select = ",".join((registry.CANDLES_DAILY, registry.OPTIONS_SNAPSHOT_FILE))
    done = _run(["asset", "materialize", "-m", "frontends.dagster.defs", "--select", select,
                 "--partition", SESSIONS[-1]], env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr + done.stdout

    with duckdb.connect(env["OPTIONS_HELPER_DUCKDB_PATH"], read_only=True) as con:
        runs = con.execute("select job_name, triggered_by, partition_key, status, parent_run_id "
                           "from meta.ingestion_runs order by first_seq").fetchall()
    assert [r[:4] for r in runs] == [
        (registry.INGEST_CANDLES, "dagster", SESSIONS[-1], "success"),
        (registry.SNAPSHOT_OPTIONS, "dagster", SESSIONS[-1], "success"),
    ]
    assert len({r[4] for r in runs}) == 1 and runs[0][4]
    # Telemetry is off: nothing was logged for upload.
    assert not (Path(env["DAGSTER_HOME"]) / "logs" / "event.log").exists()
