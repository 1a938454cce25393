"""The layering, checked by import-linter's contracts (``[tool.importlinter]`` in pyproject.toml, also
run by ``make lint``): ``frontends -> stages -> ledger`` and never back, and each optional extra
(dagster, streamlit/altair, alpaca-py, openlineage) imported only by its own frontend or provider
modules. Every import counts, lazy ones inside functions too."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = {
    "frontends -> stages -> ledger, never back",
    "dagster only inside frontends.dagster",
    "streamlit and altair only inside frontends.portal",
    "alpaca-py only inside the alpaca provider modules",
    "openlineage only inside frontends.lineage",
}


def _lint_imports(cwd: Path) -> tuple[int, dict[str, str]]:
    """Run ``lint-imports`` in ``cwd``: its exit code and each contract's verdict (KEPT or BROKEN)."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports is missing: it is in the dev group (make venv installs it)"
    proc = subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)
    verdicts = {}
    for line in proc.stdout.splitlines():
        for name in CONTRACTS:
            if line.startswith(name + " "):
                verdicts[name] = line[len(name) + 1:].split()[0]
    return proc.returncode, verdicts


def test_the_import_contracts_hold() -> None:
    code, verdicts = _lint_imports(ROOT)
    assert verdicts == dict.fromkeys(CONTRACTS, "KEPT")
    assert code == 0


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The three packages and the contracts, copied: a violation planted there leaves the tree alone."""
    for package in ("ledger", "stages", "frontends"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _plant(module: Path, statement: str) -> None:
    """A lazy import inside a function at the end of ``module``: the kind a grep for top-level
    imports misses."""
    with module.open("a", encoding="utf-8") as fh:
        fh.write(f"\n\ndef _planted() -> None:\n    {statement}  # noqa\n")


@pytest.mark.parametrize(("module", "statement", "broken"), [
    ("ledger/ids.py", "import stages", "frontends -> stages -> ledger, never back"),
    ("ledger/config.py", "from frontends.cli import app", "frontends -> stages -> ledger, never back"),
    ("stages/occ.py", "import frontends.portal.queries", "frontends -> stages -> ledger, never back"),
    ("stages/occ.py", "import dagster", "dagster only inside frontends.dagster"),
    ("frontends/cli/app.py", "import streamlit", "streamlit and altair only inside frontends.portal"),
    ("ledger/api.py", "from alpaca.data import historical", "alpaca-py only inside the alpaca provider modules"),
    ("frontends/portal/queries.py", "import openlineage.client", "openlineage only inside frontends.lineage"),
])
def test_a_planted_violation_breaks_its_contract(copy: Path, module: str, statement: str, broken: str) -> None:
    _plant(copy / module, statement)
    code, verdicts = _lint_imports(copy)
    assert code == 1
    assert {name for name, verdict in verdicts.items() if verdict == "BROKEN"} == {broken}
