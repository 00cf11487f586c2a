"""Where the provider saw us (RFC 3581 `received`/`rport`), read from a response's top Via;
garbage in those parameters is ignored, never believed."""

from __future__ import annotations

import pytest

from firmware.config import Secret, SipConfig
from firmware.sip.message import Message
from firmware.sip.registration import seen_at, split_bind


def response(via: str) -> Message:
    resp = Message(status=200, reason="OK")
    resp.add("Via", via)
    return resp


@pytest.mark.parametrize(("via", "seen"), [
    ("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport=40123;received=203.0.113.7",
     ("203.0.113.7", 40123)),
    ("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;rport=5060", ("10.0.0.2", 5060)),
    ("SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1", ("10.0.0.2", 5060)),
    ("SIP/2.0/UDP [fd00::2]:5062;branch=z9hG4bK1;received=fd00::9;rport=6000", ("fd00::9", 6000)),
    ("SIP/2.0/UDP 10.0.0.2:5060;rport=1;received=10.0.0.9, SIP/2.0/UDP 10.9.9.9:5060",
     ("10.0.0.9", 1)),
])
def test_the_address_the_provider_saw(via: str, seen: tuple[str, int]) -> None:
    assert seen_at(response(via)) == seen


@pytest.mark.parametrize("via", [
    "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;received=not-an-address;rport=5060",
    "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;received=10.0.0.9;rport=99999",
    "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1;received=10.0.0.9;rport=abc",
    "SIP/2.0/UDP pbx.example.com:5060;branch=z9hG4bK1",
    "",
])
def test_garbage_where_the_address_should_be_is_not_believed(via: str) -> None:
    assert seen_at(response(via)) is None


@pytest.mark.parametrize(("bind", "split"), [
    (None, ("", 5060)), ("10.0.0.5", ("10.0.0.5", 5060)), ("10.0.0.5:5062", ("10.0.0.5", 5062)),
    ("[fd00::5]:5062", ("fd00::5", 5062)), ("[fd00::5]", ("fd00::5", 5060)),
])
def test_the_bind_setting(bind: str | None, split: tuple[str, int]) -> None:
    assert split_bind(bind) == split


def test_an_ipv6_server_is_a_bracketed_domain() -> None:
    def domain(server: str, configured: str = "") -> str:
        return SipConfig(server=server, username="101", password=Secret("x"),
                         domain=configured).realm_domain
    assert domain("fd00::1") == "[fd00::1]"
    assert domain("[fd00::1]") == "[fd00::1]"
    assert domain("pbx.example.com") == "pbx.example.com"
    assert domain("fd00::1", "[fd00::1]:5062") == "[fd00::1]:5062"
