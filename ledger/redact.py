"""Redaction: nothing named like a secret, and no known secret value, reaches the ledger or logs."""

from __future__ import annotations

import functools
import itertools
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ledger.errors import InvalidEventError

if TYPE_CHECKING:
    from ledger.events import Event, StoredRow

E = TypeVar("E")

REDACTED = "***"
# A key is named like a secret if it holds one of the unambiguous words anywhere
# (``client_secret``, ``accessToken``, ``password``), if one of its words (split at "_", "-", "."
# and case changes) is ``apikey``/``auth``/``authorization``, or if it is ``key`` alone or a key
# word after a word that makes it one (``api_key``, ``APCA_API_KEY_ID``, ``privateKey``); so
# ``duplicate_keys`` and ``row_key`` (a check metric, a flow column) are not secrets. Every name
# this matches contains one of _SECRET_WORDS, which the append's fast path looks for in the
# serialised payload.
_SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "credential", "auth")
_SECRET_ANYWHERE = ("secret", "token", "password", "passwd", "credential")
_SECRET_PARTS = frozenset(("apikey", "auth", "authorization"))
_KEY_KINDS = frozenset(("api", "access", "private", "client", "signing", "encryption", "license"))
_NAME_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")
# Environment variables whose values are secrets wherever they appear.
SECRET_ENV_VARS = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "ALPACA_API_KEY", "ALPACA_SECRET_KEY")


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    # Cached: a day's payloads repeat a few hundred names (check metrics, args) tens of thousands of times.
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_ANYWHERE):
        return True
    parts = [part.lower() for part in _NAME_PARTS.findall(name)]
    if parts == ["key"] or any(part in _SECRET_PARTS for part in parts):
        return True
    return any(part == "key" and before in _KEY_KINDS for before, part in itertools.pairwise(parts))


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


def redact_event(event: E, secrets: Sequence[str]) -> E:
    """``event`` with every payload text masked (known secret ``secrets``, values under
    secret-named keys), or ``event`` itself when nothing needs masking. The ledger calls it on every
    event before hashing and storing it, whichever code built the event. Envelope fields (run id,
    asset, partition, scope) are identifiers, not text, and stay; values other than text keep their
    type (a payload the log refuses is still refused)."""
    changes = {}
    for field in attrs.fields(type(event)):  # type: ignore[arg-type]
        if field.name in _ENVELOPE:
            continue
        value = getattr(event, field.name)
        masked = _mask(value, secrets)
        if masked is not value:
            changes[field.name] = masked
    return attrs.evolve(event, **changes) if changes else event  # type: ignore[misc]


_ENVELOPE = frozenset(("event_id", "run_id", "asset_key", "partition_key", "scope_key"))


def redacted_rows(events: Iterable[Event], secrets: Sequence[str]) -> tuple[list[Event], list[StoredRow]]:
    """Each event as ``redact_event`` leaves it, with its stored row (``events.to_row``).

    Walking every payload costs more than serialising it, and nearly every payload holds nothing to
    mask; so each event is serialised first and walked only when its JSON text could hold what the
    walk masks (``_may_hold_secrets``): the rows are those of ``to_row(redact_event(e))`` (a test
    compares them), each serialised once unless the walk changed it."""
    from ledger.events import to_row  # here: the read commands mask texts but never store events

    quoted = [encode_basestring(s)[1:-1] for s in secrets if s]  # each secret as it reads inside JSON
    masked_events, rows = [], []
    for event in events:
        try:
            row: StoredRow | None = to_row(event)
        except InvalidEventError:  # refused as it is (not JSON, bad Unicode): masking may cure it
            row = None
        if row is None or _may_hold_secrets(row.payload, quoted):
            masked = redact_event(event, secrets)
            if row is None or masked is not event:
                row = to_row(masked)  # raises the payload's error if masking did not cure it
            event = masked
        masked_events.append(event)
        rows.append(row)
    return masked_events, rows


def _may_hold_secrets(payload: str, quoted_secrets: Sequence[str]) -> bool:
    """False only if ``redact_event`` would change nothing in the event serialised as ``payload``:
    no secret value in its text (``quoted_secrets``: as JSON writes them), and no key named like a
    secret. Text beyond ASCII is always walked: case-insensitive matching of the words also matches
    letters such as the long s, which ``str.lower`` leaves alone."""
    if any(secret in payload for secret in quoted_secrets) or not payload.isascii():
        return True
    lowered = payload.lower()
    if "\\" in payload:  # an escape: a key's text may not be its name
        return any(word in lowered for word in _SECRET_WORDS)
    # Each word found (a check named *_duplicate_keys, a metric duplicate_keys) lies in a string, since
    # JSON writes nothing else with letters but true, false and null; without escapes that string runs
    # from the quote before the word to the quote after it, and is a key if a colon follows.
    for word in _SECRET_WORDS:
        at = lowered.find(word)
        while at != -1:
            end = payload.index('"', at)
            if payload.startswith(":", end + 1) and is_secret_name(payload[payload.rindex('"', 0, at) + 1:end]):
                return True
            at = lowered.find(word, end)
    return False


def _mask(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` with secrets masked; the very same object when nothing changed."""
    if isinstance(value, str):
        if secrets and any(s in value for s in secrets):
            return redact_text(value, secrets)
        return value
    if isinstance(value, Mapping):
        out, changed = {}, False
        for k, v in value.items():
            masked = REDACTED if isinstance(k, str) and is_secret_name(k) and v not in (None, "", False, REDACTED) \
                else _mask(v, secrets)
            changed = changed or masked is not v
            out[k] = masked
        return out if changed else value
    if isinstance(value, list | tuple):
        items = [_mask(v, secrets) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, tuple) else items
    return value


__all__ = [
    "REDACTED",
    "is_secret_name",
    "known_secret_values",
    "redact",
    "redact_event",
    "redact_text",
    "redacted_rows",
    "remember_secret",
]
