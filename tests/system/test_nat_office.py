"""The phone in an office: on a private LAN behind a NAT router that forgets idle mappings after
30-60 s, its provider (Kamailio, doing no NAT fix-up at all) and a colleague (baresip) on the
other side. The phone is `deskphone simulate --headless`, driven through its control API from
inside the LAN; what it says and hears goes through WAV files."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.desk import Desk, start
from tests.helpers import wait_for
from tests.lab.lab import Baresip, Dnsmasq, Kamailio, goertzel, need, tone_wav, wav_pcm
from tests.lab.netns import LAN_ROUTER, WAN_ROUTER, WAN_SERVER, Office, inside, office_or_fail

pytestmark = pytest.mark.lab
IDLE = 180.0  # seconds: six times the router's unreplied UDP timeout


@pytest.fixture
def office() -> Iterator[Office]:
    need("kamailio", "baresip")
    built = office_or_fail()
    try:
        yield built
    finally:
        built.delete()


def _heard(path: Path, freq: float, start: int = 0) -> float:
    """How loud `freq` was in the loudest second of a recording (calls and silence mixed),
    from byte `start` on."""
    try:
        pcm = wav_pcm(path)[start:]
    except (OSError, EOFError):
        return 0.0
    return max((goertzel(pcm[i:i + 16000], freq) for i in range(0, len(pcm) - 15999, 16000)),
               default=0.0)


@pytest.mark.timeout(400)
def test_behind_the_nat_calls_both_ways_with_audio_after_three_idle_minutes(
        office: Office, tmp_path: Path) -> None:
    with inside(office.wan):
        kamailio = Kamailio(tmp_path / "kamailio", port=5060, ip=WAN_SERVER).start()
        bob = Baresip(tmp_path / "bob", "102", 5070, 5199, tone_wav(tmp_path / "440.wav", 440),
                      ip=WAN_SERVER, proxy_ip=WAN_SERVER).start()
    desk: Desk | None = None
    try:
        bob.registered()
        mic = tone_wav(tmp_path / "mic.wav", 1000, 400)
        with inside(office.lan):
            desk = start(tmp_path, sip={"server": WAN_SERVER, "port": 5060,
                                        "domain": f"{WAN_SERVER}:5060", "bind": None},
                         audio={"backend": "wav", "mic": str(mic),
                                "ear": str(tmp_path / "ear.wav")})
            desk.until(lambda s: s["registration"] == "registered", "registered", timeout=30)
            # The phone learnt the address the router maps it to, and registered that.
            assert f"the provider sees us at {WAN_ROUTER}:" in desk.log.read_text()

            # Out: dialled on the keypad, answered by bob, audio both ways.
            desk.hook(True)
            desk.keys("102D")
            bob.wait_event("CALL_INCOMING")
            bob.command("accept")
            bob.wait_event("CALL_ESTABLISHED")
            desk.until(lambda s: s["call"] and s["call"]["state"] == "connected", "connected")
            _talk(bob, 4.0)
            desk.hook(False)
            bob.wait_event("CALL_CLOSED")
            wait_for(lambda: _closed(bob.heard()[-1]), what="bob's recording closed")
            assert _heard(bob.heard()[-1], 1000) > 0.1  # bob heard our microphone
            # ... and we heard bob: his first packets went to the port our INVITE offered
            # before ours reached him, so the router mapped our RTP elsewhere and baresip does
            # not follow our packets; the phone noticed the silence and moved to a fresh port,
            # opened towards him first.
            ear = tmp_path / "ear.wav"
            wait_for(lambda: _heard(ear, 440) > 0.1, timeout=10, what="bob in our earpiece")
            heard_so_far = len(wav_pcm(ear))

            # Idle for three minutes: six times the router's unreplied UDP timeout.
            idle_from = time.monotonic()
            wait_for(lambda: time.monotonic() - idle_from >= IDLE, timeout=IDLE + 10,
                     what="three idle minutes")
            assert desk.state()["registration"] == "registered"

            # In: bob calls; the router still maps the phone's flow, so the INVITE arrives.
            calls, seen = len(bob.heard()), len(bob.events)
            bob.command("dial", f"sip:101@{WAN_SERVER}:5060")
            desk.until(lambda s: s["phone"] == "ringing", "ringing", timeout=15)
            desk.hook(True)
            bob.wait_event("CALL_ESTABLISHED", after=seen)
            _talk(bob, 4.0)
            bob.command("hangup")
            desk.until(lambda s: s["call"] is None, "the call over")
            desk.hook(False)
            wait_for(lambda: len(bob.heard()) > calls and _closed(bob.heard()[-1]),
                     what="bob's second recording")
            assert _heard(bob.heard()[-1], 1000) > 0.1
            desk.stop()
            assert _heard(ear, 440, heard_so_far) > 0.1  # and we heard bob again
    finally:
        if desk is not None:
            desk.stop()
        bob.stop()
        kamailio.stop()


@pytest.mark.timeout(180)
def test_the_provider_found_by_the_office_dns_with_the_first_srv_target_dead(
        office: Office, tmp_path: Path) -> None:
    need("dnsmasq")
    with inside(office.wan):
        kamailio = Kamailio(tmp_path / "kamailio", port=5060, ip=WAN_SERVER).start()
        bob = Baresip(tmp_path / "bob", "102", 5070, 5199, tone_wav(tmp_path / "440.wav", 440),
                      ip=WAN_SERVER, proxy_ip=WAN_SERVER).start()
    with inside(office.router):
        # The office's DNS server (on the router, as in most offices): two SRV targets for
        # office.test, the preferred one a port where nothing answers.
        dns = Dnsmasq(tmp_path / "dns", LAN_ROUTER, 53, [
            "--srv-host=_sip._udp.office.test,pbx1.office.test,5099,1,10",
            "--srv-host=_sip._udp.office.test,pbx2.office.test,5060,2,10",
            f"--host-record=pbx1.office.test,{WAN_SERVER}",
            f"--host-record=pbx2.office.test,{WAN_SERVER}"]).start()
    desk: Desk | None = None
    try:
        bob.registered()
        with inside(office.lan):
            # The phone reads the LAN's /etc/resolv.conf, as it would get it by DHCP.
            desk = start(tmp_path, prefix=office.resolver(LAN_ROUTER),
                         sip={"server": "office.test", "port": None,
                              "domain": f"{WAN_SERVER}:5060", "bind": None})
            desk.until(lambda s: s["registration"] == "registered", "registered", timeout=40)
            log = desk.log.read_text()
            assert "No answer from pbx1.office.test (SRV 1/2)" in log
            assert "trying the next server: pbx2.office.test (SRV 2/2)" in log
            # The name has no address of its own (SRV only): the network is still there.
            assert "none (no network)" not in log
            assert not any("No network" in line for line in desk.state()["screen"])
            bob.command("dial", f"sip:101@{WAN_SERVER}:5060")
            desk.until(lambda s: s["phone"] == "ringing", "ringing", timeout=15)
    finally:
        if desk is not None:
            desk.stop()
        dns.stop()
        bob.stop()
        kamailio.stop()


@pytest.mark.timeout(180)
def test_a_stun_server_before_registering_then_a_new_public_address(
        office: Office, tmp_path: Path) -> None:
    new_public = "192.0.2.2"
    with inside(office.wan):
        kamailio = Kamailio(tmp_path / "kamailio", port=5060, ip=WAN_SERVER).start()
        # A STUN server on the internet: Kamailio's stun module, on 3478.
        stun = Kamailio(tmp_path / "stun", port=3478, ip=WAN_SERVER, stun=True).start()
        bob = Baresip(tmp_path / "bob", "102", 5070, 5199, tone_wav(tmp_path / "440.wav", 440),
                      ip=WAN_SERVER, proxy_ip=WAN_SERVER).start()
    desk: Desk | None = None
    try:
        bob.registered()
        mic = tone_wav(tmp_path / "mic.wav", 1000, 120)
        with inside(office.lan):
            desk = start(tmp_path, sip={"server": WAN_SERVER, "port": 5060,
                                        "domain": f"{WAN_SERVER}:5060", "bind": None,
                                        "stun_server": f"{WAN_SERVER}:3478",
                                        "keepalive_seconds": 5},
                         audio={"backend": "wav", "mic": str(mic),
                                "ear": str(tmp_path / "ear.wav")})
            desk.until(lambda s: s["registration"] == "registered", "registered", timeout=30)
            log = desk.log.read_text()
            assert f"the STUN server {WAN_SERVER}:3478 sees us at {WAN_ROUTER}:" in log
            # So the first REGISTER already named the public address: none sent again for it.
            assert "the provider sees us at" not in log

            office.renumber(WAN_ROUTER, new_public)  # a new lease: every mapping is gone
            wait_for(lambda: f"NAT binding changed ({new_public}:" in desk.log.read_text(),
                     timeout=20, what="the new public address noticed (two keep-alives)")
            desk.until(lambda s: s["registration"] == "registered", "registered again")

            # A call from the internet reaches the phone at its new address.
            bob.command("dial", f"sip:101@{WAN_SERVER}:5060")
            desk.until(lambda s: s["phone"] == "ringing", "ringing", timeout=15)
            desk.hook(True)
            bob.wait_event("CALL_ESTABLISHED")
            _talk(bob, 4.0)
            desk.hook(False)
            bob.wait_event("CALL_CLOSED")
            wait_for(lambda: _closed(bob.heard()[-1]), what="bob's recording closed")
            assert _heard(bob.heard()[-1], 1000) > 0.1  # bob heard our microphone
    finally:
        if desk is not None:
            desk.stop()
        bob.stop()
        stun.stop()
        kamailio.stop()


def _talk(bob: Baresip, seconds: float) -> None:
    start = time.monotonic()
    wait_for(lambda: time.monotonic() - start >= seconds, timeout=seconds + 5,
             what="the call to run")


def _closed(path: Path) -> bool:
    try:
        return len(wav_pcm(path)) > 8000
    except Exception:
        return False
