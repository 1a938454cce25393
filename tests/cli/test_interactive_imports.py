"""The interactive commands import only what they use: none loads pandas, scipy or
exchange-calendars (together ~0.8 s of start-up), pydantic (typer 0.29 validates every option with
it: ~0.1 s), sqlglot or tenacity; none the projections' or verify's modules (only writes, time travel and
verify fold); the ledger's read commands not even numpy or pyarrow, and gaps not pyarrow (nor
OpenBLAS's threads). (How fast they answer is measured by tests/bench/bench_cli.py, not here.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ledger
from ledger.errors import UnknownRunError

# tenacity: only when opening the file has to wait for a lock (ledger.retry), never here
NEVER = ("pandas", "scipy", "exchange_calendars", "dagster", "streamlit", "alpaca", "pydantic", "sqlglot", "tenacity")
NOT_FOR_READS = ("numpy", "pyarrow")
NO_FOLDING = ("ledger.projections", "ledger.verify")
# the append's machinery: the events' classes (~10 ms of attrs classes), the hash chain, the append
NO_APPENDING = ("ledger.events", "ledger.store", "ledger.append")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interactive") / "ledger.duckdb"
    led = ledger.open(path)
    with led.run("ingest_candles", triggered_by="cli", partition_key="2026-11-25", scope_keys=["AAPL"]) as run:
        run.complete([run.materialized("candles_daily", "2026-11-25", "AAPL", rows=1,
                                       max_data_time="2026-11-25T00:00:00+00:00")])
    return path


def _run(db: Path, *args: str) -> tuple[set[str], str]:
    """The modules a command loaded, and OPENBLAS_NUM_THREADS as it left it."""
    probe = (
        "import os, sys\n"
        "from frontends.cli.app import main\n"
        f"code = main(['--duckdb-path', {str(db)!r}, *{list(args)!r}])\n"
        "print('EXIT', code)\n"
        "print('OPENBLAS', os.environ.get('OPENBLAS_NUM_THREADS'))\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    # no config file or portfolio from the environment: the commands' defaults
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_NUM_THREADS", "OPTIONS_HELPER_CONFIG", "OPTIONS_HELPER_PORTFOLIO")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    lines = done.stdout.strip().splitlines()
    assert lines[-3] == "EXIT 0", done.stdout + done.stderr
    return set(lines[-1].split()), lines[-2].removeprefix("OPENBLAS ")


def _loaded(db: Path, *args: str) -> set[str]:
    return _run(db, *args)[0]


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("args", [["health"], ["runs"], ["events"], ["db", "status"]])
def test_the_ledgers_read_commands_import_neither_pandas_nor_numpy(db: Path, args: list[str]) -> None:
    modules = _loaded(db, *args)
    loaded = _packages(modules)
    assert "duckdb" in loaded  # the probe did read the ledger
    assert loaded.isdisjoint(NEVER + NOT_FOR_READS), sorted(loaded & {*NEVER, *NOT_FOR_READS})
    assert modules.isdisjoint(NO_FOLDING), sorted(modules & set(NO_FOLDING))
    if args != ["events"]:  # which decodes events
        assert modules.isdisjoint(NO_APPENDING), sorted(modules & set(NO_APPENDING))


def test_gaps_imports_numpy_for_the_planner_but_not_pandas_scipy_pyarrow_or_the_provider(db: Path) -> None:
    modules, openblas_threads = _run(db, "gaps", "--end", "2026-11-25")
    loaded = _packages(modules)
    assert {"duckdb", "numpy"} <= loaded
    assert loaded.isdisjoint(NEVER), sorted(loaded & set(NEVER))
    # the default universe is read the wide way, whose small results come through fetchnumpy
    assert "pyarrow" not in loaded
    assert modules.isdisjoint(NO_FOLDING + NO_APPENDING), sorted(modules & {*NO_FOLDING, *NO_APPENDING})
    # its capabilities are declared apart, without the provider's modules or the Arrow schemas
    assert {"stages.providers.synthetic", "stages.providers.base"}.isdisjoint(modules)
    # no portfolio configured (none in the working directory either): its modules stay out
    assert "stages.portfolio" not in modules
    # numpy came after gaps told OpenBLAS to start no threads of its own (the planner does no
    # linear algebra)
    assert openblas_threads == "1"


def test_the_entry_point_exits_with_the_commands_code_its_output_whole(db: Path) -> None:
    """``options-helper`` (``entrypoint``) freezes what is alive before the interpreter's shutdown
    (the last garbage collection would walk it all); the output is whole and the exit code the
    command's, on success and on an error, and nothing complains at shutdown."""
    run = [sys.executable, "-m", "frontends.cli.app", "--duckdb-path", str(db)]
    ok = subprocess.run([*run, "events", "--json"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert [e["event_type"] for e in json.loads(ok.stdout)["events"]] == [
        "run_started", "asset_materialized", "run_succeeded"]
    missing = subprocess.run([*run, "runs", "show", "no-such-run"], capture_output=True, text=True)
    assert missing.returncode == UnknownRunError.exit_code
    assert missing.stderr.startswith("error: ") and "Exception ignored" not in missing.stderr
