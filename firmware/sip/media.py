"""The RTP media of one call: 16-bit PCM <-> G.722 or G.711 over symmetric RTP (or SRTP, when
the call's SDP agreed keys: srtp.py), run by a 20 ms clock (ticker.py).

Owns: the call's RTP socket (we send from the port we advertise, so NATs and strict peers see
symmetric RTP), what happens on each tick of the clock: the datagrams that arrived since the
last one are read (with the kernel's arrival time; one a tick unless a backlog shows), RTCP
is read (every tenth tick: it comes every few seconds) and sent when due, one frame is played
and one sent (a stall makes the timestamp skip ahead, nothing bursts); the jitter buffer
that reorders, drops duplicates and late packets, and conceals a lost packet; RFC 4733
DTMF both ways, mute (silence is sent, not nothing) and hold (nothing either way). The clock
is the audio engine's when the phone has a sound card, so the card and every call share one
thread and one wake-up per 20 ms. Never touches: SIP, the phone's state, or audio devices.
RTCP goes on the port above RTP's (or the far end's a=rtcp): our reports every ~5 s and the
far end's read (rtcp.py), through SRTCP when the call has SRTP. It pulls 20 ms frames from
`source()` and hands decoded ones to `sink()`, both given by the audio adapter at the
handset's rate (`audio_rate`); where the call's codec samples at another rate (G.711's 8 kHz
on a 16 kHz handset, G.722's 16 kHz on an 8 kHz one) each direction goes through its own
resampler."""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

from firmware.pcm import Resampler, scale
from firmware.sip import codecs, rtcp, srtp
from firmware.ticker import Ticker

log = logging.getLogger("rtp")

RATE = codecs.RTP_CLOCK  # RTP timestamp units per second, for every codec here
TS_PER_FRAME = RATE // 50  # one 20 ms frame in timestamp units
DTMF_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14,
               "D": 15}
EVENT_KEYS = {v: k for k, v in DTMF_EVENTS.items()}
DTMF_MS = 100  # how long a keypad digit's tone lasts on the wire
MAX_BUFFER = 50  # packets kept for reordering: memory is constant for any call length
MAX_READ = 64  # datagrams read per socket per tick
# RTCP comes every few seconds: its socket is read every 10th tick (200 ms), each packet with
# its kernel arrival time, so the round trip is as exact as when read at once. A read that finds
# nothing costs a system call and an exception: on every tick that was an eighth of the tick.
RTCP_EVERY = 10
# The kernel's receive time of each datagram (Linux; the constant is not in Python 3.11's
# socket module), a struct timespec of two native longs on every Linux ABI.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
# The fixed RTP header (RFC 3550 5.1): V P X CC, M PT, sequence number, timestamp, SSRC.
_RTP = struct.Struct("!BBHII")


def _arrival(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and \
                len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return seconds + nanoseconds / 1e9
    return None


def header(pt: int, seq: int, ts: int, ssrc: int, marker: bool = False) -> bytes:
    return _RTP.pack(0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)


def dtmf_packets(event: int, ms: int = DTMF_MS, ptime: int = 20, volume: int = 10
                 ) -> list[tuple[bool, bytes]]:
    """RFC 4733 payloads for one digit: (marker, payload) per packet, the end sent 3 times."""
    step = RATE * ptime // 1000
    total = RATE * ms // 1000
    out: list[tuple[bool, bytes]] = []
    duration = step
    while duration < total:
        out.append((not out, struct.pack("!BBH", event, volume & 0x3F, duration)))
        duration += step
    end = struct.pack("!BBH", event, 0x80 | (volume & 0x3F), total)
    out += [(False, end)] * 3
    return out


class JitterBuffer:
    """Packets in, one frame per tick out, in sequence order.

    Starts at 2 frames of delay; the delay follows the measured interarrival jitter (RFC 3550
    estimate) up to `max_frames`. A missing frame is concealed by the last one, fading; after
    three, silence. Duplicates and packets older than what was played are dropped.
    """

    def __init__(self, frame_bytes: int = 320, min_frames: int = 2, max_frames: int = 10
                 ) -> None:
        self.frame_bytes = frame_bytes
        self.min_frames, self.max_frames = min_frames, max_frames
        self.packets: dict[int, bytes] = {}
        self.next_seq: int | None = None
        self.highest: int | None = None
        self.jitter = 0.0  # in timestamp units
        self._transit: float | None = None
        self._last: bytes = bytes(frame_bytes)
        self._concealed = 0
        self.played = self.lost = self.late = self.duplicates = 0
        self._primed = False

    @property
    def target(self) -> int:
        """Frames to have before playing starts: three times the jitter estimate, within
        min_frames..max_frames (worked out when needed, not on every packet)."""
        frames = int(self.jitter * 3 / TS_PER_FRAME) + 1
        return max(self.min_frames, min(self.max_frames, frames))

    def put(self, seq: int, ts: int, pcm: bytes, arrival: float) -> None:
        # Every packet of a call comes through here, on the cold tick (RtpSession._tick): plain
        # comparisons, not builtins, and nothing worked out that only get() needs.
        highest = self.highest
        ext = seq  # the sequence number extended past its 16 bits
        if highest is not None:
            ext = (highest & ~0xFFFF) | seq
            if ext - highest > 0x8000:
                ext -= 0x10000
            elif highest - ext > 0x8000:
                ext += 0x10000
        transit = arrival * RATE - ts
        last = self._transit
        self._transit = transit
        if last is not None:  # RFC 3550 A.8: J += (|D| - J) / 16
            d = transit - last
            self.jitter += ((d if d >= 0 else -d) - self.jitter) / 16
        next_seq = self.next_seq
        if next_seq is not None and ext < next_seq:
            self.late += 1
            return
        packets = self.packets
        if ext in packets:
            self.duplicates += 1
            return
        packets[ext] = pcm
        if highest is None or ext > highest:
            self.highest = ext
        if next_seq is None:
            self.next_seq = next_seq = ext
        while len(packets) > MAX_BUFFER:
            oldest = min(packets)
            del packets[oldest]
            next_seq = self.next_seq = max(next_seq, oldest + 1)

    def get(self) -> bytes | None:
        """The next 20 ms to play, or None before the stream has started."""
        if self.next_seq is None:
            return None
        if not self._primed:
            if self.highest is None or self.highest - self.next_seq + 1 < self.target:
                return None
            self._primed = True
        pcm = self.packets.pop(self.next_seq, None)
        self.next_seq += 1
        if pcm is not None:
            self._last, self._concealed = pcm, 0
            self.played += 1
            return pcm
        self.lost += 1
        self._concealed += 1
        if self._concealed > 3 or not self.packets:
            if not self.packets:
                self._primed = False  # the stream paused (hold, DTMF): wait for it again
                self.next_seq = None if self.highest is None else self.highest + 1
            return bytes(self.frame_bytes)
        # Packet loss concealment: the last frame again, quieter each time, not a click.
        return scale(self._last, 0.5 ** self._concealed)


class RtpSession:
    """One call's RTP. `open()` picks the port for the SDP; `start()` begins sending."""

    def __init__(
        self,
        bind_ip: str,
        source: Callable[[], bytes],
        sink: Callable[[bytes], None],
        on_dtmf: Callable[[str], None],
        ports: tuple[int, int] = (20000, 20999),
        audio_rate: int = 8000,
        clock: Ticker | None = None,
    ) -> None:
        self.bind_ip = bind_ip
        self.audio_rate = audio_rate  # what source() gives and sink() takes
        self.source, self.sink, self.on_dtmf = source, sink, on_dtmf
        self.ports = ports
        self.sock: socket.socket | None = None
        self.rtcp_sock: socket.socket | None = None  # on port + 1
        self.port = 0
        self.remote: tuple[str, int] | None = None
        self.rtcp_remote: tuple[str, int] | None = None
        self.codec = 0  # payload type (codecs.BY_PT)
        self._media = _Media(codecs.PCMU, audio_rate)
        self.dtmf_pt: int | None = None
        self.muted = False
        self.bridged = False  # in a conference: the bridge mutes the microphone, not the relay
        self.held = False  # no audio either way
        self.srtp: srtp.Context | None = None  # set before start() when media is encrypted
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.buffer = JitterBuffer(self._media.codec.frame_bytes)
        self.last_rx = time.monotonic()
        self.sent = self.received = self.octets = 0
        self.stream = rtcp.Received()  # what our RTCP reports say of the stream we receive
        self.far: rtcp.FarReport | None = None  # what the far end's say of ours
        self.far_left = False  # its RTCP BYE
        self.rtcp_sent = self.rtcp_received = 0
        self.cname = f"deskphone-{self.ssrc:08x}"
        self._dtmf_queue: list[str] = []
        self._last_event: tuple[int, int] | None = None
        self._dtmf: list[tuple[bool, bytes]] = []  # the digit being sent, packet by packet
        self._dtmf_ts = 0
        self._lock = threading.Lock()
        # The 20 ms clock that runs this session: the audio engine's (one thread for the card
        # and every call) or, without one, a ticker of its own.
        self.clock = clock if clock is not None else Ticker(name="rtp")
        self._started = False
        self._rtcp_due = 0.0
        self._ticks = 0
        # When the last tick began (wall clock, as the kernel's stamps): the first reads all.
        self._tick_wall = float("inf")
        # Whether another RTP datagram waits (poll with a timeout): cheaper than a read that
        # finds nothing, which costs an exception as well (bench/audio.py --only wake).
        self._rtp_waiting: Callable[[int], list[tuple[int, int]]] | None = None

    def open(self) -> int:
        low, high = self.ports
        start = random.randrange(low, high + 1) & ~1
        for i in range(0, high - low + 1, 2):
            port = low + ((start - low + i) % (high - low + 1))
            family = socket.AF_INET6 if ":" in self.bind_ip else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            control = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.bind_ip, port))
                control.bind((self.bind_ip, port + 1))  # RTCP: the odd port above (RFC 3550)
            except OSError:
                sock.close()
                control.close()
                continue
            # Both are read on the clock's tick without waiting: what arrived since the last
            # one, with the kernel's arrival time for the jitter estimate (the tick is not
            # when a packet came).
            sock.setblocking(False)
            control.setblocking(False)
            # (Linux starts stamping a moment after the first socket asks; until then, and
            # without the option, a datagram's arrival is when the tick read it.)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                control.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            waiting = select.poll()
            waiting.register(sock, select.POLLIN)
            self.sock, self.rtcp_sock, self.port = sock, control, port
            self._rtp_waiting = waiting.poll
            return port
        raise OSError(f"no free RTP port in {low}-{high} on {self.bind_ip}")

    def move(self) -> int:
        """The same session on a fresh port (the old socket closed): the next tick reads the
        new socket."""
        old, old_control, old_port = self.sock, self.rtcp_sock, self.port
        try:
            port = self.open()
        except OSError:
            self.sock, self.rtcp_sock, self.port = old, old_control, old_port
            raise
        for sock in (old, old_control):
            if sock is not None:
                sock.close()
        return port

    def punch(self, address: str, port: int) -> None:
        """One empty datagram to the far end's media address (RFC 6263 4.6): a NAT router in
        front of us maps our port to it before the far end, who learns our address only from
        our answer, sends; otherwise its first packets can make the router map another port."""
        if self.sock is None:
            return
        try:
            self.sock.sendto(b"", (address, port))
        except OSError as exc:
            log.debug("RTP punch to %s:%d failed: %s", address, port, exc)

    def start(self, address: str, port: int, codec: int, dtmf_pt: int | None,
              rtcp_port: int | None = None) -> None:
        self.update(address, port, codec, dtmf_pt, rtcp_port)
        if self._started:
            return
        self._started = True
        self.last_rx = time.monotonic()
        # The first report at half the interval (RFC 3550 6.2).
        self._rtcp_due = self.last_rx + rtcp.INTERVAL / 2
        self.clock.add(self._tick)

    def update(self, address: str, port: int, codec: int, dtmf_pt: int | None,
               rtcp_port: int | None = None) -> None:
        with self._lock:
            self.remote = (address, port)
            self.rtcp_remote = (address, rtcp_port or port + 1)
            if codec != self._media.pt:
                # Another codec (a re-INVITE's answer): fresh codec state, resamplers and
                # buffer; frames of the old rate must not reach the new decoder.
                self._media = _Media(codecs.BY_PT[codec], self.audio_rate)
                self.buffer = JitterBuffer(self._media.codec.frame_bytes)
            self.codec, self.dtmf_pt = codec, dtmf_pt

    @property
    def wideband(self) -> bool:
        return self._media.codec.wideband

    def send_dtmf(self, digit: str) -> None:
        with self._lock:
            self._dtmf_queue.append(digit)

    def stop(self) -> None:
        started, self._started = self._started, False
        if started:
            self.clock.remove(self._tick)  # returns once a tick under way has finished
            self._send_rtcp(rtcp.bye(self.ssrc))  # we leave the session (RFC 3550 6.6)
            self._log_quality()
        for sock in (self.sock, self.rtcp_sock):
            if sock is not None:
                sock.close()
        self.sock = self.rtcp_sock = None

    def _log_quality(self) -> None:
        buffer = self.buffer
        far = self.far
        theirs = "no RTCP report from the far end" if far is None else (
            f"the far end lost {far.cumulative_lost} of ours, jitter {far.jitter_ms:.1f} ms"
            + ("" if far.rtt_ms is None else f", round trip {far.rtt_ms:.0f} ms"))
        log.info("RTP %s: sent %d, received %d (%d lost, %d late); %s; RTCP sent %d, "
                 "received %d", codecs.BY_PT[self.codec].name if self.codec in codecs.BY_PT
                 else self.codec, self.sent, self.received, buffer.lost, buffer.late, theirs,
                 self.rtcp_sent, self.rtcp_received)

    # ------------------------------------------------------------------ sending

    def _tick(self, skipped: int) -> None:
        """One 20 ms period: what arrived is read first, so that the frame played is the
        freshest there is; then RTCP (every tenth tick); then our frame goes out.

        This runs 50 times a second, each time after 20 ms asleep, when the code and objects
        it touches have left the caches: a tick costs ten times its warm cost (bench/audio.py
        --only wake). So the common case (a frame each way, no DTMF) does as little as it
        can; the rare ones (DTMF, RTCP, CSRC and padding) are off its path."""
        now = time.time()  # the kernel's arrival stamps are on this clock
        self._receive(self._tick_wall)
        self._tick_wall = now
        ticks = self._ticks = self._ticks + 1
        if ticks % RTCP_EVERY == 0:
            self._drain(self.rtcp_sock, self._rtcp_packet, "RTCP")
            self._report()  # due every few seconds: 200 ms late at most, of a random 2.5-7.5 s
        self._send(skipped)

    def _send(self, skipped: int) -> None:
        # A stall (a busy CPU, a suspended VM): the timestamp moves on, nothing bursts. A
        # frame is the clock's 20 ms, whatever a=ptime the far end asked for.
        ts = self.ts + skipped * TS_PER_FRAME
        self.ts = ts + TS_PER_FRAME
        # A held call leaves the handset alone both ways: with a second call active, a held
        # one pulling microphone frames would take every other one from it.
        if self.held:
            return
        media = self._media
        pcm = self.source()
        played = self.buffer.get()
        if played is not None:
            try:
                self.sink(media.to_handset(played))
            except Exception:
                log.exception("earpiece failed")
        remote, sock = self.remote, self.sock
        if remote is None or sock is None:
            return
        packet = self._dtmf_packet(ts) if self._dtmf or self._dtmf_queue else None
        if packet is None:
            if self.muted and not self.bridged:
                pcm = bytes(len(pcm))
            # The payload type is the codec's, not self.codec: the two change together, but
            # the codec's object in one step (update()).
            packet = header(media.pt, self.seq, ts, self.ssrc) + media.encode(pcm)
        secure = self.srtp
        try:
            sock.sendto(packet if secure is None else secure.protect(packet), remote)
        except OSError as exc:
            log.debug("RTP send to %s failed: %s", remote, exc)
            return
        self.seq = (self.seq + 1) & 0xFFFF
        self.sent += 1
        self.octets += len(packet) - 12

    def _dtmf_packet(self, ts: int) -> bytes | None:
        """The next RFC 4733 packet of the digit being sent (the next queued digit starts at
        this frame's timestamp); None while the far end takes no telephone-event."""
        dtmf_pt = self.dtmf_pt
        if dtmf_pt is None:
            return None
        with self._lock:
            if not self._dtmf and self._dtmf_queue:
                self._dtmf = dtmf_packets(DTMF_EVENTS[self._dtmf_queue.pop(0)])
                self._dtmf_ts = ts
        if not self._dtmf:
            return None
        marker, payload = self._dtmf.pop(0)
        return header(dtmf_pt, self.seq, self._dtmf_ts, self.ssrc, marker) + payload

    # ------------------------------------------------------------------ receiving

    def _receive(self, since: float) -> None:
        """What arrived since the last tick (at `since`, wall clock). A steady stream brings
        one packet per tick, so one is read; a second read only when this one came before
        the last tick: it waited in the kernel, so more may wait behind it (a burst after a
        stall, a far end whose clock runs a little fast), and then everything is read. A
        packet that came with another since the last tick is read on the next one, in time
        for its turn in the jitter buffer; and a tick needs no poll to learn that nothing
        more waits (bench/audio.py --only wake: about 15 us of a cold tick)."""
        sock = self.sock
        if sock is None:
            return
        try:
            data, ancillary, _, _ = sock.recvmsg(2048, _ANCILLARY)
        except OSError:  # nothing came (BlockingIOError), or closed under us (moved)
            return
        arrival = _arrival(ancillary)
        try:
            self._packet(data, arrival)
        except Exception:
            log.debug("bad RTP packet ignored", exc_info=True)
        if arrival is None or arrival < since:  # no stamp: as if it had waited
            self._drain(sock, self._packet, "RTP", self._rtp_waiting)

    @staticmethod
    def _drain(sock: socket.socket | None, handle: Callable[[bytes, float | None], None],
               what: str, waiting: Callable[[int], list[tuple[int, int]]] | None = None
               ) -> None:
        """Hand over what arrived on `sock` since the last tick, each datagram with its
        kernel arrival time where the socket stamps them; a bad one is logged and skipped.
        `waiting` (the socket's poll) says whether to read again after a datagram."""
        if sock is None:
            return
        for _ in range(MAX_READ):  # a flood cannot hold the clock: the kernel drops the rest
            try:
                data, ancillary, _, _ = sock.recvmsg(2048, _ANCILLARY)
            except OSError:  # nothing more (BlockingIOError), or closed under us (moved)
                return
            try:
                handle(data, _arrival(ancillary))
            except Exception:
                log.debug("bad %s packet ignored", what, exc_info=True)
            if waiting is not None and not waiting(0):
                return

    def _packet(self, data: bytes, arrival: float | None = None) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        secure = self.srtp
        if secure is not None:
            # With SRTP a packet that fails authentication (tampered, a replay, or sent in
            # clear) is dropped and counted by the context (RFC 3711 3.3), and the call goes on.
            plain = secure.unprotect(data)
            if plain is None:
                return
            data = plain
        first, second, seq, ts, ssrc = _RTP.unpack_from(data)
        pt = second & 0x7F
        # Padding, a header extension or contributing sources are rare: a helper reads them.
        payload = _payload(data) if first & 0x3F else data[12:]
        self.last_rx = time.monotonic()
        self.received += 1
        self.stream.seen(ssrc, seq)
        if self.held:
            return
        if pt == self.dtmf_pt and len(payload) >= 4:
            event = payload[0]
            if (ts, event) != self._last_event and event in EVENT_KEYS:
                self._last_event = (ts, event)  # one digit per event, however many packets
                self.on_dtmf(EVENT_KEYS[event])
            return
        media = self._media
        if pt == media.pt:
            self.buffer.put(seq, ts, media.decode(payload),
                            time.time() if arrival is None else arrival)


    # ------------------------------------------------------------------ RTCP

    def _report(self) -> None:
        """Our RTCP report, when it is due."""
        if self.rtcp_sock is None:
            return
        now = time.monotonic()
        if now >= self._rtcp_due:
            # Every 2.5 to 7.5 s, randomised so that the two ends do not report in step.
            self._rtcp_due = now + rtcp.INTERVAL * random.uniform(0.5, 1.5)
            if not self.held:
                self._send_rtcp(rtcp.build(
                    self.ssrc, self.cname, time.time(), now, self.ts, self.sent, self.octets,
                    self.stream, self.buffer.jitter))

    def _send_rtcp(self, packet: bytes) -> None:
        control, remote, secure = self.rtcp_sock, self.rtcp_remote, self.srtp
        if control is None or remote is None:
            return
        try:
            control.sendto(secure.protect_rtcp(packet) if secure is not None else packet,
                           remote)
            self.rtcp_sent += 1
        except OSError as exc:
            log.debug("RTCP send to %s failed: %s", remote, exc)

    def _rtcp_packet(self, data: bytes, arrival: float | None = None) -> None:
        if len(data) < 8 or data[0] >> 6 != 2:
            return
        secure = self.srtp
        plain = data if secure is None else secure.unprotect_rtcp(data)  # as _packet's (3.4)
        if plain is None:
            return
        # The round trip and our next report's delay since its SR count from when it came,
        # not from the tick that read it.
        wall = time.time()
        ago = 0.0 if arrival is None else max(0.0, wall - arrival)
        report, left = rtcp.parse(plain, self.ssrc, self.stream, wall - ago,
                                  time.monotonic() - ago)
        self.rtcp_received += 1
        if report is not None:
            self.far = report
        self.far_left = self.far_left or left


def _payload(data: bytes) -> bytes:
    """An RTP packet's payload after its contributing sources, header extension and padding."""
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:  # header extension
        offset += 4 + 4 * struct.unpack_from("!H", data, offset + 2)[0]
    payload = data[offset:]
    if data[0] & 0x20 and payload:  # padding
        payload = payload[: -payload[-1]]
    return payload


class _Media:
    """The codec of a call and the resamplers between its rate and the handset's. The
    codec's functions are bound once here, not looked up per frame."""

    def __init__(self, codec: codecs.Codec, audio_rate: int) -> None:
        self.codec = codec
        self.pt = codec.pt  # the payload type sent and expected, bound as the functions are
        coder = codecs.Coder(codec)
        self.decode = coder.decode  # payload -> PCM at the codec's rate
        same = codec.rate == audio_rate
        down = None if same else Resampler(audio_rate, codec.rate)  # microphone
        self.up = None if same else Resampler(codec.rate, audio_rate)  # earpiece
        # PCM at the handset's rate -> payload
        self.encode = coder.encode if down is None else \
            (lambda pcm: coder.encode(down.convert(pcm)))

    def to_handset(self, pcm: bytes) -> bytes:
        return pcm if self.up is None else self.up.convert(pcm)
