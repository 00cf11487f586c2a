"""STUN Binding responses read as RFC 5389 says (RFC 5769's test vector), and everything else
on the SIP socket that is not one ignored."""

from __future__ import annotations

import struct

from firmware.sip.stun import binding_request, is_stun, mapped

TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
# RFC 5769 2.2's XOR-MAPPED-ADDRESS: 192.0.2.1 port 32853.
XOR_ATTR = bytes.fromhex("00200008" "0001a147e112a643")


def response(attrs: bytes, kind: int = 0x0101, tid: bytes = TID) -> bytes:
    return struct.pack("!HHI", kind, len(attrs), 0x2112A442) + tid + attrs


def test_the_mapped_address_of_the_rfc_5769_vector() -> None:
    assert mapped(response(XOR_ATTR), TID) == ("192.0.2.1", 32853)


def test_a_request_is_stun_and_sip_is_not() -> None:
    tid, request = binding_request()
    assert len(request) == 20 and request[8:] == tid and is_stun(request)
    assert not is_stun(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.2\r\n\r\n")
    assert not is_stun(b"\r\n\r\n")


def test_what_is_not_our_answer_gives_no_address() -> None:
    assert mapped(response(XOR_ATTR), bytes(12)) is None  # another transaction
    assert mapped(response(XOR_ATTR, kind=0x0111), TID) is None  # an error response
    assert mapped(response(XOR_ATTR)[:24], TID) is None  # cut short
    assert mapped(response(bytes.fromhex("00200003" "000100")), TID) is None  # garbage value
    assert mapped(b"\x00" * 20, TID) is None
