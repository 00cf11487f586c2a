"""The media path: fidelity, send pacing, added latency, CPU and memory of a call.

Side by side in one run, each measured the same way:
1. Fidelity: SNR of a speech-like signal (harmonics of a gliding 100-220 Hz voice, syllable-rate
   envelope, about -20 dBFS) through our path (16-bit PCM -> G.711 -> RTP on loopback -> jitter
   buffer -> 16-bit PCM) next to G.711's own limit (encode + decode, nothing else) and pyVoIP
   2.0.0a4's stock 8-bit path (its own encode_pcmu / parse_pcmu).
2. Send pacing: inter-packet intervals at the receiver (p50, p99, max) and drift (arrival span
   minus packets x 20 ms) for our RtpSession, pyVoIP's RTPClient, and baresip on a call.
3. Added latency: RTP arrival -> earpiece write; microphone read -> RTP send.
4. CPU seconds per minute of a two-way call (both ends in this process) and resident memory
   growth over the call, ours vs pyVoIP's RTPClient pair.

    .venv/bin/python bench/audio.py [--seconds 60]      (the docs' table: --seconds 600)
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from firmware.hw.audio import AudioEngine
from firmware.sip import g711
from firmware.sip.media import RtpSession

FRAME = 320


def speech(seconds: float) -> bytes:
    out = []
    for n in range(int(8000 * seconds)):
        t = n / 8000
        f0 = 160 + 60 * math.sin(2 * math.pi * 0.7 * t)
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t) ** 2
        v = sum(math.sin(2 * math.pi * f0 * k * t + k) / k for k in range(1, 12))
        out.append(int(3300 * env * v))
    return struct.pack(f"<{len(out)}h", *out)


def snr(ref: bytes, got: bytes) -> float:
    a = struct.unpack(f"<{len(ref) // 2}h", ref)
    b = struct.unpack(f"<{len(got) // 2}h", got)
    signal = sum(x * x for x in a)
    noise = sum((x - y) ** 2 for x, y in zip(a, b, strict=False))
    return 10 * math.log10(signal / max(noise, 1))


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i:i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def fidelity(seconds: float) -> tuple[float, float, float]:
    x = speech(seconds)
    limit = snr(x, g711.decode(g711.encode(x, 0), 0))
    # Ours: two sessions on loopback, A plays x, B's sink collects.
    queue = frames(x)
    got: list[bytes] = []
    a = RtpSession("127.0.0.1", lambda: queue.pop(0) if queue else bytes(FRAME),
                   lambda pcm: None, lambda d: None, (42000, 42499))
    b = RtpSession("127.0.0.1", lambda: bytes(FRAME), got.append, lambda d: None,
                   (42500, 42999))
    pa, pb = a.open(), b.open()
    b.start("127.0.0.1", pa, 0, None)
    a.start("127.0.0.1", pb, 0, None)
    while queue:
        time.sleep(0.05)
    time.sleep(0.3)
    a.stop()
    b.stop()
    heard = b"".join(got)
    start = heard.find(g711.decode(g711.encode(x[:FRAME], 0), 0))  # where the stream begins
    ours = snr(x, heard[start:start + len(x)]) if start >= 0 else float("nan")
    # pyVoIP 2.0.0a4's own conversions: 16-bit -> its 8-bit unsigned write_audio input,
    # encode_pcmu, parse_pcmu, and back to 16 bits for the comparison.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

        from pyVoIP import RTP
    client = RTP.RTPClient({0: RTP.PayloadType.PCMU}, "127.0.0.1", 0, "127.0.0.1", 0,
                           RTP.TransmitType.SENDRECV)
    eight = audioop.bias(audioop.lin2lin(x, 2, 1), 1, 128)
    decoded = b""
    for i in range(0, len(eight), 160):
        payload = client.encode_pcmu(eight[i:i + 160])
        msg = RTP.RTPMessage(b"\x80\x00" + struct.pack("!HII", i // 160, i, 1) + payload,
                             {0: RTP.PayloadType.PCMU})
        client.pmin = RTP.RTPPacketManager()
        client.parse_pcmu(msg)
        decoded += client.pmin.read(len(payload))
    back = audioop.lin2lin(audioop.bias(decoded, 1, -128), 1, 2)
    return limit, ours, snr(x, back)


def intervals(arrivals: list[float]) -> tuple[float, float, float, float]:
    gaps = sorted((b - a) * 1000 for a, b in itertools.pairwise(arrivals))
    drift = (arrivals[-1] - arrivals[0]) * 1000 - (len(arrivals) - 1) * 20
    return (statistics.median(gaps), gaps[int(len(gaps) * 0.99) - 1], gaps[-1], drift)


def receive(sock: socket.socket, seconds: float) -> list[float]:
    arrivals = []
    end = time.monotonic() + seconds
    sock.settimeout(0.5)
    while time.monotonic() < end:
        try:
            sock.recv(2048)
            arrivals.append(time.monotonic())
        except TimeoutError:
            pass
    return arrivals


def pacing_ours(seconds: float) -> list[float]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    s = RtpSession("127.0.0.1", lambda: bytes(FRAME), lambda p: None, lambda d: None,
                   (43000, 43499))
    s.open()
    s.start("127.0.0.1", sink.getsockname()[1], 0, None)
    arrivals = receive(sink, seconds)
    s.stop()
    sink.close()
    return arrivals


def pacing_pyvoip(seconds: float) -> list[float]:
    from pyVoIP import RTP

    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    client = RTP.RTPClient({0: RTP.PayloadType.PCMU}, "127.0.0.1", 43600, "127.0.0.1",
                           sink.getsockname()[1], RTP.TransmitType.SENDRECV)
    client.start()
    arrivals = receive(sink, seconds)
    client.stop()
    sink.close()
    return arrivals


def pacing_baresip(seconds: float) -> list[float] | None:
    try:
        from tests.lab.fixtures import LabPhone, lab_port, peer_ports
        from tests.lab.lab import Baresip, Kamailio, tone_wav
    except ImportError:
        return None
    import shutil
    import tempfile

    if not shutil.which("baresip") or not Path("/usr/sbin/kamailio").exists():
        return None
    work = Path(tempfile.mkdtemp(prefix="bench-audio-"))
    kam = Kamailio(work / "k", port=lab_port()).start()
    sip, ctrl = peer_ports()
    bob = Baresip(work / "bob", "102", sip, ctrl, tone_wav(work / "t.wav", 440, seconds + 30),
                  "auto", proxy_port=kam.port).start()
    bob.registered()
    phone = LabPhone(kam).registered()
    arrivals: list[float] = []
    phone.keys("102D")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "up")
    call = next(iter(phone.account.calls.values()))
    real = call.rtp._packet

    def packet(data: bytes) -> None:
        arrivals.append(time.monotonic())
        real(data)

    call.rtp._packet = packet  # type: ignore[method-assign]
    time.sleep(seconds)
    phone.stop()
    bob.stop()
    kam.stop()
    return arrivals


def latency(runs: int = 50) -> tuple[list[float], list[float]]:
    """Arrival of a marked packet -> the engine writes it; mic read -> RTP send."""
    writes: dict[bytes, float] = {}
    reads: list[tuple[float, bytes]] = []
    # Frames that stay distinct through G.711 (each a different code), to recognise them.
    marks = [struct.pack("<160h", *([600 * k - 15000] * 160)) for k in range(runs)]

    class Timed:
        def open(self) -> None: ...

        def close(self) -> None: ...

        def write(self, pcm: bytes) -> None:
            writes.setdefault(pcm, time.perf_counter())

        def read(self) -> bytes:
            k = len(reads) % runs
            reads.append((time.perf_counter(), marks[k]))
            return marks[k]

    engine = AudioEngine(Timed())  # type: ignore[arg-type]
    engine.start(lambda e: None)
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    rtp = RtpSession("127.0.0.1", engine.source, engine.sink, lambda d: None, (44000, 44499))
    port = rtp.open()
    rtp.start("127.0.0.1", far.getsockname()[1], 0, None)
    sent_at = {}
    far.settimeout(0.02)
    sends: dict[bytes, float] = {}
    for k, mark in enumerate(marks):
        payload = g711.encode(mark, 0)
        sent_at[g711.decode(payload, 0)] = time.perf_counter()
        far.sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 7) + payload, ("127.0.0.1", port))
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            try:
                data = far.recv(2048)
                sends.setdefault(data[12:], time.perf_counter())
            except TimeoutError:
                pass
    time.sleep(0.3)
    rtp.stop()
    engine.stop()
    down = [writes[p] - t for p, t in sent_at.items() if p in writes]
    up = []
    for t, mark in reads:
        enc = g711.encode(mark, 0)
        if enc in sends and sends[enc] > t:
            up.append(sends[enc] - t)
            del sends[enc]
    return down, up


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def call_cost(seconds: float, stock: bool, secure: bool = False) -> tuple[float, int]:
    """CPU s/min and RSS growth (KiB) of a two-way call, both ends here (`secure`: SRTP with
    AES_CM_128_HMAC_SHA1_80 both ways, as a call with `[sip] srtp` agreed)."""
    before_rss = rss_kib()
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    if stock:
        from pyVoIP import RTP

        a = RTP.RTPClient({0: RTP.PayloadType.PCMU}, "127.0.0.1", 45000, "127.0.0.1", 45002,
                          RTP.TransmitType.SENDRECV)
        b = RTP.RTPClient({0: RTP.PayloadType.PCMU}, "127.0.0.1", 45002, "127.0.0.1", 45000,
                          RTP.TransmitType.SENDRECV)
        a.start()
        b.start()
        stop = threading.Event()

        def pump() -> None:  # what a pyVoIP application does: write and read its audio
            while not stop.wait(0.02):
                a.write(b"\x80" * 160)
                b.write(b"\x80" * 160)
                a.read(160, blocking=False)
                b.read(160, blocking=False)

        threading.Thread(target=pump, daemon=True).start()
        time.sleep(seconds)
        stop.set()
        a.stop()
        b.stop()
    else:
        x = speech(1)
        fs = frames(x)
        n = [0]

        def mic() -> bytes:
            n[0] += 1
            return fs[n[0] % len(fs)]

        a = RtpSession("127.0.0.1", mic, lambda p: None, lambda d: None, (45100, 45499))
        b = RtpSession("127.0.0.1", mic, lambda p: None, lambda d: None, (45500, 45999))
        pa, pb = a.open(), b.open()
        if secure:
            from firmware.sip import srtp

            ka, kb = srtp.offer(srtp.SUITES[:1])[0], srtp.offer(srtp.SUITES[:1])[0]
            a.srtp, b.srtp = srtp.Context(ka, kb), srtp.Context(kb, ka)
        a.start("127.0.0.1", pb, 0, 101)
        b.start("127.0.0.1", pa, 0, 101)
        time.sleep(seconds)
        a.stop()
        b.stop()
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
    return cpu / seconds * 60, rss_kib() - before_rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--only", choices=["fidelity", "pacing", "latency", "call"],
                        help="one part only (the long runs take --seconds each)")
    args = parser.parse_args()
    print(f"media path, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    if args.only in (None, "fidelity"):
        report_fidelity()
    if args.only in (None, "pacing"):
        report_pacing(args.seconds)
    if args.only in (None, "latency"):
        report_latency()
    if args.only in (None, "call"):
        report_call(args.seconds)


def report_fidelity() -> None:
    limit, ours, stock = fidelity(10)
    print("| fidelity (speech-like, ~-20 dBFS) | SNR dB |\n|---|---|")
    print(f"| G.711 mu-law's own limit | {limit:.2f} |\n| ours, through RTP and the jitter "
          f"buffer | {ours:.2f} |\n| pyVoIP 2.0.0a4 stock 8-bit path | {stock:.2f} |\n")


def report_pacing(seconds: float) -> None:
    print(f"| send pacing over {seconds:.0f} s | p50 ms | p99 ms | max ms | drift ms |")
    print("|---|---|---|---|---|")
    rows = [("ours (RtpSession)", pacing_ours(seconds)),
            ("pyVoIP 2.0.0a4 RTPClient", pacing_pyvoip(seconds))]
    bare = pacing_baresip(seconds)
    if bare:
        rows.append(("baresip 1.0 on a call", bare))
    for name, arrivals in rows:
        p50, p99, mx, drift = intervals(arrivals)
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {mx:.2f} | {drift:+.1f} |", flush=True)


def report_latency() -> None:
    down, up = latency()
    print("\n| added latency | median ms | max ms |\n|---|---|---|")
    print(f"| RTP arrival -> earpiece write | {statistics.median(down) * 1000:.1f} | "
          f"{max(down) * 1000:.1f} |")
    print(f"| microphone read -> RTP send | {statistics.median(up) * 1000:.1f} | "
          f"{max(up) * 1000:.1f} |")


def report_call(seconds: float) -> None:
    print(f"\n| two-way call, {seconds:.0f} s, both ends in one process | CPU s/min | "
          f"RSS growth KiB |\n|---|---|---|")
    for name, stock_path, secure in (("ours", False, False),
                                     ("ours with SRTP (AES_CM_128_HMAC_SHA1_80)", False, True),
                                     ("pyVoIP 2.0.0a4 RTPClient", True, False)):
        cpu, rss = call_cost(seconds, stock_path, secure)
        print(f"| {name} | {cpu:.2f} | {rss:+d} |", flush=True)


if __name__ == "__main__":
    main()
