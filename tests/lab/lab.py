"""The lab: real Kamailio, baresip and SIPp on 127.0.0.0/8, started and stopped by PID.

Kamailio is the provider (registrar + record-routing proxy, digest auth; every user's password is
"pw" + the user name), baresip the colleagues and customers (driven over ctrl_tcp, its events
read as netstring JSON), SIPp the scripted peer for exact and malformed message flows.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
PROXY_IP = "127.0.0.1"
PHONE_IP = "127.0.0.2"


def need(*programs: str) -> None:
    """Skip when a lab program is missing, except in CI, where it is a failure."""
    missing = [p for p in programs if shutil.which(p) is None and
               not Path(f"/usr/sbin/{p}").exists()]
    if missing:
        message = f"the SIP lab needs {', '.join(missing)} (./dev setup installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def kamailio_modules() -> str:
    for base in Path("/usr/lib").glob("*/kamailio/modules"):
        if (base / "tm.so").exists():
            return str(base)
    for base in Path("/usr/lib").glob("kamailio/modules"):
        return str(base)
    raise FileNotFoundError("kamailio modules (tm.so) not found under /usr/lib")


def stop_pid(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def wait_udp_port_bound(ip: str, port: int, timeout: float = 10.0) -> None:
    """A UDP port is taken once binding it fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET,
                              socket.SOCK_DGRAM)
        try:
            probe.bind((ip, port))
        except OSError:
            return
        finally:
            probe.close()
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on udp {ip}:{port}")


def tone_wav(path: Path, freq: float = 440.0, seconds: float = 60.0, level: float = 0.3,
             rate: int = 8000, also: float | None = None) -> Path:
    """A WAV of one tone (or two: `also`, each at `level`) for a microphone."""
    import math
    import struct

    if also is not None:
        frames = b"".join(struct.pack("<h", int(level * 32767 * (
            math.sin(2 * math.pi * freq * n / rate) + math.sin(2 * math.pi * also * n / rate))))
            for n in range(rate))
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(frames * int(seconds))
        return path
    # One second, repeated: a whole number of cycles per second joins seamlessly, and an
    # hour of tone takes milliseconds instead of the quarter of a minute a sample loop took.
    second = b"".join(struct.pack("<h", int(level * 32767 * math.sin(2 * math.pi * freq * n /
                                                                     rate)))
                      for n in range(rate))
    whole, rest = divmod(int(rate * seconds), rate)
    frames = second * whole + second[: rest * 2]
    if freq != int(freq):  # not whole cycles per second: computed sample by sample
        frames = b"".join(struct.pack("<h", int(level * 32767 * math.sin(
            2 * math.pi * freq * n / rate))) for n in range(int(rate * seconds)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): (cert, key)."""
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(key), "-out", str(cert)], check=True,
                       capture_output=True)
    return cert, key


def private_ca(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    ca, ca_key = workdir / "ca.pem", workdir / "ca-key.pem"
    cert, key, csr = workdir / "server.pem", workdir / "server-key.pem", workdir / "server.csr"
    ext = workdir / "server.ext"
    # The extensions a strict verifier asks for (Python 3.13 sets VERIFY_X509_STRICT): key
    # usage on the CA, key identifiers on both.
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid,issuer\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=deskphone test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-addext", "subjectKeyIdentifier=hash", "-keyout", str(ca_key), "-out", str(ca)],
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key),
         "-out", str(csr)],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert)],
    ):
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return ca, cert, key


class Kamailio:
    def __init__(self, workdir: Path, port: int = 5060, www_auth_all: bool = False,
                 tls_port: int | None = None, outside_line: bool = False,
                 ip: str = PROXY_IP, stun: bool = False, portless_is_us: bool = False,
                 times: bool = False) -> None:
        self.times = times
        self.outside_line = outside_line
        self.portless_is_us = portless_is_us
        self.stun = stun
        self.ip = ip
        self.workdir = workdir
        self.port = port
        self.www_auth_all = www_auth_all
        self.tls_port = tls_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "kamailio.log"

    def start(self) -> Kamailio:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = (HERE / "kamailio.cfg.in").read_text()
        listen = f"[{self.ip}]" if ":" in self.ip else self.ip
        cfg = cfg.replace("@LISTEN@", listen).replace("@PORT@", str(self.port))
        cfg = cfg.replace("@MODULES@", kamailio_modules())
        cmd = ["kamailio", "-f", str(self.workdir / "kamailio.cfg"), "-DD", "-E", "-w",
               str(self.workdir)]
        if self.tls_port:
            cert, key = certificate(self.workdir)
            tls_cfg = self.workdir / "tls.cfg"
            tls_cfg.write_text(f"[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n"
                               f"require_certificate = no\nprivate_key = {key}\n"
                               f"certificate = {cert}\n\n[client:default]\n"
                               f"verify_certificate = no\nrequire_certificate = no\n")
            cfg = cfg.replace("@TLSPORT@", str(self.tls_port)).replace("@TLSCFG@", str(tls_cfg))
            cmd += ["-A", "WITH_TLS"]
        (self.workdir / "kamailio.cfg").write_text(cfg)
        if self.www_auth_all:
            cmd += ["-A", "WWW_AUTH_ALL"]
        if self.outside_line:
            cmd += ["-A", "OUTSIDE_LINE"]
        if self.stun:
            cmd += ["-A", "WITH_STUN"]
        if self.portless_is_us:
            cmd += ["-A", "PORTLESS_IS_US"]
        if self.times:
            cmd += ["-A", "WITH_TIMES"]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_udp_port_bound(self.ip, self.port)
        except TimeoutError as exc:
            self.stop()
            raise TimeoutError(f"{exc}; kamailio said: {self.text[-1500:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)
            self.proc = None

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Baresip:
    """One baresip user agent: `user` registers at Kamailio from 127.0.0.1:`sip_port`."""

    workdir: Path
    user: str
    sip_port: int
    ctrl_port: int
    wav: Path
    answermode: str = "manual"
    proxy_port: int = 5060
    ip: str = "127.0.0.1"  # its SIP, RTP and control address
    proxy_ip: str = PROXY_IP
    params: str = ""  # more account parameters, e.g. ";sipnat=outbound"
    apps: tuple[str, ...] = ()  # more application modules, loaded before the accounts
    codecs: tuple[str, ...] = ("g711.so",)  # codec modules, best first
    rate: int = 8000  # its "sound card's": the WAV's rate, and what its recordings hold
    record: bool = True  # keep what it hears as WAV files (off for CPU measurements)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.replies: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.reader: threading.Thread | None = None
        self.dump_dir = self.workdir / "dumps"

    def start(self) -> Baresip:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.dump_dir.mkdir(exist_ok=True)
        # RTP below the ephemeral range and apart from the phone's own (20000-20999).
        base = 15000 + (self.sip_port // 5 % 50) * 100
        rtp = f"{base}-{base + 99}"
        config = (HERE / "baresip" / "config.in").read_text()
        host = f"[{self.ip}]" if ":" in self.ip else self.ip  # IPv6 in brackets
        config = (config.replace("@SIP@", f"{host}:{self.sip_port}")
                  .replace("@IP@", self.ip)
                  .replace("@RTP@", rtp).replace("@WAV@", str(self.wav))
                  .replace("@SRATE@", str(self.rate))
                  .replace("@CODECS@", "".join(f"module\t\t\t{c}\n" for c in self.codecs))
                  .replace("@CTRL@", f"{host}:{self.ctrl_port}"))
        config = config.replace("module_app\t\taccount.so", "".join(
            f"module_app\t\t{app}\n" for app in self.apps) + "module_app\t\taccount.so")
        # What baresip hears is written to WAV files (sndfile), so tests can check our audio.
        if self.record:
            config += f"module\t\t\tsndfile.so\nsnd_path\t\t{self.dump_dir}\n"
        (self.workdir / "config").write_text(config)
        accounts = (HERE / "baresip" / "accounts.in").read_text()
        accounts = "\n".join(line for line in accounts.splitlines()
                             if not line.startswith("#"))
        accounts = (accounts.replace("@USER@", self.user)
                    .replace("@DOMAIN@", f"[{self.proxy_ip}]:{self.proxy_port}"
                             if ":" in self.proxy_ip else f"{self.proxy_ip}:{self.proxy_port}")
                    .replace("@ANSWERMODE@", self.answermode)
                    .replace("@AUDIOCODECS@", "G722/16000/1,PCMU,PCMA" if "g722.so" in self.codecs
                             else "PCMU,PCMA"))
        (self.workdir / "accounts").write_text(accounts + self.params + "\n")
        (self.workdir / "contacts").write_text("")
        with (self.workdir / "baresip.log").open("a") as log:
            self.proc = subprocess.Popen(["baresip", "-f", str(self.workdir), "-v"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 15
        while True:
            try:
                self.sock = socket.create_connection((self.ip, self.ctrl_port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"baresip {self.user} did not start: "
                                       f"{(self.workdir / 'baresip.log').read_text()[-2000:]}"
                                       ) from None
                time.sleep(0.1)
        self.sock.settimeout(0.5)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        buf = b""
        while self.sock is not None:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                head, rest = buf.split(b":", 1)
                if not head.isdigit():
                    buf = b""
                    break
                n = int(head)
                if len(rest) < n + 1:
                    break
                doc = json.loads(rest[:n])
                buf = rest[n + 1:]
                with self.cond:
                    (self.events if doc.get("event") else self.replies).append(doc)
                    self.cond.notify_all()

    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        assert self.sock is not None
        token = f"t{time.monotonic_ns()}"
        data = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data + b",")
        with self.cond:
            ok = self.cond.wait_for(lambda: any(r.get("token") == token for r in self.replies),
                                    timeout)
            if not ok:
                raise TimeoutError(f"baresip {self.user}: no reply to {command}")
            return next(r for r in self.replies if r.get("token") == token)

    def wait_event(self, kind: str, timeout: float = 15.0, after: int = 0) -> dict[str, Any]:
        """The first event of `kind` (e.g. CALL_ESTABLISHED) at index >= `after`."""
        with self.cond:
            ok = self.cond.wait_for(lambda: any(e.get("type") == kind
                                                for e in self.events[after:]), timeout)
            if not ok:
                raise AssertionError(f"baresip {self.user}: no {kind} within {timeout} s; "
                                     f"saw {[e.get('type') for e in self.events]}")
            return next(e for e in self.events[after:] if e.get("type") == kind)

    def saw(self, kind: str) -> bool:
        with self.cond:
            return any(e.get("type") == kind for e in self.events)

    def registered(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.command("reginfo").get("data", "")
            if "OK" in text:
                return
            time.sleep(0.2)
        raise AssertionError(f"baresip {self.user} did not register")

    def stop(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        if self.proc is not None:
            stop_pid(self.proc)
            self.proc = None

    def heard(self) -> list[Path]:
        """WAV files of what baresip received (decoded), newest last."""
        return sorted(self.dump_dir.glob("*-dec.wav"), key=lambda p: p.stat().st_mtime)


def goertzel(pcm: bytes, freq: float, rate: int = 8000) -> float:
    """The amplitude (0..1 of full scale) of one frequency in 16-bit mono PCM."""
    import math
    import struct

    n = len(pcm) // 2
    if n == 0:
        return 0.0
    samples = struct.unpack(f"<{n}h", pcm[: n * 2])
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    return math.sqrt(max(power, 0.0)) * 2 / n / 32768


def wav_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def ulaw_wav(path: Path, freq: float, seconds: float) -> Path:
    """A mu-law WAV (format 7) of a tone, the kind SIPp's rtp_stream sends as payload 0."""
    import struct

    from firmware.sip.g711 import encode

    data = encode(wav_pcm(tone_wav(path.with_suffix(".pcm.wav"), freq, seconds)), 0)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8) + struct.pack("<H", 0)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE" +
                     b"fmt " + struct.pack("<I", len(fmt)) + fmt +
                     b"data" + struct.pack("<I", len(data)) + data)
    return path


def sipp(scenario: str, target: str, local_ip: str, workdir: Path, calls: int = 1,
         timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run a SIPp scenario from tests/lab/sipp/ once; its exit code is its verdict (0 = every
    call went as scripted)."""
    proc = sipp_start(scenario, target, local_ip, workdir, calls=calls, timeout=timeout)
    out, err = proc.communicate(timeout=timeout + 10)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def sipp_start(scenario: str, target: str | None, local_ip: str, workdir: Path,
               port: int | None = None, calls: int = 1, timeout: float = 20.0,
               media_port: int | None = None, keys: dict[str, str] | None = None
               ) -> subprocess.Popen[str]:
    """SIPp running a scenario in the background: towards `target` (a UAC), or, without one,
    waiting on `local_ip`:`port` for the phone (a UAS: the provider the phone registers
    with). `keys` fill the scenario's own [keywords]. `communicate()` gives its output; its
    exit code is its verdict."""
    port = port or free_udp(local_ip)
    args = ["sipp", *([target] if target else []), "-sf", str(HERE / "sipp" / scenario),
            "-i", local_ip, "-p", str(port), "-m", str(calls), "-timeout", f"{int(timeout)}s",
            "-timeout_error", "-nostdin", "-trace_err"]
    if media_port:
        args += ["-mp", str(media_port)]
    for key, value in (keys or {}).items():
        args += ["-key", key, value]  # [key] in the scenario
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=workdir)


def sipp_provider(scenario: str, workdir: Path, ip: str = "127.0.0.3", calls: int = 1,
                  timeout: float = 30.0, **keys: str) -> tuple[subprocess.Popen[str], Any]:
    """SIPp as the provider a phone registers with, on a port of its own; returns the run and
    what LabPhone takes as its server (ip, port)."""
    from types import SimpleNamespace

    port = free_udp(ip)
    run = sipp_start(scenario, None, ip, workdir, port=port, calls=calls, timeout=timeout,
                     keys=keys)
    wait_udp_port_bound(ip, port)  # a UAS says nothing until asked
    return run, SimpleNamespace(ip=ip, port=port, tls_port=None)


def sipp_verdicts(*runs: subprocess.Popen[str]) -> None:
    """Wait for each SIPp run; its exit code is its verdict on what it received."""
    for run in runs:
        try:
            out, err = run.communicate(timeout=90)
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
        assert run.returncode == 0, out[-2000:] + err[-2000:]


def free_udp(ip: str) -> int:
    """A UDP port nothing holds on `ip` right now."""
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


@dataclass
class Dnsmasq:
    """dnsmasq as the office's DNS server on a loopback address: `records` are its options
    (`--srv-host=...`, `--host-record=...`, `--naptr-record=...`), nothing else is answered."""

    workdir: Path
    ip: str
    port: int
    records: list[str]

    def __post_init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Dnsmasq:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = self.workdir / "dnsmasq.log"
        cmd = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
               "--bind-interfaces", f"--listen-address={self.ip}",
               f"--port={self.port}", "--user=root", "--pid-file=", "--log-queries",
               f"--log-facility={self.log}", *self.records]
        with (self.workdir / "dnsmasq.out").open("a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=out, start_new_session=True)
        wait_udp_port_bound(self.ip, self.port)
        return self

    def queries(self) -> int:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return sum(1 for line in text.splitlines() if "query[" in line)

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)
