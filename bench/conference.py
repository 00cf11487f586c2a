"""The three-way conference's cost: CPU of the phone's media threads and the added latency, next
to a single call measured the same way in the same run.

1. CPU seconds per minute of the phone's RTP threads (read from /proc for those threads only,
   so the far ends this script plays cost nothing in the figure): one call, then two calls
   joined by the conference bridge. Far ends are plain sockets sending speech-like G.711 every
   20 ms.
2. Added latency, as `bench/audio.py` measures it: a marked frame's RTP arrival -> the earpiece
   write (the handset's 20 ms clock, `AudioEngine`), in a single call and in a conference (the
   bridge mixes it with the other party's frame); and in a conference, the arrival on one leg ->
   the mark leaving on the other leg (what the other party hears of it).

    .venv/bin/python bench/conference.py [--seconds 60] [--runs 50]
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.hw.audio import AudioEngine
from firmware.sip import g711
from firmware.sip.conference import Bridge
from firmware.sip.media import RtpSession

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(ids: list[int]) -> float:
    """CPU seconds (user + system) used so far by these native thread ids of this process."""
    total = 0
    for tid in ids:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICK


def native_ids(*sessions: RtpSession) -> list[int]:
    return [t.native_id for s in sessions for t in s._threads if t.native_id is not None]


class FarEnd:
    """A far end: sends one G.711 frame of a tone every 20 ms to `port`, drains what comes."""

    def __init__(self, freq: float, mark: Callable[[int], bytes | None] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.005)
        self.port = self.sock.getsockname()[1]
        tone = struct.pack("<160h", *[int(6000 * math.sin(2 * math.pi * freq * n / 8000))
                                      for n in range(160)])
        self.payload = g711.encode(tone, 0)
        self.mark = mark
        self.received: dict[bytes, float] = {}
        self.sent: dict[bytes, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, target: int) -> FarEnd:
        self.target = target
        self._thread.start()
        return self

    def _run(self) -> None:
        seq = 0
        start = time.perf_counter()
        while not self._stop.is_set():
            seq += 1
            frame = self.mark(seq) if self.mark is not None else None
            payload = self.payload if frame is None else g711.encode(frame, 0)
            if frame is not None:
                self.sent.setdefault(g711.decode(payload, 0), time.perf_counter())
            self.sock.sendto(struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 9) +
                             payload, ("127.0.0.1", self.target))
            end = start + seq * 0.02
            while (left := end - time.perf_counter()) > 0:
                try:
                    data = self.sock.recv(2048)
                    self.received.setdefault(data[12:], time.perf_counter())
                except (TimeoutError, OSError):
                    pass
                if left < 0.005:
                    time.sleep(max(0.0, left))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class Timed:
    """The handset for AudioEngine: remembers when each earpiece frame was written."""

    def __init__(self) -> None:
        self.writes: dict[bytes, float] = {}

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, pcm: bytes) -> None:
        self.writes.setdefault(pcm, time.perf_counter())

    def read(self) -> bytes:
        return bytes(320)


def session(engine: AudioEngine, far: FarEnd, ports: tuple[int, int]) -> RtpSession:
    rtp = RtpSession("127.0.0.1", engine.source, engine.sink, lambda d: None, ports)
    far.start(rtp.open())
    rtp.start("127.0.0.1", far.port, 0, None)
    return rtp


def cpu(seconds: float, conference: bool) -> float:
    """CPU s/min of the phone's RTP threads during a call or a conference."""
    engine = AudioEngine(Timed())
    engine.start(lambda e: None)
    fars = [FarEnd(440)] + ([FarEnd(660)] if conference else [])
    sessions = [session(engine, f, (46000 + 500 * i, 46499 + 500 * i))
                for i, f in enumerate(fars)]
    if conference:
        Bridge((sessions[0], sessions[1]), engine.source, engine.sink)
    ids = native_ids(*sessions)
    before = thread_cpu(ids)
    time.sleep(seconds)
    used = thread_cpu(ids) - before
    for s in sessions:
        s.stop()
    for f in fars:
        f.stop()
    engine.stop()
    return used / seconds * 60


MARKS = [struct.pack("<160h", *([600 * k - 15000] * 160)) for k in range(50)]


def latency(runs: int, conference: bool) -> tuple[list[float], list[float]]:
    """Earpiece latency of the marked leg; and in a conference the relay to the other leg."""
    timed = Timed()
    engine = AudioEngine(timed)
    engine.start(lambda e: None)
    marked = FarEnd(0, lambda seq: MARKS[(seq // 5) % len(MARKS)] if seq % 5 == 0 and
                    seq // 5 < runs else bytes(320))
    fars = [marked] + ([FarEnd(0, lambda seq: bytes(320))] if conference else [])
    sessions = [session(engine, f, (47000 + 500 * i, 47499 + 500 * i))
                for i, f in enumerate(fars)]
    if conference:
        Bridge((sessions[0], sessions[1]), engine.source, engine.sink)
    time.sleep(runs * 5 * 0.02 + 0.5)
    for s in sessions:
        s.stop()
    for f in fars:
        f.stop()
    engine.stop()
    ear = [timed.writes[p] - t for p, t in marked.sent.items()
           if p in timed.writes and p != bytes(320)]
    relay: list[float] = []
    if conference:
        other = fars[1]
        for p, t in marked.sent.items():
            enc = g711.encode(p, 0)
            if enc in other.received and p != bytes(320):
                relay.append(other.received[enc] - t)
    return ear, relay


def ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    return (f"p50 {statistics.median(values) * 1000:5.1f} ms, "
            f"p95 {values[int(len(values) * 0.95) - 1] * 1000:5.1f} ms  (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(f"conference media, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    one, three = cpu(args.seconds, False), cpu(args.seconds, True)
    print(f"CPU of the phone's RTP threads, {args.seconds:.0f} s each")
    print(f"  single call               {one:6.2f} CPU-s/min")
    print(f"  conference (two legs)     {three:6.2f} CPU-s/min  ({three / one:.2f}x)")
    ear1, _ = latency(args.runs, False)
    ear3, relay = latency(args.runs, True)
    print("\nAdded latency (RTP arrival -> out)")
    print(f"  single call, earpiece     {ms(ear1)}")
    print(f"  conference, earpiece      {ms(ear3)}")
    print(f"  conference, other leg     {ms(relay)}")


if __name__ == "__main__":
    main()
