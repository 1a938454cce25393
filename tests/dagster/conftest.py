"""Fixtures for the Dagster frontend: a temporary DAGSTER_HOME (telemetry off), database, data
root and a two-symbol universe, all through the same environment variables a user would set."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "frontends" / "dagster" / "dagster.yaml"
SYMBOLS = ("AAPL", "SPY")
# Two consecutive sessions (a Monday and a Tuesday), so flow has a previous session.
SESSIONS = ("2026-11-23", "2026-11-24")


def make_env(root: Path, *, name: str = "oh") -> dict[str, str]:
    """Environment variables pointing options-helper and Dagster at ``root``."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE, home / "dagster.yaml")
    config = root / "options-helper.toml"
    config.write_text("[watchlists]\ndefault = [" + ", ".join(f'"{s}"' for s in SYMBOLS) + "]\n")
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_DISABLE_TELEMETRY": "1",
        "OPTIONS_HELPER_CONFIG": str(config),
        "OPTIONS_HELPER_DUCKDB_PATH": str(root / f"{name}.duckdb"),
        "OPTIONS_HELPER_DATA_ROOT": str(root / "data"),
        "OPTIONS_HELPER_PROVIDER": "synthetic",
    }


@pytest.fixture
def oh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = make_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    yield env


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    merged = {k: v for k, v in os.environ.items() if not k.startswith(("OPTIONS_HELPER_", "APCA_"))}
    merged.update(env)
    merged["PYTHONPATH"] = str(REPO)
    return merged
