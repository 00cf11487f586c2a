"""`deskphone simulate --headless` with the Odoo double: the queue on screen, and a removal made
while Odoo is down that survives `kill -9` and reaches Odoo exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import free_port, http, wait_for
from tests.odoo_double import ALICE, DATABASE, KEYS, OdooDouble


def start(tmp_path: Path, double: OdooDouble, port: int,
          sip: str = "") -> subprocess.Popen[bytes]:
    key = tmp_path / "odoo.key"
    key.write_text(KEYS[ALICE])
    key.chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text((sip or """
[sip]
server = "127.0.0.1"
port = 9                # nothing answers SIP here (tests with a registrar use the lab)
username = "101"
password = "pw101"
bind = "127.0.0.2:0"     # any free port
""") + f"""
[phone]
name = "Alice Martin"
region = "BE"
state_dir = "{tmp_path}"

[odoo]
url = "{double.url}"
database = "{DATABASE}"
login = "alice@example.com"
api_key_file = "{key}"
timeout_seconds = 2

[control]
listen = "127.0.0.1:{port}"
""")
    with (tmp_path / "stderr.log").open("a") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "firmware", "simulate", "--headless", "--config",
             str(path)],
            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def state(base: str) -> dict:
    return http("GET", f"{base}/state")[1]


def test_queue_on_screen_and_a_removal_survives_kill_9(tmp_path: Path) -> None:
    double = OdooDouble(today=__import__("datetime").date.today()).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, double, port)
    try:
        wait_for(lambda: state(base)["odoo"] == "online" and state(base)["queue"],
                 timeout=20, what="the queue from Odoo")
        doc = state(base)
        assert "4 calls to make" in doc["screen"]
        assert doc["queue"][0]["overdue"]  # overdue first, as on the widget
        http("POST", f"{base}/keys", {"keys": "B"})
        wait_for(lambda: state(base)["phone"] == "queue", what="the queue open")
        first = state(base)["queue"][0]
        assert any(first["name"][:10] in line for line in state(base)["screen"])
        double.down = True
        http("POST", f"{base}/keys", {"keys": "#D"})
        wait_for(lambda: state(base)["outbox"] == 1, what="the removal waiting")
        http("POST", f"{base}/keys", {"keys": "CC"})
        wait_for(lambda: "Odoo down, 1 to send" in state(base)["screen"],
                 what="the outbox depth on the idle screen")
        assert first["id"] not in [e["id"] for e in state(base)["queue"]]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert double.writes == []
        double.down = False
        proc = start(tmp_path, double, port)
        wait_for(lambda: double.writes, timeout=20, what="the removal to reach Odoo")
        wait_for(lambda: state(base)["outbox"] == 0, timeout=20, what="an empty outbox")
        assert double.writes == [("mail.activity", "unlink", [[first["id"]]], {})]
        assert len(state(base)["queue"]) == 3
        text = (tmp_path / "stderr.log").read_text()
        assert KEYS[ALICE] not in text
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        double.stop()


def test_call_from_the_queue_then_done_reaches_odoo(tmp_path: Path, kamailio, peers) -> None:
    import datetime as dt

    from tests.lab.fixtures import free_udp

    zoe = peers(kamailio, "+32470123456", answermode="auto")  # the lead's number, E.164
    double = OdooDouble(today=dt.date.today()).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(tmp_path, double, port, sip=f"""
[sip]
server = "127.0.0.1"
port = {kamailio.port}
domain = "127.0.0.1:{kamailio.port}"
username = "101"
password = "pw101"
bind = "127.0.0.2:{free_udp('127.0.0.2')}"
""")
    try:
        wait_for(lambda: state(base)["registration"] == "registered" and state(base)["queue"],
                 timeout=20, what="registered, with the queue")
        http("POST", f"{base}/keys", {"keys": "B"})
        ids = [e["id"] for e in state(base)["queue"]]
        http("POST", f"{base}/keys", {"keys": "B" * ids.index(101)})
        wait_for(lambda: state(base).get("selected") == ids.index(101), what="Zoë selected")
        http("POST", f"{base}/keys", {"keys": "D"})
        zoe.wait_event("CALL_ESTABLISHED")
        wait_for(lambda: (c := state(base)["call"]) and c["state"] == "connected",
                 what="talking to Zoë")
        assert state(base)["call"]["name"] == "Zoë Dupont"
        http("POST", f"{base}/hook", {"off_hook": True})
        http("POST", f"{base}/hook", {"off_hook": False})  # hang up
        doc = wait_for(lambda: (d := state(base))["prompt"] and d, what="Mark call done?")
        assert doc["prompt"]["activity_id"] == 101
        http("POST", f"{base}/keys", {"keys": "D"})
        wait_for(lambda: any(w[1] == "action_feedback" for w in double.writes), timeout=20,
                 what="action_feedback in Odoo")
        feedback = next(w for w in double.writes if w[1] == "action_feedback")
        assert feedback[2] == [[101]] and "Zoë Dupont" in feedback[3]["feedback"]
        wait_for(lambda: [c["state"] for c in double.voip_calls()] == ["terminated"],
                 timeout=20, what="the voip.call lifecycle")
        assert [w[1] for w in double.writes if w[0] == "voip.call"] == [
            "create_and_format", "start_call", "end_call"]
        assert double.voip_calls()[0]["phone_number"] == "+32470123456"
        wait_for(lambda: 101 not in [e["id"] for e in state(base)["queue"]],
                 what="the entry gone from the queue")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        double.stop()
