"""Redaction: nothing named like a secret, and no known secret value, reaches the ledger or logs."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"
_SECRET_NAME = re.compile(r"(key|secret|token|password|passwd|credential|auth)", re.IGNORECASE)
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


# Secret values resolved in this process from files (an env file, the config file), which the
# environment does not show. One process-wide set on purpose: redaction must know every secret
# whichever frontend loaded it.
_resolved_lock = threading.Lock()
_resolved: set[str] = set()


def remember_secret(value: str) -> None:
    """Register a secret value (e.g. a key read from a file) so that every redaction masks it."""
    if value and len(value) >= 4:
        with _resolved_lock:
            _resolved.add(value)


def known_secret_values(environ: Mapping[str, str]) -> list[str]:
    """Secret values from the environment plus every value passed to ``remember_secret``."""
    with _resolved_lock:
        values = set(_resolved)
    values.update(v for k in SECRET_ENV_VARS if (v := environ.get(k)) and len(v) >= 4)
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, REDACTED)
    return text


def redact(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A JSON-able copy of ``value`` with secret-named keys and known secret values masked."""
    secret_list = [s for s in secrets if s]
    return _redact(value, secret_list)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if is_secret_name(str(k)) and v not in (None, "", False) else _redact(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_redact(v, secrets) for v in items]
    if isinstance(value, str):
        return redact_text(value, secrets)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact_text(str(value), secrets)


__all__ = ["REDACTED", "is_secret_name", "known_secret_values", "redact", "redact_text", "remember_secret"]
