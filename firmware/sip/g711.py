"""G.711 at 16 bits: mu-law (payload type 0) and A-law (8) <-> signed 16-bit little-endian PCM.

Owns: the codec only (PCM arithmetic is `firmware.pcm`). Uses `audioop` (`audioop-lts` on
Python 3.13, where the standard library dropped it) at width 2, so no precision is lost before
the codec's own quantisation (pyVoIP's 8-bit path loses about five bits).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.11/3.12 warn; 3.13 uses audioop-lts
    import audioop


def ulaw_encode(pcm: bytes) -> bytes:
    return audioop.lin2ulaw(pcm, 2)


def ulaw_decode(data: bytes) -> bytes:
    return audioop.ulaw2lin(data, 2)


def alaw_encode(pcm: bytes) -> bytes:
    return audioop.lin2alaw(pcm, 2)


def alaw_decode(data: bytes) -> bytes:
    return audioop.alaw2lin(data, 2)


# (encode, decode) by payload type, for a media path that binds its codec once per call.
CODERS = {0: (ulaw_encode, ulaw_decode), 8: (alaw_encode, alaw_decode)}


def encode(pcm: bytes, pt: int) -> bytes:
    """PCM -> payload of payload type `pt` (0 or 8)."""
    return CODERS[pt][0](pcm)


def decode(data: bytes, pt: int) -> bytes:
    """Payload of payload type `pt` (0 or 8) -> PCM."""
    return CODERS[pt][1](data)
