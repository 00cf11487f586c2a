"""linphone (Debian's linphone-cli: liblinphone / belle-sip 5.1) as a second SIP stack in the lab.

One `linphone-daemon` per user, driven over its unix socket (`--pipe`): one command, one
"Status: Ok|Error" reply; call states and DTMF arrive as events fetched with `pop-event`. It runs
with liblinphone's own defaults (GRUU, its SDP, its session handling), which is the point: what
an office's softphone or a Belledonne-based PBX client sends.

No sound card: each linphone gets a PulseAudio server of its own, a null sink as its speaker
(recorded by parec into a raw file) and a sine source as its microphone. The server's clock paces
both as a card would; ALSA's null and file plugins have no clock, and liblinphone's media ticker
stalls on them.

Owns only its work directory and its processes; never touches the phone or Kamailio.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.lab import PROXY_IP, stop_pid

PULSE_CONFIG = """\
load-module module-native-protocol-unix socket=@SOCKET@ auth-anonymous=1
load-module module-null-sink sink_name=ear rate=@RATE@ channels=1
load-module module-sine-source source_name=mouth frequency=@TONE@ rate=@RATE@
set-default-sink ear
set-default-source mouth
"""


@dataclass
class Linphone:
    """One linphone user agent: `user` registers at Kamailio from `ip`:`sip_port` (UDP)."""

    workdir: Path
    user: str
    sip_port: int
    rtp_port: int
    proxy_port: int = 5060
    ip: str = "127.0.0.1"
    proxy_ip: str = PROXY_IP
    tone: int = 440  # what it says into the call
    rate: int = 8000  # its "sound card": 16000 to hear and speak above 4 kHz (G.722)
    events: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.pulse: subprocess.Popen[bytes] | None = None
        self.recorder: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.pipe = f"phone-lab-linphone-{self.user}-{self.sip_port}"

    @property
    def heard_raw(self) -> Path:
        return self.workdir / "heard.raw"

    @property
    def log(self) -> Path:
        return self.workdir / "linphone.log"

    def _start_sound(self, env: dict[str, str]) -> None:
        pulse_socket = self.workdir / "pulse" / "native"
        pulse_socket.parent.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "pulse.pa"
        config.write_text(PULSE_CONFIG.replace("@SOCKET@", str(pulse_socket))
                          .replace("@TONE@", str(self.tone))
                          .replace("@RATE@", str(self.rate)))
        self.pulse = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(config), "--daemonize=no", "--exit-idle-time=-1",
             f"--log-target=file:{self.workdir / 'pulse.log'}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True)
        env["PULSE_SERVER"] = f"unix:{pulse_socket}"
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode:
            if time.monotonic() > deadline or self.pulse.poll() is not None:
                raise RuntimeError(f"linphone {self.user}: PulseAudio did not start")
            time.sleep(0.1)
        self.recorder = subprocess.Popen(
            ["parec", "-d", "ear.monitor", "--format=s16le", f"--rate={self.rate}", "--channels=1",
             "--raw", str(self.heard_raw)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=env, start_new_session=True)

    def start(self) -> Linphone:
        # Without its database directory liblinphone never opens a SIP port.
        (self.workdir / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        (self.workdir / "linphonerc").write_text(
            "[sip]\n"
            f"sip_port={self.sip_port}\nsip_tcp_port=0\nsip_tls_port=0\n"
            "[rtp]\n"
            f"audio_rtp_port={self.rtp_port}\n"
            "[sound]\nechocancellation=0\n")
        env = {"HOME": str(self.workdir), "PATH": "/usr/bin:/bin",
               "XDG_RUNTIME_DIR": str(self.workdir), "PULSE_RUNTIME_PATH": str(self.workdir)}
        self._start_sound(env)
        socket_path = Path("/tmp") / self.pipe
        socket_path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["linphone-daemon", "--config", str(self.workdir / "linphonerc"),
             "--pipe", self.pipe, "--log", str(self.log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=self.workdir, env=env, start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(socket_path))
                break
            except OSError:
                self.sock.close()
                self.sock = None
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"linphone {self.user} did not start") from None
                time.sleep(0.1)
        self.sock.settimeout(5)
        return self

    def command(self, line: str) -> dict[str, str]:
        """One command and its reply as fields ("Status", "Reason", "Id", ...)."""
        assert self.sock is not None
        self.sock.sendall(line.encode() + b"\n")
        data = self.sock.recv(65536)
        # A reply is written at once; on a unix socket it arrives whole, but allow a tail.
        self.sock.settimeout(0.05)
        with contextlib.suppress(TimeoutError):
            while chunk := self.sock.recv(65536):
                data += chunk
        self.sock.settimeout(5)
        return _fields(data.decode(errors="replace"))

    def ok(self, line: str) -> dict[str, str]:
        reply = self.command(line)
        if reply.get("Status") != "Ok":
            raise AssertionError(f"linphone {self.user}: {line!r} -> {reply}")
        return reply

    def register(self, timeout: float = 15.0) -> Linphone:
        proxy = f"{self.proxy_ip}:{self.proxy_port}"
        rid = self.ok(f"register sip:{self.user}@{proxy} sip:{proxy} pw{self.user}")["Id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.command(f"register-status {rid}").get("State") == "LinphoneRegistrationOk":
                return self
            time.sleep(0.1)
        raise AssertionError(f"linphone {self.user} did not register")

    def poll(self) -> None:
        """Move every queued event into `events`."""
        for _ in range(1000):
            reply = self.command("pop-event")
            if "Event-type" in reply:
                self.events.append(reply)
            if reply.get("Size", "0") in ("0", "1"):
                return

    def wait_state(self, state: str, timeout: float = 15.0, after: int = 0) -> dict[str, str]:
        """The first call-state event `state` ("IncomingReceived", "StreamsRunning", "End",
        ...) at index >= `after` of `events`."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            for e in self.events[after:]:
                if e.get("Event-type") == "call-state-changed" and \
                        e.get("Event") == f"LinphoneCall{state}":
                    return e
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"linphone {self.user}: no {state} within {timeout} s; saw "
                    f"{[e.get('Event') for e in self.events]}")
            time.sleep(0.1)

    def saw(self, state: str) -> bool:
        self.poll()
        return any(e.get("Event") == f"LinphoneCall{state}" for e in self.events)

    def tones(self) -> list[str]:
        """DTMF digits it received, in order."""
        self.poll()
        return [e.get("Tone", "") for e in self.events
                if e.get("Event-type") == "receiving-tone"]

    def heard(self) -> bytes:
        """What its speaker played so far: 16-bit mono PCM at `rate`."""
        return self.heard_raw.read_bytes() if self.heard_raw.exists() else b""

    def stop(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(b"quit\n")
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=3)
            stop_pid(self.proc)
            self.proc = None
        for proc in (self.recorder, self.pulse):
            if proc is not None:
                stop_pid(proc)
        self.recorder = self.pulse = None
        (Path("/tmp") / self.pipe).unlink(missing_ok=True)


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"([A-Za-z-]+): ?(.*)$", line)
        if m and m.group(1) not in found:
            found[m.group(1)] = m.group(2).strip()
    return found
