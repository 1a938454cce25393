"""Without the `lineage` extra the CLI still starts and lists `lineage`; the export fails with the
install command (exit 10) before touching the ledger. Runs whether or not openlineage is installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, sys, pathlib, tempfile

    class BlockOpenLineage(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "openlineage" or name.startswith("openlineage."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, BlockOpenLineage())
    import frontends.cli.app as app
    assert app.main(["lineage", "export", "--help"]) == 0
    tmp = pathlib.Path(tempfile.mkdtemp())
    rc = app.main(["--duckdb-path", str(tmp / "none.duckdb"), "lineage", "export", "--file", str(tmp / "x.jsonl")])
    assert rc == 10, rc
    assert not (tmp / "none.duckdb").exists() and not (tmp / "x.jsonl").exists()
    assert not any(m == "openlineage" or m.startswith("openlineage.") for m in sys.modules)
    print("CORE-OK")
    """
)


def test_the_cli_runs_without_openlineage_and_names_the_extra() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "CORE-OK" in done.stdout
    assert 'pip install "options-helper[lineage]"' in done.stderr
