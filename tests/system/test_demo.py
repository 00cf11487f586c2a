"""The README's `./dev run` demo, in a pseudo-terminal: the whole office comes up around the
phone, a colleague calls, and `q` stops everything the demo started."""

from __future__ import annotations

import os
import pty
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import http, wait_for
from tests.lab.lab import need

ROOT = Path(__file__).resolve().parents[2]
BASE = "http://127.0.0.1:8089"


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.lab
@pytest.mark.timeout(120)
def test_the_demo_runs_the_office_and_stops_it(tmp_path: Path) -> None:
    need("kamailio", "baresip")
    if not port_free(5060):
        pytest.skip("port 5060 is taken on this machine (the demo's exchange needs it)")
    master, slave = pty.openpty()
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "HOME": str(tmp_path),
           "TERM": "xterm", "COLUMNS": "140", "LINES": "50"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.lab.demo"], cwd=ROOT, stdin=slave,
                            stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)

    def drain() -> None:  # a terminal reads what the phone draws (else its writes block)
        while True:
            try:
                if not os.read(master, 65536):
                    return
            except OSError:
                return

    import threading

    threading.Thread(target=drain, daemon=True).start()
    try:
        seen: list[dict] = []

        def ready() -> dict | None:
            code, doc = http("GET", f"{BASE}/state")
            seen.append(doc)
            ok = code == 200 and doc["registration"] == "registered" and doc["queue"] and \
                doc["odoo"] == "online"
            return doc if ok else None

        try:
            state = wait_for(ready, timeout=60, what="the phone registered, with Odoo's queue")
        except AssertionError:
            raise AssertionError(f"last state: {seen[-1:]}") from None
        assert state["screen"][0].startswith("Alice Martin")
        assert state["screen"][1].endswith("Ext 101")
        assert any("calls to make" in line for line in state["screen"])
        # Each part said when it was up; Bob's call waits for the phone to be registered.
        demo_log = tmp_path / "deskphone" / "demo" / "demo.log"
        told = wait_for(lambda: "calls you" in (t := demo_log.read_text()) and t,
                        what="the demo telling Bob's call")
        assert told.index("the phone is registered") < told.index("Bob (102) calls you")
        # Call the outside line through a queue entry's + number ... and hang up.
        http("POST", f"{BASE}/keys", {"keys": "BD"})
        wait_for(lambda: (c := http("GET", f"{BASE}/state")[1]["call"]) and
                 c["state"] == "connected", timeout=20, what="the outside line answered")
        http("POST", f"{BASE}/hook", {"off_hook": True})
        http("POST", f"{BASE}/hook", {"off_hook": False})
        wait_for(lambda: http("GET", f"{BASE}/state")[1]["call"] is None, what="hung up")
        os.write(master, b"q")
        assert proc.wait(timeout=30) == 0
        wait_for(lambda: port_free(5060) and port_free(5070), timeout=10,
                 what="Kamailio and baresip gone")
    finally:
        if proc.poll() is None:
            proc.terminate()  # the demo stops what it started, as on Ctrl-C
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()
        os.close(master)
        time.sleep(0.1)


def test_the_demo_names_a_taken_port_and_what_holds_it_before_starting_anything(
        tmp_path: Path) -> None:
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        squatter.bind(("127.0.0.2", 5060))  # e.g. a phone left running from another session
    except OSError:
        pytest.skip("127.0.0.2:5060 is already taken on this machine")
    try:
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path), "HOME": str(tmp_path)}
        done = subprocess.run([sys.executable, "-m", "tests.lab.demo"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    finally:
        squatter.close()
    assert done.returncode == 1
    assert "127.0.0.2:5060 (udp, for the phone's SIP) is taken by " in done.stderr, done.stderr
    assert f"(pid {os.getpid()})" in done.stderr  # the program that holds it, by its PID
    assert "nothing was started" in done.stderr
    assert not list(tmp_path.glob("deskphone/demo/kamailio"))  # and indeed nothing was
