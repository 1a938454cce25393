"""The daily schedule: after the close, in America/New_York, on sessions only.

The cron ticks on weekdays at 18:00 New York time (``OPTIONS_HELPER_DAGSTER_CRON`` overrides it);
the tick requests the day's partition only when the day is an XNYS session whose close plus
``session_close_delay_minutes`` (config, default 30) has passed, so holidays, special closures
and early closes are handled by the calendar, not by the cron string. The schedule starts
stopped, as Dagster's do; turn it on in the UI or with ``dagster schedule start``.
"""

import datetime as dt
import os

import dagster as dg

from frontends.dagster.defs.jobs import daily_job
from frontends.dagster.defs.partitions import TIMEZONE

CRON_ENV = "OPTIONS_HELPER_DAGSTER_CRON"
DEFAULT_CRON = "0 18 * * 1-5"


def session_to_run(now: dt.datetime) -> dt.date | str:
    """The session a tick at ``now`` should materialize, or why it should not run."""
    from ledger.calendar import TradingCalendar
    from ledger.config import load_settings

    cal = TradingCalendar.xnys()
    day = now.astimezone(_tz()).date()
    if not cal.is_session(day):
        return f"{day} is not an XNYS session (weekend or holiday)"
    delay = load_settings().session_close_delay_minutes
    ready = cal.session_close(day) + dt.timedelta(minutes=delay)
    if now < ready:
        return f"session {day} is not complete until {ready.isoformat()} (close + {delay} min)"
    return day


def _tz() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)


@dg.schedule(
    name="daily_after_close",
    cron_schedule=os.environ.get(CRON_ENV) or DEFAULT_CRON,
    execution_timezone=TIMEZONE,
    job=daily_job,
    description="Materialize the day's session after the close (XNYS sessions only).",
)
def daily_after_close(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    outcome = session_to_run(now)
    if isinstance(outcome, str):
        return dg.SkipReason(outcome)
    key = outcome.isoformat()
    return dg.RunRequest(run_key=f"daily-{key}", partition_key=key, tags={"options_helper/session": key})


SCHEDULES = [daily_after_close]

__all__ = ["CRON_ENV", "DEFAULT_CRON", "SCHEDULES", "daily_after_close", "session_to_run"]
