"""SIP message parsing: what real software sends parses, nothing else raises but ParseError."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.sip import sdp
from firmware.sip.message import ParseError, address, authorization, challenge, parse, parse_uri

BARESIP_INVITE = (
    b"INVITE sip:101@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1a2b;rport\r\n"
    b"Contact: <sip:200-0x55d2c9@127.0.0.1:5070>\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:101@127.0.0.1:5060>\r\n"
    b"From: \"Bob\" <sip:102@127.0.0.1:5060>;tag=abc-def\r\n"
    b"Call-ID: 1234-abcd\r\n"
    b"CSeq: 20 INVITE\r\n"
    b"Supported:\r\n"  # empty: pyVoIP 2.0.0a4 dropped the whole INVITE on this
    b"Record-Route: <sip:127.0.0.1;lr;ftag=abc-def>\r\n"
    b"Record-Route: <sip:10.0.0.1;lr>, <sip:10.0.0.2;lr>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 139\r\n\r\n"
    b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n"
)


def test_baresips_invite_parses_with_empty_headers_and_dashes() -> None:
    msg = parse(BARESIP_INVITE)
    assert (msg.method, msg.cseq, msg.call_id) == ("INVITE", (20, "INVITE"), "1234-abcd")
    assert msg.get("Supported") == ""
    assert address(msg.get("Contact")).uri == "sip:200-0x55d2c9@127.0.0.1:5070"
    assert address(msg.get("From")) .display == "Bob" and msg.from_tag() == "abc-def"
    assert msg.all("Record-Route") == ["<sip:127.0.0.1;lr;ftag=abc-def>", "<sip:10.0.0.1;lr>",
                                       "<sip:10.0.0.2;lr>"]
    media = sdp.parse(msg.body)
    assert (media.port, media.codec, media.dtmf, media.direction) == (10000, 8, 101,
                                                                     "sendonly")


def test_compact_names_folding_and_round_trip() -> None:
    raw = (b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\n"
           b"t: <sip:c@d>;\r\n tag=2\r\ni: xyz\r\nCSeq: 1 REGISTER\r\nl: 0\r\n\r\n")
    msg = parse(raw)
    assert msg.status == 200 and msg.to_tag() == "2" and msg.branch == "z9hG4bKx"
    assert parse(msg.encode()).headers == msg.headers


@pytest.mark.parametrize("data", [
    b"", b"hello", b"SIP/2.0 2000 OK\r\n\r\n", b"INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n",
    BARESIP_INVITE.replace(b"To: <sip:101@127.0.0.1:5060>\r\n", b""),
    BARESIP_INVITE.replace(b"CSeq: 20", b"CSeq: x"), b"\xff\xfe\xfd" * 100,
    b"A" * 70000,
])
def test_malformed_input_is_a_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000) | st.builds(lambda cut, junk: BARESIP_INVITE[:cut] + junk,
                                             st.integers(0, len(BARESIP_INVITE)),
                                             st.binary(max_size=50)))
def test_any_bytes_parse_or_raise_parse_error_only(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse(data)


def test_digest_matches_rfc_2617() -> None:
    chal = challenge('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
                     'opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = authorization(chal, "GET", "/dir/index.html", "Mufasa", "Circle Of Life")
    fields = challenge(value)
    ha1 = hashlib.md5(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    expected = hashlib.md5(f"{ha1}:{chal['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:"
                           f"{ha2}".encode()).hexdigest()
    assert fields["response"] == expected and fields["opaque"] == chal["opaque"]


def test_uris() -> None:
    uri = parse_uri("sip:+32470123456@pbx.example.com:5080;user=phone")
    assert (uri.user, uri.host, uri.port, uri.params) == ("+32470123456", "pbx.example.com",
                                                         5080, {"user": "phone"})


def test_ipv6_uris_and_sdp() -> None:
    uri = parse_uri("sip:101@[fd00::1]:5062;transport=udp")
    assert (uri.user, uri.host, uri.port) == ("101", "[fd00::1]", 5062)
    offer = sdp.build("fd00::2", 20000, 1, 1)
    assert b"c=IN IP6 fd00::2\r\n" in offer and b"o=deskphone 1 1 IN IP6 fd00::2\r\n" in offer
    media = sdp.parse(offer)
    assert (media.address, media.port) == ("fd00::2", 20000)
    assert b"c=IN IP4 10.0.0.2\r\n" in sdp.build("10.0.0.2", 20000, 1, 1)


def test_only_the_8000_hz_telephone_event_of_an_offer_is_taken() -> None:
    # linphone offers RFC 4733 events at 48000, 16000 and 8000: the answer once named payload
    # 99 (its 48 kHz one) telephone-event/8000, changing the offer's mapping (RFC 3264 6.1).
    offer = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
             b"m=audio 30400 RTP/AVP 96 0 8 99 100 101\r\na=rtpmap:96 opus/48000/2\r\n"
             b"a=rtpmap:99 telephone-event/48000\r\na=rtpmap:100 telephone-event/16000\r\n"
             b"a=rtpmap:101 telephone-event/8000\r\n")
    media = sdp.parse(offer)
    assert (media.codec, media.dtmf) == (0, 101)
    assert sdp.parse(offer.replace(b"a=rtpmap:101 telephone-event/8000\r\n", b"")).dtmf is None


HEAD = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"


def test_our_codec_order_picks_from_an_offer_and_the_far_ends_order_from_an_answer() -> None:
    both = HEAD + b"m=audio 30400 RTP/AVP 0 9 8\r\na=rtpmap:9 G722/8000\r\n"
    assert sdp.parse(both, (9, 0, 8), offer=True).codec == 9  # [sip] codecs: G722 first
    assert sdp.parse(both, (0, 9, 8), offer=True).codec == 0
    assert sdp.parse(both, (9, 0, 8)).codec == 0  # an answer: the far end has chosen
    ours = sdp.build("10.0.0.2", 20000, 1, 1, codecs=(9, 0, 8))
    assert b"m=audio 20000 RTP/AVP 9 0 8 101\r\n" in ours
    assert b"a=rtpmap:9 G722/8000\r\n" in ours  # RFC 3551's 8000, though G.722 samples 16k


def test_g722_offered_at_a_wrong_clock_rate_is_not_taken(caplog) -> None:
    wrong = HEAD + b"m=audio 30400 RTP/AVP 9 0\r\na=rtpmap:9 G722/16000\r\n"
    assert sdp.parse(wrong, (9, 0, 8), offer=True).codec == 0  # the next one instead
    assert "g722/16000" in caplog.text.lower() and "RFC 3551" in caplog.text
    with pytest.raises(sdp.SdpError, match="RFC 3551 says 8000"):
        sdp.parse(HEAD + b"m=audio 30400 RTP/AVP 9\r\na=rtpmap:9 G722/16000\r\n", (9, 0, 8),
                  offer=True)


def test_the_sdp_part_of_a_multipart_body_is_found_and_nothing_else_is_taken_for_it() -> None:
    offer = sdp.build("10.0.0.2", 20000, 1, 1)
    body = (b"--b1\r\nContent-Type: application/ISUP;version=itu-t92+\r\n\r\n\x01\x00\x49\r\n"
            b"--b1\r\nContent-Type: application/sdp\r\n\r\n" + offer + b"\r\n--b1--\r\n")
    assert sdp.sdp_part('multipart/mixed; boundary="b1"', body) == offer
    assert sdp.sdp_part("multipart/mixed;boundary=b1", body.replace(b"application/sdp",
                                                                    b"text/plain")) is None
    assert sdp.sdp_part("multipart/mixed", body) is None  # no boundary: nothing to split by
    assert sdp.sdp_part("application/sdp", offer) is None
