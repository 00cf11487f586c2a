"""SRTP (RFC 3711) with keys exchanged in SDP (SDES, RFC 4568), through libsrtp (pylibsrtp).

Owns: the crypto suites we speak (AES_CM_128_HMAC_SHA1_80 and _32), making and reading
`a=crypto` lines, choosing one from an offer or matching one in an answer by the call's
`[sip] srtp` mode, and the per-call protect/unprotect contexts (with the count of packets
dropped because they failed authentication or were replayed). Never touches: sockets, SIP
messages or the phone; keys never reach a log line (only suites and tags do).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from dataclasses import dataclass

log = logging.getLogger("srtp")

SUITES = ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")  # our order of preference
KEY_BYTES = 30  # 16 bytes of master key and 14 of salt


class SrtpError(ValueError):
    """The far end's crypto cannot be used (the reason says why, without any key)."""


@dataclass(frozen=True)
class Crypto:
    tag: int
    suite: str
    key: bytes = b""

    def __repr__(self) -> str:  # never the key
        return f"Crypto({self.tag}, {self.suite})"

    def line(self) -> str:
        """The value of an `a=crypto:` line."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode()}"


def parse_crypto(value: str) -> Crypto:
    """`1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|lifetime][|MKI:len]` -> Crypto; SrtpError for a
    suite we do not speak, a key that is not 30 bytes of base64, or an MKI (one key only)."""
    parts = value.split()
    if len(parts) < 3 or not parts[0].isdigit():
        raise SrtpError(f"malformed crypto attribute {value.split(' inline:')[0]!r}")
    tag, suite, params = int(parts[0]), parts[1], parts[2]
    if suite not in SUITES:
        raise SrtpError(f"unknown crypto suite {suite}")
    if not params.startswith("inline:"):
        raise SrtpError(f"crypto {tag}: no inline key")
    key_text, *extra = params[7:].split("|")
    if any(":" in e for e in extra):
        raise SrtpError(f"crypto {tag}: a master key identifier (MKI) is not supported")
    try:
        key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise SrtpError(f"crypto {tag}: the key is not base64") from None
    if len(key) != KEY_BYTES:
        raise SrtpError(f"crypto {tag}: the key has {len(key)} bytes, not {KEY_BYTES}")
    return Crypto(tag, suite, key)


def offer(suites: tuple[str, ...] = SUITES) -> tuple[Crypto, ...]:
    """Our crypto lines for an offer: a fresh key for each suite."""
    return tuple(Crypto(i + 1, s, os.urandom(KEY_BYTES)) for i, s in enumerate(suites))


def choose(theirs: list[Crypto]) -> tuple[Crypto, Crypto] | None:
    """From an offer's lines, the first we speak: (theirs, ours with a fresh key and the same
    tag and suite, for the answer); None when none is usable."""
    for c in theirs:
        if c.suite in SUITES:
            return c, Crypto(c.tag, c.suite, os.urandom(KEY_BYTES))
    return None


class Context:
    """One call's SRTP: our key protects what we send, theirs checks what we receive."""

    def __init__(self, ours: Crypto, theirs: Crypto) -> None:
        from pylibsrtp import Policy, Session

        profiles = {"AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
                    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32}
        self.suite = ours.suite
        self._tx = Session(Policy(key=ours.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                  srtp_profile=profiles[ours.suite]))
        self._rx = Session(Policy(key=theirs.key, ssrc_type=Policy.SSRC_ANY_INBOUND,
                                  srtp_profile=profiles[theirs.suite]))
        # libsrtp sessions are not thread-safe: RTP and RTCP use each from their own thread.
        self._tx_lock = threading.Lock()
        self._rx_lock = threading.Lock()
        self.dropped = 0
        self.rtcp_dropped = 0

    def protect(self, packet: bytes) -> bytes:
        with self._tx_lock:
            return bytes(self._tx.protect(packet))

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP (RFC 3711 3.4): encrypted after the first 8 bytes, with index and tag."""
        with self._tx_lock:
            return bytes(self._tx.protect_rtcp(packet))

    def unprotect(self, packet: bytes) -> bytes | None:
        """The RTP packet, or None (counted) when it fails authentication or is a replay."""
        return self._unprotect(packet, rtcp=False)

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """The RTCP packet, or None (counted) when it fails authentication or is a replay."""
        return self._unprotect(packet, rtcp=True)

    def _unprotect(self, packet: bytes, rtcp: bool) -> bytes | None:
        from pylibsrtp import Error

        try:
            with self._rx_lock:
                rx = self._rx
                return bytes(rx.unprotect_rtcp(packet) if rtcp else rx.unprotect(packet))
        except Error as exc:
            if rtcp:
                self.rtcp_dropped += 1
                dropped = self.rtcp_dropped
            else:
                self.dropped += 1
                dropped = self.dropped
            if dropped in (1, 10, 100) or dropped % 1000 == 0:  # a flood is not a log flood
                log.info("%s: %d packet(s) dropped so far (%s)", "SRTCP" if rtcp else "SRTP",
                         dropped, exc)
            return None


def check_offer(profile: str, cryptos: tuple[Crypto, ...], mode: str,
                problems: tuple[str, ...] = ()) -> None:
    """SrtpError when an offer cannot be answered in `mode` ("off", "optional", "required")."""
    secure_only = profile.upper().startswith("RTP/SAVP")
    usable = mode != "off" and any(c.suite in SUITES for c in cryptos)
    if usable:
        return
    if secure_only and mode == "off":
        raise SrtpError("the far end requires encrypted media (SRTP) and [sip] srtp is off")
    if secure_only:
        raise SrtpError("the far end requires SRTP but offers no key we can use"
                        + (f" ({'; '.join(problems)})" if problems else ""))
    if mode == "required":
        raise SrtpError("the far end offers unencrypted media and [sip] srtp is required")


class Negotiation:
    """One call's SDES exchange (RFC 4568) in the call's mode: which crypto lines our SDP
    carries, and the context agreed, renewed only when a key changes."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.offered: tuple[Crypto, ...] = ()
        self.ours: Crypto | None = None
        self.theirs: Crypto | None = None
        self.context: Context | None = None
        # "required" offers RTP/SAVP (plain RTP refused); "optional" offers RTP/AVP with keys,
        # best effort, as baresip and Yealink do, so a peer without SRTP still answers.
        self.profile = "RTP/SAVP" if mode == "required" else "RTP/AVP"

    def lines(self) -> tuple[Crypto, ...]:
        """The crypto lines of our next SDP: the agreed one, or one per suite in an offer."""
        if self.mode == "off":
            return ()
        if self.ours is not None:
            return (self.ours,)
        if not self.offered:
            self.offered = offer()
        return self.offered

    def on_offer(self, profile: str, cryptos: tuple[Crypto, ...],
                 problems: tuple[str, ...] = ()) -> Context | None:
        """Their offer: the context for the answer we give; SrtpError when the mode refuses
        it (488)."""
        check_offer(profile, cryptos, self.mode, problems)
        picked = choose(list(cryptos)) if self.mode != "off" else None
        if picked is None:
            self.ours = self.theirs = self.context = None
            self.profile = "RTP/AVP"
            return None
        theirs, ours = picked
        if self.ours is not None and (self.ours.tag, self.ours.suite) == (ours.tag, ours.suite):
            ours = self.ours  # a re-offer: our key stays, only theirs may change
        self.profile = profile
        return self._agree(ours, theirs)

    def on_answer(self, cryptos: tuple[Crypto, ...]) -> Context | None:
        """Their answer to our offer; SrtpError when the mode needs keys it does not give."""
        if self.mode == "off":
            return None
        mine = {(c.tag, c.suite): c for c in self.lines()}
        match = next((c for c in cryptos if (c.tag, c.suite) in mine), None)
        if match is None:
            if self.mode == "required":
                raise SrtpError("the far end answered without encryption and [sip] srtp is "
                                "required")
            self.ours = self.theirs = self.context = None
            return None
        return self._agree(mine[(match.tag, match.suite)], match)

    def _agree(self, ours: Crypto, theirs: Crypto) -> Context:
        if self.context is None or (ours, theirs) != (self.ours, self.theirs):
            self.context = Context(ours, theirs)
            log.info("SRTP: media encrypted with %s", ours.suite)
        self.ours, self.theirs = ours, theirs
        return self.context
