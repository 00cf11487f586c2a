"""The 20 ms clock every call's RTP runs on: a thread only while someone listens, no tick after
`remove`, and on a phone with a sound card no thread of its own at all."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from firmware.hw.audio import AudioEngine
from firmware.sip import media, rtcp
from firmware.sip.media import RtpSession
from firmware.ticker import Ticker


def wait_for(condition, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def test_a_ticker_runs_a_thread_only_while_someone_listens() -> None:
    ticker = Ticker(name="test-ticker")
    assert not threads_named("test-ticker")  # an idle phone wakes nobody
    ticks: list[int] = []
    ticker.add(ticks.append)
    assert wait_for(lambda: len(ticks) >= 5)
    ticker.remove(ticks.append)
    counted = len(ticks)
    assert wait_for(lambda: not threads_named("test-ticker"))
    assert len(ticks) == counted  # nothing after remove() returned
    ticker.add(ticks.append)  # and it starts again for the next call
    assert wait_for(lambda: len(ticks) > counted)
    ticker.remove(ticks.append)


def test_a_subscriber_may_leave_from_inside_its_own_tick() -> None:
    ticker = Ticker(name="test-leave")
    calls: list[int] = []

    def once(skipped: int) -> None:
        calls.append(skipped)
        ticker.remove(once)  # would wait for itself if remove() did not know

    ticker.add(once)
    assert wait_for(lambda: not threads_named("test-leave"))
    assert calls == [0]


def test_remove_returns_only_once_a_tick_under_way_has_finished() -> None:
    # A call's RTP leaves the clock while a tick may be running it on the audio thread: its
    # sockets are closed right after remove() returns, so that tick must have finished.
    ticker = Ticker(driven=True)
    inside, release = threading.Event(), threading.Event()
    finished: list[int] = []

    def slow(skipped: int) -> None:
        inside.set()
        release.wait(5)
        finished.append(skipped)

    ticker.add(slow)
    ticking = threading.Thread(target=ticker.tick)
    ticking.start()
    assert inside.wait(5)
    removed = threading.Event()
    leaving = threading.Thread(target=lambda: (ticker.remove(slow), removed.set()))
    leaving.start()
    assert not removed.wait(0.2)  # still waiting for the tick under way
    release.set()
    assert removed.wait(5) and finished == [0]
    ticker.tick()
    assert finished == [0]  # and not called again
    ticking.join()
    leaving.join()


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    ticker = Ticker(driven=True)
    seen: list[int] = []

    def broken(skipped: int) -> None:
        raise RuntimeError("boom")

    ticker.add(broken)
    ticker.add(seen.append)
    ticker.tick(3)
    assert seen == [3]


class Card:
    """A sound card whose microphone speaks at a steady level; the earpiece is remembered."""

    rate = 8000

    def __init__(self) -> None:
        self.heard: list[bytes] = []

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, pcm: bytes) -> None:
        self.heard.append(pcm)

    def read(self) -> bytes:
        return struct.pack("<160h", *([1000] * 160))


def test_on_a_phone_with_a_sound_card_rtp_runs_on_the_audio_thread() -> None:
    card = Card()
    engine = AudioEngine(card)  # type: ignore[arg-type]
    engine.start(lambda e: None)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.settimeout(2)
    where: list[str] = []

    def source() -> bytes:
        where.append(threading.current_thread().name)
        return engine.source()

    rtp = RtpSession("127.0.0.1", source, engine.sink, lambda d: None, (46000, 46499),
                     clock=engine.clock)
    port = rtp.open()
    try:
        rtp.start("127.0.0.1", far.getsockname()[1], 0, None)
        assert not threads_named("rtp")  # no thread of its own
        for k in range(30):  # the far end talks; the earpiece hears it
            far.sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 7) + bytes([0x80] * 160),
                       ("127.0.0.1", port))
            data = far.recv(2048)  # and we talk back, paced by the card's clock
            assert data[1] & 0x7F == 0
        assert set(where) == {"audio"}
        assert wait_for(lambda: any(any(frame) for frame in card.heard))
    finally:
        rtp.stop()
        engine.stop()
        far.close()


Pair = tuple[RtpSession, socket.socket]


@pytest.fixture
def pair() -> Iterator[Pair]:
    """A session whose clock the test ticks by hand, and the far end's socket."""
    rtp = RtpSession("127.0.0.1", lambda: bytes(320), lambda p: None, lambda d: None,
                     (46500, 46999), clock=Ticker(driven=True))
    rtp.open()
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    yield rtp, far
    rtp.stop()
    far.close()


def stamped_on_arrival(far: socket.socket, rtp: RtpSession) -> bool:
    assert rtp.sock is not None
    far.sendto(b"probe", rtp.sock.getsockname())
    time.sleep(0.03)
    _, ancillary, _, _ = rtp.sock.recvmsg(64, media._ANCILLARY)
    stamp = media._arrival(ancillary)
    return stamp is not None and time.time() - stamp > 0.02


def test_jitter_is_measured_on_arrival_not_when_the_tick_reads_the_packet(pair: Pair) -> None:
    # Two packets 20 ms apart on the RTP clock arrive 60 ms apart and are read in one tick: the
    # kernel's arrival times say 40 ms of jitter (RFC 3550: 320 units, filtered by 1/16 = 20);
    # read times would say they came together (160 units, 10).
    rtp, far = pair
    port = rtp.port
    # Linux turns arrival stamping on for the whole stack a moment after the first socket
    # asks (a deferred job); until then a datagram is stamped when read.
    assert wait_for(lambda: stamped_on_arrival(far, rtp))
    rtp.update("127.0.0.1", 9, 0, None)
    payload = bytes([0xFF] * 160)
    sent = []
    for k in range(2):
        sent.append(time.time())
        far.sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 7) + payload,
                   ("127.0.0.1", port))
        if k == 0:
            time.sleep(0.06)  # the spacing under test, not a wait for something
    rtp._drain(rtp.sock, rtp._packet, "RTP")  # loopback delivers within sendto()
    expected = abs((sent[1] - sent[0]) * 8000 - 160) / 16
    assert rtp.received == 2
    assert abs(rtp.buffer.jitter - expected) < 2, (rtp.buffer.jitter, expected)


def test_the_round_trip_counts_from_when_rtcp_arrived_not_when_a_tick_read_it(pair: Pair) -> None:
    # RTCP is read every tenth tick (200 ms). A receiver report echoing an SR "sent" the moment
    # it leaves, with no delay at the far end, says a round trip of ~0 ms when it arrives; read
    # 100 ms later without the arrival stamp it would say 100 ms.
    rtp, far = pair
    port = rtp.port
    assert wait_for(lambda: stamped_on_arrival(far, rtp))
    rtp.update("127.0.0.1", 9, 0, None)
    seconds, fraction = rtcp.ntp(time.time())
    lsr = ((seconds & 0xFFFF) << 16) | (fraction >> 16)
    block = struct.pack("!IIIIII", rtp.ssrc, 0, 0, 0, lsr, 0)
    far.sendto(rtcp._packet(rtcp.RR, 1, struct.pack("!I", 7) + block),
               ("127.0.0.1", port + 1))
    time.sleep(0.1)  # the packet waits for its tick: the delay under test
    rtp._drain(rtp.rtcp_sock, rtp._rtcp_packet, "RTCP")
    assert rtp.far is not None and rtp.far.rtt_ms is not None
    assert rtp.far.rtt_ms < 50, rtp.far.rtt_ms


def test_rtcp_is_read_on_every_tenth_tick(pair: Pair) -> None:
    rtp, far = pair
    port = rtp.port
    rtp.start("127.0.0.1", far.getsockname()[1], 0, None)
    far.sendto(rtcp.bye(7), ("127.0.0.1", port + 1))
    reads = []
    for _ in range(media.RTCP_EVERY):
        rtp.clock.tick(0)
        reads.append(rtp.rtcp_received)
    assert reads[-1] == 1 and reads[0] == 0  # read once, within ten ticks
    assert rtp.far_left


def test_each_tick_reads_what_came_since_the_last(pair: Pair) -> None:
    # A steady stream: the packet that came since the last tick is read on this one, not left
    # for later (in the socket it would be added delay). A burst after a stall is read by the
    # second tick (test_rtp.py).
    rtp, far = pair
    port = rtp.port
    rtp.start("127.0.0.1", far.getsockname()[1], 0, None)
    for k in range(5):  # loopback delivers within sendto()
        far.sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 7) + bytes([0xFF] * 160),
                   ("127.0.0.1", port))
        rtp.clock.tick(0)
        assert rtp.received == k + 1
    rtp.clock.tick(0)
    assert rtp.received == 5
