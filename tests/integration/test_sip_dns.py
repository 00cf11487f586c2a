"""The provider found by DNS (RFC 3263) against a real DNS server (dnsmasq on loopback) and a
real registrar (Kamailio): SRV priority and failover, NAPTR, records pointing nowhere, a
resolver that never answers, and the cache."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dns.resolver
import pytest

from firmware.config import Secret, SipConfig
from firmware.events import Event, RegistrationChanged
from firmware.sip.dns import DnsError, Resolver
from firmware.sip.ua import UserAgent
from tests.helpers import wait_for
from tests.lab.fixtures import free_udp, lab_port
from tests.lab.lab import Dnsmasq, Kamailio, need

DNS_IP = "127.0.0.60"
DEAD_IP = "127.0.0.3"  # nothing listens there


def resolver_at(port: int, ip: str = DNS_IP, lifetime: float = 2.0) -> Resolver:
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [ip]
    r.nameserver_ports = {ip: port}
    r.lifetime = lifetime
    return Resolver(r)


@pytest.fixture
def office_dns(tmp_path: Path, kamailio: Kamailio) -> Iterator[tuple[Dnsmasq, int]]:
    need("dnsmasq")
    dead = free_udp(DEAD_IP)
    records = [
        # office.test: two servers by SRV, the better one dead.
        f"--srv-host=_sip._udp.office.test,pbx1.office.test,{dead},1,10",
        f"--srv-host=_sip._udp.office.test,pbx2.office.test,{kamailio.port},2,10",
        f"--host-record=pbx1.office.test,{DEAD_IP}",
        "--host-record=pbx2.office.test,127.0.0.1",
        # naptr.test: NAPTR to an SRV name of another zone.
        "--naptr-record=naptr.test,10,10,S,SIP+D2U,,_sip._udp.elsewhere.test",
        f"--srv-host=_sip._udp.elsewhere.test,pbx2.office.test,{kamailio.port},1,10",
        "--srv-host=_sip._udp.naptr.test,pbx1.office.test,5060,1,10",
        # loop.test: a non-terminal NAPTR pointing at itself (never followed).
        "--naptr-record=loop.test,10,10,,SIP+D2U,,loop.test",
        f"--srv-host=_sip._udp.loop.test,pbx2.office.test,{kamailio.port},1,10",
        # nowhere.test: an SRV whose target has no address, then a good one.
        "--srv-host=_sip._udp.nowhere.test,void.office.test,5060,1,10",
        f"--srv-host=_sip._udp.nowhere.test,pbx2.office.test,{kamailio.port},2,10",
        # plain.test: no SRV at all, an A record on the default port.
        "--host-record=plain.test,127.0.0.1",
    ]
    d = Dnsmasq(tmp_path / "dns", DNS_IP, lab_port(), records).start()
    try:
        yield d, dead
    finally:
        d.stop()


def test_srv_targets_in_priority_order(office_dns, kamailio) -> None:
    d, dead = office_dns
    targets = resolver_at(d.port).targets("office.test", None, "udp")
    assert [(t.host, t.address, t.port, t.label) for t in targets] == [
        ("pbx1.office.test", DEAD_IP, dead, "SRV 1/2"),
        ("pbx2.office.test", "127.0.0.1", kamailio.port, "SRV 2/2")]


def test_naptr_leads_to_its_srv_and_a_naptr_loop_is_not_followed(office_dns, kamailio) -> None:
    d, _ = office_dns
    r = resolver_at(d.port)
    [via_naptr] = r.targets("naptr.test", None, "udp")
    assert (via_naptr.host, via_naptr.port) == ("pbx2.office.test", kamailio.port)
    [looped] = r.targets("loop.test", None, "udp")  # falls back to the SRV of the name
    assert looped.port == kamailio.port


def test_an_srv_target_without_address_is_skipped(office_dns, kamailio) -> None:
    d, _ = office_dns
    targets = resolver_at(d.port).targets("nowhere.test", None, "udp")
    assert [(t.host, t.port) for t in targets] == [("pbx2.office.test", kamailio.port)]


def test_no_srv_means_the_address_on_the_default_port_and_a_port_skips_srv(office_dns) -> None:
    d, _ = office_dns
    r = resolver_at(d.port)
    assert [(t.address, t.port) for t in r.targets("plain.test", None, "udp")] == \
        [("127.0.0.1", 5060)]
    assert [(t.address, t.port) for t in r.targets("plain.test", None, "tls")] == \
        [("127.0.0.1", 5061)]
    # With a port, SRV is not asked (RFC 3263 4.2): office.test has no A record, so nothing.
    with pytest.raises(DnsError):
        r.targets("office.test", 5060, "udp")
    assert [(t.address, t.port) for t in r.targets("127.0.0.9", None, "udp")] == \
        [("127.0.0.9", 5060)]


def test_answers_are_cached(office_dns) -> None:
    d, _ = office_dns
    r = resolver_at(d.port)
    r.targets("office.test", None, "udp")
    first = r.lookups
    for _ in range(10):
        r.targets("office.test", None, "udp")
    assert r.lookups == first  # ten more REGISTERs' worth of lookups, none sent
    wait_for(lambda: d.queries() >= first, what="dnsmasq's log")
    assert d.queries() == first


def test_a_resolver_that_never_answers_is_named() -> None:
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind((DNS_IP, 0))
    try:
        r = resolver_at(mute.getsockname()[1], lifetime=1.0)
        started = time.monotonic()
        with pytest.raises(DnsError, match="did not answer"):
            r.targets("office.test", None, "udp")
        assert time.monotonic() - started < 10  # gives up, never hangs the registration
    finally:
        mute.close()


def test_the_phone_registers_with_the_second_srv_target_when_the_first_is_dead(
        office_dns, kamailio) -> None:
    d, _ = office_dns
    config = SipConfig(server="office.test", port=None, username="101",
                       password=Secret("pw101"), domain=f"127.0.0.1:{kamailio.port}",
                       bind=f"127.0.0.2:{free_udp('127.0.0.2')}")
    ua = UserAgent(config, lambda: bytes(320), lambda pcm: None, dns=resolver_at(d.port))
    events: list[Event] = []
    ua.start(events.append)
    try:
        wait_for(lambda: ua.status[0] == "registered", timeout=20,
                 what="registered through the second SRV target")
        said = [e.reason for e in events if isinstance(e, RegistrationChanged)]
        assert "No answer from pbx1.office.test (SRV 1/2)" in said  # what the screen showed
        assert ua.me.proxy == ("127.0.0.1", kamailio.port)
    finally:
        ua.stop()
