"""Every story of the Odoo "make, receive, transfer and forward calls" guide and each feature a
desk phone owes its user, through `deskphone simulate --headless` and its control API only, with
what the far end (baresip, through Kamailio) and the Odoo double saw."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.desk import Desk, lab_sip, odoo_section, start
from tests.helpers import http, wait_for
from tests.lab.fixtures import lab_port, peer_ports
from tests.lab.lab import Baresip, Kamailio, goertzel, need, tone_wav, wav_pcm
from tests.odoo_double import OdooDouble

pytestmark = pytest.mark.lab


@dataclass
class Office:
    desk: Desk
    kamailio: Kamailio
    bob: Baresip  # 102, answers when told
    carol: Baresip  # 103, answers at once
    outside: Baresip  # 9000: every + number nobody has
    odoo: OdooDouble

    def call_us(self, who: Baresip) -> None:
        who.command("dial", f"sip:101@127.0.0.1:{self.kamailio.port}")
        self.desk.until(lambda s: s["phone"] == "ringing", "ringing")

    def voip_states(self) -> list[str]:
        return [c["state"] for c in self.odoo.voip_calls()]


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    need("kamailio", "baresip")
    kam = Kamailio(tmp_path / "kamailio", port=lab_port(), outside_line=True).start()
    wav = tone_wav(tmp_path / "far.wav", 440, 120)
    peers = []
    for user, mode in (("102", "manual"), ("103", "auto"), ("9000", "auto")):
        sip, ctrl = peer_ports()
        peers.append(Baresip(tmp_path / f"b{user}", user, sip, ctrl, wav, mode,
                             proxy_port=kam.port).start())
    for p in peers:
        p.registered()
    odoo = OdooDouble(today=dt.date.today()).start()
    mic = tone_wav(tmp_path / "mic.wav", 1000, 120)
    desk = start(tmp_path, wait=False, sip=lab_sip(kam.port),
                 odoo=odoo_section(tmp_path, odoo.url),
                 audio={"backend": "wav", "mic": str(mic), "ear": str(tmp_path / "ear.wav")})
    office = Office(desk, kam, peers[0], peers[1], peers[2], odoo)
    try:
        desk.api_up()
        desk.until(lambda s: s["registration"] == "registered" and s["odoo"] == "online"
                   and s["queue"], "registered, Odoo online", timeout=20)
        yield office
    finally:
        desk.stop()
        for p in peers:
            p.stop()
        odoo.stop()
        kam.stop()


def _readable(path: Path) -> bool:
    import wave

    try:
        with wave.open(str(path), "rb"):
            return True
    except (wave.Error, EOFError):
        return False


def connected(s: dict) -> bool:
    return bool(s["call"]) and s["call"]["state"] == "connected"


def test_manual_dial_with_plus_and_country_code(office: Office) -> None:
    d = office.desk
    d.keys("+32470123456")
    d.until(lambda s: s["entry"] == "+32470123456", "the number typed")
    d.keys("D")
    office.outside.wait_event("CALL_ESTABLISHED")
    d.until(connected, "connected")
    assert d.state()["call"]["remote"] == "+32470123456"
    d.until(lambda s: s["call"]["name"] == "Zoë Dupont", "the contact's name")  # from Odoo
    d.hook(True)
    d.hook(False)
    office.outside.wait_event("CALL_CLOSED")
    wait_for(lambda: office.voip_states() == ["terminated"], what="the call log")
    assert office.odoo.voip_calls()[0]["phone_number"] == "+32470123456"
    assert office.odoo.voip_calls()[0]["partner_id"] == 51


def test_dial_a_contact_found_by_typing(office: Office) -> None:
    d = office.desk
    d.keys("963")  # Z-O-E on the keypad
    d.keys("B")
    s = d.until(lambda s: s["phone"] == "contacts", "contacts found")
    assert any("Zoë Dupont" in line for line in s["screen"])
    d.keys("D")
    office.outside.wait_event("CALL_ESTABLISHED")
    d.until(lambda s: connected(s) and s["call"]["remote"] == "+32470123456", "calling Zoë")


def test_reject(office: Office) -> None:
    office.call_us(office.bob)
    office.desk.keys("C")
    assert "486" in office.bob.wait_event("CALL_CLOSED")["param"]
    wait_for(lambda: office.voip_states() == ["rejected"], what="a rejected call in Odoo")


def test_missed_call(office: Office) -> None:
    office.call_us(office.bob)
    office.bob.command("hangup")
    s = office.desk.until(lambda s: s["missed"] == 1 and s["phone"] == "idle", "one missed")
    assert "1 missed call" in s["screen"]
    wait_for(lambda: office.voip_states() == ["missed"], what="a missed call in Odoo")


def test_transfer_to_an_extension_after_answering(office: Office) -> None:
    office.call_us(office.bob)
    office.desk.hook(True)
    office.desk.until(connected, "connected")
    office.desk.keys("A103A")
    assert "102" in office.carol.wait_event("CALL_ESTABLISHED")["peeruri"]
    office.desk.until(lambda s: s["call"] is None, "our leg gone")
    wait_for(lambda: office.voip_states() == ["terminated"], what="the call logged")


def test_forward_to_a_full_number_after_answering(office: Office) -> None:
    office.call_us(office.bob)
    office.desk.hook(True)
    office.desk.until(connected, "connected")
    office.desk.keys("A+32470123456A")
    assert "102" in office.outside.wait_event("CALL_ESTABLISHED")["peeruri"]
    office.desk.until(lambda s: s["call"] is None, "our leg gone")


def test_mute_the_far_end_hears_silence(office: Office) -> None:
    office.call_us(office.bob)
    office.desk.hook(True)
    office.bob.wait_event("CALL_ESTABLISHED")
    office.desk.until(connected, "connected")
    def recorded() -> int:  # bytes baresip has written so far (its header comes at the end)
        files = office.bob.heard()
        return files[-1].stat().st_size if files else 0

    wait_for(lambda: recorded() > 32000, what="two seconds of our microphone at bob's")
    http("POST", f"{office.desk.base}/keys", {"keys": "*", "long": True})
    s = office.desk.until(lambda s: s["call"] and s["call"]["muted"], "muted")
    assert any("Muted" in line for line in s["screen"])
    size = recorded()
    wait_for(lambda: recorded() > size + 32000, what="two seconds more at bob's")
    office.bob.command("hangup")
    office.bob.wait_event("CALL_CLOSED")
    wait_for(lambda: _readable(office.bob.heard()[-1]), what="bob's recording closed")
    heard = wav_pcm(office.bob.heard()[-1])
    assert goertzel(heard[8000:24000], 1000) > 0.1  # before: our 1 kHz microphone
    assert goertzel(heard[-16000:], 1000) < 0.005  # after: silence, the call still up


def test_hold_and_resume(office: Office) -> None:
    office.call_us(office.bob)
    office.desk.hook(True)
    office.desk.until(connected, "connected")
    http("POST", f"{office.desk.base}/keys", {"keys": "#", "long": True})
    s = office.desk.until(lambda s: s["call"] and s["call"]["state"] == "held", "held")
    assert any("hold" in line.lower() for line in s["screen"])
    http("POST", f"{office.desk.base}/keys", {"keys": "#", "long": True})
    office.desk.until(connected, "resumed")
    cid = next(line for line in office.kamailio.text.splitlines() if "REQ INVITE" in line)
    cid = cid.rsplit("cid=", 1)[1]
    invites = [line for line in office.kamailio.text.splitlines()
               if "REQ INVITE" in line and cid in line]
    assert len(invites) >= 3  # the call, hold (sendonly), resume (sendrecv): bob saw both


def test_do_not_disturb(office: Office) -> None:
    d = office.desk
    http("POST", f"{d.base}/keys", {"keys": "A", "long": True})  # the menu
    d.until(lambda s: s["phone"] == "menu", "menu")
    d.keys("D")  # the first item: do not disturb
    d.until(lambda s: s["dnd"], "DND on")
    d.keys("C")
    s = d.until(lambda s: s["phone"] == "idle", "idle")
    assert "Do not disturb" in s["screen"]
    office.bob.command("dial", f"sip:101@127.0.0.1:{office.kamailio.port}")
    closed = office.bob.wait_event("CALL_CLOSED")
    assert "480" in closed["param"]  # sent away without a ring
    d.until(lambda s: s["missed"] == 1 and s["phone"] == "idle", "logged as missed")
    wait_for(lambda: office.voip_states() == ["missed"], what="missed in Odoo")


def test_redial(office: Office) -> None:
    d = office.desk
    d.keys("103D")
    office.carol.wait_event("CALL_ESTABLISHED")
    d.until(connected, "connected")
    d.hook(True)
    d.hook(False)
    d.until(lambda s: s["call"] is None and s["phone"] == "idle", "idle")
    after = len(office.carol.events)
    d.keys("D")  # on the idle screen, D brings the last number back ...
    d.until(lambda s: s["entry"] == "103", "the last number")
    d.keys("D")  # ... and D calls it
    office.carol.wait_event("CALL_ESTABLISHED", after=after)
    d.until(lambda s: connected(s) and s["call"]["remote"] == "103", "redialled")


def test_power_loss_during_a_call_and_an_odoo_write(office: Office) -> None:
    d = office.desk
    office.odoo.down = True  # Odoo unreachable: the call's log waits in the outbox
    office.call_us(office.bob)
    d.hook(True)
    office.bob.wait_event("CALL_ESTABLISHED")
    d.until(lambda s: connected(s) and s["outbox"] >= 2, "in a call, two writes waiting")
    d.kill()  # the power goes
    office.bob.command("hangup")
    office.odoo.down = False
    t0 = time.monotonic()
    d.restart().api_up()
    d.until(lambda s: s["registration"] == "registered", "registered again", timeout=30)
    registered_after = time.monotonic() - t0
    # Odoo hears of it; then the desk says nothing is left. (The desk's count is 0 also for a
    # moment after the start, before the sync has read its outbox: registering can be quicker.)
    wait_for(lambda: len(office.odoo.writes) >= 3, what="the outbox delivered", timeout=30)
    d.until(lambda s: s["outbox"] == 0, "nothing left to send", timeout=30)
    # What was waiting arrived, once; and the call the power cut left open is closed.
    assert [w[1] for w in office.odoo.writes] == ["create_and_format", "start_call", "end_call"]
    assert office.voip_states() == ["terminated"]
    print(f"registered {registered_after:.1f} s after the restart")
