"""STUN Binding requests and responses (RFC 5389), the little the phone needs of them.

Owns: building a Binding request, telling a STUN datagram from a SIP one on the same socket
(RFC 5626 4.4.2 / RFC 7983: the first two bits are 0 and the magic cookie follows), and reading
the mapped address from a Binding success response (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS).
Never touches: sockets or timers (the registration client sends and waits).

Why the standard library: a Binding request is 20 bytes, and it must leave from the SIP socket
itself (the mapping of that flow is what matters); STUN client libraries open their own socket.
"""

from __future__ import annotations

import ipaddress
import os
import struct

COOKIE = 0x2112A442
BINDING_REQUEST, BINDING_SUCCESS = 0x0001, 0x0101
MAPPED_ADDRESS, XOR_MAPPED_ADDRESS = 0x0001, 0x0020


def binding_request() -> tuple[bytes, bytes]:
    """(transaction id, the request)."""
    tid = os.urandom(12)
    return tid, struct.pack("!HHI", BINDING_REQUEST, 0, COOKIE) + tid


def is_stun(data: bytes) -> bool:
    return len(data) >= 20 and data[0] < 4 and struct.unpack("!I", data[4:8])[0] == COOKIE


def mapped(data: bytes, tid: bytes) -> tuple[str, int] | None:
    """The address a Binding success response for `tid` carries; None for anything else
    (another transaction, an error response, garbage)."""
    if not is_stun(data):
        return None
    kind, length = struct.unpack("!HH", data[:4])
    if kind != BINDING_SUCCESS or data[8:20] != tid or len(data) < 20 + length:
        return None
    found: dict[int, tuple[str, int]] = {}
    at = 20
    while at + 4 <= 20 + length:
        attr, size = struct.unpack("!HH", data[at:at + 4])
        value = data[at + 4:at + 4 + size]
        if attr in (MAPPED_ADDRESS, XOR_MAPPED_ADDRESS) and len(value) >= 8:
            family, port = value[1], struct.unpack("!H", value[2:4])[0]
            raw = value[4:8] if family == 1 else value[4:20]
            if attr == XOR_MAPPED_ADDRESS:
                port ^= COOKIE >> 16
                key = struct.pack("!I", COOKIE) + tid
                raw = bytes(b ^ key[i] for i, b in enumerate(raw))
            if (family == 1 and len(raw) == 4) or (family == 2 and len(raw) == 16):
                found[attr] = (str(ipaddress.ip_address(raw)), port)
        at += 4 + size + (-size % 4)  # attributes are padded to 4 bytes
    return found.get(XOR_MAPPED_ADDRESS) or found.get(MAPPED_ADDRESS)
