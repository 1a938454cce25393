"""Output helpers shared by every command: one JSON document on stdout for ``--json``; tables on
stdout for people; messages and progress on stderr (progress only when stderr is a terminal)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

_CONSOLES: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    # ``out`` (stdout) and ``err`` (stderr) Rich consoles, created on first use: importing rich
    # costs ~150 ms, which `options-helper --help` should not pay. No automatic highlighting of
    # numbers and paths: its regexes cost ~15 ms to compile in every command that prints.
    if name in ("out", "err"):
        if name not in _CONSOLES:
            from rich.console import Console

            _CONSOLES[name] = Console(stderr=name == "err", soft_wrap=True, highlight=False)
        return _CONSOLES[name]
    raise AttributeError(name)


def load_rich(*, tables: bool) -> None:
    """Import now what printing for people needs (rich's console, and its tables if ``tables``):
    a read command does it while DuckDB builds its instance on another thread (``context.start_reading``)."""
    __getattr__("out")
    if tables:
        import rich.table  # noqa: F401


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=_default, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) if len(value) <= 4 else f"{','.join(map(str, value[:4]))},…(+{len(value) - 4})"
    if isinstance(value, Mapping):
        return json.dumps(value, default=_default)[:80]
    return str(value)


MAX_CELL = 100  # characters of one table cell; the whole value is in the command's --json


def table(title: str, rows: Sequence[Mapping[str, Any]], columns: Iterable[str], *, empty: str = "(none)") -> None:
    """``rows`` as aligned columns under a bold title and header: one line per row, never folded,
    so ids stay whole for copying and grep. (A Rich ``Table`` measured and wrapped every cell:
    ~0.9 ms a row, 0.18 s for the 200 rows of `options-helper events`.)"""
    from rich.text import Text

    out = __getattr__("out")
    cols = list(columns)
    if not rows:
        out.print(f"[bold]{title}[/bold]: {empty}")
        return
    cells = [[_cell(fmt(r.get(c))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    text = Text()
    text.append(f"{title}\n", style="bold")
    text.append("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip() + "\n", style="bold")
    status = cols.index("status") if "status" in cols else None
    for row in cells:
        start = len(text)
        text.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
        if status is not None and row[status] in _STATUS_COLOURS:
            at = start + sum(w + 2 for w in widths[:status])
            text.stylize(_STATUS_COLOURS[row[status]], at, at + len(row[status]))
    out.print(text, end="")


def _cell(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


_STATUS_COLOURS = {"success": "green", "materialized": "green", "pass": "green", "failed": "red", "fail": "red",
                   "abandoned": "yellow", "started": "cyan", "skipped": "dim", "skip": "dim"}


def _style(column: str, text: str) -> str:
    """``text`` as Rich markup, coloured when ``column`` is a status."""
    if column == "status":
        color = _STATUS_COLOURS.get(text)
        if color:
            return f"[{color}]{text}[/{color}]"
    return text.replace("[", "\\[")


def progress(enabled: bool | None = None, console: Any = None) -> Any:
    """Rich progress bars on stderr (one per task: what it is on, done/total, time taken and
    left), disabled when stderr is not a terminal."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    target = console if console is not None else __getattr__("err")
    show = target.is_terminal if enabled is None else enabled
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=target, disable=not show, transient=False)


__all__ = ["fmt", "print_json", "progress", "table"]  # plus the lazy `out` and `err` consoles
