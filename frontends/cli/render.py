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
    # costs ~150 ms, which `options-helper --help` should not pay.
    if name in ("out", "err"):
        if name not in _CONSOLES:
            from rich.console import Console

            _CONSOLES[name] = Console(stderr=name == "err", soft_wrap=True)
        return _CONSOLES[name]
    raise AttributeError(name)


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


def table(title: str, rows: Sequence[Mapping[str, Any]], columns: Iterable[str], *, empty: str = "(none)") -> None:
    from rich.table import Table

    out, _ = __getattr__("out"), None
    cols = list(columns)
    if not rows:
        out.print(f"[bold]{title}[/bold]: {empty}")
        return
    t = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for c in cols:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(_style(c, fmt(r.get(c))) for c in cols))
    out.print(t)


def _style(column: str, text: str) -> str:
    if column == "status":
        color = {"success": "green", "materialized": "green", "pass": "green", "failed": "red", "fail": "red",
                 "abandoned": "yellow", "started": "cyan", "skipped": "dim", "skip": "dim"}.get(text)
        if color:
            return f"[{color}]{text}[/{color}]"
    return text.replace("[", "\\[")


def progress(enabled: bool | None = None) -> Any:
    """A Rich progress bar on stderr, disabled when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    show = __getattr__("err").is_terminal if enabled is None else enabled
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=__getattr__("err"), disable=not show, transient=False)


__all__ = ["fmt", "print_json", "progress", "table"]  # plus the lazy `out` and `err` consoles
