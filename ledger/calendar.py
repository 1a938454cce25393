"""The XNYS trading calendar: sessions, closes, and "the latest completed session".

The sessions come from ``ledger/data/xnys_sessions.txt``, a table generated from
exchange-calendars (``python -m ledger.data.generate_xnys_sessions``) and checked equal to it by
``tests/ledger/test_calendar.py``: reading it costs a few milliseconds where importing
exchange-calendars and pandas and building the calendar cost ~0.5 s of CPU, which every
interactive command (``health``, ``gaps``) paid. Sessions are kept as a sorted list of date
ordinals, so membership and range queries are binary searches; closes are computed on demand from
the local close time in America/New_York.

The table covers 2000-01-03 .. 2036-12-31. A date outside it is an error that says how to extend
it (a newer options-helper, or regenerating the file with a later ``--end``); it is never
answered from a guess.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

from ledger.errors import NotASessionError, UsageError

CALENDAR_NAME = "XNYS"
SESSIONS_FILE = Path(__file__).with_name("data") / "xnys_sessions.txt"


class TradingCalendar:
    """XNYS sessions between ``start`` and ``end`` (the range of the session table)."""

    def __init__(self, *, start: dt.date, end: dt.date, closed: Sequence[dt.date], timezone: str,
                 close: dt.time, early_closes: Mapping[dt.date, dt.time]) -> None:
        """The sessions are the weekdays in [start, end] not in ``closed``; each closes at ``close``
        local time in ``timezone``, except ``early_closes``."""
        from zoneinfo import ZoneInfo

        self.start, self.end = start, end
        shut = {d.toordinal() for d in closed}
        first, last = start.toordinal(), end.toordinal()
        # date.weekday() is (ordinal + 6) % 7: Monday 0 .. Sunday 6
        self._ords = [o for o in range(first, last + 1) if (o + 6) % 7 < 5 and o not in shut]
        self._tz = ZoneInfo(timezone)
        self._close = close
        self._early = {d.toordinal(): t for d, t in early_closes.items()}

    @classmethod
    def xnys(cls) -> TradingCalendar:
        return _xnys()

    # -- membership -------------------------------------------------------------------------
    @property
    def first_session(self) -> dt.date:
        return dt.date.fromordinal(self._ords[0])

    @property
    def last_session(self) -> dt.date:
        return dt.date.fromordinal(self._ords[-1])

    def is_session(self, day: dt.date) -> bool:
        o = day.toordinal()
        i = bisect.bisect_left(self._ords, o)
        return i < len(self._ords) and self._ords[i] == o

    def _check_bounds(self, day: dt.date) -> None:
        if not (self.start <= day <= self.end):
            raise UsageError(f"{day} is outside the calendar ({self.start} .. {self.end}){self._beyond_hint(day)}")

    def _beyond_hint(self, day: dt.date) -> str:
        if day <= self.end:
            return ""
        return (f"; the {CALENDAR_NAME} session table ends on {self.end}: upgrade options-helper, or extend "
                f"the table with `python -m ledger.data.generate_xnys_sessions --end {day.year + 1}-12-31`")

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
        i = bisect.bisect_left(self._ords, day.toordinal())
        if i == 0:
            raise UsageError(f"no session before {day} in the calendar")
        return dt.date.fromordinal(self._ords[i - 1])

    def next_session(self, day: dt.date) -> dt.date:
        """The first session strictly after ``day``."""
        i = bisect.bisect_right(self._ords, day.toordinal())
        if i >= len(self._ords):
            raise UsageError(f"no session after {day} in the calendar{self._beyond_hint(day + dt.timedelta(days=1))}")
        return dt.date.fromordinal(self._ords[i])

    def session_on_or_before(self, day: dt.date) -> dt.date:
        return day if self.is_session(day) else self.previous_session(day)

    def _slice(self, start: dt.date, end: dt.date) -> list[int]:
        lo = bisect.bisect_left(self._ords, start.toordinal())
        hi = bisect.bisect_right(self._ords, end.toordinal())
        return self._ords[lo:hi]

    def sessions_in_range(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Every session in [start, end]; the bounds need not be sessions."""
        return [dt.date.fromordinal(o) for o in self._slice(start, end)]

    def last_sessions(self, count: int, end: dt.date) -> list[dt.date]:
        """The ``count`` sessions ending at ``end`` (inclusive when ``end`` is a session)."""
        if count <= 0:
            raise UsageError("the number of sessions must be positive")
        hi = bisect.bisect_right(self._ords, end.toordinal())
        return [dt.date.fromordinal(o) for o in self._ords[max(0, hi - count) : hi]]

    def sessions_behind(self, watermark: dt.date, reference: dt.date) -> int:
        """How many sessions in (watermark, reference]: 0 means current."""
        lo = bisect.bisect_right(self._ords, watermark.toordinal())
        hi = bisect.bisect_right(self._ords, reference.toordinal())
        return max(0, hi - lo)

    # -- clock ------------------------------------------------------------------------------
    def session_close(self, day: dt.date) -> dt.datetime:
        """The session's close as an aware UTC datetime (13:00 ET on early closes)."""
        self.require_session(day)
        return self._close_utc(day)

    def _close_utc(self, day: dt.date) -> dt.datetime:
        local = self._early.get(day.toordinal(), self._close)
        return dt.datetime.combine(day, local, tzinfo=self._tz).astimezone(dt.UTC)

    def latest_completed_session(self, now: dt.datetime, delay_minutes: int = 30) -> dt.date:
        """The newest session whose close plus ``delay_minutes`` is at or before ``now``."""
        if now.tzinfo is None:
            raise UsageError("now must be timezone-aware")
        now_utc = now.astimezone(dt.UTC)
        if now_utc.date() > self.end:  # a session after the table's end may have closed
            raise UsageError(f"{now.isoformat()} is after the calendar ({self.start} .. {self.end})"
                             f"{self._beyond_hint(now_utc.date())}")
        delay = dt.timedelta(minutes=delay_minutes)
        # A session closes on its own date (UTC), so none after now's date has closed.
        i = bisect.bisect_right(self._ords, now_utc.date().toordinal())
        while i > 0:
            day = dt.date.fromordinal(self._ords[i - 1])
            if self._close_utc(day) + delay <= now_utc:
                return day
            i -= 1
        raise UsageError(f"no completed session before {now.isoformat()}")


def read_sessions_file(path: Path = SESSIONS_FILE) -> TradingCalendar:
    """The calendar that a session table written by ``ledger.data.generate_xnys_sessions`` describes."""
    fields: dict[str, str] = {}
    closed: list[dt.date] = []
    early: dict[dt.date, dt.time] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "closed":
            closed.append(dt.date.fromisoformat(value))
        elif key == "early_close":
            day, _, time = value.partition(" ")
            early[dt.date.fromisoformat(day)] = dt.time.fromisoformat(time)
        else:
            fields[key] = value
    return TradingCalendar(start=dt.date.fromisoformat(fields["start"]), end=dt.date.fromisoformat(fields["end"]),
                           closed=closed, timezone=fields["timezone"], close=dt.time.fromisoformat(fields["close"]),
                           early_closes=early)


@functools.cache
def _xnys() -> TradingCalendar:
    return read_sessions_file()


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
