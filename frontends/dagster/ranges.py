"""Gap plan -> the equivalent Dagster partition ranges, per asset. Pure: no dagster import.

Dagster partitions are sessions, not (symbol, session) cells, so the gaps of every symbol of an
asset collapse into the union of their sessions, then into runs of consecutive sessions. Each
range says how to fill it with Dagster: the UI range (``START...END``, as typed in the
partition selector of "Materialize" or a backfill) and the equivalent CLI job backfill.

Used by ``options-helper gaps``: ``dagster_partition_ranges(plan.to_dict())``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from stages import registry

if TYPE_CHECKING:
    from ledger.calendar import TradingCalendar

CODE_LOCATION_MODULE = "frontends.dagster.defs"
# Gaps that no run can fill (the provider cannot serve that past session): not worth a range.
UNFIXABLE_REASONS = frozenset({"unrecoverable"})
_ASSET_FIELDS = ("asset_key", "asset")
_START_FIELDS = ("start", "first", "from", "start_date")
_END_FIELDS = ("end", "last", "to", "end_date")
_DAY_FIELDS = ("partition_key", "session", "as_of", "date")
_SCOPE_FIELDS = ("scope_key", "symbol")


def _first(row: Mapping[str, Any], fields: Sequence[str]) -> Any:
    for name in fields:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def _day(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _scopes(row: Mapping[str, Any]) -> set[str]:
    scopes = {str(s) for s in row.get("symbols") or row.get("scopes") or ()}
    one = _first(row, _SCOPE_FIELDS)
    if one is not None:
        scopes.add(str(one))
    return scopes


def _sessions_of(row: Mapping[str, Any], calendar: TradingCalendar) -> list[dt.date]:
    listed = row.get("sessions")
    if isinstance(listed, list | tuple):
        return [d for d in (_day(v) for v in listed) if d is not None]
    start, end = _day(_first(row, _START_FIELDS)), _day(_first(row, _END_FIELDS))
    if start is not None or end is not None:
        return calendar.sessions_in_range(start or end, end or start)  # type: ignore[arg-type]
    day = _day(_first(row, _DAY_FIELDS))
    return [day] if day is not None else []


def _rows(plan: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The plan's fixable gap ranges; its steps when it lists no ranges."""
    ranges = [
        r for r in plan.get("ranges") or ()
        if isinstance(r, Mapping) and r.get("reason") not in UNFIXABLE_REASONS
    ]
    if ranges:
        return ranges
    return [s for s in plan.get("steps") or () if isinstance(s, Mapping)]


def dagster_partition_ranges(
    gap_plan: Mapping[str, Any], *, calendar: TradingCalendar | None = None
) -> list[dict[str, Any]]:
    """Per asset (in graph order), the runs of consecutive sessions that Dagster should materialize.

    Each item: ``asset_key``, ``job``, ``start``, ``end``, ``sessions`` (count), ``symbols``
    (the scopes with gaps in it), ``reasons`` (missing, stale, failed, ...; unrecoverable gaps
    are left out), ``partition_range`` (``START...END``) and
    ``command`` (a ``dagster job backfill`` that fills it, one run per session, oldest first).
    """
    from ledger.calendar import TradingCalendar, dates_to_ranges

    cal = calendar or TradingCalendar.xnys()
    days: dict[str, set[dt.date]] = {}
    scopes: dict[str, dict[dt.date, set[str]]] = {}
    reasons: dict[str, dict[dt.date, set[str]]] = {}
    for row in _rows(gap_plan):
        key = _first(row, _ASSET_FIELDS)
        if key is None:
            continue
        key = str(key)
        row_days = [d for d in _sessions_of(row, cal) if cal.is_session(d)]
        days.setdefault(key, set()).update(row_days)
        for d in row_days:
            scopes.setdefault(key, {}).setdefault(d, set()).update(_scopes(row))
            if row.get("reason"):
                reasons.setdefault(key, {}).setdefault(d, set()).add(str(row["reason"]))

    order = {k: i for i, k in enumerate(registry.ASSET_KEYS)}
    out: list[dict[str, Any]] = []
    for key in sorted(days, key=lambda k: (order.get(k, len(order)), k)):
        job = registry.job_for_asset(key).name if key in order else None
        for start, end, count in dates_to_ranges(sorted(days[key]), cal):
            span = cal.sessions_in_range(start, end)
            symbols = sorted(set().union(*(scopes[key].get(d, set()) for d in span)))
            why = sorted(set().union(*(reasons.get(key, {}).get(d, set()) for d in span)))
            command = (
                f"dagster job backfill -m {CODE_LOCATION_MODULE} -j {job} "
                f"--from {start.isoformat()} --to {end.isoformat()} --noprompt"
                if job
                else None
            )
            out.append(
                {
                    "asset_key": key,
                    "job": job,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "sessions": count,
                    "symbols": symbols,
                    "reasons": why,
                    "partition_range": f"{start.isoformat()}...{end.isoformat()}",
                    "command": command,
                }
            )
    return out


__all__ = ["CODE_LOCATION_MODULE", "dagster_partition_ranges"]
