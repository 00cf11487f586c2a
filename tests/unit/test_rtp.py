"""RTP without sockets: RFC 4733 packets byte by byte, the jitter buffer, 16-bit G.711."""

from __future__ import annotations

import itertools
import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.sip import g711
from firmware.sip.media import JitterBuffer, dtmf_packets, header


def test_dtmf_digit_5_as_rfc_4733_sends_it() -> None:
    packets = dtmf_packets(5, ms=100, ptime=20, volume=10)
    assert [m for m, _ in packets] == [True, False, False, False, False, False, False]
    assert [p for _, p in packets[:4]] == [bytes([5, 10]) + struct.pack("!H", d)
                                           for d in (160, 320, 480, 640)]
    end = bytes([5, 0x80 | 10]) + struct.pack("!H", 800)
    assert [p for _, p in packets[4:]] == [end, end, end]  # the end, three times


def test_rtp_header() -> None:
    assert header(101, 0x1234, 0xDEADBEEF, 0x01020304, marker=True) == bytes(
        [0x80, 0x80 | 101, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4])


def frame(n: int) -> bytes:
    return struct.pack("<160h", *([n] * 160))


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(40))), st.sets(st.integers(0, 39), max_size=8),
       st.integers(0, 0xFFFF))
def test_jitter_buffer_reorders_drops_duplicates_and_conceals(order, lost, base) -> None:
    jb = JitterBuffer(min_frames=2, max_frames=10)
    arrivals = [n for n in order if n not in lost]
    # Packets arrive shuffled within a window of 3 (what a real network does), some twice.
    arrivals.sort(key=lambda n: (order.index(n) % 4) + n)
    out = []
    for i, n in enumerate(arrivals):
        jb.put((base + n) & 0xFFFF, n * 160, frame(700 * (n + 1) + 1), i * 0.02)
        if i % 5 == 0:
            jb.put((base + n) & 0xFFFF, n * 160, frame(700 * (n + 1) + 1), i * 0.02)
    while (pcm := jb.get()) is not None and len(out) < 60:
        out.append(pcm)
    values = [struct.unpack("<h", pcm[:2])[0] for pcm in out]
    played = [v // 700 - 1 for v in values if v % 700 == 1]  # not concealment
    assert played == sorted(played)  # never out of order
    assert len(set(played)) == len(played)  # a duplicate is never played twice
    assert not set(played) & lost  # a lost packet is concealed, not invented
    # The first frame after a real one that went missing fades the last frame: no click to 0
    # (after three in a row the buffer falls silent).
    last = max((i for i, v in enumerate(values) if v % 700 == 1), default=-1)
    inside = [b for i, (a, b) in enumerate(itertools.pairwise(values))
              if i + 1 < last and a % 700 == 1 and b % 700 != 1]
    assert all(v > 0 for v in inside), inside
    assert len(jb.packets) <= 50


def test_g711_at_16_bits_keeps_the_codecs_own_precision() -> None:
    pcm = struct.pack("<800h", *(int(8000 * math.sin(2 * math.pi * 440 * n / 8000))
                                 for n in range(800)))
    for pt in (0, 8):
        back = g711.decode(g711.encode(pcm, pt), pt)
        err = [a - b for a, b in zip(struct.unpack("<800h", pcm), struct.unpack("<800h", back),
                                     strict=True)]
        snr = 10 * math.log10(sum(x * x for x in struct.unpack("<800h", pcm)) /
                              max(1, sum(e * e for e in err)))
        assert snr > 33  # G.711's own limit is about 37 dB for speech-like levels
