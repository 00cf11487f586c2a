"""The media path: fidelity, send pacing, added latency, CPU and memory of a call.

Side by side in one run, each measured the same way:
1. Fidelity: SNR of a speech-like signal (harmonics of a gliding 100-220 Hz voice, syllable-rate
   envelope, about -20 dBFS) through our path (16-bit PCM -> G.711 -> RTP on loopback -> jitter
   buffer -> 16-bit PCM) next to G.711's own limit (encode + decode, nothing else) and pyVoIP
   2.0.0a4's stock 8-bit path (its own encode_pcmu / parse_pcmu). The same for G.722 at 16 kHz
   (harmonics up to 7 kHz): our path, the codec's own limit, and baresip -> baresip G.722
   through Kamailio (its recording of what it heard), each aligned on the codec's delay.
2. Send pacing: inter-packet intervals at the receiver (p50, p99, max) and drift (arrival span
   minus packets x 20 ms) for our RtpSession, pyVoIP's RTPClient, and baresip on a call.
3. Added latency: RTP arrival -> earpiece write; microphone read -> RTP send.
4. CPU seconds per minute of a two-way call, per end: ours (an audio engine at the codec's rate
   with an RtpSession on its clock, as on the phone, each end a process of its own) beside
   baresip doing the same (two baresips through Kamailio, each playing a WAV and hearing the
   other, no recording), each process's CPU clock read to the nanosecond and the two halved,
   for G.711, G.722, each with and without SRTP, `--repeat` runs each alternated, median and
   range; the floor of any media path in Python (a bare loop with only a tick's system calls
   and G.711 both ways, one end per process); then G.711 with both ends in this process (their
   20 ms clocks start together, so one wake-up of the machine serves both: cheaper than two
   phones), and so with RTP on a clock of its own; pyVoIP's RTPClient pair. Resident memory
   growth over our call.
5. `--only arm64`: the same per-frame work (codec, resampler, SRTP) in one thread here and
   under qemu-aarch64 in the image rehearsal's arm64 root, as a ratio.
6. `--only long --seconds 1800`: one 30-minute G.711 call, CPU and memory in six parts, then
   what each end counted (loss, lateness, jitter, underruns).
7. `--only wake`: where a tick's CPU goes: one end's tick back to back (warm), the same after
   20 ms asleep (as on a call), and the sleep itself; then ten calls of one small function and
   one call each of ten small functions alike, after 20 ms asleep (about the same: a cold tick
   pays for the variety of work it touches, not for the number of Python calls).

    .venv/bin/python bench/audio.py [--seconds 60] [--repeat 3]   (the docs: --seconds 600)

The CPU figures depend on the interpreter as much as on our code: the phone runs Debian's
python3 (libpython linked into the executable); pyenv's, with a shared libpython, costs about
10 % more on the same call. For the phone's figure, run it with Debian's:

    PYTHON=/usr/bin/python3 VENV=.venv-deb ./dev setup && .venv-deb/bin/python bench/audio.py
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from firmware.hw.audio import AudioEngine
from firmware.sip import codecs, g711
from firmware.sip.media import RtpSession

FRAME = 320


def speech(seconds: float, rate: int = 8000) -> bytes:
    """A voice: at 8 kHz its harmonics reach 2.6 kHz; at 16 kHz they go on up to 7 kHz."""
    out = []
    top = 12 if rate == 8000 else 32
    for n in range(int(rate * seconds)):
        t = n / rate
        f0 = 160 + 60 * math.sin(2 * math.pi * 0.7 * t)
        env = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t) ** 2
        v = sum(math.sin(2 * math.pi * f0 * k * t + k) / k for k in range(1, top))
        out.append(int(3300 * env * v))
    return struct.pack(f"<{len(out)}h", *out)


def aligned_snr(ref: bytes, got: bytes, max_lag: int = 400) -> float:
    """SNR of `got` against `ref` after the delay (codec filters, resamplers) that best lines
    them up; both 16-bit, the same rate."""
    import numpy as np

    a = np.frombuffer(ref, dtype="<i2").astype(np.float64)
    b = np.frombuffer(got, dtype="<i2").astype(np.float64)
    n = min(len(a), len(b) - max_lag)
    window = a[:n]
    lag = max(range(max_lag), key=lambda k: float(np.dot(window, b[k:k + n])))
    noise = float(np.sum((window - b[lag:lag + n]) ** 2))
    return 10 * math.log10(float(np.sum(window ** 2)) / max(noise, 1.0))


def snr(ref: bytes, got: bytes) -> float:
    a = struct.unpack(f"<{len(ref) // 2}h", ref)
    b = struct.unpack(f"<{len(got) // 2}h", got)
    signal = sum(x * x for x in a)
    noise = sum((x - y) ** 2 for x, y in zip(a, b, strict=False))
    return 10 * math.log10(signal / max(noise, 1))


def frames(pcm: bytes, rate: int = 8000) -> list[bytes]:
    size = rate // 50 * 2
    return [pcm[i:i + size] for i in range(0, len(pcm) - size + 1, size)]


def through_rtp(pcm_frames: list[bytes], pt: int, rate: int) -> bytes:
    """What our path delivers: two RtpSessions on loopback with codec `pt` and handsets at
    `rate`, A's microphone playing the frames, B's earpiece collected."""
    queue = list(pcm_frames)
    got: list[bytes] = []
    silence = bytes(rate // 50 * 2)
    a = RtpSession("127.0.0.1", lambda: queue.pop(0) if queue else silence,
                   lambda pcm: None, lambda d: None, (42000, 42499), audio_rate=rate)
    b = RtpSession("127.0.0.1", lambda: silence, got.append, lambda d: None, (42500, 42999),
                   audio_rate=rate)
    pa, pb = a.open(), b.open()
    b.start("127.0.0.1", pa, pt, None)
    a.start("127.0.0.1", pb, pt, None)
    while queue:
        time.sleep(0.05)
    time.sleep(0.3)  # the jitter buffer's last frames
    a.stop()
    b.stop()
    return b"".join(got)


def fidelity(seconds: float) -> tuple[float, float, float]:
    x = speech(seconds)
    limit = snr(x, g711.decode(g711.encode(x, 0), 0))
    heard = through_rtp(frames(x), 0, 8000)
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


def fidelity_g722(seconds: float) -> tuple[float, float, float | None]:
    """SNR of the wideband voice: G.722's own limit, our path (RtpSession to RtpSession on
    loopback, 16 kHz both ends), and baresip -> baresip G.722 through Kamailio."""
    x = speech(seconds, 16000)
    coder = codecs.Coder(codecs.G722)
    fs = frames(x, 16000)
    limit = aligned_snr(x, b"".join(coder.decode(coder.encode(f)) for f in fs))
    return limit, aligned_snr(x, through_rtp(fs, 9, 16000)), baresip_fidelity(x)


def baresip_fidelity(x: bytes) -> float | None:
    """baresip playing `x` (16 kHz) to another baresip over G.722: SNR of its recording."""
    import shutil
    import wave

    if not shutil.which("baresip") or not Path("/usr/sbin/kamailio").exists():
        return None

    def voice(path: Path, rate: int) -> Path:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(x * 3)  # aufile plays it once: long enough for the whole call
        return path

    call = BaresipCall(voice, wide=True, secure=False, record=True)
    try:
        time.sleep(len(x) / 32000 + 2)
        dumps = call.peers[0].heard()
    finally:
        call.stop()
    if not dumps:
        return None
    with wave.open(str(dumps[-1]), "rb") as w:
        heard = w.readframes(w.getnframes())
    # The recording starts with the call, the WAV with the first frame sent: line up one second
    # from the middle of the recording with the voice (cross-correlation through the FFT).
    import numpy as np

    rec = np.frombuffer(heard, dtype="<i2").astype(np.float64)
    ref = np.frombuffer(x * 3, dtype="<i2").astype(np.float64)
    part = rec[16000:48000]
    size = 1 << (len(ref) + len(part)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(part, size)), size)
    best = int(np.argmax(corr[:len(ref) - len(part)]))
    clip = ref[best:best + len(part)]
    return 10 * math.log10(float(np.sum(clip ** 2)) / max(float(np.sum((clip - part) ** 2)), 1))


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

    def packet(data: bytes, arrival: float | None = None) -> None:
        # The kernel's arrival time: the session reads its socket on its 20 ms tick.
        arrivals.append(time.time() if arrival is None else arrival)
        real(data, arrival)

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
        rate = 8000

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
    rtp = RtpSession("127.0.0.1", engine.source, engine.sink, lambda d: None, (44000, 44499),
                     clock=engine.clock)
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


class Card:
    """A sound card for the CPU figures: the microphone plays a speech-like signal at `rate`,
    the earpiece takes what it is given (as baresip's aufile and aubridge do)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._frames = frames(speech(1, rate), rate)
        self._n = 0

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, pcm: bytes) -> None: ...

    def read(self) -> bytes:
        self._n += 1
        return self._frames[self._n % len(self._frames)]


def keys() -> tuple[object, object]:
    from firmware.sip import srtp

    ka, kb = srtp.offer(srtp.SUITES[:1])[0], srtp.offer(srtp.SUITES[:1])[0]
    return srtp.Context(ka, kb), srtp.Context(kb, ka)


def call_end(spec: str) -> None:
    """One end of a call in this process, as on the phone: an audio engine at the call's rate
    with an RtpSession on its clock, from port `mine` to `far`; after a second's warm-up it
    prints the CPU s/min of this process over `seconds`, its RSS growth in KiB over them and
    the frames it received and played."""
    import json

    from firmware.sip import srtp

    end = json.loads(spec)
    if end.get("bare"):
        bare_end(end)
        return
    rate = end["rate"]
    engine = AudioEngine(Card(rate))  # type: ignore[arg-type]
    engine.start(lambda e: None)
    session = RtpSession("127.0.0.1", engine.source, engine.sink, lambda d: None,
                         (end["mine"], end["mine"] + 1), audio_rate=rate, clock=engine.clock)
    session.open()
    if end["keys"]:
        local, remote = (srtp.parse_crypto(line) for line in end["keys"])
        session.srtp = srtp.Context(local, remote)
    session.start("127.0.0.1", end["far"], end["pt"], 101)
    time.sleep(1)  # the far end started, the codecs' modules loaded
    before_rss = rss_kib()
    c0 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
    time.sleep(end["seconds"])
    cpu = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) - c0
    print(f"{cpu / end['seconds'] * 60:.4f} {rss_kib() - before_rss} {session.received} "
          f"{session.buffer.played}", flush=True)
    session.stop()
    engine.stop()


def bare_end(end: dict[str, int]) -> None:
    """The floor of any media path in Python, for comparison with `call_end`: one end's tick
    cut down to what it cannot do without (sleep to the next 20 ms, read what arrived with its
    arrival stamp, G.711 both ways, send one packet), on a thread as the engine's; no jitter
    buffer, no sound card, no RTCP, no SRTP. Prints what call_end prints."""
    import select

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", end["mine"]))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS, as RtpSession's
    waiting = select.poll()
    waiting.register(sock, select.POLLIN)
    far = ("127.0.0.1", end["far"])
    mic = frames(speech(1, 8000), 8000)
    rtp = struct.Struct("!BBHII")
    ticks = int(end["seconds"] * 50)
    got = [0, 0.0]

    def run() -> None:
        start = time.monotonic()
        for n in range(50 + ticks):
            if n == 50:  # a second's warm-up, as call_end's
                got[1] = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
            delay = start + n * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while True:
                try:
                    data = sock.recvmsg(2048, 64)[0]
                except OSError:
                    break
                g711.decode(data[12:], 0)
                got[0] += 1
                if not waiting.poll(0):
                    break
            sock.sendto(rtp.pack(0x80, 0, n & 0xFFFF, n * 160, 7) +
                        g711.encode(mic[n % len(mic)], 0), far)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    cpu = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) - got[1]
    print(f"{cpu / end['seconds'] * 60:.4f} 0 {got[0]} {got[0]}", flush=True)
    sock.close()


def call_cost_apart(seconds: float, pt: int, rate: int, secure: bool = False,
                    bare: bool = False) -> tuple[float, int]:
    """CPU s/min per end and RSS growth (KiB, the larger) of a two-way call with each end in a
    process of its own, as on two phones (and as baresip's figure is taken): `call_end`, or
    with `bare` the floor of any Python media path (`bare_end`; G.711 only)."""
    import json
    import subprocess

    from firmware.sip import srtp

    ka, kb = srtp.offer(srtp.SUITES[:1])[0], srtp.offer(srtp.SUITES[:1])[0]
    ends = []
    for mine, far, keys in ((45100, 45500, [ka.line(), kb.line()]),
                            (45500, 45100, [kb.line(), ka.line()])):
        spec = json.dumps({"mine": mine, "far": far, "pt": pt, "rate": rate,
                           "seconds": seconds, "keys": keys if secure else [], "bare": bare})
        ends.append(subprocess.Popen([sys.executable, __file__, "--call-end", spec],
                                     stdout=subprocess.PIPE, text=True))
    figures = [end.communicate(timeout=seconds + 60)[0].split() for end in ends]
    for f in figures:  # a call whose audio did not flow both ways gives no figure
        if len(f) != 4 or int(f[3]) < seconds * 50 * 0.9:
            raise RuntimeError(f"an end of the call did not play its audio: {f}")
    return (statistics.mean(float(f[0]) for f in figures),
            max(int(f[1]) for f in figures))


def call_cost(seconds: float, pt: int, rate: int, secure: bool = False, shared: bool = True
              ) -> tuple[float, int]:
    """CPU s/min per end and RSS growth (KiB) of a two-way call, both ends here: each an audio
    engine at `rate` (its 20 ms clock, the microphone and earpiece) and an RtpSession with codec
    `pt` (`secure`: SRTP with AES_CM_128_HMAC_SHA1_80 both ways) running on the engine's clock
    as on the phone (`shared`), or on a 20 ms clock of its own."""
    before_rss = rss_kib()
    ea, eb = AudioEngine(Card(rate)), AudioEngine(Card(rate))  # type: ignore[arg-type]
    ea.start(lambda e: None)
    eb.start(lambda e: None)
    a = RtpSession("127.0.0.1", ea.source, ea.sink, lambda d: None, (45100, 45499),
                   audio_rate=rate, clock=ea.clock if shared else None)
    b = RtpSession("127.0.0.1", eb.source, eb.sink, lambda d: None, (45500, 45999),
                   audio_rate=rate, clock=eb.clock if shared else None)
    pa, pb = a.open(), b.open()
    if secure:
        a.srtp, b.srtp = keys()  # type: ignore[assignment]
    t0 = resource.getrusage(resource.RUSAGE_SELF)
    a.start("127.0.0.1", pb, pt, 101)
    b.start("127.0.0.1", pa, pt, 101)
    time.sleep(seconds)
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    for x in (a, b, ea, eb):
        x.stop()
    cpu = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
    return cpu / seconds * 60 / 2, rss_kib() - before_rss


def long_call(seconds: float, windows: int = 6) -> None:
    """One G.711 two-way call of `seconds` (both ends here, RTP on each engine's clock, as on
    the phone): CPU per end and resident memory in `windows` equal parts, then what the ends
    counted. A cost or a memory that grows over the call shows here."""
    ea, eb = AudioEngine(Card(8000)), AudioEngine(Card(8000))  # type: ignore[arg-type]
    ea.start(lambda e: None)
    eb.start(lambda e: None)
    a = RtpSession("127.0.0.1", ea.source, ea.sink, lambda d: None, (45100, 45499),
                   clock=ea.clock)
    b = RtpSession("127.0.0.1", eb.source, eb.sink, lambda d: None, (45500, 45999),
                   clock=eb.clock)
    pa, pb = a.open(), b.open()
    a.start("127.0.0.1", pb, 0, 101)
    b.start("127.0.0.1", pa, 0, 101)
    print(f"| {seconds / 60:.0f}-minute G.711 call, minutes | CPU s/min per end | RSS MiB |\n"
          f"|---|---|---|")
    step = seconds / windows
    for k in range(windows):
        t0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(step)
        t1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)
        print(f"| {k * step / 60:.0f}-{(k + 1) * step / 60:.0f} | {cpu / step * 60 / 2:.2f} | "
              f"{rss_kib() / 1024:.1f} |", flush=True)
    for name, s, e in (("A", a, ea), ("B", b, eb)):
        buf = s.buffer
        print(f"\n{name}: sent {s.sent}, received {s.received}, played {buf.played}, lost "
              f"{buf.lost}, late {buf.late}, jitter {buf.jitter / 8:.2f} ms, buffer "
              f"{buf.target} frames, RTCP sent {s.rtcp_sent} received {s.rtcp_received}, "
              f"earpiece underruns {e.underruns}, audio stalls {e.late}")
    for x in (a, b, ea, eb):
        x.stop()


def wake_cost(n: int = 500) -> list[tuple[str, float]]:
    """Microseconds of CPU of one end's 20 ms tick (an audio engine and an RtpSession on its
    clock; a far end's packet waiting on every tick): the tick run back to back, so that
    caches and the kernel's paths stay warm; the same tick after 20 ms asleep, as on a call;
    and the sleep itself (the wake-up). On a call a tick costs the last two together."""
    engine = AudioEngine(Card(8000))  # type: ignore[arg-type]
    session = RtpSession("127.0.0.1", engine.source, engine.sink, lambda d: None,
                         (45100, 45499), clock=engine.clock)
    port = session.open()
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    session.start("127.0.0.1", far.getsockname()[1], 0, None)
    payload = g711.encode(bytes(320), 0)
    rows = []
    try:
        for name, asleep, work in (("one tick, back to back (warm)", False, True),
                                   ("one tick after 20 ms asleep (as on a call)", True, True),
                                   ("the 20 ms sleep itself (the wake-up)", True, False)):
            cpu = 0
            for k in range(n):
                far.sendto(struct.pack("!BBHII", 0x80, 0, k, k * 160, 7) + payload,
                           ("127.0.0.1", port))
                with contextlib.suppress(OSError):
                    while True:  # what our end sent, so that the far socket never fills
                        far.recv(2048, socket.MSG_DONTWAIT)
                t0 = time.thread_time_ns()
                if asleep:
                    time.sleep(0.02)
                    if work:
                        t0 = time.thread_time_ns()
                if work:
                    engine.clock.tick(0)
                    engine._tick()
                cpu += time.thread_time_ns() - t0
            rows.append((name, cpu / n / 1000))
    finally:
        session.stop()
        far.close()
    # What a cold tick pays for: ten small Python functions alike cost about what one costs ten
    # times, so it is not the number of calls but the variety of work (the interpreter's and
    # the C library's code it runs, the objects it reads) touched for the first time since.
    distinct = _small_functions(10)
    for name, fns in (("ten calls of one small function, after 20 ms asleep", distinct[:1] * 10),
                      ("one call each of ten small functions alike, after 20 ms asleep",
                       distinct)):
        cpu = 0
        for k in range(n):
            time.sleep(0.02)
            t0 = time.thread_time_ns()
            for fn in fns:
                fn(k)
            cpu += time.thread_time_ns() - t0
        rows.append((name, cpu / n / 1000))
    return rows


def _small_functions(n: int) -> list[Callable[[int], int]]:
    """`n` small functions alike, each its own code (as the helpers of a tick are)."""
    space: dict[str, Callable[[int], int]] = {}
    for i in range(n):
        exec(f"def f{i}(x):\n    y = x * 3 + {i}\n    return y if y > 0 else -y\n", space)
    return [space[f"f{i}"] for i in range(n)]


def report_wake() -> None:
    rows = wake_cost()
    print("\n| one end's 20 ms tick, G.711 | CPU us |\n|---|---|")
    for name, us in rows[:3]:
        print(f"| {name} | {us:.0f} |")
    print(f"| a tick on a call (asleep + after) | {rows[1][1] + rows[2][1]:.0f}, i.e. "
          f"{(rows[1][1] + rows[2][1]) * 50 * 60 / 1e6:.2f} CPU s/min |")
    for name, us in rows[3:]:
        print(f"| {name} | {us:.1f} |")


def pyvoip_cost(seconds: float) -> float:
    """CPU s/min per end of pyVoIP's RTPClient pair, fed as a pyVoIP application feeds it."""
    from pyVoIP import RTP

    t0 = resource.getrusage(resource.RUSAGE_SELF)
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
    t1 = resource.getrusage(resource.RUSAGE_SELF)
    return ((t1.ru_utime + t1.ru_stime) - (t0.ru_utime + t0.ru_stime)) / seconds * 60 / 2


class BaresipCall:
    """Two baresips calling each other through Kamailio (the lab's), each playing a WAV and
    hearing the other; `wide`: G.722 first and 16 kHz "sound cards"; `secure`: SRTP."""

    def __init__(self, wav_of: Callable[[Path, int], Path], wide: bool, secure: bool,
                 record: bool = False) -> None:
        import tempfile

        from tests.lab.fixtures import lab_port, peer_ports
        from tests.lab.lab import Baresip, Kamailio

        self.work = Path(tempfile.mkdtemp(prefix="bench-baresip-"))
        self.kam = Kamailio(self.work / "k", port=lab_port()).start()
        rate = 16000 if wide else 8000
        wav = wav_of(self.work / "mic.wav", rate)
        extra: dict[str, object] = {"codecs": ("g722.so", "g711.so"), "rate": 16000} \
            if wide else {}
        self.peers = []
        for user, mode in (("102", "auto"), ("103", "manual")):
            sip, ctrl = peer_ports()
            peer = Baresip(self.work / user, user, sip, ctrl, wav, mode,  # type: ignore[arg-type]
                           proxy_port=self.kam.port, params=";mediaenc=srtp" if secure else "",
                           record=record, **extra).start()
            peer.registered()
            self.peers.append(peer)
        self.peers[1].command("dial", f"sip:102@127.0.0.1:{self.kam.port}")
        self.peers[1].wait_event("CALL_ESTABLISHED")

    def cpu(self) -> float:
        """CPU seconds of both processes so far, to the nanosecond: each process's CPU clock
        (clock_getcpuclockid's value, as glibc makes it), not /proc's 10 ms ticks."""
        total = 0.0
        for peer in self.peers:
            assert peer.proc is not None
            total += time.clock_gettime((~peer.proc.pid << 3) | 2)  # CPUCLOCK_SCHED
        return total

    def stop(self) -> None:
        for peer in self.peers:
            peer.stop()
        self.kam.stop()


def baresip_cost(seconds: float, wide: bool, secure: bool) -> float | None:
    """CPU s/min per end of two baresips on a call (None: no baresip or Kamailio here)."""
    import shutil

    if not shutil.which("baresip") or not Path("/usr/sbin/kamailio").exists():
        return None

    def tone(path: Path, rate: int) -> Path:
        from tests.lab.lab import tone_wav

        return tone_wav(path, 440, seconds + 30, rate=rate)

    call = BaresipCall(tone, wide, secure)
    try:
        time.sleep(1)
        c0 = call.cpu()
        time.sleep(seconds)
        return (call.cpu() - c0) / seconds * 60 / 2
    finally:
        call.stop()


def frame_work(n: int, pt: int, rate: int, secure: bool) -> float:
    """Microseconds of one thread's CPU per 20 ms frame of one end's media work: encode what
    the microphone gave (resampled when the rates differ), protect, unprotect, decode, and
    hand to the earpiece, as RtpSession does; no sockets, no clocks."""
    from firmware.sip.media import _Media, header

    media = _Media(codecs.BY_PT[pt], rate)
    pcm = frames(speech(1, rate), rate)
    tx, rx = keys() if secure else (None, None)
    t0 = time.process_time()
    for i in range(n):
        packet = header(pt, i, i * 160, 7) + media.encode(pcm[i % len(pcm)])
        if tx is not None:
            packet = rx.unprotect(tx.protect(packet))  # type: ignore[attr-defined]
        media.to_handset(media.decode(packet[12:]))
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each call's CPU figure, ours and baresip's alternated")
    parser.add_argument("--only", choices=["fidelity", "pacing", "latency", "call", "arm64",
                                           "long", "wake"],
                        help="one part only (the long runs take --seconds each)")
    parser.add_argument("--arm64-root", type=Path,
                        default=Path("image/build/rehearsal/rootfs"),
                        help="the image rehearsal's arm64 root (with G722 and samplerate in "
                             "its /opt/deskphone/venv) for --only arm64")
    parser.add_argument("--frame-work", nargs=4, type=int, metavar=("N", "PT", "RATE", "SRTP"),
                        help=argparse.SUPPRESS)  # the arm64 part's child: one figure, printed
    parser.add_argument("--call-end", help=argparse.SUPPRESS)  # one end of the call figures
    args = parser.parse_args()
    if args.call_end:
        call_end(args.call_end)
        return
    if args.frame_work:
        n, pt, rate, secure = args.frame_work
        print(f"{frame_work(n, pt, rate, bool(secure)):.1f}")
        return
    print(f"media path, {os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    if args.only in (None, "fidelity"):
        report_fidelity()
    if args.only in (None, "pacing"):
        report_pacing(args.seconds)
    if args.only in (None, "latency"):
        report_latency()
    if args.only in (None, "call"):
        report_call(args.seconds, args.repeat)
    if args.only == "arm64":
        report_arm64(args.arm64_root)
    if args.only == "long":
        long_call(args.seconds)
    if args.only in (None, "wake"):
        report_wake()


def report_fidelity() -> None:
    limit, ours, stock = fidelity(10)
    print("| fidelity (speech-like, ~-20 dBFS) | SNR dB |\n|---|---|")
    print(f"| G.711 mu-law's own limit | {limit:.2f} |\n| ours, through RTP and the jitter "
          f"buffer | {ours:.2f} |\n| pyVoIP 2.0.0a4 stock 8-bit path | {stock:.2f} |")
    limit, ours, bare = fidelity_g722(10)
    print(f"| G.722's own limit (16 kHz voice, harmonics to 7 kHz) | {limit:.2f} |\n"
          f"| ours, G.722 through RTP and the jitter buffer | {ours:.2f} |")
    if bare is not None:
        print(f"| baresip 1.0 -> baresip G.722 through Kamailio (its recording) | {bare:.2f} |")
    print()


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


CALLS = (  # name, payload type, handset rate, SRTP
    ("G.711", 0, 8000, False),
    ("G.711 + SRTP", 0, 8000, True),
    ("G.722", 9, 16000, False),
    ("G.722 + SRTP", 9, 16000, True),
)


def spread(values: list[float]) -> str:
    """Median and range of repeated runs: one run's CPU here varies by +-0.1 s/min."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def interpreter() -> str:
    """Which Python runs our ends. The phone runs Debian's python3 (Raspberry Pi OS), which has
    libpython linked into its executable; a build with a shared libpython (pyenv's, say) runs
    the same code at a higher cost (docs/benchmarks.md)."""
    maps = Path(f"/proc/{os.getpid()}/maps").read_text()
    shared = "a shared libpython" if "libpython" in maps else "libpython linked in"
    return f"{sys.executable} (Python {sys.version.split()[0]}, {shared})"


def report_call(seconds: float, repeat: int) -> None:
    print(f"\nours run with {interpreter()}")
    print(f"\n| two-way call, {seconds:.0f} s x {repeat} runs (median, range), CPU s/min per "
          f"end | ours | baresip 1.0 | our RSS growth KiB |\n|---|---|---|---|")
    for name, pt, rate, secure in CALLS:
        ours: list[float] = []
        bare: list[float] = []
        growth = 0
        for _ in range(repeat):  # alternated, so that a busy spell hits both alike
            cpu, rss = call_cost_apart(seconds, pt, rate, secure)
            ours.append(cpu)
            growth = max(growth, rss)
            theirs = baresip_cost(seconds, rate == 16000, secure)
            if theirs is not None:
                bare.append(theirs)
        print(f"| {name} | {spread(ours)} | {spread(bare) if bare else '-'} | {growth:+d} |",
              flush=True)
    floor = [call_cost_apart(seconds, 0, 8000, bare=True)[0] for _ in range(repeat)]
    print(f"| the floor of a media path in Python: a bare loop with only a tick's system calls "
          f"and G.711 both ways, one end per process | {spread(floor)} | - | - |")
    one = [call_cost(seconds, 0, 8000)[0] for _ in range(repeat)]
    print(f"| G.711, both ends in this process (their clocks in step) | {spread(one)} | - | - |")
    own = [call_cost(seconds, 0, 8000, shared=False)[0] for _ in range(repeat)]
    print(f"| G.711, both ends in this process, RTP on a clock of its own (not the engine's) | "
          f"{spread(own)} | - | - |")
    wide = [call_cost(seconds, 0, 16000)[0] for _ in range(repeat)]
    print(f"| G.711 on a 16 kHz handset (resampled both ways) | {spread(wide)} | - | - |")
    print(f"| pyVoIP 2.0.0a4 RTPClient pair, G.711 | {pyvoip_cost(seconds):.2f} | - | - |")


def report_arm64(root: Path) -> None:
    """Each call's per-frame work here and under qemu-aarch64 in the rehearsal's arm64 root."""
    import shutil
    import subprocess
    import tempfile

    python = root / "opt/deskphone/venv/bin/python"
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    if not python.exists():
        print(f"no {python}: run ./dev rehearse first (image/README.md)")
        return
    here = Path(__file__).resolve().parents[1]
    inside = Path(tempfile.mkdtemp(dir=root / "tmp", prefix="bench-"))
    for part in ("firmware", "bench"):
        shutil.copytree(here / part, inside / part)
    rel = "/" + str(inside.relative_to(root))
    n = 1500
    print("| per-frame media work, one thread | x86_64 here, us | arm64 under qemu, us | "
          "ratio |\n|---|---|---|---|")
    try:
        for name, pt, rate, secure in (*CALLS, ("G.711, 16 kHz handset", 0, 16000, False)):
            native = frame_work(n, pt, rate, secure)
            out = subprocess.run([chroot, str(root), "/" + python.relative_to(root).as_posix(),
                                  f"{rel}/bench/audio.py", "--frame-work",
                                  str(n), str(pt), str(rate), str(int(secure))],
                                 capture_output=True, text=True, timeout=600,
                                 env={"PYTHONPATH": rel, "PATH": "/usr/bin:/bin"})
            if out.returncode != 0:
                print(f"| {name} | {native:.1f} | failed: {out.stderr.strip()[-200:]} | |")
                continue
            arm = float(out.stdout.split()[-1])
            print(f"| {name} | {native:.1f} | {arm:.1f} | {arm / native:.1f} |", flush=True)
    finally:
        shutil.rmtree(inside, ignore_errors=True)


if __name__ == "__main__":
    main()
