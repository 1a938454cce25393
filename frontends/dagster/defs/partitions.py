"""Partitions: exactly the XNYS trading sessions, one partition key ``YYYY-MM-DD`` per session.

A ``TimeWindowPartitionsDefinition`` ticking at midnight America/New_York on weekdays, with every
weekday that is not a session (holidays, special closures) listed as an exclusion, so the keys are
the calendar's sessions and nothing else. A time-window definition (rather than a static list)
keeps Dagster's range selection, backfill ranges and previous-session partition mappings.

The first partition is the first session on or after ``OPTIONS_HELPER_DAGSTER_START``
(default 2025-01-02). ``end_offset=1`` makes the current session's partition available from
midnight, so the after-close schedule can target it; the definition ends with the calendar
(about a year ahead).
"""

import datetime as dt
import os
from collections.abc import Mapping

import dagster as dg

from ledger.calendar import TradingCalendar
from ledger.errors import ConfigError

START_ENV = "OPTIONS_HELPER_DAGSTER_START"
DEFAULT_START = dt.date(2025, 1, 2)
TIMEZONE = "America/New_York"
PARTITION_FORMAT = "%Y-%m-%d"
# One window per weekday, starting at midnight New York time; weekends never tick.
WEEKDAY_CRON = "0 0 * * 1-5"


def partition_start(environ: Mapping[str, str] | None = None) -> dt.date:
    """The first date of the partition set: ``OPTIONS_HELPER_DAGSTER_START`` or 2025-01-02."""
    env = os.environ if environ is None else environ
    text = (env.get(START_ENV) or "").strip()
    if not text:
        return DEFAULT_START
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{START_ENV} must be a date YYYY-MM-DD, got {text!r}") from None


def session_partitions(
    start: dt.date | None = None, calendar: TradingCalendar | None = None
) -> dg.TimeWindowPartitionsDefinition:
    """The partitions definition whose keys are the XNYS sessions from ``start`` on."""
    cal = calendar or TradingCalendar.xnys()
    first = start or partition_start()
    if not cal.first_session <= first <= cal.last_session:
        raise ConfigError(
            f"{START_ENV}={first} is outside the trading calendar ({cal.first_session} .. {cal.last_session})"
        )
    first = first if cal.is_session(first) else cal.next_session(first)
    last = cal.last_session
    exclusions = [
        dt.datetime.combine(day, dt.time())
        for day in (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
        if day.weekday() < 5 and not cal.is_session(day)
    ]
    return dg.TimeWindowPartitionsDefinition(
        start=dt.datetime.combine(first, dt.time()),
        end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time()),
        cron_schedule=WEEKDAY_CRON,
        timezone=TIMEZONE,
        fmt=PARTITION_FORMAT,
        end_offset=1,
        exclusions=exclusions or None,
    )


def session_of(partition_key: str, calendar: TradingCalendar | None = None) -> dt.date:
    """The session a partition key names (a ``NotASessionError`` if it is not one)."""
    from ledger.calendar import parse_date

    cal = calendar or TradingCalendar.xnys()
    return cal.require_session(parse_date(partition_key))


SESSIONS = session_partitions()

__all__ = ["DEFAULT_START", "SESSIONS", "START_ENV", "TIMEZONE", "partition_start", "session_of", "session_partitions"]
