"""First boot: `deskphone run` with no config (or a broken one) tells systemd and the screen what
is missing, keeps the watchdog fed, and restarts into the phone once the config is valid."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

GOOD = """
[sip]
server = "127.0.0.1"
port = 9
username = "101"
password = "pw101"
bind = "127.0.0.2:0"
"""


def test_no_config_then_a_broken_one_then_a_good_one(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(sock_path))
    notify.settimeout(15)
    cfg = tmp_path / "config.toml"
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "30000000",
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "firmware", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        first = notify.recv(4096).decode()
        assert "READY=1" in first and f"No config: put it in {cfg}" in first
        assert "WATCHDOG=1" in notify.recv(4096).decode()  # fed while it waits
        cfg.write_text("[sip]\nserver = 'x'\n")  # half written: still a problem, named
        message = ""
        while "sip.username: required" not in message:
            message = notify.recv(4096).decode()
        cfg.write_text(GOOD)
        assert proc.wait(timeout=20) == 75  # EX_TEMPFAIL: systemd restarts it as the phone
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        notify.close()
