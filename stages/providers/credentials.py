"""Alpaca keys: where they come from, and a type that never shows them.

Resolution order (the first source that has *both* values wins):

1. the environment: ``APCA_API_KEY_ID`` and ``APCA_API_SECRET_KEY``;
2. the env file named by ``[alpaca] env_file`` in the config (or ``OPTIONS_HELPER_ALPACA_ENV_FILE``):
   ``KEY=VALUE`` lines, ``export`` prefixes, quotes and ``#`` comments allowed;
3. the config file itself: ``[alpaca] key_id = "..."`` and ``secret_key = "..."``.

The values live in :class:`Secret` objects whose ``repr``/``str`` are masked; only
``reveal()`` gives the text, and only the adapter calls it, to hand the keys to alpaca-py.
Every resolved value is remembered so that :func:`redact` can scrub it from any message.
"""

from __future__ import annotations

import logging
import os
import threading
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from ledger.errors import AuthenticationError, ConfigError
from ledger.redact import REDACTED, known_secret_values, redact_text, remember_secret

KEY_ID_VAR = "APCA_API_KEY_ID"
SECRET_KEY_VAR = "APCA_API_SECRET_KEY"
MIN_SECRET_LENGTH = 4

_known_lock = threading.Lock()
_known: set[str] = set()  # every secret value resolved in this process, for redaction


class Secret:
    """A string that does not print. ``reveal()`` is the only way to the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret must not be empty")
        self._value = value
        if len(value) >= MIN_SECRET_LENGTH:
            with _known_lock:
                _known.add(value)
            remember_secret(value)  # so the ledger's redaction of args and errors masks it too

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __reduce__(self):  # never pickle the value into a file or another process by accident
        raise TypeError("Secret values cannot be pickled")


@attrs.frozen(kw_only=True)
class Credentials:
    """An Alpaca key pair and where it came from (``source`` is safe to print)."""

    key_id: Secret
    secret_key: Secret
    source: str


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` pairs of an env file (``export`` prefixes, quotes, comments allowed)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the Alpaca env file {path}: {e.strerror}; fix [alpaca] env_file") from None
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[name.strip()] = value
    return values


def _pair(values: Mapping[str, str], source: str) -> Credentials | None:
    key, secret = values.get(KEY_ID_VAR, "").strip(), values.get(SECRET_KEY_VAR, "").strip()
    if key and secret:
        return Credentials(key_id=Secret(key), secret_key=Secret(secret), source=source)
    if key or secret:
        missing = SECRET_KEY_VAR if key else KEY_ID_VAR
        raise AuthenticationError(f"{source} sets only one of the two Alpaca keys: {missing} is missing")
    return None


def resolve_credentials(
    *, env_file: Path | None = None, config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Credentials:
    """The key pair from the environment, then the env file, then the config file."""
    env = os.environ if environ is None else environ
    found = _pair(env, "the environment")
    if found:
        return found
    if env_file is not None:
        found = _pair(read_env_file(env_file), f"env file {env_file}")
        if found:
            return found
    if config_path is not None and Path(config_path).is_file():
        try:
            cfg = tomllib.loads(Path(config_path).read_text(encoding="utf-8")).get("alpaca", {}) or {}
        except (OSError, tomllib.TOMLDecodeError):
            cfg = {}
        found = _pair({KEY_ID_VAR: str(cfg.get("key_id", "")), SECRET_KEY_VAR: str(cfg.get("secret_key", ""))},
                      f"config file {config_path}")
        if found:
            return found
    raise AuthenticationError(
        f"no Alpaca credentials: set {KEY_ID_VAR} and {SECRET_KEY_VAR}, or name an env file holding them "
        "with [alpaca] env_file in options-helper.toml (or OPTIONS_HELPER_ALPACA_ENV_FILE)"
    )


def credentials_for(settings, *, environ: Mapping[str, str] | None = None) -> Credentials:
    """``resolve_credentials`` for a ``ledger.config.Settings``."""
    return resolve_credentials(env_file=settings.alpaca.env_file, config_path=settings.config_path, environ=environ)


def known_secrets(extra: Iterable[str] = ()) -> list[str]:
    """Every secret value this process knows: resolved keys, the usual env vars, ``extra``."""
    with _known_lock:
        values = set(_known)
    values.update(known_secret_values(os.environ))
    values.update(v for v in extra if v and len(v) >= MIN_SECRET_LENGTH)
    return sorted(values, key=len, reverse=True)  # longest first, so no secret is half-masked


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """``text`` with every known secret value replaced by ``***``."""
    return redact_text(str(text), known_secrets(extra))


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs known secret values from every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


__all__ = [
    "KEY_ID_VAR",
    "SECRET_KEY_VAR",
    "Credentials",
    "RedactingFilter",
    "Secret",
    "credentials_for",
    "known_secrets",
    "read_env_file",
    "redact",
    "resolve_credentials",
]
