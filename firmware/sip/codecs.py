"""The audio codecs a call can use: G.722 (wideband, 16 kHz audio) and G.711 mu-law and A-law
(narrowband, 8 kHz), by name, by RTP payload type, and as an encoder/decoder pair per call.

Owns: which codecs exist, their static payload types and clock rates (RFC 3551), and turning
16-bit PCM at the codec's own audio rate into payloads and back. Never touches: sockets, SDP
text or resampling (the RTP session converts to the handset's rate: `firmware.pcm.Resampler`).

G.722 goes through `G722` (libg722 by Sippy Software: Steve Underwood's bit-exact ITU-T G.722
at 64 kbit/s, the same code spandsp and with it baresip's g722 module use; wheels for x86_64
and aarch64). tests/unit/test_codecs.py checks it bit for bit against Debian's libspandsp.
"""

from __future__ import annotations

import array
from collections.abc import Callable
from dataclasses import dataclass

from firmware.sip import g711

# All three: G.722's RTP clock is 8000 although it samples at 16 kHz (RFC 3551 4.5.2).
RTP_CLOCK = 8000
FRAME_MS = 20


@dataclass(frozen=True)
class Codec:
    name: str  # as in SDP's rtpmap and in [sip] codecs
    pt: int  # static RTP payload type
    rate: int  # audio samples per second

    @property
    def wideband(self) -> bool:
        return self.rate > 8000

    @property
    def frame_bytes(self) -> int:
        """One 20 ms frame of 16-bit PCM at the codec's audio rate."""
        return self.rate * FRAME_MS // 1000 * 2


G722 = Codec("G722", 9, 16000)
PCMU = Codec("PCMU", 0, 8000)
PCMA = Codec("PCMA", 8, 8000)
BY_NAME = {c.name: c for c in (G722, PCMU, PCMA)}
BY_PT = {c.pt: c for c in BY_NAME.values()}


def pts(names: tuple[str, ...] | list[str]) -> tuple[int, ...]:
    """Payload types of codec names, in their order (unknown names are the config's to refuse)."""
    return tuple(BY_NAME[n].pt for n in names if n in BY_NAME)


class Coder:
    """Encoder and decoder of one call's codec. G.722 keeps state (ADPCM predictors) from
    frame to frame, so each direction has its own, made afresh when the codec changes.
    `encode` and `decode` are bound once to the codec's own functions: the media path calls
    each 50 times a second."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.encode: Callable[[bytes], bytes]  # 20 ms of PCM at codec.rate -> payload
        self.decode: Callable[[bytes], bytes]  # payload -> PCM at codec.rate
        if codec is G722:
            import G722 as libg722

            encoder = libg722.G722(16000, 64000)
            decoder = libg722.G722(16000, 64000)
            self.encode = lambda pcm: bytes(encoder.encode(array.array("h", pcm)))
            self.decode = lambda payload: decoder.decode(payload).tobytes()
        else:
            self.encode, self.decode = g711.CODERS[codec.pt]
