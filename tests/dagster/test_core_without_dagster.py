"""The core (ledger, stages, the CLI) imports and runs with dagster blocked; the Dagster code
location then fails with the install command. Runs whether or not dagster is installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.dagster.conftest import REPO

pytestmark = pytest.mark.dagster

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockDagster(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "dagster" or name.startswith(("dagster.", "dagster_")):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, BlockDagster())
    import ledger, stages
    from stages import registry
    import frontends.cli.app as app
    from frontends.dagster.ranges import dagster_partition_ranges
    rc = app.main(["--help"])
    assert rc == 0, rc
    ranges = dagster_partition_ranges({"ranges": [
        {"asset_key": registry.CANDLES_DAILY, "scope_key": "AAPL", "start": "2026-11-20", "end": "2026-11-24",
         "sessions": 3, "reason": "missing"}]})
    assert ranges[0]["partition_range"] == "2026-11-20...2026-11-24", ranges
    try:
        import frontends.dagster.defs
    except ImportError as e:
        assert 'pip install "options-helper[orchestrator]"' in str(e), e
    else:
        raise AssertionError("the Dagster definitions imported without dagster")
    assert not any(m == "dagster" or m.startswith("dagster.") for m in sys.modules)
    print("CORE-OK")
    """
)


def test_core_runs_without_dagster() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CORE-OK" in done.stdout
