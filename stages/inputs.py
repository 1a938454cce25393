"""A run's inputs as the user gives them: the session (a completed XNYS session) and the symbols
(tickers or a watchlist), validated with errors that say what to pass instead."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ledger.errors import UsageError

if TYPE_CHECKING:
    from ledger.calendar import TradingCalendar
    from ledger.config import Settings


def default_session(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """The latest completed XNYS session at ``now`` (its close plus the configured delay)."""
    from ledger.calendar import TradingCalendar

    when = now or dt.datetime.now(dt.UTC)
    return TradingCalendar.xnys().latest_completed_session(when, settings.session_close_delay_minutes)


def parse_as_of(text: str | None, settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """An ``--as-of`` value: ``YYYY-MM-DD``, or ``latest`` (or nothing) for the latest completed session."""
    from ledger.calendar import parse_date

    if text is None or text.strip().lower() == "latest":
        return default_session(settings, now)
    return parse_date(text)


def check_session(as_of: dt.date, settings: Settings, now: dt.datetime, calendar: TradingCalendar) -> dt.date:
    """``as_of`` if it is a completed XNYS session, else a ``UsageError`` saying which one to use."""
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise UsageError(f"as_of must be a date (YYYY-MM-DD), got {as_of!r}")
    calendar.require_session(as_of)
    latest = calendar.latest_completed_session(now, settings.session_close_delay_minutes)
    if as_of > latest:
        raise UsageError(f"the {as_of} session has not closed yet; the latest completed session is {latest}")
    return as_of


def universe(settings: Settings) -> tuple[str, ...]:
    """The default symbols of every stage: the ``default`` watchlist followed by the configured
    portfolio's underlyings (``stages.portfolio``), de-duplicated in that order."""
    from ledger.config import DEFAULT_WATCHLIST_NAME

    watchlist = settings.watchlist(DEFAULT_WATCHLIST_NAME)
    if settings.portfolio is None:  # no portfolio: its modules need not load (`gaps` starts faster)
        return tuple(dict.fromkeys(watchlist))
    from stages.portfolio import universe_symbols

    return tuple(dict.fromkeys((*watchlist, *universe_symbols(settings))))


def resolve_symbols(symbols: Sequence[str] | str | None, settings: Settings, *, watchlist: str | None = None) -> tuple[str, ...]:
    """Upper-cased, de-duplicated, validated tickers. None means the universe: the ``default``
    watchlist followed by the configured portfolio's underlyings (``stages.portfolio``); an
    explicit ``watchlist`` or ``symbols`` narrows it to just those. A portfolio file that cannot
    be read raises its ``PortfolioError``: nothing runs on a half-known universe."""
    from ledger.config import DEFAULT_WATCHLIST_NAME
    from stages.occ import require_ticker

    if symbols is not None and watchlist is not None:
        raise UsageError("give symbols or a watchlist, not both")
    if isinstance(symbols, str):
        symbols = symbols.split(",")
    if symbols is None and watchlist is None:
        chosen: Sequence[str] = universe(settings)
    elif symbols is None:
        chosen = settings.watchlist(watchlist or DEFAULT_WATCHLIST_NAME)
    else:
        chosen = symbols
    out: list[str] = []
    for raw in chosen:
        s = str(raw).strip().upper()
        if s and s not in out:
            out.append(require_ticker(s))
    if not out:
        raise UsageError("no symbols given; pass --symbols A,B or --watchlist NAME")
    return tuple(out)


__all__ = ["check_session", "default_session", "parse_as_of", "resolve_symbols", "universe"]
