"""RTCP (RFC 3550 section 6) for one call: our reports on the media, and the far end's on ours.

Owns: what a report needs to know of the stream we receive (its source, sequence numbers and
packets, so its loss; the time of the far end's last sender report), building our compound
packet (a sender report, or a receiver report while we send nothing, with its report block,
then SDES with our CNAME), and reading the far end's compound packets (SR, RR, SDES, BYE) into
what a person or an admin would ask of a call: how much of our audio it lost, its jitter, the
round trip. Never touches: sockets, clocks (times are passed in) or SRTP (media.py protects
what this builds and unprotects what it reads).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE = 200, 201, 202, 203
NTP_OFFSET = 2208988800  # seconds from 1900 (NTP's epoch) to 1970 (Unix's)
INTERVAL = 5.0  # seconds between reports (RFC 3550 6.2's minimum), randomised by the caller


def ntp(wall: float) -> tuple[int, int]:
    """NTP timestamp (seconds, fraction) of a Unix time."""
    seconds = int(wall) + NTP_OFFSET
    return seconds & 0xFFFFFFFF, int((wall % 1) * (1 << 32)) & 0xFFFFFFFF


@dataclass
class Received:
    """The stream we receive, as its report block needs it (RFC 3550 A.3)."""

    ssrc: int = 0
    base: int | None = None  # extended sequence number of the first packet
    highest: int = 0  # extended highest sequence number
    packets: int = 0
    expected_prior: int = 0
    received_prior: int = 0
    lsr: int = 0  # the middle 32 bits of the NTP time in the far end's last SR
    lsr_at: float = 0.0  # when (monotonic) that SR arrived

    def seen(self, ssrc: int, seq: int) -> None:
        if self.base is None or ssrc != self.ssrc:
            # A new source (the first packet, or the far end restarted its stream): afresh.
            self.ssrc, self.base, self.highest, self.packets = ssrc, seq, seq, 0
            self.expected_prior = self.received_prior = 0
        else:
            ext = (self.highest & ~0xFFFF) | seq
            if ext - self.highest > 0x8000:
                ext -= 0x10000
            elif self.highest - ext > 0x8000:
                ext += 0x10000
            self.highest = max(self.highest, ext)
        self.packets += 1

    def block(self, jitter: float, now: float) -> bytes:
        """Our report block on it (24 bytes): loss since the last report and in all, the
        highest sequence number, jitter (timestamp units), and the SR echo for the round trip."""
        assert self.base is not None
        expected = self.highest - self.base + 1
        lost = max(-0x800000, min(0x7FFFFF, expected - self.packets))
        interval = expected - self.expected_prior
        got = self.packets - self.received_prior
        self.expected_prior, self.received_prior = expected, self.packets
        fraction = 0 if interval <= 0 or got >= interval else (interval - got) * 256 // interval
        dlsr = int((now - self.lsr_at) * 65536) if self.lsr else 0
        return struct.pack("!IIIIII", self.ssrc, (min(fraction, 255) << 24) | (lost & 0xFFFFFF),
                           self.highest & 0xFFFFFFFF, int(jitter) & 0xFFFFFFFF, self.lsr,
                           dlsr & 0xFFFFFFFF)


@dataclass(frozen=True)
class FarReport:
    """What the far end last said of the audio we send it."""

    fraction_lost: float  # 0..1, since its previous report
    cumulative_lost: int
    jitter_ms: float
    rtt_ms: float | None  # None until it echoes one of our sender reports


def build(ssrc: int, cname: str, wall: float, now: float, rtp_ts: int, packets: int,
          octets: int, received: Received | None, jitter: float) -> bytes:
    """Our compound packet: SR (we have sent media) or RR, then SDES CNAME."""
    blocks = received.block(jitter, now) if received is not None and \
        received.base is not None else b""
    count = 1 if blocks else 0
    if packets:
        body = struct.pack("!I", ssrc) + struct.pack("!II", *ntp(wall)) + struct.pack(
            "!III", rtp_ts & 0xFFFFFFFF, packets & 0xFFFFFFFF, octets & 0xFFFFFFFF) + blocks
        report = _packet(SR, count, body)
    else:
        report = _packet(RR, count, struct.pack("!I", ssrc) + blocks)
    name = cname.encode()[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(name)) + name + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)  # the item list ends on a 32-bit boundary
    return report + _packet(SDES, 1, chunk)


def bye(ssrc: int) -> bytes:
    """RR + BYE: we leave the session (RFC 3550 6.6)."""
    return _packet(RR, 0, struct.pack("!I", ssrc)) + _packet(BYE, 1, struct.pack("!I", ssrc))


def _packet(pt: int, count: int, body: bytes) -> bytes:
    return struct.pack("!BBH", 0x80 | count, pt, len(body) // 4) + body


def parse(data: bytes, our_ssrc: int, received: Received, wall: float, now: float
          ) -> tuple[FarReport | None, bool]:
    """The far end's compound packet: its report on our stream (if any) and whether it said
    BYE. Its SR's time is kept in `received` for our next report's round-trip echo. Raises
    ValueError on a packet that is not RTCP."""
    report: FarReport | None = None
    left = False
    offset = 0
    while offset + 4 <= len(data):
        first, pt, words = struct.unpack("!BBH", data[offset:offset + 4])
        if first >> 6 != 2:
            raise ValueError("not RTCP version 2")
        end = offset + 4 + words * 4
        if end > len(data):
            raise ValueError("RTCP length beyond the datagram")
        body = data[offset + 4:end]
        count = first & 0x1F
        if pt in (SR, RR) and len(body) >= 4:
            start = 4
            if pt == SR and len(body) >= 24:
                msw, lsw = struct.unpack("!II", body[4:12])
                received.lsr = ((msw & 0xFFFF) << 16) | (lsw >> 16)
                received.lsr_at = now
                start = 24
            for i in range(count):
                block = body[start + 24 * i: start + 24 * (i + 1)]
                if len(block) < 24:
                    break
                source, loss, _, jitter, lsr, dlsr = struct.unpack("!IIIIII", block)
                if source != our_ssrc:
                    continue
                cumulative = loss & 0xFFFFFF
                if cumulative & 0x800000:
                    cumulative -= 0x1000000
                rtt = None
                if lsr:
                    msw, lsw = ntp(wall)
                    middle = ((msw & 0xFFFF) << 16) | (lsw >> 16)
                    rtt = max(0.0, ((middle - lsr - dlsr) & 0xFFFFFFFF) / 65536 * 1000)
                report = FarReport((loss >> 24) / 256, cumulative, jitter / 8.0, rtt)
        elif pt == BYE:
            left = True
        offset = end
    return report, left
