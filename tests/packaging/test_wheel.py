"""An installed wheel (not only an editable checkout) carries the migrations and works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(uv).exists():
        pytest.skip("uv is not installed in this environment")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([uv, "build", "--wheel", "-o", str(out), str(ROOT)], check=True, capture_output=True,
                   env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"})
    (found,) = out.glob("options_helper-*.whl")
    return found


def test_the_wheel_ships_every_migration(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).name for n in names if n.startswith("ledger/_migrations/"))
    assert shipped == sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert any(n.endswith("entry_points.txt") for n in names)


def test_the_wheel_ships_the_xnys_session_table(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "ledger/data/xnys_sessions.txt" in names


def test_the_unpacked_wheel_creates_and_verifies_a_ledger_without_the_checkout(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "import ledger, ledger.migrate as m, sys\n"
        f"assert m.migrations_dir().is_relative_to({str(site)!r}), m.migrations_dir()\n"
        f"led = ledger.open({str(tmp_path / 'w.duckdb')!r})\n"
        "with led.run('ingest_candles'):\n    pass\n"
        "assert led.verify().ok\n"
        "from ledger.calendar import SESSIONS_FILE, TradingCalendar\n"
        f"assert SESSIONS_FILE.is_relative_to({str(site)!r}) and TradingCalendar.xnys().last_session.year == 2036\n"
        "print('ok', m.code_schema_version())\n"
    )
    # Run from an empty folder with only the unpacked wheel ahead of the venv's site-packages.
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r})\n" + probe],
                            cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
