"""IPv6 end to end against real Kamailio and baresip on ::1: a literal `[::1]` server
(REGISTER, calls both ways with audio both ways), and a server whose name has only an AAAA
record (dnsmasq)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.config import Secret, SipConfig
from firmware.sip.ua import UserAgent
from tests.helpers import wait_for
from tests.integration.test_sip_dns import DNS_IP, resolver_at
from tests.lab.fixtures import free_udp, lab_port
from tests.lab.lab import Dnsmasq, Kamailio, goertzel, need, wav_pcm

pytestmark = pytest.mark.lab

V6 = "::1"


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind((V6, 0))
        return True
    except OSError:
        return False


@pytest.fixture
def kamailio6(lab_dir: Path) -> Iterator[Kamailio]:
    if not _has_ipv6():
        pytest.fail("this machine has no IPv6 loopback (::1): the IPv6 tests cannot run")
    k = Kamailio(lab_dir / "kamailio6", port=lab_port(), ip=V6).start()
    yield k
    k.stop()


def test_register_and_an_inbound_call_over_ipv6(kamailio6, peers, lab_phone) -> None:
    phone = lab_phone(kamailio6, ip=V6, server="[::1]").registered()  # as an admin writes it
    assert phone.account.me.contact().startswith("<sip:101@[::1]:")
    bob = peers(kamailio6, "102")
    bob.command("dial", f"sip:101@[::1]:{kamailio6.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    phone.lift()
    bob.wait_event("CALL_ESTABLISHED")
    wait_for(lambda: len(phone.audio.heard) > 50, what="audio in the earpiece over IPv6")
    pcm = b"".join(phone.audio.heard[-25:])
    assert goertzel(pcm, 440) > 0.2  # baresip's tone reached the earpiece
    phone.replace()
    bob.wait_event("CALL_CLOSED")
    wait_for(lambda: bob.heard(), what="baresip's recording")
    heard = wav_pcm(bob.heard()[-1])[8000:]
    assert goertzel(heard, 1000) > 0.2  # and our microphone reached baresip


def test_an_outbound_call_over_ipv6(kamailio6, peers, lab_phone) -> None:
    phone = lab_phone(kamailio6, ip=V6).registered()
    bob = peers(kamailio6, "102", answermode="auto")
    phone.lift()
    phone.keys("102D")
    bob.wait_event("CALL_ESTABLISHED")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
    wait_for(lambda: len(phone.audio.heard) > 50, what="audio in the earpiece over IPv6")
    assert goertzel(b"".join(phone.audio.heard[-25:]), 440) > 0.2
    phone.replace()
    bob.wait_event("CALL_CLOSED")
    wait_for(lambda: bob.heard(), what="baresip's recording")
    assert goertzel(wav_pcm(bob.heard()[-1])[8000:], 1000) > 0.2


def test_a_server_with_only_an_aaaa_record(kamailio6, tmp_path: Path) -> None:
    need("dnsmasq")
    d = Dnsmasq(tmp_path / "dns", DNS_IP, lab_port(), ["--host-record=v6only.test,::1"]).start()
    try:
        config = SipConfig(server="v6only.test", port=kamailio6.port, username="101",
                           password=Secret("pw101"), domain=f"[::1]:{kamailio6.port}",
                           bind=f"[::1]:{free_udp(V6)}")
        ua = UserAgent(config, lambda: bytes(320), lambda pcm: None, dns=resolver_at(d.port))
        ua.start(lambda event: None)
        try:
            wait_for(lambda: ua.status[0] == "registered", timeout=20,
                     what="registered at the AAAA-only name")
            assert ua.me.proxy == (V6, kamailio6.port)
        finally:
            ua.stop()
    finally:
        d.stop()
