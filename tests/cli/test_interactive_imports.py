"""The interactive commands import only what they use: none loads pandas, scipy or
exchange-calendars (together ~0.8 s of start-up), and the ledger's read commands not even numpy or
pyarrow. (How fast they answer is measured by tests/bench/bench_cli.py, not here.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import ledger

NEVER = ("pandas", "scipy", "exchange_calendars", "dagster", "streamlit", "alpaca")
NOT_FOR_READS = ("numpy", "pyarrow")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interactive") / "ledger.duckdb"
    led = ledger.open(path)
    with led.run("ingest_candles", triggered_by="cli", partition_key="2026-11-25", scope_keys=["AAPL"]) as run:
        run.complete([run.materialized("candles_daily", "2026-11-25", "AAPL", rows=1,
                                       max_data_time="2026-11-25T00:00:00+00:00")])
    return path


def _loaded(db: Path, *args: str) -> set[str]:
    probe = (
        "import sys\n"
        "from frontends.cli.app import main\n"
        f"code = main(['--duckdb-path', {str(db)!r}, *{list(args)!r}])\n"
        "print('EXIT', code)\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    lines = done.stdout.strip().splitlines()
    assert lines[-2] == "EXIT 0", done.stdout + done.stderr
    return set(lines[-1].split())


def _packages(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("args", [["health"], ["runs"], ["events"], ["db", "status"]])
def test_the_ledgers_read_commands_import_neither_pandas_nor_numpy(db: Path, args: list[str]) -> None:
    loaded = _packages(_loaded(db, *args))
    assert "duckdb" in loaded  # the probe did read the ledger
    assert loaded.isdisjoint(NEVER + NOT_FOR_READS), sorted(loaded & {*NEVER, *NOT_FOR_READS})


def test_gaps_imports_numpy_for_the_planner_but_not_pandas_scipy_or_the_provider(db: Path) -> None:
    modules = _loaded(db, "gaps", "--end", "2026-11-25")
    loaded = _packages(modules)
    assert {"duckdb", "numpy"} <= loaded
    assert loaded.isdisjoint(NEVER), sorted(loaded & set(NEVER))
    assert "stages.providers.synthetic" not in modules  # its capabilities are declared apart
