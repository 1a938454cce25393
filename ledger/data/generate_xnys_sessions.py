"""Write ``ledger/data/xnys_sessions.txt``: the XNYS sessions and closes from exchange-calendars.

``ledger.calendar`` reads that file instead of building exchange-calendars' XNYS calendar on every
start (importing exchange-calendars and pandas and building the calendar cost ~0.5 s of CPU; the
file takes ~5 ms). ``tests/ledger/test_calendar.py`` checks the file equals exchange-calendars'
sessions and closes over its whole range, so an exchange-calendars upgrade that changes a holiday
fails that test until the file is regenerated.

    python -m ledger.data.generate_xnys_sessions                  # the default range
    python -m ledger.data.generate_xnys_sessions --end 2046-12-31 # extend it (then commit the file)

The file lists the range, the regular close, every weekday of the range that is not a session
(holidays and special closures) and every session that closes at another time (early closes):
the sessions are the other weekdays. It is small enough to read in a review.
"""

from __future__ import annotations

import argparse
import datetime as dt
import warnings
from importlib import metadata
from pathlib import Path

FILE = Path(__file__).with_name("xnys_sessions.txt")
CALENDAR_NAME = "XNYS"
TIMEZONE = "America/New_York"
REGULAR_CLOSE = dt.time(16, 0)
DEFAULT_START = dt.date(2000, 1, 3)
DEFAULT_END = dt.date(2036, 12, 31)


def exchange_calendars_sessions(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.datetime]]:
    """(session, close as an aware UTC datetime) for every XNYS session in [start, end], as
    exchange-calendars computes them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xcals

        cal = xcals.get_calendar(CALENDAR_NAME, start=start.isoformat(), end=end.isoformat())
        closes = cal.schedule["close"].dt.tz_convert("UTC")
        return [(session.date(), close.to_pydatetime()) for session, close in closes.items()]


def render(start: dt.date, end: dt.date) -> str:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(TIMEZONE)
    sessions = exchange_calendars_sessions(start, end)
    by_day = dict(sessions)
    closed = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    closed = [d for d in closed if d.weekday() < 5 and d not in by_day]
    early = [(d, c.astimezone(tz).time()) for d, c in sessions if c.astimezone(tz).time() != REGULAR_CLOSE]
    lines = [
        "# XNYS trading sessions, written by `python -m ledger.data.generate_xnys_sessions` from",
        f"# exchange-calendars {metadata.version('exchange-calendars')}. Do not edit: regenerate "
        "(tests/ledger/test_calendar.py checks it).",
        "# The sessions are the weekdays from `start` to `end` except the `closed` ones; each closes at",
        "# `close` local time except the `early_close` ones.",
        f"start {start.isoformat()}",
        f"end {end.isoformat()}",
        f"timezone {TIMEZONE}",
        f"close {REGULAR_CLOSE:%H:%M}",
        *(f"closed {d.isoformat()}" for d in closed),
        *(f"early_close {d.isoformat()} {t:%H:%M}" for d, t in early),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=DEFAULT_START)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END)
    parser.add_argument("--output", type=Path, default=FILE)
    args = parser.parse_args(argv)
    text = render(args.start, args.end)
    args.output.write_text(text)
    print(f"wrote {args.output}: {args.start} .. {args.end}, {text.count(chr(10))} lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
