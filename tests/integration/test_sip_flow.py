"""The registration flow against a real Kamailio: keep-alives answered on UDP (a STUN Binding
where Kamailio's stun module answers it, else OPTIONS) and on TCP (the CRLF ping and its pong),
so a live flow stays "registered" between refreshes; a dead one is the subject of
test_sip_calls.py's registrar-down test."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from firmware.events import RegistrationChanged
from tests.helpers import wait_for
from tests.lab.lab import Kamailio


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_keepalives_are_answered_and_the_phone_stays_registered(kamailio, lab_phone,
                                                                transport) -> None:
    phone = lab_phone(kamailio, transport=transport, keepalive_seconds=1).registered()
    changes = len(phone.saw(RegistrationChanged))
    start = time.monotonic()
    # Four periods: a flow whose pings went unanswered would have been declared dead by now
    # (and registering again); the server's answers keep it "registered" throughout.
    wait_for(lambda: phone.account.transport.heard > start + 4, timeout=15,
             what="the server answering keep-alives for four periods")
    assert phone.saw(RegistrationChanged)[changes:] == []
    assert phone.state.registration == "registered"


@pytest.fixture
def kamailio_stun(lab_dir) -> Iterator[Kamailio]:
    from tests.lab.fixtures import lab_port

    k = Kamailio(lab_dir / "kamailio-stun", port=lab_port(), stun=True).start()
    yield k
    k.stop()


@pytest.mark.parametrize(("with_stun", "said"), [
    (True, "answers STUN: keep-alives by STUN Binding"),
    (False, "answers no STUN; keep-alives by OPTIONS"),
])
def test_udp_keepalives_use_stun_where_the_server_answers_it(
        request, lab_phone, caplog, with_stun, said) -> None:
    caplog.set_level(logging.INFO, logger="sip")
    kamailio = request.getfixturevalue("kamailio_stun" if with_stun else "kamailio")
    phone = lab_phone(kamailio, keepalive_seconds=1).registered()
    changes = len(phone.saw(RegistrationChanged))
    start = time.monotonic()
    wait_for(lambda: phone.account.transport.heard > start + 4, timeout=15,
             what="the server answering keep-alives for four periods")
    assert said in caplog.text
    assert phone.saw(RegistrationChanged)[changes:] == []  # the probe never cost the flow


def test_a_stun_server_is_asked_before_the_first_register(kamailio, kamailio_stun, lab_phone,
                                                          caplog) -> None:
    caplog.set_level(logging.INFO, logger="sip")
    stun = f"127.0.0.1:{kamailio_stun.port}"  # Kamailio's stun module as the STUN server
    phone = lab_phone(kamailio, stun_server=stun).registered()
    # No NAT on loopback: it sees us where we are, and our Contact stays the local address.
    assert f"the STUN server {stun} sees us at 127.0.0.2:{phone.port}" in caplog.text
    assert phone.account.me.public is None
    assert "the provider sees us at" not in caplog.text  # so nothing to register again


def test_a_stun_server_that_never_answers_is_named_and_passed_over(kamailio, lab_phone) -> None:
    from tests.lab.lab import free_udp

    dead = f"127.0.0.3:{free_udp('127.0.0.3')}"
    phone = lab_phone(kamailio, stun_server=dead).registered(timeout=20)
    reasons = [e.reason for e in phone.saw(RegistrationChanged)]
    assert f"No answer from STUN server {dead}" in reasons  # on screen while it waited
    assert phone.state.registration_reason == ""
