"""CLI dates, symbols and arguments: ``main([...])`` never returns 1 (internal error); bad input
exits with an error class's documented code with one red line on stderr."""

from __future__ import annotations

import contextlib
import datetime as dt
import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from frontends.cli.app import main
from ledger.errors import EXIT_CODES
from tests.fuzz._util import FUZZ

# Regression: typer >= 0.16 vendors click as ``typer._click``; the CLI's error boundary once caught
# only the standalone click's exceptions, so usage errors exited 1 as "internal error".

DATES = st.one_of(
    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.dates(dt.date(2024, 1, 1), dt.date(2026, 12, 31)).filter(lambda d: d.weekday() >= 5).map(dt.date.isoformat),
    st.sampled_from(["2026-12-25", "2026-02-30", "2026-13-01", "26-1-2", "today", "", " ", "2026/06/01",
                     "2026-06-01T00:00:00", "-1", "99999999", "2026-06-01 ", "\u0662\u0660\u0662\u0666-01-01"]),
    st.text(max_size=12),
)
SYMBOLS = st.one_of(
    st.sampled_from(["", ",", ",,,", "spy", "SPY,", "BRK.B", "BRK/B", "A" * 40, "SPY SPY", "$SPY", "SPY,\x00",
                     "../../etc", "SPY;DROP TABLE x", "é", "1234"]),
    st.text(max_size=16),
)


def run_cli(argv: list[str]) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, err.getvalue()


def assert_clean(rc: int, err: str, argv: list[str]) -> None:
    assert rc != 1, f"internal error for {argv!r}: {err.strip()[-400:]}"
    if rc != 0:
        assert rc in EXIT_CODES and rc not in (0, 1, 11), (rc, err)  # a documented error class's code
        lines = [line for line in err.strip().splitlines() if line.strip()]
        assert lines, f"exit {rc} without a message for {argv!r}"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "ledger.duckdb"
    rc, err = run_cli(["--duckdb-path", str(path), "db", "init"])
    assert rc == 0, err
    return str(path)


@pytest.fixture(autouse=True)
def _no_alpaca_keys(monkeypatch, tmp_path):
    for k in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "OPTIONS_HELPER_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)  # no options-helper.toml from the checkout


@FUZZ
@given(DATES)
@example("2026-02-30")
def test_health_as_of_any_text(db, text):
    argv = ["--duckdb-path", db, "health", "--as-of", text, "--json"]
    assert_clean(*run_cli(argv), argv)


@FUZZ
@given(DATES, SYMBOLS)
def test_daily_with_any_date_and_symbols(db, day, symbols):
    """With the alpaca provider and no keys, valid input fails fast (exit 8) instead of running."""
    argv = ["--duckdb-path", db, "--data-root", db + ".data", "--provider", "alpaca", "daily", "--as-of", day,
            "--symbols", symbols]
    assert_clean(*run_cli(argv), argv)


@FUZZ
@given(DATES, DATES, SYMBOLS)
def test_backfill_dry_run_with_any_range_and_symbols(db, start, end, symbols):
    argv = ["--duckdb-path", db, "backfill", "--dry-run", "--json", "--start", start, "--end", end,
            "--symbols", symbols]
    assert_clean(*run_cli(argv), argv)


@FUZZ
@given(st.text(max_size=40), st.sampled_from(["started", "success", "failed", "abandoned", "x", ""]),
       st.integers(-5, 10**12).map(str) | st.text(max_size=5))
def test_runs_and_run_ids(db, run_id, status, limit):
    for argv in (["--duckdb-path", db, "runs", "show", run_id, "--json"],
                 ["--duckdb-path", db, "runs", "--status", status, "--limit", limit, "--json"]):
        assert_clean(*run_cli(argv), argv)


VOCAB = ["db", "init", "verify", "status", "reap", "rebuild", "health", "runs", "show", "daily", "backfill", "ingest",
         "candles", "--json", "--as-of", "--symbols", "--start", "--end", "--dry-run", "--limit", "--duckdb-path",
         "2026-06-01", "SPY", "x", "-", "--", "--help"]


@FUZZ
@given(st.lists(st.sampled_from(VOCAB) | st.text(max_size=6), max_size=6))
def test_random_argv(db, tmp_path_factory, argv):
    if "daily" in argv or "ingest" in argv or "backfill" in argv:
        argv = ["--provider", "alpaca", *argv]  # never start a real pipeline run
    argv = ["--duckdb-path", str(tmp_path_factory.mktemp("argv") / "x.duckdb"), *argv]
    assert_clean(*run_cli(argv), argv)


@pytest.mark.parametrize("argv", [["nosuchcmd"], ["runs", "--limit", "abc"], ["backfill", "run"]])
def test_a_usage_error_is_exit_2(argv):
    rc, err = run_cli(argv)
    assert rc == 2, err


def test_backfill_end_before_the_calendar_is_a_usage_error(db):
    rc, err = run_cli(["--duckdb-path", db, "backfill", "--dry-run", "--json", "--end", "2000-01-01"])
    assert rc == 2, err
