"""`deskphone simulate --headless` as a subprocess, driven only through its control API."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.desk import start, state
from tests.helpers import http, wait_for


@pytest.fixture
def simulator(tmp_path):
    desk = start(tmp_path, sip={"password": "pw101-secret"})
    try:
        yield desk.proc, desk.base, desk.log
    finally:
        desk.stop()


def screen(base: str) -> list[str]:
    return state(base)["screen"]


def test_screen_text_follows_the_keys(simulator):
    _proc, base, _ = simulator
    # (The API can answer before the Phone has handled SIP's first status: wait for it.)
    rows = wait_for(lambda: r if (r := screen(base))[0].startswith("Registering") else None,
                    what="Registering in the header")
    assert rows[0].startswith("Registering")  # nothing answers on 127.0.0.1:5060 here
    assert http("POST", f"{base}/keys", {"keys": "0470"})[0] == 202
    wait_for(lambda: screen(base)[1] == "0470", what="0470 on screen")
    http("POST", f"{base}/keys", {"keys": "C"})
    wait_for(lambda: screen(base)[1] == "047", what="a digit deleted")
    http("POST", f"{base}/hook", {"off_hook": True})
    doc = wait_for(lambda: (d := state(base))["phone"] == "dialing"
                   and d["off_hook"] and d, what="off hook")
    # Lifting with a number typed tries to call it; unregistered, the phone says why.
    assert doc["message"] == "No service: cannot call"
    http("POST", f"{base}/hook", {"off_hook": False})
    wait_for(lambda: state(base)["phone"] == "idle", what="idle")


def test_sigterm_stops_cleanly_and_secrets_stay_out_of_the_log(simulator):
    proc, base, log = simulator
    proc.send_signal(signal.SIGUSR1)  # a thread dump, and the phone carries on
    wait_for(lambda: "phone-loop" in log.read_text() or "File" in log.read_text(),
             what="thread dump")
    assert http("GET", f"{base}/state")[0] == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    text = log.read_text()
    assert "stopped" in text
    assert "pw101-secret" not in text
    assert "Traceback" not in text.replace("Traceback (most recent call first)", "")


def test_check_config_and_version():
    done = subprocess.run([sys.executable, "-m", "firmware", "version"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("deskphone ")
    done = subprocess.run([sys.executable, "-m", "firmware", "--help"], capture_output=True,
                          text=True, timeout=30)
    assert "simulate" in done.stdout and "check-config" in done.stdout
