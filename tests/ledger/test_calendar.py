"""The XNYS calendar: the shipped session table is exchange-calendars' XNYS, and the calendar
answers sessions, closes and "the latest completed session" from it, with an error beyond it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.calendar import SESSIONS_FILE, TradingCalendar, read_sessions_file
from ledger.data import generate_xnys_sessions
from ledger.errors import NotASessionError, UsageError

CAL = TradingCalendar.xnys()
UTC = dt.UTC


def test_the_table_equals_exchange_calendars_over_its_whole_range() -> None:
    expected = generate_xnys_sessions.exchange_calendars_sessions(CAL.start, CAL.end)
    sessions = CAL.sessions_in_range(CAL.start, CAL.end)
    assert sessions == [day for day, _ in expected]
    assert [CAL.session_close(day) for day in sessions] == [close for _, close in expected]


def test_the_table_covers_2000_to_2036() -> None:
    assert (CAL.start, CAL.end) == (dt.date(2000, 1, 3), dt.date(2036, 12, 31))
    assert (CAL.first_session, CAL.last_session) == (dt.date(2000, 1, 3), dt.date(2036, 12, 31))


def test_loading_the_calendar_imports_neither_pandas_nor_numpy_nor_exchange_calendars() -> None:
    code = ("import sys, datetime as dt; from ledger.calendar import TradingCalendar as T; "
            "c = T.xnys(); c.latest_completed_session(dt.datetime(2026, 11, 25, 23, tzinfo=dt.UTC)); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'numpy', 'exchange_calendars'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_weekends_and_holidays_are_not_sessions() -> None:
    assert CAL.is_session(dt.date(2026, 11, 25))
    assert not CAL.is_session(dt.date(2026, 11, 26))  # Thanksgiving
    assert not CAL.is_session(dt.date(2026, 11, 28))  # Saturday
    assert not CAL.is_session(dt.date(2001, 9, 11))  # closed after the attacks
    assert not CAL.is_session(dt.date(2025, 1, 9))  # national day of mourning (President Carter)
    assert CAL.sessions_in_range(dt.date(2026, 11, 23), dt.date(2026, 11, 30)) == [
        dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25), dt.date(2026, 11, 27),
        dt.date(2026, 11, 30)]


def test_a_date_that_is_not_a_session_names_the_nearest_ones() -> None:
    with pytest.raises(NotASessionError, match="2026-11-25 and 2026-11-27"):
        CAL.require_session(dt.date(2026, 11, 26))
    assert CAL.require_session(dt.date(2026, 11, 27)) == dt.date(2026, 11, 27)


def test_navigation() -> None:
    assert CAL.previous_session(dt.date(2026, 11, 27)) == dt.date(2026, 11, 25)
    assert CAL.next_session(dt.date(2026, 11, 25)) == dt.date(2026, 11, 27)
    assert CAL.session_on_or_before(dt.date(2026, 11, 29)) == dt.date(2026, 11, 27)
    assert CAL.last_sessions(3, dt.date(2026, 11, 29)) == [dt.date(2026, 11, 24), dt.date(2026, 11, 25),
                                                          dt.date(2026, 11, 27)]
    assert CAL.sessions_behind(dt.date(2026, 11, 24), dt.date(2026, 11, 30)) == 3
    assert CAL.sessions_behind(dt.date(2026, 11, 30), dt.date(2026, 11, 30)) == 0


def test_closes_are_16_00_new_york_in_utc_and_13_00_on_early_closes() -> None:
    assert CAL.session_close(dt.date(2026, 7, 1)) == dt.datetime(2026, 7, 1, 20, tzinfo=UTC)  # EDT
    assert CAL.session_close(dt.date(2026, 12, 1)) == dt.datetime(2026, 12, 1, 21, tzinfo=UTC)  # EST
    assert CAL.session_close(dt.date(2026, 11, 27)) == dt.datetime(2026, 11, 27, 18, tzinfo=UTC)  # early


def test_the_latest_completed_session_waits_for_the_close_plus_the_delay() -> None:
    close = dt.datetime(2026, 11, 25, 21, tzinfo=UTC)
    assert CAL.latest_completed_session(close + dt.timedelta(minutes=29), 30) == dt.date(2026, 11, 24)
    assert CAL.latest_completed_session(close + dt.timedelta(minutes=30), 30) == dt.date(2026, 11, 25)
    # Thanksgiving and the weekend after Black Friday's early close
    assert CAL.latest_completed_session(dt.datetime(2026, 11, 26, 12, tzinfo=UTC), 30) == dt.date(2026, 11, 25)
    assert CAL.latest_completed_session(dt.datetime(2026, 11, 27, 18, 30, tzinfo=UTC), 30) == dt.date(2026, 11, 27)
    assert CAL.latest_completed_session(dt.datetime(2026, 11, 29, tzinfo=UTC), 0) == dt.date(2026, 11, 27)
    # a delay longer than a day reaches back further
    assert CAL.latest_completed_session(close + dt.timedelta(hours=1), 3 * 24 * 60) == dt.date(2026, 11, 20)
    with pytest.raises(UsageError, match="timezone-aware"):
        CAL.latest_completed_session(dt.datetime(2026, 11, 25, 22), 30)
    with pytest.raises(UsageError, match="no completed session"):
        CAL.latest_completed_session(dt.datetime(2000, 1, 3, 12, tzinfo=UTC), 30)


def test_beyond_the_table_is_an_error_that_says_how_to_extend_it() -> None:
    after = dt.date(2037, 1, 2)
    with pytest.raises(UsageError, match=r"outside the calendar .*generate_xnys_sessions --end 2038-12-31"):
        CAL.require_session(after)
    with pytest.raises(UsageError, match="generate_xnys_sessions"):
        CAL.latest_completed_session(dt.datetime(2037, 1, 2, 22, tzinfo=UTC), 30)
    with pytest.raises(UsageError, match="generate_xnys_sessions"):
        CAL.next_session(CAL.last_session)
    # the last day of the table is still answered
    assert CAL.latest_completed_session(dt.datetime(2036, 12, 31, 23, tzinfo=UTC), 30) == dt.date(2036, 12, 31)
    with pytest.raises(UsageError, match="outside the calendar"):
        CAL.require_session(dt.date(1999, 12, 31))


def test_the_generator_extends_the_table(tmp_path: Path) -> None:
    out = tmp_path / "xnys_sessions.txt"
    assert generate_xnys_sessions.main(["--start", "2036-06-01", "--end", "2037-12-31", "--output", str(out)]) == 0
    extended = read_sessions_file(out)
    assert extended.end == dt.date(2037, 12, 31)
    assert extended.require_session(dt.date(2037, 1, 2)) == dt.date(2037, 1, 2)
    assert not extended.is_session(dt.date(2037, 1, 1))
    expected = generate_xnys_sessions.exchange_calendars_sessions(dt.date(2036, 6, 1), dt.date(2037, 12, 31))
    assert extended.sessions_in_range(extended.start, extended.end) == [d for d, _ in expected]


def test_the_shipped_file_is_the_generators_output_for_its_range() -> None:
    """Regenerating with the default range gives the file byte for byte, apart from the version line."""
    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if "exchange-calendars" not in line]

    assert (CAL.start, CAL.end) == (generate_xnys_sessions.DEFAULT_START, generate_xnys_sessions.DEFAULT_END)
    assert body(SESSIONS_FILE.read_text()) == body(generate_xnys_sessions.render(CAL.start, CAL.end))
