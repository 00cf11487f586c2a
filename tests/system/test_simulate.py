"""`deskphone simulate --headless` as a subprocess, driven only through its control API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port, http, wait_for


@pytest.fixture
def simulator(tmp_path):
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(f"""
[sip]
server = "127.0.0.1"
port = 9                # nothing answers SIP here (tests with a registrar use the lab)
username = "101"
password = "pw101-secret"
bind = "127.0.0.2:0"     # any free port

[phone]
name = "Alice Martin"
region = "BE"
state_dir = "{tmp_path}"

[control]
listen = "127.0.0.1:{port}"
""")
    log = (tmp_path / "stderr.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "firmware", "simulate", "--headless", "--config", str(path)],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http("GET", f"{base}/state")[0] == 200, timeout=20, what="the API")
        yield proc, base, Path(log.name)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def screen(base: str) -> list[str]:
    return http("GET", f"{base}/state")[1]["screen"]


def test_screen_text_follows_the_keys(simulator):
    _proc, base, _ = simulator
    rows = screen(base)
    assert rows[0].startswith("Registering")  # nothing answers on 127.0.0.1:5060 here
    assert http("POST", f"{base}/keys", {"keys": "0470"})[0] == 202
    wait_for(lambda: screen(base)[1] == "0470", what="0470 on screen")
    http("POST", f"{base}/keys", {"keys": "C"})
    wait_for(lambda: screen(base)[1] == "047", what="a digit deleted")
    http("POST", f"{base}/hook", {"off_hook": True})
    doc = wait_for(lambda: (d := http("GET", f"{base}/state")[1])["phone"] == "dialing"
                   and d["off_hook"] and d, what="off hook")
    # Lifting with a number typed tries to call it; unregistered, the phone says why.
    assert doc["message"] == "No service: cannot call"
    http("POST", f"{base}/hook", {"off_hook": False})
    wait_for(lambda: http("GET", f"{base}/state")[1]["phone"] == "idle", what="idle")


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
