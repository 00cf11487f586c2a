"""The SIP user agent: the phone's adapter for SIP, and the door every SIP request comes through.

Owns: the transport, the identity and the registration client it hands them to; which incoming
requests may ring the phone (INVITEs from the configured proxy only; anything else gets 403 and
a log line, so SIP scanners cannot make ghost calls); routing requests and responses to calls;
turning the Phone's actions into SIP; the no-RTP watchdog. Never touches: the phone's state (it
posts `RegistrationChanged`, `IncomingCall` ...), registration details (registration.py) or a
dialog's insides (call.py).

Threads: `start` and `execute` return at once. Connecting and registering run on the
registration client's thread; SIP traffic on the transport's receive thread; timers on its
timer thread.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import ssl
import threading
import time
from collections.abc import Callable

from firmware.config import SipConfig
from firmware.events import (
    Action,
    Answer,
    CallEnded,
    Conference,
    Event,
    Hangup,
    IncomingCall,
    MessageWaiting,
    PlaceCall,
    Post,
    RegistrationChanged,
    Reject,
    Reregister,
    SendDtmf,
    SetHold,
    SetMute,
    Transfer,
    TransferFailed,
)
from firmware.sip import codecs, sdp, srtp
from firmware.sip.call import Audio, SipCall
from firmware.sip.capabilities import advertise, unsupported
from firmware.sip.conference import Bridge
from firmware.sip.dns import Resolver
from firmware.sip.identity import Identity
from firmware.sip.message import Message, address, new_tag
from firmware.sip.mwi import Mailbox
from firmware.sip.registration import Registration
from firmware.sip.session_timer import MIN_SE, requested
from firmware.sip.transport import Addr, Transport
from firmware.ticker import Ticker

log = logging.getLogger("sip")


def tls_context(config: SipConfig) -> ssl.SSLContext | None:
    if config.transport != "tls":
        return None
    context = ssl.create_default_context(cafile=config.tls_ca_file or None)
    if not config.tls_verify:
        log.warning("SIP: TLS without checking the server's certificate (tls_verify off)")
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def srtp_mode(config: SipConfig) -> str:
    """The SRTP mode calls use: SDES keys travel in the SDP, so only over TLS, unless the admin
    accepts them in clear (`srtp_over_udp`, logged as insecure)."""
    mode = config.srtp
    if mode == "off":
        return mode
    if config.transport != "tls":
        if not config.srtp_over_udp:
            log.warning("SIP: srtp = %r but the keys would travel unencrypted over %s: media "
                        "stays unencrypted (srtp_over_udp = true to allow it)", mode,
                        config.transport.upper())
            return "off"
        log.warning("SIP: SRTP keys travel unencrypted over %s (srtp_over_udp): anyone who "
                    "sees the signalling can decrypt the calls", config.transport.upper())
    return mode


class UserAgent:
    name = "sip"
    handles: tuple[type[Action], ...] = (PlaceCall, Answer, Reject, Hangup, Transfer, SendDtmf,
                                         SetHold, SetMute, Reregister, Conference)

    def __init__(
        self,
        config: SipConfig,
        audio_source: Callable[[], bytes],
        audio_sink: Callable[[bytes], None],
        *,
        display_name: str = "",
        rtp_ports: tuple[int, int] = (20000, 20999),
        backoff_max: float = 30.0,
        dns: Resolver | None = None,
        start_delay: float = 0.0,
        audio_rate: int = 8000,
        audio_clock: Ticker | None = None,
    ) -> None:
        self.config = config
        self.start_delay = start_delay
        # Every call's RTP runs on one 20 ms clock: the audio engine's when there is a card.
        self.audio = Audio(audio_source, audio_sink, rtp_ports, srtp_mode(config),
                           codecs.pts(config.codecs), audio_rate,
                           audio_clock if audio_clock is not None else Ticker())
        self.me = Identity.of(config, display_name)
        self.post: Post = lambda e: None
        self.transport = Transport(("0.0.0.0", 0), self._request, self._stray,
                                   kind=config.transport, tls=tls_context(config),
                                   server_name=config.server)
        self.transport.on_disconnect = lambda reason: self.registration.flow_dropped()
        self.registration = Registration(config, self.me, self.transport, self._status,
                                         backoff_max=backoff_max, dns=dns)
        self.calls: dict[str, SipCall] = {}  # by SIP Call-ID
        self.by_phone: dict[str, SipCall] = {}  # by the Phone's call id
        self.ghosts = 0
        self.last_refer = ""  # the Refer-To of our last transfer, for the log and tests
        self._ids = itertools.count(1)
        self.mailbox = Mailbox(self.me, self.transport, self._count)
        self.bridge: Bridge | None = None  # the conference, while one lasts
        self._stopping = threading.Event()

    @property
    def status(self) -> tuple[str, str]:
        return self.registration.status

    def contact(self) -> str:
        return self.me.contact()

    # ------------------------------------------------------------------ adapter

    def start(self, post: Post) -> None:
        self.post = post
        self.registration.start(self.start_delay)
        self.transport.later(5.0, self._watch_media)

    def _status(self, status: str, reason: str) -> None:
        self.post(RegistrationChanged(status, reason))
        if status == "registered" and self.config.mwi:
            self.mailbox.registered()

    def _count(self, new: int, old: int) -> None:
        self.post(MessageWaiting(new, old))

    def stop(self) -> None:
        self._stopping.set()
        with self.transport.lock:
            for call in list(self.calls.values()):
                call.hangup()
            self.mailbox.stop()
        self.registration.stop()
        self.transport.close()

    def execute(self, action: Action) -> None:
        if isinstance(action, Reregister):
            # The network returned or our address changed: the registration client rebinds
            # when the route now leaves from another address, then registers at once.
            log.info("SIP: the network is back: registering now")
            self.registration.network_back()
            return
        with self.transport.lock:
            if isinstance(action, PlaceCall):
                self._place(action)
                return
            if isinstance(action, Conference):
                self._conference(action)
                return
            call = self.by_phone.get(getattr(action, "call_id", ""))
            if call is None:
                log.info("%s for a call SIP no longer has", type(action).__name__)
                if isinstance(action, Transfer):
                    self.post(TransferFailed(action.call_id, "error", "no such call"))
                return
            if isinstance(action, Answer):
                call.answer()
            elif isinstance(action, Reject):
                call.reject(action.code)
            elif isinstance(action, Hangup):
                call.hangup()
            elif isinstance(action, Transfer):
                self._transfer(call, action)
            elif isinstance(action, SendDtmf):
                call.dtmf(action.digit)
            elif isinstance(action, SetHold):
                call.hold(action.held)
            elif isinstance(action, SetMute):
                call.mute(action.muted)

    def _transfer(self, call: SipCall, action: Transfer) -> None:
        if action.replaces is None:
            call.transfer(self.me.target_uri(action.target))
        else:
            # Attended (RFC 5589): the far end of `call` is sent to the party of the other
            # call, and takes our place in that call.
            other = self.by_phone.get(action.replaces)
            if other is None or other.state != "confirmed":
                self.post(TransferFailed(action.call_id, "error", "the other call is gone"))
                return
            call.transfer(other.replaces_uri())
        self.last_refer = call.last_refer

    def _conference(self, action: Conference) -> None:
        calls = [self.by_phone.get(i) for i in action.call_ids]
        if self.bridge is not None or any(c is None or c.state != "confirmed" for c in calls):
            log.info("SIP: no conference: a call is gone or one is already running")
            return
        first, second = calls
        assert first is not None and second is not None
        self.bridge = Bridge((first.rtp, second.rtp), self.audio.source, self.audio.sink)
        log.info("SIP: conference of %s and %s", first.call_id, second.call_id)

    def _new_call(self, phone_id: str, call_id: str, direction: str) -> SipCall:
        call = SipCall(self.me, self.transport, self.audio, phone_id, call_id, direction,
                       on_event=self._from_call, on_end=self._forget)
        self.calls[call_id] = call
        self.by_phone[phone_id] = call
        return call

    def _from_call(self, event: Event) -> None:
        self.post(event)

    def _place(self, action: PlaceCall) -> None:
        if self.transport.sock is None:
            self.post(CallEnded(action.call_id, "no_service", "SIP is not up"))
            return
        call = self._new_call(action.call_id, f"{secrets.token_hex(12)}@deskphone", "out")
        try:
            call.dial(self.me.target_uri(action.target))
        except OSError as exc:
            call._end("error", f"no RTP port: {exc}")

    def _forget(self, call: SipCall) -> None:
        if self.bridge is not None and call.rtp in self.bridge.legs:
            self.bridge.dissolve()  # the other party talks to the handset alone again
            self.bridge = None
        self.calls.pop(call.call_id, None)
        if self.by_phone.get(call.phone_id) is call:
            del self.by_phone[call.phone_id]

    # ------------------------------------------------------------------ incoming traffic

    def _from_proxy(self, addr: Addr) -> bool:
        return addr == self.me.proxy

    def _request(self, req: Message, addr: Addr) -> None:
        if not re.match(r"(?i)(sips?|tel):", req.uri):
            if req.method != "ACK":  # RFC 3261 8.2.2.1, RFC 4475 3.3.2-3.3.3
                self._reply(req, addr, 416, "Unsupported URI Scheme")
            return
        if req.method in ("INVITE", "ACK", "UPDATE", "PRACK"):
            # In a multipart body the offer or answer is the SDP part; the rest (ISUP, resource
            # lists) is for gateways. Without an SDP part the body stays as it came: 415 says why.
            part = sdp.sdp_part(req.get("Content-Type"), req.body)
            if part is not None:
                req.body = part
                req.set("Content-Type", "application/sdp")
        call = self.calls.get(req.call_id)
        if req.method == "NOTIFY" and (self.mailbox.owns(req) or
                                       (not req.to_tag() and self._from_proxy(addr))):
            # The voicemail count: in our subscription, or unsolicited from the proxy.
            self._reply(req, addr, *self.mailbox.notify(req))
            return
        if req.to_tag():
            if call is not None:
                call.in_dialog(req, addr)
            elif req.method != "ACK":
                self._reply(req, addr, 481, "Call/Transaction Does Not Exist")
            return
        if req.method == "ACK":
            return  # for a final non-2xx we sent; nothing to do
        if req.method == "CANCEL":
            if call is not None and call.invite is not None and \
                    call.invite.branch == req.branch:
                call.cancelled(req, addr)
            else:
                self._reply(req, addr, 481, "Call/Transaction Does Not Exist")
            return
        lacking = unsupported(req)
        if lacking:
            # RFC 3261 8.2.2.3: a required extension we do not do is refused (before ringing).
            log.info("SIP: %s requires %s: 420", req.method, ", ".join(lacking))
            self._reply(req, addr, 420, "Bad Extension", [("Unsupported", ", ".join(lacking))])
            return
        if req.method == "INVITE":
            self._invite(req, addr, call)
        elif req.method == "OPTIONS":
            self._reply(req, addr, 200, "OK")
        elif req.method == "NOTIFY":
            self._reply(req, addr, 489, "Bad Event")  # not from the proxy, no subscription
        else:
            self._reply(req, addr, 405, "Method Not Allowed")

    def _invite(self, req: Message, addr: Addr, existing: SipCall | None) -> None:
        if not self._from_proxy(addr):
            self.ghosts += 1
            log.warning("SIP: INVITE from %s:%d (From %s) refused: not from the proxy %s:%d",
                        addr[0], addr[1], req.get("From")[:60], *self.me.proxy)
            self._reply(req, addr, 403, "Forbidden")
            return
        if existing is not None:
            return  # the same INVITE by another path; its first copy is being handled
        accept = [a.split(";")[0].strip().lower() for a in req.all("Accept")]
        if req.get("Accept") and not {"application/sdp", "application/*", "*/*"} & set(accept):
            # Our answer can only be SDP (RFC 3261 21.4.7, RFC 4475 3.3.15).
            self._reply(req, addr, 406, "Not Acceptable", [("Accept", "application/sdp")])
            return
        asked = requested(req)
        if asked is not None and asked.seconds < MIN_SE:
            # RFC 4028 6: a session interval below our floor is refused, naming the floor.
            self._reply(req, addr, 422, "Session Interval Too Small", [("Min-SE", str(MIN_SE))])
            return
        kind = req.get("Content-Type").split(";")[0].strip().lower()
        if req.body.strip() and kind not in ("", "application/sdp"):
            # A body we cannot read (RFC 3261 21.4.13, RFC 4475 3.3.6): say what we accept.
            self._reply(req, addr, 415, "Unsupported Media Type",
                        [("Accept", "application/sdp")])
            return
        if req.body.strip():
            try:
                offer = sdp.parse(req.body, self.audio.codecs, offer=True)
                srtp.check_offer(offer.profile, offer.cryptos, self.audio.srtp,
                                 offer.crypto_problems)
            except (sdp.SdpError, srtp.SrtpError) as exc:
                # Nothing in the offer we can play: say so now; the phone never rings for a
                # call it could not answer (RFC 3261 305 warning: incompatible media).
                log.info("SIP: INVITE from %s refused with 488: %s", req.get("From")[:60], exc)
                self._reply(req, addr, 488, "Not Acceptable Here",
                            [("Warning", f'305 {self.me.local_ip} "Incompatible media format"')])
                return
        replaced = None
        if req.get("Replaces"):
            # RFC 3891: someone takes the place of a party in one of our calls (the target of
            # an attended transfer). Only a call that exists and is up can be replaced.
            replaced = next((c for c in self.calls.values()
                             if c.matches(req.get("Replaces")) and c.state == "confirmed"), None)
            if replaced is None:
                log.info("SIP: INVITE with Replaces for no call of ours: 481")
                self._reply(req, addr, 481, "Call/Transaction Does Not Exist")
                return
        call = self._new_call(f"sip-{next(self._ids)}", req.call_id, "in")
        call.offer(req, addr)
        remote = address(req.get("From"))
        self.post(IncomingCall(call.phone_id, remote.user or remote.uri, remote.display or None,
                               replaces=replaced.phone_id if replaced else None))

    def _reply(self, req: Message, addr: Addr, status: int, reason: str,
               extra: list[tuple[str, str]] | None = None) -> None:
        resp = Message(status=status, reason=reason)
        for via in req.all("Via"):
            resp.add("Via", via)
        resp.add("From", req.get("From"))
        to = req.get("To")
        resp.add("To", to if "tag=" in to or status == 100 else f"{to};tag={new_tag()}")
        resp.add("Call-ID", req.call_id)
        resp.add("CSeq", req.get("CSeq"))
        resp.add("Server", self.me.user_agent)
        for name, value in extra or ():
            resp.add(name, value)
        if status == 405 or (req.method == "OPTIONS" and status < 300):
            advertise(resp)  # what we do instead, or what we can do
        self.transport.respond(req, resp, addr)

    def _stray(self, resp: Message, addr: Addr) -> None:
        call = self.calls.get(resp.call_id)
        if call is not None:
            call.stray_response(resp)

    # ------------------------------------------------------------------ watchdog

    def _watch_media(self) -> None:
        """End calls whose BYE never came: no RTP for `no_rtp_seconds` while not on hold."""
        now = time.monotonic()
        for call in list(self.calls.values()):
            if call.state == "confirmed" and not (call.held_local or call.held_remote):
                silent = now - call.rtp.last_rx
                if silent > self.config.no_rtp_seconds:
                    call.no_media(silent)
        if not self._stopping.is_set():
            self.transport.later(2.0, self._watch_media)
