"""`deskphone run` on mock GPIO with luma's capture emulator: the whole hardware path starts,
reaches READY, shows frames and answers its control API."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.desk import Desk, start, state
from tests.helpers import http, wait_for


def run(tmp_path: Path, display: str, audio: str = "null") -> tuple[Desk, socket.socket]:
    """`deskphone run` on mock pins (GPIOZERO_PIN_FACTORY=mock, as on a bench without a Pi),
    with systemd's notify socket to hear READY on."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(20)
    env = {"GPIOZERO_PIN_FACTORY": "mock", "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "SDL_VIDEODRIVER": "dummy"}
    desk = start(
        tmp_path, command="run", env=env, wait=False, sip={"password": "pw101-secret"},
        # With "auto", the phone looks for the handset card; no machine has this one.
        audio={"backend": audio, "handset": "No Such Card"},
        hardware={"pin_factory": "lgpio", "display": display, "ringer_pin": 12, "led_pin": 25})
    return desk, notify


def test_run_starts_the_hardware_path_and_reaches_ready(tmp_path: Path) -> None:
    desk, notify = run(tmp_path, "capture")
    try:
        messages = []
        while not any(m.startswith("READY=1") for m in messages):
            messages += notify.recv(4096).decode().split("\n")
        doc = desk.api_up().state()
        assert doc["phone"] == "idle"
        assert not doc.get("problems"), doc.get("problems")  # keypad, hook, display all up
        # luma's capture emulator writes each frame it is sent as a PNG.
        wait_for(lambda: list(tmp_path.glob("luma_*.png")), timeout=10, what="a frame")
        assert desk.stop() == 0
        text = desk.log.read_text()
        for part in ("gpio", "keypad", "hook", "lamps", "display"):
            assert f"{part}: started" in text and f"{part}: stopped" in text, part
        assert "pw101-secret" not in text
    finally:
        desk.stop()
        notify.close()


def test_run_without_a_panel_or_a_sound_card_says_so_and_keeps_working(tmp_path: Path) -> None:
    # No /dev/i2c-1 on this machine, and no such sound card: "auto" audio means the sound cards
    # on the phone, so a missing one is named too.
    desk, notify = run(tmp_path, "ssd1306", audio="auto")
    base = desk.base
    try:
        def shown(text: str) -> bool:
            return any(text in p for p in state(base).get("problems", []))

        wait_for(lambda: shown("i2c-1 not found: enable I2C"), timeout=20, what="no panel")
        wait_for(lambda: shown("audio: no output device named 'No Such Card'"), timeout=20,
                 what="no sound card")
        doc = state(base)
        # No panel to read it on, but the same screen is on /screen.png and in /state.
        assert any(line.startswith(("display: /dev/i2c-1", "audio: no output"))
                   for line in doc["screen"]), doc["screen"]
        http("POST", f"{base}/keys", {"keys": "12"})
        wait_for(lambda: state(base)["entry"] == "12", what="keys work")
        assert desk.stop() == 0
        text = desk.log.read_text()
        assert "display: /dev/i2c-1 not found" in text
        assert "audio: no output device named 'No Such Card'" in text
        assert "display: display:" not in text and "audio: audio:" not in text  # named once
    finally:
        desk.stop()
        notify.close()
