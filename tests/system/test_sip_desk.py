"""`deskphone simulate --headless` against the lab, driven only through its control API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, http, wait_for
from tests.lab.fixtures import free_udp
from tests.lab.lab import Kamailio

pytestmark = pytest.mark.lab


class Desk:
    def __init__(self, base: str, log: Path) -> None:
        self.base, self.log = base, log

    def state(self) -> dict[str, Any]:
        return http("GET", f"{self.base}/state")[1]

    def keys(self, keys: str) -> None:
        assert http("POST", f"{self.base}/keys", {"keys": keys})[0] == 202

    def hook(self, off: bool) -> None:
        assert http("POST", f"{self.base}/hook", {"off_hook": off})[0] == 202

    def until(self, check: Callable[[dict[str, Any]], object], what: str,
              timeout: float = 15) -> dict[str, Any]:
        return wait_for(lambda: d if check(d := self.state()) else None, timeout=timeout,
                        what=what)


@pytest.fixture
def desk(kamailio: Kamailio, tmp_path: Path) -> Iterator[Desk]:
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(f"""
[sip]
server = "127.0.0.1"
port = {kamailio.port}
domain = "127.0.0.1:{kamailio.port}"
username = "101"
password = "pw101"
bind = "127.0.0.2:{free_udp('127.0.0.2')}"

[phone]
name = "Alice Martin"
region = "BE"
state_dir = "{tmp_path}"

[control]
listen = "127.0.0.1:{port}"
""")
    log = tmp_path / "deskphone.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "firmware", "simulate", "--headless", "--config", str(path)],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    d = Desk(f"http://127.0.0.1:{port}", log)
    try:
        wait_for(lambda: http("GET", f"{d.base}/state")[0] == 200, timeout=20, what="the API")
        d.until(lambda s: s["registration"] == "registered", "registered")
        yield d
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "pw101" not in log.read_text()


def test_inbound_call_answered_by_the_hook(desk: Desk, kamailio: Kamailio, peers) -> None:
    bob = peers(kamailio, "102")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    doc = desk.until(lambda s: s["phone"] == "ringing", "ringing")
    assert doc["call"]["remote"] == "102" and doc["call"]["direction"] == "in"
    desk.hook(True)
    bob.wait_event("CALL_ESTABLISHED")
    desk.until(lambda s: s["call"] and s["call"]["state"] == "connected", "connected")
    bob.command("hangup")
    desk.until(lambda s: s["call"] is None, "the call over")
    desk.hook(False)
    desk.until(lambda s: s["phone"] == "idle", "idle")


def test_outbound_call_by_the_keypad(desk: Desk, kamailio: Kamailio, peers) -> None:
    bob = peers(kamailio, "102")
    desk.hook(True)
    desk.keys("102D")
    bob.wait_event("CALL_INCOMING")
    desk.until(lambda s: s["phone"] == "calling", "calling")
    bob.command("accept")
    desk.until(lambda s: s["call"] and s["call"]["state"] == "connected", "connected")
    desk.hook(False)
    closed = bob.wait_event("CALL_CLOSED")
    assert closed["param"] == "Connection reset by peer"
    desk.until(lambda s: s["phone"] == "idle" and s["call"] is None, "idle")


def test_transfer_by_the_a_key(desk: Desk, kamailio: Kamailio, peers) -> None:
    bob = peers(kamailio, "102")
    carol = peers(kamailio, "103", answermode="auto")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    desk.until(lambda s: s["phone"] == "ringing", "ringing")
    desk.hook(True)
    desk.until(lambda s: s["call"] and s["call"]["state"] == "connected", "connected")
    desk.keys("A103A")
    established = carol.wait_event("CALL_ESTABLISHED", timeout=20)
    assert "102" in established.get("peeruri", "")
    desk.until(lambda s: s["call"] is None, "our leg gone")
