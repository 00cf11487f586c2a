"""RFC 4475's application-level messages (section 3.3), sent to a registered phone from its
provider's own address, as a proxy would relay them: each gets the answer the RFC asks for, the
ones with nothing to answer are dropped, and the phone never rings for any of them."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from firmware.events import IncomingCall
from firmware.sip.message import parse
from tests.lab.lab import HERE

pytestmark = pytest.mark.lab
MESSAGES = HERE / "rfc4475"
ANSWERS = [
    ("unkscm", 416),  # 3.3.2: a Request-URI of an unknown scheme
    ("novelsc", 416),  # 3.3.3: another scheme, sip in its headers
    ("bext01", 420),  # 3.3.5: Require of an extension nobody has
    ("invut", 415),  # 3.3.6: an INVITE whose body is not SDP
    ("sdp01", 406),  # 3.3.15: an INVITE that accepts no SDP in the answer
    ("zeromf", 200),  # 3.3.12: Max-Forwards 0 to its destination: answered
    ("unksm2", 405), ("regaut01", 405), ("cparam01", 405), ("cparam02", 405),
    ("regescrt", 405),  # REGISTERs (3.3.4, .7, .13, .14, .16): a phone is no registrar
]
DROPPED = ["insuf", "multi01", "mcl01", "bcast"]  # 3.3.1, .9, .10 and a stray response


def test_application_level_messages_get_the_rfc_s_answers(lab_phone) -> None:
    provider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    provider.bind(("127.0.0.3", 0))
    provider.settimeout(10)
    try:
        phone = lab_phone(SimpleNamespace(ip="127.0.0.3", port=provider.getsockname()[1],
                                          tls_port=None), keepalive_seconds=0, mwi=False)
        data, addr = provider.recvfrom(65535)
        register = parse(data)
        ok = ["SIP/2.0 200 OK", *(f"Via: {v}" for v in register.all("Via")),
              f"From: {register.get('From')}", f"To: {register.get('To')};tag=reg",
              f"Call-ID: {register.call_id}", f"CSeq: {register.get('CSeq')}",
              f"Contact: {register.get('Contact').split(';expires')[0]};expires=300",
              "Content-Length: 0", "", ""]
        provider.sendto("\r\n".join(ok).encode(), addr)
        phone.registered()

        def answer(name: str) -> int:
            provider.sendto((MESSAGES / f"app-{name}.dat").read_bytes(), addr)
            return parse(provider.recvfrom(65535)[0]).status

        assert [(name, answer(name)) for name, _ in ANSWERS] == ANSWERS
        for name in DROPPED:
            provider.sendto((MESSAGES / f"app-{name}.dat").read_bytes(), addr)
        # Nothing came back for those: the next answer is the probe's own.
        assert answer("zeromf") == 200
        assert phone.saw(IncomingCall) == [] and phone.state.mode == "idle"
    finally:
        provider.close()
