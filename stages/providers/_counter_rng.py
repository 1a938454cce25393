"""Counter-based random numbers: every draw is a pure function of its coordinates.

A draw is ``mix(stream_key ^ counter * golden)``, where ``stream_key`` is a blake2b digest of
(seed, symbol, stream name) and ``counter`` is any uint64 built from the draw's coordinates
(a calendar-day ordinal, a contract key combined with a session ordinal). Nothing depends on
how many draws were made before, on the order of requests or on the size of the array, which
is what makes the synthetic market the same whatever range it is asked for. ``mix`` is the
SplitMix64 finaliser (Steele, Lea and Flood 2014); normals come from the inverse normal CDF
(``scipy.special.ndtri``, a portable scalar implementation).
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_TO_UNIT = 2.0**-53


@functools.lru_cache(maxsize=65536)
def stream_key(seed: int, symbol: str, stream: str) -> int:
    """A stable 64-bit key for (seed, symbol, stream): blake2b, never Python's ``hash()``."""
    digest = hashlib.blake2b(f"{seed}\x1f{symbol}\x1f{stream}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic)."""
    z = np.asarray(x, dtype=np.uint64) + _GOLDEN  # a fresh array: safe to update in place
    z ^= z >> _S30
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def bits(key: int, counter: np.ndarray) -> np.ndarray:
    """64 random bits per counter: the finaliser of a Weyl step (``counter * golden``) keyed by ``key``."""
    z = np.asarray(counter).astype(np.uint64)  # a copy: updated in place below
    z *= _GOLDEN
    z ^= np.uint64(key)
    return mix(z)


def uniform(key: int, counter: np.ndarray) -> np.ndarray:
    """Uniform draws in the open interval (0, 1)."""
    return ((bits(key, counter) >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT


def ndtri(p: np.ndarray) -> np.ndarray:
    """The inverse normal CDF: ``scipy.special.ndtri``, imported on first use (see ``stages.pricing.ndtr``)."""
    from scipy.special import ndtri as scipy_ndtri

    return scipy_ndtri(p)


def normal(key: int, counter: np.ndarray) -> np.ndarray:
    """Standard normal draws."""
    return ndtri(uniform(key, counter))


def normal_from_bits(raw: np.ndarray) -> np.ndarray:
    """Standard normals from the top 53 of 64 random bits (the low 11 stay free for other use)."""
    return ndtri(((raw >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT)


def combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One counter from two coordinates (e.g. a contract key and a session ordinal)."""
    return mix(np.asarray(a).astype(np.uint64, copy=False)) ^ np.asarray(b).astype(np.uint64, copy=False)


def symbol_uniform(seed: int, symbol: str, stream: str) -> float:
    """One uniform draw in (0, 1) fixed for (seed, symbol, stream): a per-symbol parameter."""
    return ((stream_key(seed, symbol, stream) >> 11) + 0.5) * _TO_UNIT


__all__ = ["bits", "combine", "mix", "normal", "normal_from_bits", "stream_key", "symbol_uniform", "uniform"]
