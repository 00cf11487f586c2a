"""RFC 4475's torture messages, bit-exact from the RFC's archive (tests/lab/rfc4475/): every
valid one parses to what it means, every invalid one is a ParseError (the transport drops it and
counts it); the application-level ones (app-*) parse, or are dropped where they lack what every
request needs, and tests/integration/test_sip_rfc4475.py checks what the phone answers them."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.sip.message import ParseError, parse

MESSAGES = Path(__file__).resolve().parents[1] / "lab" / "rfc4475"


@pytest.mark.parametrize(("name", "method", "call_id", "cseq"), [
    ("wsinv", "INVITE", "wsinv.ndaksdj@192.0.2.1", 9),  # 3.1.1.1
    ("intmeth", "!interesting-Method0123456789_*+`.%indeed'~",
     "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{", 139122385),  # 3.1.1.2
    ("esc01", "INVITE", "esc01.239409asdfakjkn23onasd0-3234", 234234),  # 3.1.1.3
    ("escnull", "REGISTER", "escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd", 14398234),
    ("esc02", "RE%47IST%45R", "esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf", 29344),  # 3.1.1.5
    ("lwsdisp", "OPTIONS", "lwsdisp.1234abcd@funky.example.com", 60),  # 3.1.1.6
    ("longreq", "INVITE", None, 3882340),  # 3.1.1.7
    ("dblreq", "REGISTER", "dblreq.0ha0isndaksdj99sdfafnl3lk233412", 8),  # 3.1.1.8
    ("semiuri", "OPTIONS", "semiuri.0ha0isndaksdj", 8),  # 3.1.1.9
    ("transports", "OPTIONS", "transports.kijh4akdnaqjkwendsasfdj", 60),  # 3.1.1.10
    ("mpart01", "MESSAGE", None, 1),  # 3.1.1.11
    ("unreason", "", "unreason.1234ksdfak3j2erwedfsASdf", 35),  # 3.1.1.12
    ("noreason", "", "noreason.asndj203insdf99223ndf", 35),  # 3.1.1.13
    ("badbranch", "OPTIONS", None, 8),  # 3.2.1: no magic cookie, still a request
    ("inv2543", "INVITE", "inv2543.1717@ift.client.example.com", 56),  # 3.4.1: RFC 2543
])
def test_valid_messages_mean_what_they_say(name, method, call_id, cseq) -> None:
    msg = parse((MESSAGES / f"{name}.dat").read_bytes())
    assert msg.method == method
    if call_id is not None:
        assert msg.call_id == call_id
    assert msg.cseq[0] == cseq
    if method:
        assert msg.cseq[1] == method  # case and all (RFC 3261 7.1)


def test_what_the_valid_messages_carry() -> None:
    def read(name: str):
        return parse((MESSAGES / f"{name}.dat").read_bytes())

    wsinv = read("wsinv")
    assert len(wsinv.all("Via")) == 3 and wsinv.get("Content-Type") == "application/sdp"
    assert wsinv.body.startswith(b"v=0") and len(wsinv.body) == 150
    # dblreq: a REGISTER with Content-Length 0 and an INVITE after it in the same datagram:
    # the first is the message, the rest is ignored (RFC 4475 3.1.1.8).
    assert read("dblreq").body == b""
    assert (read("unreason").status, read("noreason").status, read("noreason").reason) == \
        (200, 100, "")
    longreq = read("longreq")
    assert len(longreq.get("Call-ID")) > 100 and len(longreq.all("Via")) == 34
    assert read("mpart01").get("Content-Type").startswith("multipart/mixed")


INVALID = sorted(p.stem.removeprefix("invalid-") for p in MESSAGES.glob("invalid-*.dat"))


@pytest.mark.parametrize("name", INVALID)
def test_invalid_messages_are_refused(name: str) -> None:
    with pytest.raises(ParseError):
        parse((MESSAGES / f"invalid-{name}.dat").read_bytes())


@pytest.mark.parametrize(("name", "parses"), [
    ("insuf", False),  # 3.3.1: no Call-ID, From or To: nothing to answer
    ("multi01", False),  # 3.3.9: two Call-IDs, two CSeqs, two Tos, two Froms
    ("mcl01", False),  # 3.3.10: two Content-Lengths
    ("unkscm", True), ("novelsc", True), ("unksm2", True), ("bext01", True), ("invut", True),
    ("regaut01", True), ("bcast", True), ("zeromf", True), ("cparam01", True),
    ("cparam02", True), ("regescrt", True), ("sdp01", True),
])
def test_application_level_messages(name: str, parses: bool) -> None:
    data = (MESSAGES / f"app-{name}.dat").read_bytes()
    if parses:
        parse(data)
    else:
        with pytest.raises(ParseError):
            parse(data)


def test_every_message_of_the_rfc_is_here() -> None:
    # 13 valid and 19 invalid parser messages (3.1), 1 transaction-layer (3.2), 15 application
    # (3.3), 1 backward compatibility (3.4).
    assert len(INVALID) == 19 and len(list(MESSAGES.glob("app-*.dat"))) == 15
    assert len(list(MESSAGES.glob("*.dat"))) == 49
