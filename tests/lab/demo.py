"""The demo `./dev run` starts: a local exchange, colleagues, an outside line, a day in Odoo, and
the phone in this terminal. Ctrl-C (or `q`) stops the phone and everything the demo started.

- Kamailio on 127.0.0.1:5060 is the provider; every `+` number nobody has is routed to the
  outside line (user 9000, a baresip that answers).
- Bob (102) and Carol (103) are colleagues (baresip, they answer at once): call them, transfer
  callers to them. Bob calls you 20 s after the phone registered, so there is a call to answer.
- Before anything starts, every port the demo needs is checked: a taken one is named with the
  program that holds it. Each part says when it is up; the phone starts as soon as the exchange
  and Odoo are, while the colleagues register beside it.
- The Odoo test double on 127.0.0.1:8069 holds a realistic day of call activities.
- The phone is `deskphone simulate` with config/simulator.toml plus the Odoo section; audio on
  this machine's sound card when PortAudio finds one, silence otherwise.

    python -m tests.lab.demo              (what ./dev run does)
    python -m tests.lab.demo call 102     (in another terminal: Bob calls the phone again)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.lab.lab import PHONE_IP, Baresip, Kamailio, tone_wav
from tests.odoo_double import ALICE, DATABASE, KEYS, OdooDouble

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / \
    "deskphone" / "demo"
PEERS = {"102": (5070, "Bob"), "103": (5080, "Carol"), "9000": (5090, "outside line")}
CONTROL = "http://127.0.0.1:8089"


def needed_ports() -> list[tuple[str, str, int, str]]:
    """(udp|tcp, address, port, what for) of everything the demo binds."""
    ports = [("udp", "127.0.0.1", 5060, "the exchange (Kamailio)"),
             ("tcp", "127.0.0.1", 5060, "the exchange (Kamailio)"),
             ("tcp", "127.0.0.1", 8069, "Odoo"),
             ("udp", PHONE_IP, 5060, "the phone's SIP"),
             ("tcp", "127.0.0.1", 8089, "the phone's control API")]
    for user, (port, name) in PEERS.items():
        ports += [("udp", "127.0.0.1", port, f"{name} ({user})"),
                  ("tcp", "127.0.0.1", port + 2, f"{name}'s control ({user})")]
    return ports


def holder(kind: str, ip: str, port: int) -> str:
    """Who holds ip:port, as `ss` names it ("kamailio (pid 1234)"), or "another program"."""
    try:
        out = subprocess.run(["ss", "-Hanp", "-u" if kind == "udp" else "-t"],
                             capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "another program"
    for line in out.splitlines():
        words = line.split()
        local = next((w for w in words if w.endswith(f":{port}")), None)
        if local is None or local.rsplit(":", 1)[0] not in (ip, "0.0.0.0", "*", "[::]"):
            continue
        if 'users:(("' in line:
            name = line.split('users:(("', 1)[1].split('"', 1)[0]
            pid = line.split("pid=", 1)[1].split(",", 1)[0] if "pid=" in line else "?"
            return f"{name} (pid {pid})"
    return "another program"


def taken_ports() -> list[str]:
    """What stands in the demo's way, one line each; empty when every port is free."""
    import socket

    problems = []
    for kind, ip, port, what in needed_ports():
        sock = socket.socket(socket.AF_INET,
                             socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        try:
            if kind == "tcp":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((ip, port))
        except OSError:
            problems.append(f"{ip}:{port} ({kind}, for {what}) is taken by "
                            f"{holder(kind, ip, port)}")
        finally:
            sock.close()
    return problems


def registered(timeout: float) -> bool:
    """Wait until the phone says it is registered (its control API)."""
    import json
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{CONTROL}/state", timeout=2) as reply:
                if json.load(reply).get("registration") == "registered":
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return False


def has_sound_card() -> bool:
    code = ("from firmware.hw.audio import silence_alsa; silence_alsa()\nimport pyaudio\n"
            "pa = pyaudio.PyAudio()\n"
            "print(any(pa.get_device_info_by_index(i)['maxOutputChannels'] > 0 and "
            "pa.get_device_info_by_index(i)['maxInputChannels'] > 0 "
            "for i in range(pa.get_device_count())))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=20, cwd=ROOT)
    return done.stdout.strip() == "True"


def config(audio: str) -> Path:
    key = STATE / "odoo.key"
    key.write_text(KEYS[ALICE])
    key.chmod(0o600)
    base = (ROOT / "config" / "simulator.toml").read_text()
    base = base.replace('backend = "null"', f'backend = "{audio}"')
    path = STATE / "config.toml"
    path.write_text(base + f"""
[odoo]
url = "http://127.0.0.1:8069"
database = "{DATABASE}"
login = "alice@example.com"
api_key_file = "{key}"
poll_seconds = 30
""")
    return path


def main() -> int:
    import signal

    # SIGTERM (systemd, a test, `kill`) stops the demo as Ctrl-C does: everything it started.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if sys.argv[1:2] == ["call"]:
        import json
        import socket

        who = sys.argv[2] if len(sys.argv) > 2 else "102"
        port = PEERS[who][0]
        with socket.create_connection(("127.0.0.1", port + 2), timeout=2) as s:
            body = json.dumps({"command": "dial", "params": "sip:101@127.0.0.1:5060",
                               "token": "demo"}).encode()
            s.sendall(str(len(body)).encode() + b":" + body + b",")  # ctrl_tcp's netstring
        print(f"{PEERS[who][1]} ({who}) is calling the phone")
        return 0
    STATE.mkdir(parents=True, exist_ok=True)
    problems = taken_ports()
    if problems:
        for line in problems:
            print(f"deskphone demo: {line}", file=sys.stderr)
        print("Stop it (or them) and run the demo again; nothing was started.", file=sys.stderr)
        return 1
    started: list[object] = []
    log = STATE / "demo.log"
    began = time.monotonic()

    phone_up = threading.Event()

    def say(text: str) -> None:
        line = f"deskphone demo: {text} ({time.monotonic() - began:.1f} s)"
        if phone_up.is_set():  # the phone draws on the terminal now: its log takes the rest
            with log.open("a") as out:
                print(line, file=out, flush=True)
        else:
            print(line, flush=True)

    print(f"deskphone demo: starting the local exchange (logs in {STATE})", flush=True)
    sound: list[bool] = []
    probe = threading.Thread(target=lambda: sound.append(has_sound_card()), daemon=True)
    probe.start()  # PortAudio takes seconds to look: meanwhile the exchange comes up
    try:
        kam = Kamailio(STATE / "kamailio", port=5060, outside_line=True).start()
        started.append(kam)
        say("exchange (Kamailio) up on 127.0.0.1:5060")
        double = OdooDouble(today=dt.date.today(), port=8069)
        for pid, (user, (_, name)) in zip((91, 92), list(PEERS.items())[:2], strict=True):
            # The colleagues are contacts too, so their calls ring with their names.
            double.tables["res.partner"][pid] = {
                "id": pid, "name": f"{name} (colleague)", "phone": user, "mobile": False,
                "email": f"{name.lower()}@example.com", "country_code": "BE",
                "display_name": name}
        double.start()
        started.append(double)
        say("Odoo up on 127.0.0.1:8069")
        voice = tone_wav(STATE / "voice.wav", 440, 3600, level=0.1)
        peers: dict[str, Baresip] = {}
        failures: list[str] = []

        def colleague(user: str, port: int, name: str) -> None:
            try:
                peer = Baresip(STATE / f"baresip-{user}", user, port, port + 2, voice,
                               "auto").start()
                started.append(peer)
                peer.registered()
                peers[user] = peer
            except Exception as exc:  # said, and the rest of the demo goes on
                failures.append(f"{name} ({user}): {exc}")

        colleagues = [threading.Thread(target=colleague, args=(user, port, name), daemon=True)
                      for user, (port, name) in PEERS.items()]
        for t in colleagues:
            t.start()
        probe.join(timeout=20)
        audio = "pyaudio" if sound and sound[0] else "null"
        cfg = config(audio)

        def office_day() -> None:
            if registered(120):
                say("the phone is registered")
            else:
                say("the phone did not register: Bob will not call (see demo.log)")
                return
            for t in colleagues:
                t.join(timeout=30)
            for failure in failures:
                say(f"not started: {failure}")
            say("colleagues registered: Bob 102, Carol 103, outside line for + numbers; "
                "Bob (102) calls you in 20 s")
            time.sleep(20)
            with contextlib.suppress(Exception):
                peers["102"].command("dial", "sip:101@127.0.0.1:5060")

        threading.Thread(target=office_day, daemon=True).start()
        say(f"starting the phone (sound: {audio}); what follows is in {log}")
        phone_up.set()
        with log.open("a") as err:
            phone = subprocess.Popen([sys.executable, "-m", "firmware", "simulate", "--config",
                                      str(cfg)], cwd=ROOT, stderr=err)
            try:
                return phone.wait()
            except KeyboardInterrupt:
                phone.terminate()
                return phone.wait(timeout=10)
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"deskphone demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for part in reversed(started):
            with contextlib.suppress(Exception):
                part.stop()  # type: ignore[attr-defined]
        print("deskphone demo: stopped everything it started", flush=True)


if __name__ == "__main__":
    sys.exit(main())
