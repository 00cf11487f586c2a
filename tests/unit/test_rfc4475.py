"""RFC 4475's torture messages (tests/lab/rfc4475/: the valid ones as the RFC gives them, the
invalid ones after its section 3.1.2): every valid one parses to what it means, every invalid
one is a ParseError (the transport drops it and counts it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.sip.message import ParseError, parse

MESSAGES = Path(__file__).resolve().parents[1] / "lab" / "rfc4475"


@pytest.mark.parametrize(("name", "method", "call_id", "cseq", "branch", "from_tag", "to_tag"), [
    ("wsinv", "INVITE", "wsinv.ndaksdj@192.0.2.1", (9, "INVITE"), "390skdjuw", "98asjd8",
     "1918181833n"),
    ("esc01", "INVITE", "esc01.239409asdfakjkn23onasd0-3234", (234234, "INVITE"),
     "z9hG4bKkdjuw", "938", ""),
    ("escnull", "REGISTER", "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd",
     (14398234, "REGISTER"), "z9hG4bKkdjuw", "839923423", ""),
    ("lwsdisp", "OPTIONS", "lwsdisp.1234abcd@funky.example.com", (60, "OPTIONS"),
     "z9hG4bKkdjuw", "323", ""),
    ("semiuri", "OPTIONS", "semiuri.0ha0isndaksdj", (8, "OPTIONS"), "z9hG4bKkdjuw", "33242",
     ""),
    ("transports", "OPTIONS", "transports.kijh4akdnaqjkwendsasfdj", (60, "OPTIONS"),
     "z9hG4bKkdjuw", "323", ""),
])
def test_valid_messages_mean_what_they_say(name, method, call_id, cseq, branch, from_tag,
                                           to_tag) -> None:
    msg = parse((MESSAGES / f"{name}.dat").read_bytes())
    assert (msg.method, msg.call_id, msg.cseq, msg.branch, msg.from_tag(), msg.to_tag()) == \
        (method, call_id, cseq, branch, from_tag, to_tag)


def test_the_tortuous_invite_keeps_its_body_and_three_vias() -> None:
    msg = parse((MESSAGES / "wsinv.dat").read_bytes())
    assert len(msg.all("Via")) == 3 and msg.get("Content-Type") == "application/sdp"
    assert msg.body.startswith(b"v=0") and len(msg.body) == 150


INVALID = sorted(p.stem.removeprefix("invalid-") for p in MESSAGES.glob("invalid-*.dat"))


@pytest.mark.parametrize("name", INVALID)
def test_invalid_messages_are_refused(name: str) -> None:
    with pytest.raises(ParseError):
        parse((MESSAGES / f"invalid-{name}.dat").read_bytes())


def test_there_are_messages_of_both_kinds() -> None:
    assert len(INVALID) >= 10 and len(list(MESSAGES.glob("*.dat"))) >= 16
