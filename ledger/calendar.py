"""The XNYS trading calendar: sessions, closes, and "the latest completed session".

A thin, fast layer over exchange-calendars (imported lazily: it costs ~0.5 s). Sessions are kept
as a sorted ``numpy.datetime64[D]`` array so membership and range queries are binary searches.
"""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ledger.errors import NotASessionError, UsageError

if TYPE_CHECKING:
    import pandas as pd

CALENDAR_NAME = "XNYS"
CALENDAR_START = dt.date(2000, 1, 3)


class TradingCalendar:
    """XNYS sessions between 2000 and about a year from now."""

    def __init__(self, sessions: np.ndarray, closes_utc: np.ndarray) -> None:
        self._sessions = sessions  # datetime64[D], sorted
        self._closes = closes_utc  # datetime64[s] UTC, aligned with _sessions

    @classmethod
    def xnys(cls) -> TradingCalendar:
        return _xnys()

    # -- membership -------------------------------------------------------------------------
    @property
    def first_session(self) -> dt.date:
        return _to_date(self._sessions[0])

    @property
    def last_session(self) -> dt.date:
        return _to_date(self._sessions[-1])

    def is_session(self, day: dt.date) -> bool:
        d = np.datetime64(day, "D")
        i = int(np.searchsorted(self._sessions, d))
        return i < len(self._sessions) and self._sessions[i] == d

    def _check_bounds(self, day: dt.date) -> None:
        if not (self.first_session <= day <= self.last_session):
            raise UsageError(
                f"{day} is outside the calendar ({self.first_session} .. {self.last_session})"
            )

    def require_session(self, day: dt.date) -> dt.date:
        """``day`` itself if it is a session, else a ``NotASessionError`` naming the nearest ones."""
        self._check_bounds(day)
        if self.is_session(day):
            return day
        before, after = self.previous_session(day), self.next_session(day)
        raise NotASessionError(
            f"{day} is not an {CALENDAR_NAME} trading session (weekend or holiday); "
            f"the nearest sessions are {before} and {after}"
        )

    # -- navigation -------------------------------------------------------------------------
    def previous_session(self, day: dt.date) -> dt.date:
        """The last session strictly before ``day``."""
        i = int(np.searchsorted(self._sessions, np.datetime64(day, "D"), side="left"))
        if i == 0:
            raise UsageError(f"no session before {day} in the calendar")
        return _to_date(self._sessions[i - 1])

    def next_session(self, day: dt.date) -> dt.date:
        """The first session strictly after ``day``."""
        i = int(np.searchsorted(self._sessions, np.datetime64(day, "D"), side="right"))
        if i >= len(self._sessions):
            raise UsageError(f"no session after {day} in the calendar")
        return _to_date(self._sessions[i])

    def session_on_or_before(self, day: dt.date) -> dt.date:
        return day if self.is_session(day) else self.previous_session(day)

    def sessions_in_range(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Every session in [start, end]; the bounds need not be sessions."""
        return [_to_date(d) for d in self.session_array(start, end)]

    def session_array(self, start: dt.date, end: dt.date) -> np.ndarray:
        lo = int(np.searchsorted(self._sessions, np.datetime64(start, "D"), side="left"))
        hi = int(np.searchsorted(self._sessions, np.datetime64(end, "D"), side="right"))
        return self._sessions[lo:hi]

    def last_sessions(self, count: int, end: dt.date) -> list[dt.date]:
        """The ``count`` sessions ending at ``end`` (inclusive when ``end`` is a session)."""
        if count <= 0:
            raise UsageError("the number of sessions must be positive")
        hi = int(np.searchsorted(self._sessions, np.datetime64(end, "D"), side="right"))
        return [_to_date(d) for d in self._sessions[max(0, hi - count) : hi]]

    def sessions_behind(self, watermark: dt.date, reference: dt.date) -> int:
        """How many sessions in (watermark, reference]: 0 means current."""
        lo = int(np.searchsorted(self._sessions, np.datetime64(watermark, "D"), side="right"))
        hi = int(np.searchsorted(self._sessions, np.datetime64(reference, "D"), side="right"))
        return max(0, hi - lo)

    # -- clock ------------------------------------------------------------------------------
    def session_close(self, day: dt.date) -> dt.datetime:
        """The session's close as an aware UTC datetime (13:00 ET on early closes)."""
        self.require_session(day)
        i = int(np.searchsorted(self._sessions, np.datetime64(day, "D")))
        seconds = int(self._closes[i].astype("datetime64[s]").astype(np.int64))
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)

    def latest_completed_session(self, now: dt.datetime, delay_minutes: int = 30) -> dt.date:
        """The newest session whose close plus ``delay_minutes`` is at or before ``now``."""
        if now.tzinfo is None:
            raise UsageError("now must be timezone-aware")
        now_utc = np.datetime64(now.astimezone(dt.UTC).replace(tzinfo=None), "s")
        ready = self._closes + np.timedelta64(delay_minutes, "m")
        i = int(np.searchsorted(ready, now_utc, side="right"))
        if i == 0:
            raise UsageError(f"no completed session before {now.isoformat()}")
        return _to_date(self._sessions[i - 1])


def _to_date(value: np.datetime64) -> dt.date:
    return dt.date.fromordinal(int(value.astype("datetime64[D]").astype(np.int64)) + dt.date(1970, 1, 1).toordinal())


@functools.cache
def _xnys() -> TradingCalendar:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xcals

        cal = xcals.get_calendar(CALENDAR_NAME, start=CALENDAR_START.isoformat())
        sessions: pd.DatetimeIndex = cal.sessions
        closes = cal.schedule["close"]
        session_days = np.asarray(sessions.values, dtype="datetime64[D]")
        close_utc = np.asarray(closes.dt.tz_convert("UTC").dt.tz_localize(None).values, dtype="datetime64[s]")
    return TradingCalendar(session_days, close_utc)


def parse_date(text: str) -> dt.date:
    """A strict ``YYYY-MM-DD`` date, with an error that shows the expected form."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-25") from None


def dates_to_ranges(days: Sequence[dt.date], calendar: TradingCalendar) -> list[tuple[dt.date, dt.date, int]]:
    """Collapse sessions into runs of consecutive sessions: (start, end, count)."""
    out: list[tuple[dt.date, dt.date, int]] = []
    for day in sorted(set(days)):
        if out and calendar.next_session(out[-1][1]) == day:
            start, _, n = out[-1]
            out[-1] = (start, day, n + 1)
        else:
            out.append((day, day, 1))
    return out


__all__ = ["CALENDAR_NAME", "TradingCalendar", "dates_to_ranges", "parse_date"]
