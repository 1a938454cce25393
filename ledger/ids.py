"""Identifiers: UUIDv7 (time-ordered) for events and runs."""

from __future__ import annotations

import os
import time


def new_uuid7(now_ms: int | None = None) -> str:
    """A RFC 9562 UUIDv7: 48-bit Unix milliseconds, version 7, variant 10, 74 random bits.

    Formatted from its 32 hex digits: ``str(uuid.UUID(int=...))`` gives the same text, but every event
    gets an id and building the UUID object doubled the cost."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


__all__ = ["new_uuid7"]
