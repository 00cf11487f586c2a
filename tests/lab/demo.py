"""The demo `./dev run` starts: a local exchange, colleagues, an outside line, a day in Odoo, and
the phone in this terminal. Ctrl-C (or `q`) stops the phone and everything the demo started.

- Kamailio on 127.0.0.1:5060 is the provider; every `+` number nobody has is routed to the
  outside line (user 9000, a baresip that answers).
- Bob (102) and Carol (103) are colleagues (baresip, they answer at once): call them, transfer
  callers to them. Bob calls you 20 s after the start, so there is a call to answer.
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

from tests.lab.lab import Baresip, Kamailio, tone_wav
from tests.odoo_double import ALICE, DATABASE, KEYS, OdooDouble

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / \
    "deskphone" / "demo"
PEERS = {"102": (5070, "Bob"), "103": (5080, "Carol"), "9000": (5090, "outside line")}


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
    started: list[object] = []
    log = STATE / "demo.log"
    print(f"deskphone demo: starting the local exchange (logs in {STATE})", flush=True)
    try:
        kam = Kamailio(STATE / "kamailio", port=5060, outside_line=True).start()
        started.append(kam)
        voice = tone_wav(STATE / "voice.wav", 440, 3600, level=0.1)
        peers = {}
        for user, (port, _) in PEERS.items():
            peer = Baresip(STATE / f"baresip-{user}", user, port, port + 2, voice, "auto").start()
            started.append(peer)
            peer.registered()
            peers[user] = peer
        double = OdooDouble(today=dt.date.today(), port=8069)
        for pid, (user, (_, name)) in zip((91, 92), list(PEERS.items())[:2], strict=True):
            # The colleagues are contacts too, so their calls ring with their names.
            double.tables["res.partner"][pid] = {
                "id": pid, "name": f"{name} (colleague)", "phone": user, "mobile": False,
                "email": f"{name.lower()}@example.com", "country_code": "BE",
                "display_name": name}
        double.start()
        started.append(double)
        audio = "pyaudio" if has_sound_card() else "null"
        cfg = config(audio)

        def bob_calls() -> None:
            time.sleep(20)
            with contextlib.suppress(Exception):
                peers["102"].command("dial", "sip:101@127.0.0.1:5060")

        threading.Thread(target=bob_calls, daemon=True).start()
        print("exchange up: Bob 102, Carol 103, outside line for + numbers; Odoo on :8069",
              flush=True)
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
        print("Is port 5060 or 8069 taken (a system Kamailio or Odoo)? Stop it and retry.",
              file=sys.stderr)
        return 1
    finally:
        for part in reversed(started):
            with contextlib.suppress(Exception):
                part.stop()  # type: ignore[attr-defined]
        print("deskphone demo: stopped everything it started", flush=True)


if __name__ == "__main__":
    sys.exit(main())
