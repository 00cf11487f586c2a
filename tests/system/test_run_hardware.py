"""`deskphone run` on mock GPIO with luma's capture emulator: the whole hardware path starts,
reaches READY, shows frames and answers its control API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import free_port, http, wait_for


def config(tmp_path: Path, port: int, display: str, audio: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[sip]
server = "127.0.0.1"
port = 9                # nothing answers SIP here (tests with a registrar use the lab)
username = "101"
password = "pw101-secret"
bind = "127.0.0.2:0"     # any free port

[phone]
state_dir = "{tmp_path}"

[control]
listen = "127.0.0.1:{port}"

[audio]
backend = "{audio}"
handset = "No Such Card"  # with "auto", the phone looks for it; no machine has it

[hardware]
pin_factory = "lgpio"   # overridden by GPIOZERO_PIN_FACTORY=mock, as on a bench without a Pi
display = "{display}"
ringer_pin = 12
led_pin = 25
""")
    return path


def run(tmp_path: Path, display: str, audio: str = "null"
        ) -> tuple[subprocess.Popen[bytes], str, socket.socket, Path]:
    port = free_port()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(20)
    log = tmp_path / "stderr.log"
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "NOTIFY_SOCKET": str(tmp_path /
           "notify.sock"), "SDL_VIDEODRIVER": "dummy", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "firmware", "run", "--config",
             str(config(tmp_path, port, display, audio))],
            stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp_path)
    return proc, f"http://127.0.0.1:{port}", notify, log


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_run_starts_the_hardware_path_and_reaches_ready(tmp_path: Path) -> None:
    proc, base, notify, log = run(tmp_path, "capture")
    try:
        messages = []
        while not any(m.startswith("READY=1") for m in messages):
            messages += notify.recv(4096).decode().split("\n")
        _code, doc = wait_for(lambda: (r := http("GET", f"{base}/state"))[0] == 200 and r,
                             timeout=20, what="the control API")
        assert doc["phone"] == "idle"
        assert not doc.get("problems"), doc.get("problems")  # keypad, hook, display all up
        # luma's capture emulator writes each frame it is sent as a PNG.
        wait_for(lambda: list(tmp_path.glob("luma_*.png")), timeout=10, what="a frame")
        assert stop(proc) == 0
        text = log.read_text()
        for part in ("gpio", "keypad", "hook", "lamps", "display"):
            assert f"{part}: started" in text and f"{part}: stopped" in text, part
        assert "pw101-secret" not in text
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


def test_run_without_a_panel_or_a_sound_card_says_so_and_keeps_working(tmp_path: Path) -> None:
    # No /dev/i2c-1 on this machine, and no such sound card: "auto" audio means the sound cards
    # on the phone, so a missing one is named too.
    proc, base, notify, log = run(tmp_path, "ssd1306", audio="auto")
    try:
        def shown(text: str) -> bool:
            return any(text in p for p in http("GET", f"{base}/state")[1].get("problems", []))

        wait_for(lambda: shown("i2c-1 not found: enable I2C"), timeout=20, what="no panel")
        wait_for(lambda: shown("audio: no output device named 'No Such Card'"), timeout=20,
                 what="no sound card")
        doc = http("GET", f"{base}/state")[1]
        # No panel to read it on, but the same screen is on /screen.png and in /state.
        assert any(line.startswith(("display: /dev/i2c-1", "audio: no output"))
                   for line in doc["screen"]), doc["screen"]
        http("POST", f"{base}/keys", {"keys": "12"})
        wait_for(lambda: http("GET", f"{base}/state")[1]["entry"] == "12", what="keys work")
        assert stop(proc) == 0
        text = log.read_text()
        assert "display: /dev/i2c-1 not found" in text
        assert "audio: no output device named 'No Such Card'" in text
        assert "display: display:" not in text and "audio: audio:" not in text  # named once
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()
