"""`deskphone simulate --headless` against the lab, driven only through its control API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desk import Desk, lab_sip, start
from tests.lab.lab import Kamailio

pytestmark = pytest.mark.lab


@pytest.fixture
def desk(kamailio: Kamailio, tmp_path: Path) -> Iterator[Desk]:
    d = start(tmp_path, sip=lab_sip(kamailio.port))
    try:
        d.until(lambda s: s["registration"] == "registered", "registered")
        yield d
    finally:
        d.stop()
    assert "pw101" not in d.log.read_text()


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
