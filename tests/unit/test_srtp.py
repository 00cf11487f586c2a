"""SRTP with SDES keys: the crypto lines, the choice by mode, and the packets (libsrtp's
protect and unprotect): a tampered or replayed packet is dropped and counted, never played."""

from __future__ import annotations

import base64
import re
import struct

import pytest

from firmware.sip import sdp, srtp

KEY = base64.b64encode(bytes(range(30))).decode()


def offer_body(profile: str = "RTP/AVP", *cryptos: str) -> bytes:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             f"m=audio 4000 {profile} 0 101", "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:101 telephone-event/8000",
             *(f"a=crypto:{c}" for c in cryptos), "a=sendrecv"]
    return ("\r\n".join(lines) + "\r\n").encode()


def test_crypto_lines_are_read_and_bad_ones_named_without_their_key() -> None:
    media = sdp.parse(offer_body(
        "RTP/SAVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20",
        "2 F8_128_HMAC_SHA1_80 inline:" + KEY,
        "3 AES_CM_128_HMAC_SHA1_32 inline:c2hvcnQ=",
        f"4 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^20|1:4",
        "5 AES_CM_128_HMAC_SHA1_32 inline:***"))
    assert media.profile == "RTP/SAVP"
    assert [(c.tag, c.suite) for c in media.cryptos] == [(1, "AES_CM_128_HMAC_SHA1_80")]
    assert media.cryptos[0].key == bytes(range(30))
    assert media.crypto_problems == (
        "unknown crypto suite F8_128_HMAC_SHA1_80",
        "crypto 3: the key has 5 bytes, not 30",
        "crypto 4: a master key identifier (MKI) is not supported",
        "crypto 5: the key is not base64")
    assert KEY not in repr(media)  # a key never reaches a log line through repr


@pytest.mark.parametrize(("mode", "profile", "cryptos", "refused"), [
    ("off", "RTP/SAVP", True, "requires encrypted media (SRTP) and [sip] srtp is off"),
    ("off", "RTP/AVP", True, None),  # best effort offer: answered in clear
    ("optional", "RTP/AVP", False, None),
    ("optional", "RTP/SAVP", True, None),
    ("required", "RTP/AVP", False, "offers unencrypted media and [sip] srtp is required"),
    ("required", "RTP/AVP", True, None),
])
def test_offers_by_mode(mode: str, profile: str, cryptos: bool, refused: str | None) -> None:
    lines = (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}",) if cryptos else ()
    media = sdp.parse(offer_body(profile, *lines))
    n = srtp.Negotiation(mode)
    if refused:
        with pytest.raises(srtp.SrtpError, match=re.escape(refused)):
            n.on_offer(media.profile, media.cryptos)
        return
    context = n.on_offer(media.profile, media.cryptos)
    assert (context is not None) == (cryptos and mode != "off")
    answer = sdp.parse(sdp.build("127.0.0.2", 5000, 1, 1, profile=n.profile,
                                 cryptos=n.lines() if context else ()))
    assert answer.profile == (profile if context else "RTP/AVP")
    if context:
        [mine] = answer.cryptos
        assert (mine.tag, mine.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
        assert mine.key != bytes(range(30))  # our own key, not theirs echoed


def test_our_offer_and_their_answer_agree_on_one_line_and_a_plain_answer_by_mode() -> None:
    caller, callee = srtp.Negotiation("optional"), srtp.Negotiation("required")
    offer = sdp.parse(sdp.build("127.0.0.2", 5000, 1, 1, profile=caller.profile,
                                cryptos=caller.lines()))
    assert offer.profile == "RTP/AVP" and len(offer.cryptos) == 2  # _80 and _32
    b = callee.on_offer(offer.profile, offer.cryptos)
    answer = sdp.parse(sdp.build("127.0.0.3", 5002, 1, 1, profile=callee.profile,
                                 cryptos=callee.lines()))
    a = caller.on_answer(answer.cryptos)
    assert a is not None and b is not None
    packet = struct.pack("!BBHII", 0x80, 0, 7, 160, 99) + b"\x55" * 160
    assert b.unprotect(a.protect(packet)) == packet
    assert a.unprotect(b.protect(packet)) == packet
    # The same keys again (a re-INVITE): the same context, its replay window kept.
    assert caller.on_answer(answer.cryptos) is a
    # An answer without keys: plain RTP for "optional", a refusal for "required".
    assert srtp.Negotiation("optional").on_answer(()) is None
    req = srtp.Negotiation("required")
    req.lines()
    with pytest.raises(srtp.SrtpError, match="answered without encryption"):
        req.on_answer(())


def test_a_tampered_a_replayed_and_a_plain_packet_are_dropped_and_counted() -> None:
    ours = srtp.Crypto(1, "AES_CM_128_HMAC_SHA1_32", bytes(30))
    theirs = srtp.Crypto(1, "AES_CM_128_HMAC_SHA1_32", bytes(range(30)))
    sender, receiver = srtp.Context(theirs, ours), srtp.Context(ours, theirs)
    packets = [struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 5) + bytes([seq]) * 160
               for seq in range(1, 4)]
    wire = [sender.protect(p) for p in packets]
    assert len(wire[0]) == len(packets[0]) + 4  # the 32-bit tag
    assert receiver.unprotect(wire[0]) == packets[0]
    tampered = bytearray(wire[1])
    tampered[30] ^= 0x01
    assert receiver.unprotect(bytes(tampered)) is None
    assert receiver.unprotect(wire[0]) is None  # a replay
    assert receiver.unprotect(packets[2]) is None  # plain RTP where SRTP was agreed
    assert receiver.dropped == 3
    assert receiver.unprotect(wire[1]) == packets[1]  # the real one still plays
