"""Error fingerprints: group recurring failures by exception type and message template.

Unlike the original's hash of the whole traceback text, a fingerprint does not change when code
lines move, paths differ between machines, or the message embeds a date, a number or an id.
"""

from __future__ import annotations

import hashlib
import re
import traceback

_PATTERNS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?"), "<date>"),
    (re.compile(r"(/[\w.\-]+)+/?"), "<path>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b\d+(\.\d+)?\b"), "<n>"),
)


def message_template(message: str) -> str:
    text = message.strip().splitlines()[0] if message.strip() else ""
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text[:300]


def fingerprint(error_type: str, message: str) -> str:
    return hashlib.sha256(f"{error_type}|{message_template(message)}".encode()).hexdigest()[:16]


def stack_hash(exc: BaseException) -> str:
    """A hash of the frames' modules and functions (no paths, no line numbers)."""
    frames = traceback.extract_tb(exc.__traceback__)
    parts = [f"{_module_of(f.filename)}:{f.name}" for f in frames]
    return hashlib.sha256("|".join([type(exc).__name__, *parts]).encode()).hexdigest()[:16]


def _module_of(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".py")


__all__ = ["fingerprint", "message_template", "stack_hash"]
