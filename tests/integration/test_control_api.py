"""The control API over real HTTP against a running daemon (in this process)."""

from __future__ import annotations

import pytest

from firmware import app, config
from firmware.events import RegistrationChanged
from tests.helpers import free_port, http, wait_for

# Nothing answers SIP on this port: the phone keeps trying to register.
SIP = {"server": "127.0.0.1", "port": 9, "username": "101", "password": "pw101-secret",
       "bind": "127.0.0.2:0"}


def start(tmp_path, control: dict) -> tuple:
    cfg = config.parse({"sip": SIP, "phone": {"region": "BE", "state_dir": str(tmp_path)},
                        "control": control})
    daemon, server = app.build(cfg)
    daemon.start()
    return daemon, server


@pytest.fixture
def phone(tmp_path):
    port = free_port()
    daemon, server = start(tmp_path, {"listen": f"127.0.0.1:{port}"})
    yield daemon, f"http://127.0.0.1:{server.port}"
    daemon.stop()


def state(base: str) -> dict:
    return http("GET", f"{base}/state")[1]


def test_state_follows_keys_and_hook(phone):
    _daemon, base = phone
    # No registrar answers: the phone says so (and keeps trying) while the API works.
    doc = wait_for(lambda: (d := state(base))["registration_reason"].startswith("No answer")
                   and d, what="the registrar's silence named")
    assert doc["registration"] == "registering"
    assert doc["phone"] == "idle" and doc["call"] is None and doc["entry"] == ""
    status, reply = http("POST", f"{base}/keys", {"keys": "+3247"})
    assert status == 202 and reply == {"queued": 5}
    doc = wait_for(lambda: (d := state(base))["entry"] == "+3247" and d, what="entry")
    assert doc["phone"] == "dialing" and doc["screen"][1] == "+3247"
    http("POST", f"{base}/hook", {"off_hook": True})
    wait_for(lambda: state(base)["off_hook"], what="off hook")
    http("POST", f"{base}/hook", {"off_hook": False})
    wait_for(lambda: state(base)["phone"] == "idle", what="idle")


def test_queue_entries_and_selection_in_state(phone):
    from firmware.events import QueueUpdated
    from tests.phonekit import queue_entries

    daemon, base = phone
    daemon.post(QueueUpdated(queue_entries()))
    http("POST", f"{base}/keys", {"keys": "BB"})
    doc = wait_for(lambda: (d := state(base)).get("selected") == 1 and d, what="selection")
    assert [q["id"] for q in doc["queue"]] == [3, 7, 9]
    assert set(doc["queue"][0]) >= {"id", "name", "number", "summary", "model", "res_id"}


def test_long_presses_by_api(phone):
    _daemon, base = phone
    http("POST", f"{base}/keys", {"keys": "B", "long": True})
    wait_for(lambda: state(base)["phone"] == "recent", what="recent")


def test_screen_png_is_the_current_frame(phone):
    from io import BytesIO

    from PIL import Image

    daemon, base = phone
    http("POST", f"{base}/keys", {"keys": "123"})
    wait_for(lambda: state(base)["entry"] == "123", what="entry")
    # The frame can move on while we look (a status arriving, the minute turning): the PNG must
    # be the frame published just before or just after the request.
    before = daemon.published.image.tobytes()
    status, body = http("GET", f"{base}/screen.png")
    after = daemon.published.image.tobytes()
    assert status == 200
    image = Image.open(BytesIO(body))
    assert image.size == (128, 64)
    assert image.convert("1").tobytes() in (before, after)
    assert before != Image.new("1", (128, 64)).tobytes()


@pytest.mark.parametrize(("method", "path", "body", "status", "reason"), [
    ("POST", "/keys", {"keys": "12x"}, 400, "'x' is not a key"),
    ("POST", "/keys", {"key": "1"}, 400, 'expected {"keys"'),
    ("POST", "/keys", {"keys": ""}, 400, "empty"),
    ("POST", "/keys", {"keys": "1", "long": "yes"}, 400, '"long" must be'),
    ("POST", "/hook", {"off_hook": "yes"}, 400, "off_hook"),
    ("POST", "/hook", [1, 2], 400, "off_hook"),
    ("GET", "/keys", None, 405, "use POST"),
    ("POST", "/state", {}, 405, "use GET"),
    ("GET", "/nothing", None, 404, "no such resource"),
    ("DELETE", "/state", None, 405, "use GET or POST"),
])
def test_bad_requests_get_a_reason_and_change_nothing(phone, method, path, body, status,
                                                       reason):
    _daemon, base = phone
    before = state(base)
    got, reply = http(method, f"{base}{path}", body)
    assert got == status
    assert reason in reply["error"]
    assert state(base)["entry"] == before["entry"] and state(base)["phone"] == before["phone"]


def test_malformed_json_and_oversized_bodies(phone):
    _daemon, base = phone
    status, reply = http("POST", f"{base}/keys", raw=b"{not json")
    assert status == 400 and "not JSON" in reply["error"]
    status, reply = http("POST", f"{base}/keys", raw=b"\xff\xfe")
    assert status == 400
    status, reply = http("POST", f"{base}/keys", raw=b" " * (70 * 1024))
    assert status == 400 and "larger than" in reply["error"]
    assert state(base)["phone"] == "idle"


def test_token_is_required_when_set_and_never_shown(tmp_path):
    port = free_port()
    daemon, server = start(tmp_path, {"listen": f"127.0.0.1:{port}", "token": "t0k3n-xyz"})
    try:
        base = f"http://127.0.0.1:{server.port}"
        status, reply = http("GET", f"{base}/state")
        assert status == 401 and "token" in reply["error"]
        assert http("POST", f"{base}/keys", {"keys": "1"}, token="wrong")[0] == 401
        status, doc = http("GET", f"{base}/state", token="t0k3n-xyz")
        assert status == 200
        assert "t0k3n-xyz" not in str(doc) and "pw101-secret" not in str(doc)
    finally:
        daemon.stop()


def test_registration_shows_in_state_and_on_screen(phone):
    daemon, base = phone
    # After the SIP adapter's own first word, so it cannot overwrite the one posted here.
    wait_for(lambda: state(base)["registration_reason"], what="the adapter's status")
    daemon.post(RegistrationChanged("registered"))
    doc = wait_for(lambda: (d := state(base))["registration"] == "registered" and d,
                   what="registered")
    assert doc["screen"][1].endswith("Ext 101")  # registered: the header names the phone
    assert not doc["screen"][0].startswith(("Registering", "No service", "No network"))


def test_the_menu_gives_its_selection_and_its_frame_shows_it(phone):
    _daemon, base = phone
    http("POST", f"{base}/keys", {"keys": "A", "long": True})
    doc = wait_for(lambda: (d := state(base))["phone"] == "menu" and d, what="the menu")
    assert doc["selected"] == 0
    first = http("GET", f"{base}/screen.png")[1]
    http("POST", f"{base}/keys", {"keys": "B"})
    wait_for(lambda: state(base).get("selected") == 1, what="the next item")
    assert http("GET", f"{base}/screen.png")[1] != first  # the highlight moved on the PNG


def test_the_outbox_count_is_known_before_anything_from_sip(tmp_path):
    """After a restart with writes still waiting for Odoo, the phone never shows a SIP status
    beside an outbox count of 0: what the phone kept is read before the network reports."""
    from firmware.events import OutboxChanged
    from firmware.odoo.store import Store

    store = Store(tmp_path / "odoo.sqlite")
    store.add("call.create", {"number": "+3225550100"}, call_uid="a")
    store.add("call.end", {"uid": "a"}, call_uid="a")
    store.close()  # the phone that kept them has stopped
    key = tmp_path / "odoo.key"
    key.write_text("not-a-real-key")
    key.chmod(0o600)
    cfg = config.parse({"sip": SIP, "phone": {"region": "BE", "state_dir": str(tmp_path)},
                        "odoo": {"url": "http://127.0.0.1:9", "database": "db",
                                 "login": "alice@example.com", "api_key_file": str(key)}})
    daemon, _server = app.build(cfg)
    seen: list[object] = []
    post = daemon.post

    def record(event) -> None:
        seen.append(event)
        post(event)

    daemon.post = record  # type: ignore[method-assign]
    daemon.start()
    try:
        wait_for(lambda: any(isinstance(e, RegistrationChanged) for e in seen),
                 what="a SIP status")
        first_sip = next(i for i, e in enumerate(seen) if isinstance(e, RegistrationChanged))
        counts = [e.depth for e in seen[:first_sip] if isinstance(e, OutboxChanged)]
        assert counts == [2]
        wait_for(lambda: daemon.published.snapshot.state.outbox == 2, what="2 to send")
    finally:
        daemon.stop()
