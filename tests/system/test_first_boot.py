"""First boot: `deskphone run` with no config (or a broken one) tells systemd and the screen what
is missing, keeps the watchdog fed, and restarts into the phone once the config is valid."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.desk import NO_SIP, toml

GOOD = toml({"sip": NO_SIP})


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


CHILD = """
import sys
import tempfile
from pathlib import Path
from firmware import config, setup
etc = Path(sys.argv[1])
config.CREDENTIAL_SOURCE = etc  # stands for /etc/deskphone
setup.CHECK_SECONDS = 0.2
try:
    config.load(etc / "config.toml")
except config.ConfigError as exc:
    print(" | ".join(exc.problems), flush=True)
    sys.exit(setup.wait_for_config(etc / "config.toml", exc.problems))
print("read it", flush=True)
"""


def test_a_root_only_secret_added_while_waiting_restarts_the_phone_to_get_it(tmp_path: Path):
    # The service's user cannot read root's secret files: systemd hands them over at each start.
    # One added after the first-boot wait began reaches the phone only through a new start, so
    # with nothing else wrong the wait exits 75 for it (seen in the image rehearsal).
    etc = Path(tempfile.mkdtemp(prefix="deskphone-etc-"))
    try:
        etc.chmod(0o755)
        (etc / "config.toml").write_text(toml({"sip": {
            **NO_SIP, "password": None, "password_file": f"{etc}/sip_password"}}))
        (etc / "config.toml").chmod(0o644)
        secret = etc / "sip_password"
        secret.write_text("pw101\n")
        command = [sys.executable, "-c", CHILD, str(etc)]
        if os.geteuid() == 0:
            # root reads anything: make the file someone else's and run the phone without the
            # capabilities that override file modes.
            os.chown(secret, 65534, 65534)
            secret.chmod(0o600)
            command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
        else:
            secret.chmod(0o000)
        done = subprocess.run(command, capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).parents[2])
        assert "is new: the service gets it at its next start" in done.stdout, done.stderr
        assert done.returncode == 75, done.stderr
    finally:
        shutil.rmtree(etc)
