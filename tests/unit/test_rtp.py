"""RTP without sockets: RFC 4733 packets byte by byte, the jitter buffer, 16-bit G.711."""

from __future__ import annotations

import itertools
import math
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware import pcm
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


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacing_has_no_drift_over_an_hour() -> None:
    from firmware.ticker import Pacer

    clock = FakeClock()
    pacer = Pacer(0.02, clock)
    for _ in range(180_000):  # an hour of 20 ms frames, each late by a little work
        delay, skipped = pacer.delay()
        assert skipped == 0
        clock.now += delay + 0.0003  # the send itself takes time
    assert abs(clock.now - (100.0 + 180_000 * 0.02)) < 0.001  # no accumulated drift


def test_pacing_skips_ahead_after_a_stall_instead_of_bursting() -> None:
    from firmware.ticker import Pacer

    clock = FakeClock()
    pacer = Pacer(0.02, clock)
    for _ in range(10):
        delay, _ = pacer.delay()
        clock.now += delay
    clock.now += 1.0  # the machine froze for a second
    delay, skipped = pacer.delay()
    assert skipped == 49 and delay < 0.02  # one frame now, the timestamp jumps by 49 frames
    delay, skipped = pacer.delay()
    assert skipped == 0 and 0.0 < delay <= 0.02  # then the normal rhythm, not a burst


def test_jitter_buffer_under_clock_skew_stays_bounded() -> None:
    jb = JitterBuffer()
    # The sender's clock runs 1 % fast: 101 packets arrive for every 100 frames we play.
    seq, played = 0, 0
    for tick in range(10_000):
        for _ in range(2 if tick % 100 == 0 else 1):
            jb.put(seq & 0xFFFF, seq * 160, frame(seq % 1000 + 1), tick * 0.02)
            seq += 1
        if jb.get() is not None:
            played += 1
    assert len(jb.packets) <= 50  # memory stays constant
    assert played >= 9_990


def test_mute_sends_silence_not_nothing() -> None:
    import socket

    from firmware.sip.media import RtpSession

    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.settimeout(2)
    loud = struct.pack("<160h", *([8000] * 160))
    s = RtpSession("127.0.0.1", lambda: loud, lambda p: None, lambda d: None, (46000, 46499))
    s.open()
    s.start("127.0.0.1", far.getsockname()[1], 0, None)
    try:
        assert g711.decode(far.recv(2048)[12:], 0) != bytes(320)
        s.muted = True
        payloads = [far.recv(2048)[12:] for _ in range(5)]
        assert all(len(p) == 160 for p in payloads)  # packets keep flowing ...
        assert pcm.rms(g711.decode(payloads[-1], 0)) < 10  # ... and carry silence
    finally:
        s.stop()
        far.close()


def test_a_burst_after_a_network_stall_is_all_played_in_order() -> None:
    """A tick reads one packet when the stream is steady, and everything waiting once one
    shows it waited: a burst (a stall upstream, then every late packet at once) is read at
    once, not a packet a tick, and played in full and in order, none lost or late."""
    import socket

    from firmware.sip.media import RtpSession
    from firmware.ticker import Ticker

    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    clock = Ticker(driven=True)
    heard: list[bytes] = []
    s = RtpSession("127.0.0.1", lambda: bytes(320), heard.append, lambda d: None,
                   (46500, 46999), clock=clock)
    port = s.open()
    s.start("127.0.0.1", far.getsockname()[1], 0, None)
    frames = [g711.encode(struct.pack("<160h", *([(k + 1) * 300] * 160)), 0) for k in range(12)]

    def send(k: int) -> None:
        far.sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 7) + frames[k], ("127.0.0.1", port))

    try:
        for k in range(4):  # steady: one packet a tick
            send(k)
            clock.tick()
        for k in range(4, 10):  # a stall upstream, then the six late packets at once
            send(k)
        clock.tick()
        clock.tick()
        # Read by the second tick: what waits in the kernel would add to the delay a person
        # hears, for the rest of the call.
        assert s.received == 10
        for _ in range(5):  # playout runs one frame behind (the buffer's two-frame start)
            clock.tick()
        assert heard == [g711.decode(frames[k], 0) for k in range(10)]
        assert (s.buffer.lost, s.buffer.late, s.buffer.duplicates) == (0, 0, 0)
    finally:
        s.stop()
        far.close()
