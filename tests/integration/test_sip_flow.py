"""The registration flow against a real Kamailio: keep-alives answered on UDP (OPTIONS) and on
TCP (the CRLF ping and its pong), so a live flow stays "registered" between refreshes; a dead
one is the subject of test_sip_calls.py's registrar-down test."""

from __future__ import annotations

import time

import pytest

from firmware.events import RegistrationChanged
from tests.helpers import wait_for


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
