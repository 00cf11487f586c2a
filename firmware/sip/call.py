"""One SIP call: its dialog (RFC 3261 section 12), its media, and its requests in both directions.

Owns: the dialog state of one call (tags, remote target, route set, CSeq numbers), building our
in-dialog requests (ACK, BYE, CANCEL, re-INVITE, REFER) so that they follow the route set through
a record-routing proxy, answering the far end's (BYE, re-INVITE, NOTIFY, CANCEL), digest auth
when a request is challenged, and the call's RtpSession. Never touches: the phone's state (it
reports facts through `on_event`) nor the user agent that made it (it is given the identity,
the transport and `on_end`; it never imports ua.py). Every method runs under the transport lock.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.events import (
    CallAnswered,
    CallEnded,
    CallProgress,
    DtmfReceived,
    Event,
    HoldChanged,
    MediaCodec,
    MediaEncrypted,
    TransferFailed,
    TransferSucceeded,
)
from firmware.sip import codecs, sdp, srtp
from firmware.sip.capabilities import ALLOW, SUPPORTED, advertise, option_tags
from firmware.sip.identity import Identity
from firmware.sip.media import RtpSession
from firmware.sip.message import (
    Message,
    address,
    authorization,
    challenge,
    new_tag,
    parse_uri,
)
from firmware.sip.session_timer import MIN_SE, Interval, SessionTimer, min_se, requested
from firmware.sip.transport import T1, T2, TIMEOUT, Addr, Timer, Transport
from firmware.ticker import Ticker

log = logging.getLogger("sip")

# Seconds after the answer without a packet from the far end, behind a NAT router, before the
# call moves its media to a fresh port (_media_through_the_nat).
NAT_MEDIA_CHECK = 1.0

# final response -> CallEnded reason (events.CallEnded lists the codes)
REASONS = {486: "busy", 600: "busy", 603: "declined", 404: "not_found", 604: "not_found",
           484: "not_found", 480: "unavailable", 408: "no_answer", 487: "cancelled",
           403: "forbidden", 401: "forbidden", 407: "forbidden", 503: "unavailable",
           488: "error", 606: "error"}


def _methods(allow: str) -> set[str]:
    return {m.strip().upper() for m in allow.split(",") if m.strip()}


def reason_for(status: int) -> str:
    return REASONS.get(status, "error" if status < 500 else "unavailable")


@dataclass
class Auth:
    header: str = ""
    value: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class Audio:
    """The handset a call's media plays to and records from, the RTP ports it may use, and
    whether its media is encrypted."""
    source: Callable[[], bytes]
    sink: Callable[[bytes], None]
    ports: tuple[int, int] = (20000, 20999)
    srtp: str = "off"  # the effective [sip] srtp: "off" | "optional" | "required"
    codecs: tuple[int, ...] = (9, 0, 8)  # payload types of [sip] codecs, best first
    rate: int = 8000  # the handset's audio rate: what source() gives and sink() takes
    clock: Ticker | None = None  # the 20 ms clock RTP runs on (one of its own when None)


class SipCall:
    def __init__(self, me: Identity, transport: Transport, audio: Audio, phone_id: str,
                 call_id: str, direction: str, on_event: Callable[[Event], None],
                 on_end: Callable[[SipCall], None]) -> None:
        self.me = me
        self.transport = transport
        self.on_event = on_event
        self.on_end = on_end
        self.last_refer = ""  # the Refer-To of our transfer, for the log and tests
        self.phone_id = phone_id
        self.call_id = call_id
        self.direction = direction  # "in" | "out"
        self.state = "new"  # new | early | confirmed | ending | ended
        self.local_tag = new_tag()
        self.remote_tag = ""
        self.local_uri = me.aor
        self.remote_uri = ""
        self.remote_display = ""
        self.remote_target = ""
        self.route_set: list[str] = []
        self.local_cseq = 1
        self.remote_cseq = 0
        self.invite: Message | None = None  # ours (out) or theirs (in)
        self.invite_addr: Addr | None = None  # where their INVITE came from
        self.invite_dest: Addr | None = None  # where we sent ours
        self.final_response: Message | None = None
        self.ok_timer: Timer | None = None
        self.cancel_pending = False
        self.provisional = False
        self.refer_pending = False
        self.auth = Auth()
        self.held_local = False
        self.held_remote = False
        self.media_moved = False
        # Our 200 carried the offer (their INVITE or re-INVITE had none): the answer comes in
        # their ACK (RFC 3264, RFC 3261 13.2.1).
        self.offer_in_ok = False
        # Offers must never cross (RFC 3264 4, RFC 3311 5.2): our INVITE's offer until the
        # first SDP comes back, and our own re-INVITE until its final response.
        self.offer_pending = False
        self.reinvite_pending = False
        # RFC 3262: as the callee, our reliable 180 waiting for its PRACK (`unacked`, its
        # RSeq); as the caller, the RSeq of the last reliable 18x we PRACKed.
        self.reliable = False  # the caller requires 100rel
        self.rseq = 0
        self.unacked: Message | None = None
        self.prack_rseq = 0
        self.timer = SessionTimer(transport, self._refresh_session, self._session_expired)
        self.peer_allow: set[str] = set()  # the methods the far end said it allows
        self.retried_422 = False
        self.sdp_version = 1
        self.session = sdp.session_id()
        self.audio = audio
        self.rtp = RtpSession(me.local_ip, audio.source, audio.sink, self._dtmf, audio.ports,
                              audio_rate=audio.rate, clock=audio.clock)
        self.srtp = srtp.Negotiation(audio.srtp)
        self.codec_told = ""
        self.started = time.monotonic()

    def post(self, event: Event) -> None:
        self.on_event(event)

    # ------------------------------------------------------------------ SDP and its keys

    def _sdp(self, port: int, **kw: Any) -> bytes:
        """Our SDP (offer or answer) on `port`, with the crypto line(s) the call's SRTP mode
        and the negotiation so far call for."""
        kw.setdefault("codecs", self.audio.codecs)
        return sdp.build(self.me.media_ip, port, self.session, self.sdp_version,
                         profile=self.srtp.profile, cryptos=self.srtp.lines(), **kw)

    def _offer_media(self, body: bytes) -> sdp.Media:
        """Their offer, its keys taken (SdpError when it cannot be answered: 488)."""
        return self._take_offer(sdp.parse(body, self.audio.codecs, offer=True))

    def _take_offer(self, media: sdp.Media) -> sdp.Media:
        try:
            self._secure(self.srtp.on_offer(media.profile, media.cryptos,
                                            media.crypto_problems))
        except srtp.SrtpError as exc:
            raise sdp.SdpError(str(exc)) from None
        return media

    def _answer_media(self, body: bytes) -> sdp.Media:
        """Their answer to our offer, its key taken (SdpError when the mode refuses it)."""
        media = sdp.parse(body, self.audio.codecs)
        try:
            self._secure(self.srtp.on_answer(media.cryptos))
        except srtp.SrtpError as exc:
            raise sdp.SdpError(str(exc)) from None
        return media

    def _secure(self, context: srtp.Context | None) -> None:
        """The media's SRTP context from now on; the phone hears when that changes."""
        was = self.rtp.srtp is not None
        self.rtp.srtp = context
        if (context is not None) != was:
            self.post(MediaEncrypted(self.phone_id, context is not None))

    def _codec_now(self) -> None:
        """The phone hears the media's codec when it is agreed or changes."""
        codec = codecs.BY_PT[self.rtp.codec]
        if codec.name != self.codec_told:
            self.codec_told = codec.name
            log.info("call %s: %s audio", self.call_id, codec.name)
            self.post(MediaCodec(self.phone_id, codec.name, codec.wideband))

    def _dtmf(self, digit: str) -> None:
        self.post(DtmfReceived(self.phone_id, digit))

    # ------------------------------------------------------------------ building requests

    def request(self, method: str, body: bytes = b"", extra: list[tuple[str, str]] | None = None
                ) -> tuple[Message, Addr]:
        """An in-dialog request following the route set; returns it and where it goes."""
        self.local_cseq += 1
        msg = Message(method=method, uri=self.remote_target)
        msg.add("Via", self.me.via())
        msg.add("Max-Forwards", "70")
        msg.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        msg.add("To", f"<{self.remote_uri}>;tag={self.remote_tag}")
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{self.local_cseq} {method}")
        msg.add("Contact", self.me.contact())
        for route in self.route_set:
            msg.add("Route", route)
        for name, value in extra or []:
            msg.add(name, value)
        msg.add("User-Agent", self.me.user_agent)
        if body:
            msg.add("Content-Type", "application/sdp")
        msg.body = body
        return msg, self.destination()

    def destination(self) -> Addr:
        """The next hop: the first Route when it is a loose router, else the remote target."""
        if self.route_set:
            first = parse_uri(address(self.route_set[0]).uri)
            return self.me.next_hop(first.host, first.port or 5060)
        target = parse_uri(self.remote_target)
        return self.me.next_hop(target.host, target.port or 5060)

    def send_in_dialog(self, method: str, body: bytes = b"",
                       extra: list[tuple[str, str]] | None = None,
                       on_final: Callable[[Message | None], None] | None = None) -> None:
        msg, dest = self.request(method, body, extra)
        self.auth = Auth()

        def answered(resp: Message | None, msg: Message = msg) -> None:
            if resp is not None and resp.status in (401, 407) and self.auth.attempts < 2:
                retry = self._authorized(msg, resp)
                if retry is not None:
                    self.transport.request(retry, dest, answered)
                    return
            if resp is not None and resp.status < 200:
                return
            if on_final is not None:
                on_final(resp)

        self.transport.request(msg, dest, answered)

    def _authorized(self, msg: Message, resp: Message) -> Message | None:
        """`msg` again with credentials for `resp`'s challenge (new branch and CSeq)."""
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        value = resp.get(name)
        if not value:
            return None
        self.auth.attempts += 1
        chal = challenge(value)
        header = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        retry = Message(method=msg.method, uri=msg.uri, headers=list(msg.headers), body=msg.body)
        retry.remove("Authorization")
        retry.remove("Proxy-Authorization")
        retry.set("Via", self.me.via())
        number, method = msg.cseq
        if msg.method != "ACK":
            self.local_cseq = max(self.local_cseq, number) + 1
            retry.set("CSeq", f"{self.local_cseq} {method}")
        retry.add(header, authorization(chal, msg.method, msg.uri, self.me.auth_user,
                                        self.me.password))
        self.auth.header, self.auth.value = header, retry.get(header)
        return retry

    # ------------------------------------------------------------------ outgoing call

    def dial(self, target_uri: str) -> None:
        self.remote_uri = target_uri
        self.remote_target = target_uri
        port = self.rtp.open()
        body = self._sdp(port)
        msg = Message(method="INVITE", uri=target_uri)
        msg.add("Via", self.me.via())
        msg.add("Max-Forwards", "70")
        msg.add("From", f"{self.me.display()}<{self.local_uri}>;tag={self.local_tag}")
        msg.add("To", f"<{target_uri}>")
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{self.local_cseq} INVITE")
        msg.add("Contact", self.me.contact())
        msg.add("Allow", ", ".join(ALLOW))
        msg.add("Supported", ", ".join(SUPPORTED))
        msg.add("User-Agent", self.me.user_agent)
        msg.add("Content-Type", "application/sdp")
        msg.body = body
        self.invite = msg
        self.invite_dest = self.me.proxy
        self.offer_pending = True
        self.transport.request(msg, self.me.proxy, self._invite_response)

    def _invite_response(self, resp: Message | None) -> None:
        if self.state == "ended":
            if resp is not None and resp.status >= 200:
                self._ack(resp)
                if resp.status < 300:  # answered after we gave up: end it properly
                    self._learn_dialog(resp)
                    self.send_in_dialog("BYE")
            return
        if resp is None:
            self._end("timeout", "no answer from the proxy")
            return
        if resp.status >= 200 or resp.body.strip():
            self.offer_pending = False  # the first SDP back is the answer (RFC 3261 13.2.1)
        if resp.status < 200:
            if resp.status > 100:
                self.provisional = True
                if resp.to_tag():
                    self.remote_tag = resp.to_tag()
                if "100rel" in option_tags(resp.get("Require")):
                    self._prack(resp)
                early = self._early_media(resp)
                if self.state == "new" or early:
                    self.state = "early"
                    self.post(CallProgress(self.phone_id, early_media=early))
                if self.cancel_pending:
                    self._send_cancel()
            return
        if resp.status in (401, 407) and self.auth.attempts < 2 and not self.cancel_pending:
            self._ack(resp)
            assert self.invite is not None
            retry = self._authorized(self.invite, resp)
            if retry is not None:
                self.invite = retry
                self.transport.request(retry, self.me.proxy, self._invite_response)
                return
        if resp.status == 422 and not self.retried_422 and not self.cancel_pending:
            # Our session interval is below the far end's Min-SE: ask for that (RFC 4028 7.4).
            self._ack(resp)
            self.retried_422 = True
            assert self.invite is not None
            retry = Message(method="INVITE", uri=self.invite.uri, headers=list(self.invite.headers),
                            body=self.invite.body)
            retry.set("Via", self.me.via())
            self.local_cseq = self.invite.cseq[0] + 1
            retry.set("CSeq", f"{self.local_cseq} INVITE")
            retry.remove("Session-Expires")
            retry.remove("Min-SE")
            retry.add("Session-Expires", str(min_se(resp)))
            retry.add("Min-SE", str(min_se(resp)))
            self.invite = retry
            self.transport.request(retry, self.me.proxy, self._invite_response)
            return
        if resp.status >= 300:
            self._ack(resp)
            if self.cancel_pending:
                self._end("cancelled", "")
            else:
                why = f"{resp.status} {resp.reason}"
                if resp.status in (488, 606) and self.srtp.mode == "off":
                    why += " (the far end may require encrypted media: [sip] srtp)"
                self._end(reason_for(resp.status), why)
            return
        # 2xx: the call is up.
        self._learn_dialog(resp)
        self.peer_allow = _methods(resp.get("Allow"))
        self.final_response = resp
        self._ack(resp)
        if self.cancel_pending:
            self.send_in_dialog("BYE")
            self._end("cancelled", "")
            return
        if self.state == "confirmed":
            return  # a retransmitted 200: the ACK above was all it needed
        self.state = "confirmed"
        try:
            media = self._answer_media(resp.body)
        except sdp.SdpError as exc:
            log.warning("call %s: the answer has no usable audio (%s)", self.call_id, exc)
            self.send_in_dialog("BYE")
            self._end("error", f"no common audio codec ({exc})")
            return
        self.rtp.muted = False  # after early media: the microphone is heard from now on
        self.rtp.start(media.address, media.port, media.codec, media.dtmf,
                       media.rtcp_port)
        self._codec_now()
        self._session_as_uac(resp)
        self.post(CallAnswered(self.phone_id))
        if self.me.public is not None:
            self.transport.later(NAT_MEDIA_CHECK, self._media_through_the_nat)

    def _media_through_the_nat(self) -> None:
        """Behind a NAT router, our call: if nothing arrived from the far end, its first packets
        (sent to the port we offered before ours reached it) most likely made the router map
        our RTP to another port, and the far end does not follow our packets. Move to a fresh
        port, open it towards the far end first, and offer it again (one re-INVITE)."""
        remote = self.rtp.remote
        if self.state != "confirmed" or self.rtp.received or remote is None or \
                self.held_local or self.held_remote or self.media_moved:
            return
        self.media_moved = True
        try:
            port = self.rtp.move()
        except OSError as exc:
            log.warning("call %s: no RTP port to move to (%s)", self.call_id, exc)
            return
        self.rtp.punch(*remote)
        log.info("call %s: no audio from %s:%d through the NAT; offering port %d again",
                 self.call_id, *remote, port)
        self.sdp_version += 1
        body = self._sdp(port,
                         codecs=(self.rtp.codec,), dtmf=self.rtp.dtmf_pt)

        def done(resp: Message | None) -> None:
            if resp is not None and 200 <= resp.status < 300:
                self._ack_2xx(resp, f"<{self.local_uri}>;tag={self.local_tag}",
                              resp.cseq[0])

        self.send_in_dialog("INVITE", body, on_final=done)

    def _early_media(self, resp: Message) -> bool:
        """A 18x with SDP (RFC 3261 13.2.1, the answer to our offer): the far end's sound
        before the answer. Its RTP starts now; ours is silence until the call is answered, so
        nothing said before the answer leaves the phone. True the first time only."""
        if self.rtp.remote is not None or not resp.body.strip():
            return False
        try:
            media = self._answer_media(resp.body)
        except sdp.SdpError:
            return False
        self.rtp.muted = True
        self.rtp.start(media.address, media.port, media.codec, media.dtmf,
                       media.rtcp_port)
        self._codec_now()
        log.info("call %s: early media from %s:%d", self.call_id, media.address, media.port)
        return True

    def _prack(self, resp: Message) -> None:
        """A reliable 18x (RFC 3262 4): PRACK it, once, in the early dialog it makes. A
        retransmission (the same RSeq) or one out of order is not PRACKed again."""
        rseq = resp.get("RSeq").strip()
        if not rseq.isdigit() or self.state == "ended":
            return
        number = int(rseq)
        if self.prack_rseq and number != self.prack_rseq + 1:
            return
        self.prack_rseq = number
        assert self.invite is not None
        self._learn_dialog(resp)
        self.send_in_dialog("PRACK", extra=[("RAck", f"{number} {self.invite.cseq[0]} INVITE")],
                            on_final=lambda r: None)

    def _learn_dialog(self, resp: Message) -> None:
        self.remote_tag = resp.to_tag()
        contact = resp.get("Contact")
        if contact:
            self.remote_target = address(contact).uri
        self.route_set = list(reversed(resp.all("Record-Route")))

    def stray_response(self, resp: Message) -> None:
        """A response no transaction waits for: a retransmitted 200 to our INVITE."""
        _number, method = resp.cseq
        if method == "INVITE" and 200 <= resp.status < 300 and self.final_response is not None:
            self._ack(resp)

    def _ack(self, resp: Message) -> None:
        assert self.invite is not None
        number = self.invite.cseq[0]
        if resp.status >= 300:
            # Non-2xx: the ACK belongs to the INVITE transaction (same branch, same hop).
            ack = Message(method="ACK", uri=self.invite.uri)
            ack.add("Via", self.invite.all("Via")[0])
            ack.add("Max-Forwards", "70")
            ack.add("From", self.invite.get("From"))
            ack.add("To", resp.get("To"))
            ack.add("Call-ID", self.call_id)
            ack.add("CSeq", f"{number} ACK")
            for route in self.invite.all("Route"):
                ack.add("Route", route)
            self.transport.send(ack, self.invite_dest or self.me.proxy)
            return
        self._ack_2xx(resp, self.invite.get("From"), number,
                      (self.auth.header, self.auth.value) if self.auth.header else None)

    def _ack_2xx(self, resp: Message, local: str, number: int,
                 auth: tuple[str, str] | None = None) -> None:
        """The ACK of a 2xx: a new transaction, end to end, along the route set (no 481, no
        retransmitted 200s)."""
        ack = Message(method="ACK", uri=self.remote_target)
        ack.add("Via", self.me.via())
        ack.add("Max-Forwards", "70")
        ack.add("From", local)
        ack.add("To", resp.get("To"))
        ack.add("Call-ID", self.call_id)
        ack.add("CSeq", f"{number} ACK")
        for route in self.route_set:
            ack.add("Route", route)
        if auth is not None:
            ack.add(*auth)
        self.transport.send(ack, self.destination())

    def _send_cancel(self) -> None:
        assert self.invite is not None
        cancel = Message(method="CANCEL", uri=self.invite.uri)
        cancel.add("Via", self.invite.all("Via")[0])
        cancel.add("Max-Forwards", "70")
        cancel.add("From", self.invite.get("From"))
        cancel.add("To", self.invite.get("To"))
        cancel.add("Call-ID", self.call_id)
        cancel.add("CSeq", f"{self.invite.cseq[0]} CANCEL")
        for route in self.invite.all("Route"):
            cancel.add("Route", route)
        self.transport.request(cancel, self.invite_dest or self.me.proxy,
                                       lambda r: None)

    # ------------------------------------------------------------------ incoming call

    def offer(self, invite: Message, addr: Addr) -> None:
        """Their INVITE: ring (180) and tell the phone."""
        self.invite, self.invite_addr = invite, addr
        frm = address(invite.get("From"))
        self.remote_uri, self.remote_display = frm.uri, frm.display
        self.remote_tag = invite.from_tag()
        self.local_uri = address(invite.get("To")).uri
        contact = invite.get("Contact")
        self.remote_target = address(contact).uri if contact else frm.uri
        self.route_set = invite.all("Record-Route")
        self.remote_cseq = invite.cseq[0]
        self.peer_allow = _methods(invite.get("Allow"))
        self.state = "early"
        # 180 reliably only when the caller requires it (Supported alone: plain 180).
        self.reliable = "100rel" in option_tags(invite.get("Require"))
        self._ring()
        if self.me.public is not None:
            self._open_the_nat()

    def _ring(self) -> None:
        """180 Ringing; reliable (RFC 3262 3: Require: 100rel, RSeq, retransmitted from T1,
        doubling, until its PRACK) when the caller requires it."""
        if not self.reliable:
            self._respond(180, "Ringing")
            return
        assert self.invite is not None and self.invite_addr is not None
        self.rseq = random.randint(1, 2 ** 31 - 1)
        resp = self._response(180, "Ringing")
        resp.add("Require", "100rel")
        resp.add("RSeq", str(self.rseq))
        self.unacked = resp
        self.transport.respond(self.invite, resp, self.invite_addr)
        self._resend_18x(resp, T1, time.monotonic())

    def _resend_18x(self, resp: Message, interval: float, since: float) -> None:
        def again() -> None:
            if self.unacked is not resp or self.state != "early":
                return
            if time.monotonic() - since >= TIMEOUT:
                # No PRACK in 64*T1: the caller cannot hear us ring (RFC 3262 3).
                log.warning("call %s: no PRACK for our reliable 180; refusing", self.call_id)
                self.unacked = None
                self._respond(500, "No PRACK")
                self._end("error", "the caller never acknowledged our ringing")
                return
            assert self.invite_addr is not None
            self.transport.send(resp, self.invite_addr)
            self._resend_18x(resp, interval * 2, since)

        self.transport.later(interval, again)

    def _pracked(self, req: Message, reply_to: Addr) -> None:
        """Their PRACK: 200 when its RAck names our unacknowledged 180, else 481 (RFC 3262 3)."""
        rack = req.get("RAck").split()
        invite_cseq = self.invite.cseq[0] if self.invite is not None else -1
        if self.unacked is not None and len(rack) == 3 and rack[0] == str(self.rseq) and \
                rack[1] == str(invite_cseq) and rack[2].upper() == "INVITE":
            self.unacked = None
            self.transport.respond(req, self._response(200, "OK", req), reply_to)
            return
        log.info("call %s: PRACK for %r answers nothing we sent: 481", self.call_id,
                 req.get("RAck"))
        self.transport.respond(req, self._response(481, "Call/Transaction Does Not Exist",
                                                   req), reply_to)

    def _open_the_nat(self) -> None:
        """Behind a NAT router: open our RTP port towards the caller's media while it rings
        (again every 10 s: routers forget unanswered mappings after about 30 s)."""
        if self.state != "early" or self.invite is None:
            return
        try:
            media = sdp.parse(self.invite.body, self.audio.codecs, offer=True)
            if not self.rtp.port:
                self.rtp.open()
        except (sdp.SdpError, OSError):
            return  # answer() says what is wrong with the offer, if it is ever answered
        self.rtp.punch(media.address, media.port)
        self.transport.later(10.0, self._open_the_nat)

    def _response(self, status: int, reason: str, request: Message | None = None,
                  body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> Message:
        req = request or self.invite
        assert req is not None
        resp = Message(status=status, reason=reason)
        for via in req.all("Via"):
            resp.add("Via", via)
        resp.add("From", req.get("From"))
        to = req.get("To")
        if "tag=" not in to and status > 100:
            to += f";tag={self.local_tag}"
        resp.add("To", to)
        resp.add("Call-ID", req.call_id)
        resp.add("CSeq", req.get("CSeq"))
        if req.method in ("INVITE",) and 100 < status < 300:
            for rr in req.all("Record-Route"):
                resp.add("Record-Route", rr)
            resp.add("Contact", self.me.contact())
        if (req.method in ("INVITE", "OPTIONS") and 200 <= status < 300) or status == 405:
            advertise(resp)
        resp.add("Server", self.me.user_agent)
        for name, value in extra or ():
            resp.add(name, value)
        if body:
            resp.add("Content-Type", "application/sdp")
            resp.body = body
        return resp

    def _respond(self, status: int, reason: str, body: bytes = b"",
                 extra: list[tuple[str, str]] | None = None) -> None:
        assert self.invite is not None and self.invite_addr is not None
        if status >= 200:
            self.unacked = None  # a final answer ends the 180's retransmissions
        resp = self._response(status, reason, body=body, extra=extra)
        self.transport.respond(self.invite, resp, self.invite_addr)
        if status >= 200:
            self.final_response = resp
            if status < 300:
                self._retransmit_ok(resp, T1)

    def _retransmit_ok(self, resp: Message, interval: float) -> None:
        """Our 200 to their INVITE until their ACK (RFC 3261 13.3.1.4)."""
        if self.state != "early" and self.state != "confirmed":
            return
        if time.monotonic() - self.started > TIMEOUT + 300 or interval > TIMEOUT:
            return

        def again() -> None:
            if self.ok_timer is None or self.state not in ("confirmed",):
                return
            assert self.invite is not None and self.invite_addr is not None
            self.transport.send(resp, self.invite_addr)
            self._retransmit_ok(resp, min(interval * 2, T2))

        self.ok_timer = self.transport.later(interval, again)

    def answer(self) -> None:
        if self.state != "early" or self.invite is None:
            return
        if not self.invite.body.strip():
            # A delayed offer (PBXes send it after a transfer, 3PCC): we offer in the 200.
            port = self.rtp.port or self.rtp.open()
            body = self._sdp(port)
            self.state = "confirmed"
            self.offer_in_ok = True
            self._respond(200, "OK", body, self._session_as_uas(self.invite))
            self.post(CallAnswered(self.phone_id))
            return
        try:
            media = self._offer_media(self.invite.body)
        except sdp.SdpError as exc:
            self._respond(488, "Not Acceptable Here")
            self._end("error", f"the caller offers no audio we can play ({exc})")
            return
        port = self.rtp.port or self.rtp.open()
        body = self._sdp(port,
                         codecs=(media.codec,), dtmf=media.dtmf or None,
                         direction=sdp.answer_direction(media.direction))
        self.state = "confirmed"
        self._respond(200, "OK", body, self._session_as_uas(self.invite))
        self.rtp.start(media.address, media.port, media.codec, media.dtmf,
                       media.rtcp_port)
        self._codec_now()
        self.post(CallAnswered(self.phone_id))

    def reject(self, code: int) -> None:
        if self.state != "early":
            return
        reasons = {486: "Busy Here", 603: "Decline", 480: "Temporarily Unavailable",
                   403: "Forbidden"}
        self._respond(code, reasons.get(code, "Rejected"))
        self._end(None, "")

    def cancelled(self, cancel: Message, addr: Addr) -> None:
        """Their CANCEL: 200 to it, 487 to the INVITE, the ringing stops."""
        self.transport.respond(cancel, self._response(200, "OK", cancel),
                                       addr)
        if self.state == "early":
            self._respond(487, "Request Terminated")
            self._end("cancelled", "")

    def acked(self, ack: Message | None = None) -> None:
        if self.ok_timer is not None:
            self.ok_timer.cancel()
            self.ok_timer = None
        if not self.offer_in_ok or ack is None:
            return
        self.offer_in_ok = False
        try:
            media = self._answer_media(ack.body)
        except sdp.SdpError as exc:
            # No usable answer to our offer: the session cannot be (RFC 3264 5): end it.
            log.warning("call %s: the ACK answers our offer with no usable audio (%s)",
                        self.call_id, exc)
            self.state = "ending"
            self.send_in_dialog("BYE", on_final=lambda r: None)
            self._end("error", "no audio in the answer")
            return
        self.rtp.start(media.address, media.port, media.codec, media.dtmf,
                       media.rtcp_port)
        self._codec_now()
        held = media.direction in ("sendonly", "inactive")
        self.rtp.held = held or self.held_local
        if held != self.held_remote:
            self.held_remote = held
            self.post(HoldChanged(self.phone_id, held, by_remote=True))

    # ------------------------------------------------------------------ in the call

    def in_dialog(self, req: Message, addr: Addr) -> None:
        """A request from the far end inside this dialog."""
        number = req.cseq[0]
        reply_to = addr
        if req.method == "ACK":
            self.acked(req)
            return
        if number < self.remote_cseq and req.method != "CANCEL":
            resp = self._response(500, "Server Internal Error", req)
            self.transport.respond(req, resp, reply_to)
            return
        self.remote_cseq = max(self.remote_cseq, number)
        if req.method == "BYE":
            self.transport.respond(req, self._response(200, "OK", req), reply_to)
            self._end("hangup", "")
        elif req.method == "INVITE":
            self._reinvite(req, reply_to)
        elif req.method == "PRACK":
            self._pracked(req, reply_to)
        elif req.method == "NOTIFY":
            self.transport.respond(req, self._response(200, "OK", req), reply_to)
            self._notify(req)
        elif req.method == "UPDATE":
            self._update(req, reply_to)
        elif req.method in ("OPTIONS", "INFO"):
            self.transport.respond(req, self._response(200, "OK", req), reply_to)
        else:
            self.transport.respond(req, self._response(405, "Method Not Allowed", req),
                                           reply_to)

    def _reinvite(self, req: Message, reply_to: Addr) -> None:
        if self.reinvite_pending or self.offer_in_ok:
            # Ours is in progress (RFC 3261 14.2): the far end retries after a random wait.
            self.transport.respond(req, self._response(491, "Request Pending", req), reply_to)
            return
        try:
            media = self._offer_media(req.body) if req.body else None
        except sdp.SdpError:
            self.transport.respond(req, self._response(488, "Not Acceptable Here", req),
                                           reply_to)
            return
        contact = req.get("Contact")
        if contact:
            self.remote_target = address(contact).uri
        timers = self._session_as_uas(req) if self.state == "confirmed" else []
        if media is None:
            # A re-INVITE without an offer (RFC 3264 8): we offer again, everything we can
            # play; the ACK brings the answer (acked).
            self.sdp_version += 1
            body = self._sdp(self.rtp.port,
                             direction="sendonly" if self.held_local else "sendrecv")
            self.offer_in_ok = True
            self.transport.respond(req, self._response(200, "OK", req, body, timers),
                                   reply_to)
            return
        body = self._answer_offer(media)
        self.transport.respond(req, self._response(200, "OK", req, body, timers), reply_to)

    def _update(self, req: Message, reply_to: Addr) -> None:
        """UPDATE (RFC 3311): a session refresh, and an offer when it has SDP; early (before
        the answer) or in the call."""
        media = None
        if req.body.strip():
            try:
                media = sdp.parse(req.body, self.audio.codecs, offer=True)
            except sdp.SdpError:
                self.transport.respond(req, self._response(488, "Not Acceptable Here", req),
                                       reply_to)
                return
        if media is not None and (self.offer_in_ok or self.offer_pending or
                                  self.reinvite_pending):
            # Our offer is still waiting for its answer: offers must not cross (RFC 3311 5.2).
            self.transport.respond(req, self._response(491, "Request Pending", req), reply_to)
            return
        if media is not None:
            try:
                self._take_offer(media)
            except sdp.SdpError:
                self.transport.respond(req, self._response(488, "Not Acceptable Here", req),
                                       reply_to)
                return
        timers = self._session_as_uas(req) if self.state == "confirmed" else []
        body = self._answer_offer(media) if media is not None else b""
        self.transport.respond(req, self._response(200, "OK", req, body, timers), reply_to)

    def _answer_offer(self, media: sdp.Media) -> bytes:
        """Take the far end's new offer (address, codec, hold) and give our answer."""
        self.rtp.update(media.address, media.port, media.codec, media.dtmf,
                       media.rtcp_port)
        self._codec_now()
        direction = media.direction
        held = direction in ("sendonly", "inactive")
        self.sdp_version += 1
        ours = "sendonly" if self.held_local else "sendrecv"
        answer = sdp.answer_direction(direction) if direction != "sendrecv" else ours
        body = self._sdp(self.rtp.port,
                         codecs=(self.rtp.codec,), dtmf=self.rtp.dtmf_pt, direction=answer)
        self.rtp.held = held or self.held_local
        if held != self.held_remote:
            self.held_remote = held
            self.post(HoldChanged(self.phone_id, held, by_remote=True))
        return body

    # ------------------------------------------------------------------ session timers

    def _session_as_uas(self, req: Message) -> list[tuple[str, str]]:
        """Their INVITE, re-INVITE or UPDATE set or refreshed the session interval (RFC 4028
        9): start our timer and say what was agreed in our 2xx. Without Session-Expires, a
        running timer is simply restarted (the request was a refresh all the same)."""
        asked = requested(req)
        if asked is None:
            if self.timer.interval is not None:
                self.timer.start(self.timer.interval, self.timer.we_refresh)
            return []
        supports = "timer" in option_tags(",".join(req.all("Supported")))
        refresher = (asked.refresher or "uac") if supports else "uas"
        interval = Interval(max(asked.seconds, MIN_SE), refresher)
        self.timer.start(interval, we_refresh=refresher == "uas")
        headers = [("Session-Expires", self.timer.header())]
        if supports:
            headers.append(("Require", "timer"))
        return headers

    def _session_as_uac(self, resp: Message) -> None:
        """A 2xx to our INVITE, re-INVITE or UPDATE: the interval the far end agreed."""
        agreed = requested(resp)
        if agreed is None:
            if self.timer.interval is not None and self.timer.we_refresh:
                self.timer.start(self.timer.interval, True)  # it took the refresh silently
            return
        refresher = agreed.refresher or "uac"
        self.timer.start(Interval(agreed.seconds, refresher), we_refresh=refresher == "uac")

    def _refresh_session(self) -> None:
        """Ours to refresh: UPDATE where the far end allows it (no ACK, no SDP), else a
        re-INVITE with our current session description."""
        if self.state != "confirmed" or self.timer.interval is None:
            return
        interval = self.timer.interval
        extra = [("Session-Expires", f"{interval.seconds};refresher=uac"),
                 ("Supported", ", ".join(SUPPORTED))]

        def done(resp: Message | None) -> None:
            if method == "INVITE":
                self.reinvite_pending = False
            if self.state != "confirmed":
                return
            if resp is None or resp.status in (408, 481):
                # The far end is gone (RFC 4028 10): end the call.
                log.warning("call %s: session refresh unanswered; ending the call",
                            self.call_id)
                self.state = "ending"
                self.send_in_dialog("BYE", on_final=lambda r: None)
                self._end("network", "the far end stopped answering")
                return
            if 200 <= resp.status < 300:
                if method == "INVITE":
                    self._ack_2xx(resp, f"<{self.local_uri}>;tag={self.local_tag}",
                                  resp.cseq[0])
                self._session_as_uac(resp)
                return
            if resp.status == 422:
                self.timer.interval = Interval(max(min_se(resp), interval.seconds), "uac")
                self._refresh_session()
                return
            self.timer.start(interval, True)  # refused: try again at the next half

        method = "UPDATE" if "UPDATE" in self.peer_allow else "INVITE"
        body = b""
        if method == "INVITE":
            if self.reinvite_pending:
                self.timer.start(interval, True)  # a re-INVITE is on its way: at the next half
                return
            self.reinvite_pending = True
            body = self._sdp(self.rtp.port,
                             codecs=(self.rtp.codec,), dtmf=self.rtp.dtmf_pt,
                             direction="sendonly" if self.held_local else "sendrecv")
        self.send_in_dialog(method, body, extra=extra, on_final=done)

    def _session_expired(self) -> None:
        if self.state != "confirmed":
            return
        log.warning("call %s: no session refresh from the far end in %d s; ending the call",
                    self.call_id, self.timer.interval.seconds if self.timer.interval else 0)
        self.state = "ending"
        self.send_in_dialog("BYE", on_final=lambda r: None)
        self._end("network", "the far end stopped refreshing the call")

    def hold(self, held: bool) -> None:
        if self.state != "confirmed" or held == self.held_local:
            return
        if self.reinvite_pending:
            # One re-INVITE at a time (RFC 3261 14.1): this one when the other is done.
            self.transport.later(0.5, lambda: self.hold(held))
            return
        self.held_local = held
        if held:
            # The handset may be another call's from now on (call waiting, swap): our media
            # stops at once, not when the far end's 200 comes.
            self.rtp.held = True
        self.sdp_version += 1
        body = self._sdp(self.rtp.port,
                         codecs=(self.rtp.codec,), dtmf=self.rtp.dtmf_pt,
                         direction="sendonly" if held else "sendrecv")

        def done(resp: Message | None) -> None:
            self.reinvite_pending = False
            if resp is not None and 200 <= resp.status < 300:
                self._ack_2xx(resp, f"<{self.local_uri}>;tag={self.local_tag}",
                              resp.cseq[0])
                self.rtp.held = held or self.held_remote
                self.post(HoldChanged(self.phone_id, held))
                return
            if self.state != "confirmed":
                return
            self.held_local = not held
            if resp is not None and resp.status == 491:
                # Our re-INVITE crossed theirs: try again after a random wait, longer when
                # the call is ours (RFC 3261 14.1), so the two ends stop colliding.
                wait = random.uniform(2.1, 4.0) if self.direction == "out" else \
                    random.uniform(0.0, 2.0)
                log.info("call %s: hold crossed the far end's re-INVITE (491); again in "
                         "%.1f s", self.call_id, wait)
                self.transport.later(wait, lambda: self.hold(held))
                return
            # Refused or unanswered: our side still does what the person asked (nothing of
            # theirs in the earpiece, nothing of ours sent while held); only the far end's
            # SDP is unchanged.
            log.warning("call %s: %s refused by the far end (%s); done on our side only",
                        self.call_id, "hold" if held else "resume",
                        "no answer" if resp is None else resp.status)
            self.held_local = held
            self.rtp.held = held or self.held_remote
            self.post(HoldChanged(self.phone_id, held))

        self.reinvite_pending = True
        self.send_in_dialog("INVITE", body, on_final=done)

    def replaces_uri(self) -> str:
        """Who the far end of this dialog is, with the Replaces header (RFC 3891) that lets
        another UA take our place in it: tags as the far end sees them (to-tag its own)."""
        value = f"{self.call_id};to-tag={self.remote_tag};from-tag={self.local_tag}"
        aor = self.remote_uri.split("?", 1)[0]
        return f"{aor}?Replaces={urllib.parse.quote(value, safe='')}"

    def matches(self, replaces: str) -> bool:
        """Whether a Replaces value names this dialog, as we see it (RFC 3891 3)."""
        call_id, *params = [p.strip() for p in replaces.split(";")]
        tags = dict(p.split("=", 1) for p in params if "=" in p)
        return (call_id == self.call_id and tags.get("to-tag") == self.local_tag
                and tags.get("from-tag") == self.remote_tag)

    def transfer(self, refer_to: str) -> None:
        """Blind transfer or forward: an in-dialog REFER; our leg ends when the far end's new
        call is answered (NOTIFY with a 2xx sipfrag)."""
        if self.state != "confirmed":
            self.post(TransferFailed(self.phone_id, "error", "the call is not connected"))
            return
        self.refer_pending = True

        def done(resp: Message | None) -> None:
            if resp is None:
                self.refer_pending = False
                self.post(TransferFailed(self.phone_id, "timeout", "no answer to the transfer"))
            elif resp.status >= 300:
                self.refer_pending = False
                self.post(TransferFailed(self.phone_id, reason_for(resp.status),
                                         f"{resp.status} {resp.reason}"))

        self.last_refer = f"Refer-To: <{refer_to}>"
        self.send_in_dialog("REFER", extra=[("Refer-To", f"<{refer_to}>"),
                                            ("Referred-By", f"<{self.me.aor}>")],
                            on_final=done)

    def _notify(self, req: Message) -> None:
        if not self.refer_pending or not req.get("Event").lower().startswith("refer"):
            return
        frag = req.body.decode("utf-8", "replace").strip().split("\r\n")[0].split("\n")[0]
        parts = frag.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return
        status = int(parts[1])
        if status < 200:
            return
        self.refer_pending = False
        if status < 300:
            self.post(TransferSucceeded(self.phone_id))
            self.hangup()
        else:
            self.post(TransferFailed(self.phone_id, reason_for(status), frag))

    def dtmf(self, digit: str) -> None:
        if self.state == "confirmed":
            self.rtp.send_dtmf(digit)

    def mute(self, muted: bool) -> None:
        self.rtp.muted = muted

    def hangup(self) -> None:
        """Our side ends the call, whatever state it is in."""
        if self.state == "confirmed":
            self.state = "ending"
            self.send_in_dialog("BYE", on_final=lambda r: None)
            self._end(None, "")
        elif self.state in ("new", "early") and self.direction == "out":
            if self.provisional:
                self._send_cancel()
            self.cancel_pending = True
            self._end(None, "")
        elif self.state == "early" and self.direction == "in":
            self.reject(603)

    def no_media(self, seconds: float) -> None:
        log.warning("call %s: no RTP for %.0f s; ending it", self.call_id, seconds)
        if self.state == "confirmed":
            self.send_in_dialog("BYE", on_final=lambda r: None)
        self._end("network", f"no audio for {seconds:.0f} s")

    def _end(self, reason: str | None, detail: str) -> None:
        """The call is over. `reason` None: our own doing, the phone knows already."""
        if self.state == "ended":
            return
        self.state = "ended"
        self.timer.stop()
        if self.ok_timer is not None:
            self.ok_timer.cancel()
        self.rtp.stop()
        self.on_end(self)
        if reason is not None:
            self.post(CallEnded(self.phone_id, reason, detail))
