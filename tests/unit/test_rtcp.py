"""RTCP reports: what ours say of the stream we receive, what we read of the far end's."""

from __future__ import annotations

import struct

import pytest

from firmware.sip import rtcp


def test_a_sender_report_carries_our_counts_loss_of_theirs_and_our_cname() -> None:
    theirs = rtcp.Received()
    for seq in [65530, 65531, 65533, 65534, 0, 1, 3]:  # 3 of 10 lost, across the wrap
        theirs.seen(0xABCD, seq)
    packet = rtcp.build(0x1234, "deskphone-1234", 1_800_000_000.5, 100.0, 16000, 50, 8000,
                        theirs, jitter=24.0)
    first, pt, words = struct.unpack("!BBH", packet[:4])
    assert (first & 0x1F, pt) == (1, rtcp.SR)
    assert struct.unpack("!III", packet[16:28]) == (16000, 50, 8000)
    source, loss, highest, jitter, _, _ = struct.unpack("!IIIIII", packet[28:52])
    assert source == 0xABCD and loss & 0xFFFFFF == 3 and (loss >> 24) == 3 * 256 // 10
    assert highest == 0x10003 and jitter == 24
    sdes = packet[4 + words * 4:]
    assert sdes[1] == rtcp.SDES and b"deskphone-1234" in sdes and len(sdes) % 4 == 0


def test_the_far_ends_report_on_our_stream_gives_loss_jitter_and_the_round_trip() -> None:
    ours, mine = rtcp.Received(), rtcp.Received()
    mine.seen(0x1234, 1)
    # The far end: it got our SR at wall time 1000.0 and answers 0.25 s later, and the reply
    # reaches us at 1000.35: 100 ms of round trip.
    sr = rtcp.build(0x1234, "us", 1000.0, 5.0, 0, 10, 1600, None, 0)
    far = rtcp.Received()
    rtcp.parse(sr, 0xABCD, far, 1000.0, now=50.0)
    far.seen(0x1234, 1)
    for seq in range(2, 12):
        if seq != 5:
            far.seen(0x1234, seq)
    reply = rtcp.build(0xABCD, "them", 1000.25, 50.25, 0, 0, 0, far, jitter=80.0)
    report, left = rtcp.parse(reply, 0x1234, ours, 1000.35, 9.0)
    assert report is not None and not left
    assert report.cumulative_lost == 1 and report.fraction_lost == 23 / 256  # 1 of 11
    assert report.jitter_ms == 10.0  # 80 timestamp units at 8 kHz
    assert report.rtt_ms == pytest.approx(100, abs=1)
    assert rtcp.parse(rtcp.bye(0xABCD), 0x1234, ours, 0, 0) == (None, True)


@pytest.mark.parametrize("junk", [b"\x00" * 12, b"\x80\xc8\x00\x20" + b"\x00" * 8])
def test_junk_is_refused_with_a_reason(junk: bytes) -> None:
    with pytest.raises(ValueError):
        rtcp.parse(junk, 1, rtcp.Received(), 0, 0)
