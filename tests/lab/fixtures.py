"""pytest fixtures for the SIP lab: Kamailio, baresip peers, and the phone itself (the real Phone
and Daemon with the SIP account) bound to 127.0.0.2."""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from firmware.config import Secret, SipConfig
from firmware.daemon import Daemon
from firmware.events import Event, HookLifted, HookReplaced, KeyPressed
from firmware.phone import Phone, PhoneState, Settings
from firmware.sip.identity import host_port
from firmware.sip.ua import UserAgent
from tests.helpers import wait_for
from tests.lab.lab import PHONE_IP, Baresip, Kamailio, free_udp, need, tone_wav
from tests.lab.linphone import Linphone


def _free(port: int, ip: str = "127.0.0.1") -> bool:
    """Both UDP and TCP `port` can be bound on `ip` right now."""
    import socket

    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((ip, port))
            except OSError:
                return False
    return True


_next_port = [0]


def lab_port(span: int = 1) -> int:
    """A port (and the `span - 1` after it) free for UDP and TCP, below Linux's ephemeral range
    (32768+), so no outgoing connection can take it between the check and the start."""
    import os

    for _ in range(2000):
        _next_port[0] += 1
        port = 11000 + ((os.getpid() * 37 + _next_port[0] * 10) % 4000) * 5
        if all(_free(port + i) for i in range(span)):
            return port
    raise RuntimeError("no free lab port")


def peer_ports() -> tuple[int, int]:
    """SIP and ctrl ports for a baresip (it binds UDP, TCP and TLS on sip and sip + 1)."""
    sip = lab_port(span=3)
    return sip, sip + 2


@dataclass
class TestAudio:
    """The phone's microphone plays a tone; its earpiece keeps what it was given."""

    freq: float = 1000.0
    level: float = 0.3
    heard: list[bytes] = field(default_factory=list)
    _n: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rate: int = 8000  # a wideband handset: 16000
    also: float | None = None  # a second tone (6 kHz: only wideband carries it)

    def source(self) -> bytes:
        start = self._n
        n = self.rate // 50
        self._n += n
        freqs = (self.freq,) if self.also is None else (self.freq, self.also)
        return b"".join(struct.pack("<h", int(self.level * 32767 * sum(math.sin(
            2 * math.pi * f * (start + i) / self.rate) for f in freqs))) for i in range(n))

    def sink(self, pcm: bytes) -> None:
        with self.lock:
            self.heard.append(pcm)
            del self.heard[:-500]  # the last 10 s


class LabPhone:
    """The real Phone + Daemon + UserAgent, driven like a person at the desk."""

    def __init__(self, kamailio: Kamailio, user: str = "101", password: str | None = None,
                 backoff_max: float = 4.0, ip: str = PHONE_IP, server: str | None = None,
                 audio: TestAudio | None = None, **sip: object) -> None:
        self.kamailio = kamailio
        self.port = free_udp(ip)
        port = kamailio.tls_port if sip.get("transport") == "tls" else kamailio.port
        self.config = SipConfig(server=server or kamailio.ip, port=port or 0, username=user,
                                password=Secret(password or f"pw{user}"),
                                domain=host_port(kamailio.ip, kamailio.port),
                                bind=host_port(ip, self.port), **sip)  # type: ignore[arg-type]
        self.audio = audio or TestAudio()
        self.account = UserAgent(self.config, self.audio.source, self.audio.sink,
                                  display_name="Alice Martin", backoff_max=backoff_max,
                                  audio_rate=self.audio.rate)
        self.phone = Phone(Settings(name="Alice Martin", extension=user, region="BE",
                                    ring_timeout_seconds=60))
        self.daemon = Daemon(self.phone, [self.account])
        self.events: list[Event] = []
        self.daemon.start()
        inner = self.account.post

        def tap(event: Event) -> None:
            self.events.append(event)  # what SIP told the phone, for assertions
            inner(event)

        self.account.post = tap

    def saw(self, kind: type) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def state(self) -> PhoneState:
        return self.daemon.published.snapshot.state

    def post(self, *events: Event) -> None:
        for event in events:
            self.daemon.post(event)

    def keys(self, keys: str) -> None:
        for k in keys:
            self.post(KeyPressed("0", long=True) if k == "+" else KeyPressed(k))

    def lift(self) -> None:
        self.post(HookLifted())

    def replace(self) -> None:
        self.post(HookReplaced())

    def until(self, check: Callable[[PhoneState], object], what: str, timeout: float = 15.0
              ) -> None:
        try:
            wait_for(lambda: check(self.state), timeout=timeout, what=what)
        except AssertionError as exc:
            # What the registrar saw is half of any failure here: name it in the report.
            s = self.state
            raise AssertionError(f"{exc}\nphone: {s.registration} ({s.registration_reason!r})"
                                 f"\nkamailio said: {self.kamailio.text[-2000:]}") from None

    def registered(self, timeout: float = 15.0) -> LabPhone:
        self.until(lambda s: s.registration == "registered", "registered", timeout)
        return self

    def stop(self) -> None:
        self.daemon.stop()


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    need("kamailio", "baresip")
    return tmp_path


@pytest.fixture
def kamailio(lab_dir: Path) -> Iterator[Kamailio]:
    k = Kamailio(lab_dir / "kamailio", port=lab_port()).start()
    yield k
    k.stop()


@pytest.fixture
def kamailio_401(lab_dir: Path) -> Iterator[Kamailio]:
    k = Kamailio(lab_dir / "kamailio401", port=lab_port(), www_auth_all=True).start()
    yield k
    k.stop()


@pytest.fixture
def kamailio_tls(lab_dir: Path) -> Iterator[Kamailio]:
    need("openssl")
    k = Kamailio(lab_dir / "kamailio-tls", port=lab_port(), tls_port=lab_port()).start()
    import socket
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", k.tls_port or 0), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield k
    k.stop()


@pytest.fixture
def peers(lab_dir: Path) -> Iterator[Callable[..., Baresip]]:
    started: list[Baresip] = []
    wav = tone_wav(lab_dir / "tone440.wav", 440.0, 60.0)

    def make(kamailio: Kamailio, user: str, answermode: str = "manual",
             params: str = "", wideband: bool = False) -> Baresip:
        sip, ctrl = peer_ports()
        # A wideband peer: G.722 first, a 16 kHz "sound card" playing 440 Hz and 5 kHz.
        extra: dict[str, object] = {}
        mic = wav
        if wideband:
            mic = lab_dir / "wide440-5000.wav"
            if not mic.exists():
                tone_wav(mic, 440.0, 60.0, level=0.2, rate=16000, also=5000.0)
            extra = {"codecs": ("g722.so", "g711.so"), "rate": 16000}
        # On the registrar's own address family: 127.0.0.1, or ::1 beside an IPv6 Kamailio.
        b = Baresip(lab_dir / f"baresip-{user}", user, sip, ctrl, mic, answermode,
                    proxy_port=kamailio.port, ip=kamailio.ip, proxy_ip=kamailio.ip,
                    params=params, **extra).start()  # type: ignore[arg-type]
        started.append(b)
        b.registered()
        return b

    yield make
    for b in started:
        b.stop()


@pytest.fixture
def linphones(lab_dir: Path) -> Iterator[Callable[..., Linphone]]:
    """linphone users registered at a Kamailio, with liblinphone's defaults."""
    need("linphone-daemon")
    started: list[Linphone] = []

    def make(kamailio: Kamailio, user: str, tone: int = 440, rate: int = 8000) -> Linphone:
        sip = lab_port(span=3)
        lp = Linphone(lab_dir / f"linphone-{user}", user, sip, sip + 1,
                      proxy_port=kamailio.port, ip=kamailio.ip, proxy_ip=kamailio.ip,
                      tone=tone, rate=rate).start()
        started.append(lp)
        return lp.register()

    yield make
    for lp in started:
        lp.stop()


@pytest.fixture
def lab_phone() -> Iterator[Callable[..., LabPhone]]:
    phones: list[LabPhone] = []

    def make(kamailio: Kamailio, **kw: object) -> LabPhone:
        p = LabPhone(kamailio, **kw)  # type: ignore[arg-type]
        phones.append(p)
        return p

    yield make
    for p in phones:
        p.stop()
