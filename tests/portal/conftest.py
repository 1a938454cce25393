"""Fixtures: one seeded ledger per session (copied per test when a test writes), and helpers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.portal.seed import SYMBOLS, seed


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A seeded ledger (read by many tests: never write to it; use ``seeded_copy``)."""
    root = tmp_path_factory.mktemp("portal_seed")
    path = root / "warehouse" / "options.duckdb"
    info = seed(path, data_root=root / "data")
    info["path"] = str(path)
    return info


@pytest.fixture
def seeded_copy(seeded: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """A private copy of the seeded ledger and its data root, for tests that write."""
    db = tmp_path / "options.duckdb"
    shutil.copy(seeded["path"], db)
    data = tmp_path / "data"
    shutil.copytree(seeded["data_root"], data)
    return {**seeded, "path": str(db), "data_root": str(data)}


def write_config(folder: Path, symbols: tuple[str, ...] = SYMBOLS) -> Path:
    """An options-helper.toml whose default watchlist is the seeded symbols."""
    path = folder / "options-helper.toml"
    path.write_text("[watchlists]\ndefault = [" + ", ".join(f'"{s}"' for s in symbols) + "]\n")
    return path


@pytest.fixture
def portal_env(seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Point the portal (its Settings) at the seeded ledger, with the seeded symbols as the watchlist."""
    monkeypatch.setenv("OPTIONS_HELPER_DUCKDB_PATH", seeded["path"])
    monkeypatch.setenv("OPTIONS_HELPER_DATA_ROOT", seeded["data_root"])
    monkeypatch.setenv("OPTIONS_HELPER_CONFIG", str(write_config(tmp_path)))
    monkeypatch.setenv("OPTIONS_HELPER_PROVIDER", "synthetic")
    return seeded
