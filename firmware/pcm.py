"""PCM arithmetic on signed 16-bit little-endian mono frames: mixing, scaling, level.

Owns: the sums a media path and a sound card both need. Never touches: codecs, sockets,
devices or clocks. Uses `audioop` (`audioop-lts` on Python 3.13, where the standard library
dropped it) at width 2, so it costs no precision and runs in C.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.11/3.12 warn; 3.13 uses audioop-lts
    import audioop

WIDTH = 2  # bytes per sample


def mix(a: bytes, b: bytes) -> bytes:
    """Two frames summed, clipped at full scale."""
    return audioop.add(a, b, WIDTH)


def scale(pcm: bytes, factor: float) -> bytes:
    """A frame made louder or quieter by `factor`, clipped at full scale."""
    return audioop.mul(pcm, WIDTH, factor)


def rms(pcm: bytes) -> int:
    """The root-mean-square level of a frame (0 = silence, 32767 = full scale)."""
    return audioop.rms(pcm, WIDTH)
