"""Fixtures for the ledger tests: the store backends (DuckDB in memory and in a file), built with an
injectable fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.duckdb_store import DuckDBEventStore
from tests.ledger.helpers import FixedClock

# The in-memory backend is DuckDB ":memory:" running the same code (the tests' independent model
# is tests/ledger/model.py).
BACKENDS = ("duckdb_memory", "duckdb_file")
DUCKDB_BACKENDS = ("duckdb_memory", "duckdb_file")


def build_store(backend: str, clock: Callable[[], Any], tmp_path: Path, **kwargs: Any) -> Any:
    if backend == "duckdb_memory":
        return DuckDBEventStore(":memory:", clock=clock, **kwargs)
    if backend == "duckdb_file":
        return DuckDBEventStore(tmp_path / "ledger.duckdb", clock=clock, lock_timeout_seconds=30, **kwargs)
    raise ValueError(backend)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_store(backend: str, clock: FixedClock, tmp_path: Path) -> Callable[..., Any]:
    return lambda **kw: build_store(backend, clock, tmp_path, **kw)


@pytest.fixture
def store(make_store: Callable[..., Any]) -> Any:
    return make_store()


@pytest.fixture(params=DUCKDB_BACKENDS)
def duckdb_store(request: pytest.FixtureRequest, clock: FixedClock, tmp_path: Path) -> DuckDBEventStore:
    return build_store(request.param, clock, tmp_path)
