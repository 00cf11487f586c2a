"""The SIP account: registration kept alive forever, and the door every SIP request comes through.

Owns: the phone's SIP identity (AOR, Contact, Via), registration with digest auth (401 and 407)
and its health (registered only while the last 200 OK is within its expiry), retry with backoff
after any failure, which incoming requests may ring the phone (INVITEs from the configured proxy
only; anything else gets 403 and a log line, so SIP scanners cannot make ghost calls), routing
requests and responses to calls, the no-RTP watchdog, and turning the Phone's actions into
SIP. Never touches: the phone's state (it posts `RegistrationChanged`, `IncomingCall` ...).

Threads: `start` and `execute` return at once. DNS, binding and the first REGISTER run on a
start-up thread; SIP traffic on the transport's receive thread; timers on its timer thread.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable

from firmware import __version__
from firmware.config import SipConfig
from firmware.events import (
    Action,
    Answer,
    CallEnded,
    Event,
    Hangup,
    IncomingCall,
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
from firmware.sip.call import SipCall
from firmware.sip.message import Message, address, authorization, challenge, new_branch, new_tag
from firmware.sip.transport import Addr, Timer, Transport

log = logging.getLogger("sip")

WRONG_PASSWORD_RETRY = 60.0


def split_bind(bind: str | None, default_port: int = 5060) -> tuple[str, int]:
    if not bind:
        return "", default_port
    host, _, port = bind.rpartition(":") if bind.count(":") == 1 else (bind, "", "")
    return host, int(port) if port else default_port


class SipAccount:
    name = "sip"
    handles: tuple[type[Action], ...] = (PlaceCall, Answer, Reject, Hangup, Transfer, SendDtmf,
                                         SetHold, SetMute, Reregister)

    def __init__(
        self,
        config: SipConfig,
        audio_source: Callable[[], bytes],
        audio_sink: Callable[[bytes], None],
        *,
        display_name: str = "",
        rtp_ports: tuple[int, int] = (20000, 20999),
        backoff_max: float = 16.0,
    ) -> None:
        self.config = config
        self.audio_source, self.audio_sink = audio_source, audio_sink
        self.display_name = display_name
        self.rtp_ports = rtp_ports
        self.backoff_max = backoff_max
        self.user_agent = f"deskphone/{__version__}"
        self.domain = config.realm_domain
        self.aor = f"sip:{config.username}@{self.domain}"
        self.auth_user = config.auth_username or config.username
        self.password = config.password.reveal()
        self.post: Post = lambda e: None
        self.transport = Transport(("0.0.0.0", 0), self._request, self._stray,
                                   kind=config.transport, tls=self._tls_context(),
                                   server_name=config.server)
        self.transport.on_disconnect = self._disconnected
        self.proxy: Addr = ("", 0)
        self.local_ip = ""
        self.local_port = 0
        self.calls: dict[str, SipCall] = {}  # by SIP Call-ID
        self.by_phone: dict[str, SipCall] = {}  # by the Phone's call id
        self.status = ("", "")
        self.registered_until = 0.0
        self.ghosts = 0
        self.last_refer = ""  # the Refer-To of our last transfer, for the log and tests
        self._dns: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._reg_call_id = f"{secrets.token_hex(12)}@deskphone"
        self._reg_tag = new_tag()
        self._reg_cseq = 0
        self._reg_nonce = ""
        self._reg_timer: Timer | None = None
        self._backoff = 0.0
        self._stopping = threading.Event()
        self._starter: threading.Thread | None = None

    # ------------------------------------------------------------------ identity

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.config.transport != "tls":
            return None
        context = ssl.create_default_context(cafile=self.config.tls_ca_file or None)
        if not self.config.tls_verify:
            log.warning("SIP: TLS without checking the server's certificate (tls_verify off)")
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def via(self) -> str:
        return (f"SIP/2.0/{self.config.transport.upper()} {self.local_ip}:{self.local_port};"
                f"branch={new_branch()};rport")

    def contact(self) -> str:
        suffix = f";transport={self.config.transport}" if self.transport.reliable else ""
        return f"<sip:{self.config.username}@{self.local_ip}:{self.local_port}{suffix}>"

    def display(self) -> str:
        name = self.display_name.replace('"', "")
        return f'"{name}" ' if name else ""

    def resolve(self, host: str, port: int) -> Addr:
        """DNS, cached. Only the start-up and registration threads may block on it."""
        if host not in self._dns:
            self._dns[host] = socket.gethostbyname(host)
        return self._dns[host], port

    def next_hop(self, host: str, port: int) -> Addr:
        """Where an in-dialog request goes, without blocking the caller (it may be the phone's
        loop): an address or a name already resolved; any other name goes via the proxy,
        which every request reaches anyway behind a record-routing provider."""
        try:
            socket.inet_aton(host)
            return host, port
        except OSError:
            pass
        if host in self._dns:
            return self._dns[host], port
        return self.proxy

    def reply_addr(self, request: Message, addr: Addr) -> Addr:
        """Responses go back where the request came from (RFC 3581 symmetric response)."""
        return addr

    # ------------------------------------------------------------------ adapter

    def start(self, post: Post) -> None:
        self.post = post
        self._set_status("registering", "")
        self._starter = threading.Thread(target=self._bring_up, name="sip-start", daemon=True)
        self._starter.start()

    def _bring_up(self) -> None:
        """DNS, the local address, the socket, the first REGISTER: retried until they work."""
        delay = 2.0
        while not self._stopping.is_set():
            try:
                self.proxy = self.resolve(self.config.server, self.config.port)
            except OSError as exc:
                self._set_status("registering", f"Cannot resolve {self.config.server}")
                log.error("SIP: cannot resolve %s (%s); retrying in %.0f s", self.config.server,
                          exc, delay)
                self._dns.pop(self.config.server, None)
                self._stopping.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            host, port = split_bind(self.config.bind)
            if not host:
                host = self._route_ip(self.proxy)
            self.transport.bind_addr = (host, port)
            try:
                self.transport.open(self.proxy)
            except ssl.SSLCertVerificationError as exc:
                self._set_status("registering", f"TLS: {self.config.server}'s certificate "
                                                f"is not trusted")
                log.error("SIP: TLS to %s:%d: %s; retrying in %.0f s", *self.proxy,
                          exc.verify_message, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            except (OSError, ssl.SSLError) as exc:
                if self.transport.reliable:
                    reason = f"Cannot connect to {self.config.server}:{self.config.port}"
                elif getattr(exc, "errno", None) == 98:
                    reason = f"SIP port {host}:{port} in use"
                else:
                    reason = f"Cannot use {host}:{port}: {getattr(exc, 'strerror', exc)}"
                self._set_status("registering", reason)
                log.error("SIP: %s (%s); retrying in %.0f s", reason, exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 60.0)
                continue
            self.local_ip, self.local_port = self.transport.local
            log.info("SIP: %s on %s:%d via %s:%d", self.aor, self.local_ip, self.local_port,
                     *self.proxy)
            with self.transport.lock:
                self._register()
                self.transport.later(5.0, self._watch_media)
            return

    @staticmethod
    def _route_ip(dest: Addr) -> str:
        """The address of the interface that routes to the server (no packet is sent)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(dest)
            return str(probe.getsockname()[0])
        except OSError:
            return "0.0.0.0"
        finally:
            probe.close()

    def stop(self) -> None:
        self._stopping.set()
        with self.transport.lock:
            for call in list(self.calls.values()):
                call.hangup()
            if self.status[0] == "registered" and self.transport.sock is not None:
                self._send_register(expires=0)  # best effort: the registrar forgets us
        if self._starter is not None:
            self._starter.join(timeout=2)
        self.transport.close()

    def execute(self, action: Action) -> None:
        if isinstance(action, Reregister):
            # DNS and a new socket may block: not on the phone's loop.
            threading.Thread(target=self._network_back, name="sip-network", daemon=True).start()
            return
        with self.transport.lock:
            if isinstance(action, PlaceCall):
                self._place(action)
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
                call.transfer(self.target_uri(action.target))
            elif isinstance(action, SendDtmf):
                call.dtmf(action.digit)
            elif isinstance(action, SetHold):
                call.hold(action.held)
            elif isinstance(action, SetMute):
                call.mute(action.muted)

    def target_uri(self, target: str) -> str:
        """`sip:<extension or E.164>@<domain>` (DESIGN.md: the domain may carry a port)."""
        return f"sip:{target}@{self.domain}"

    def _place(self, action: PlaceCall) -> None:
        if self.transport.sock is None:
            self.post(CallEnded(action.call_id, "no_service", "SIP is not up"))
            return
        call = SipCall(self, action.call_id, f"{secrets.token_hex(12)}@deskphone", "out")
        self.calls[call.call_id] = call
        self.by_phone[action.call_id] = call
        try:
            call.dial(self.target_uri(action.target))
        except OSError as exc:
            call._end("error", f"no RTP port: {exc}")

    def forget(self, call: SipCall) -> None:
        self.calls.pop(call.call_id, None)
        if self.by_phone.get(call.phone_id) is call:
            del self.by_phone[call.phone_id]

    def _post(self, event: Event) -> None:
        self.post(event)

    # ------------------------------------------------------------------ registration

    def _set_status(self, status: str, reason: str) -> None:
        if (status, reason) != self.status:
            self.status = (status, reason)
            self.post(RegistrationChanged(status, reason))

    def _send_register(self, expires: int, auth: tuple[str, str] | None = None) -> None:
        self._reg_cseq += 1
        uri = f"sip:{self.domain}"
        msg = Message(method="REGISTER", uri=uri)
        msg.add("Via", self.via())
        msg.add("Max-Forwards", "70")
        msg.add("From", f"<{self.aor}>;tag={self._reg_tag}")
        msg.add("To", f"<{self.aor}>")
        msg.add("Call-ID", self._reg_call_id)
        msg.add("CSeq", f"{self._reg_cseq} REGISTER")
        msg.add("Contact", f"{self.contact()};expires={expires}")
        msg.add("Expires", str(expires))
        msg.add("User-Agent", self.user_agent)
        if auth is not None:
            msg.add(*auth)
        self.transport.request(msg, self.proxy, self._register_response if expires else
                               (lambda r: None))

    def _register(self, auth: tuple[str, str] | None = None) -> None:
        if self._stopping.is_set():
            return
        self._send_register(self.config.register_expires, auth)
        cseq = self._reg_cseq

        def silent() -> None:
            # UDP retransmits for 32 s before giving up; the screen says so after a few.
            if self._reg_cseq == cseq and time.monotonic() >= self.registered_until:
                self._set_status("registering",
                                 f"No answer from {self.config.server}:{self.config.port}")

        self.transport.later(4.0, silent)

    def _register_response(self, resp: Message | None) -> None:
        if self._stopping.is_set():
            return
        if resp is None:
            self._retry(f"No answer from {self.config.server}:{self.config.port}")
            return
        if resp.status < 200:
            return
        if resp.status in (401, 407):
            name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            chal = challenge(resp.get(name))
            nonce = chal.get("nonce", "")
            if nonce and nonce == self._reg_nonce and chal.get("stale", "").lower() != "true":
                # Our answer to this very challenge was refused: the password is wrong.
                self._reg_nonce = ""
                self._set_status("failed", f"Wrong password ({resp.status})")
                log.error("SIP: %s refused the password for %s (%d); retrying in %.0f s",
                          self.config.server, self.auth_user, resp.status,
                          WRONG_PASSWORD_RETRY)
                self._schedule(WRONG_PASSWORD_RETRY)
                return
            self._reg_nonce = nonce
            header = "Authorization" if resp.status == 401 else "Proxy-Authorization"
            self._register((header, authorization(chal, "REGISTER", f"sip:{self.domain}",
                                                  self.auth_user, self.password)))
            return
        if resp.status == 423:
            minimum = resp.get("Min-Expires")
            if minimum.isdigit():
                self.config = _with_expires(self.config, int(minimum))
                self._register()
                return
        if resp.status >= 300:
            self._retry(f"Registrar said {resp.status} {resp.reason}")
            return
        expires = self.config.register_expires
        for contact in resp.all("Contact"):
            if address(contact).uri.split(";")[0].endswith(f"{self.local_ip}:{self.local_port}"):
                value = contact.rsplit("expires=", 1)[-1].split(";")[0] if "expires=" in \
                    contact else ""
                if value.isdigit():
                    expires = int(value)
        if resp.get("Expires").isdigit() and not resp.all("Contact"):
            expires = int(resp.get("Expires"))
        self.registered_until = time.monotonic() + expires
        self._backoff = 0.0
        self._reg_nonce = ""
        self._set_status("registered", "")
        self._schedule(max(5.0, expires * 0.5))
        until = self.registered_until
        self.transport.later(expires, lambda: self._expired(until))

    def _network_back(self) -> None:
        """The network returned or our address changed: rebind when the route now leaves from
        another address (unless the config fixed one), then register at once."""
        if self.transport.sock is None or self._stopping.is_set():
            return  # still starting up: _bring_up registers when it can
        self._dns.pop(self.config.server, None)
        try:
            proxy = self.resolve(self.config.server, self.config.port)
        except OSError:
            with self.transport.lock:
                self._retry(f"Cannot resolve {self.config.server}")
            return
        host, port = split_bind(self.config.bind)
        route = self._route_ip(proxy)
        if not host and not self.transport.reliable and route not in (self.local_ip, "0.0.0.0"):
            # Closing joins the transport's threads, which take the lock: not under it.
            log.info("SIP: our address changed (%s -> %s): rebinding", self.local_ip, route)
            self.transport.close()
            self.transport.bind_addr = (route, port)
            try:
                self.transport.open(proxy)
            except OSError as exc:
                with self.transport.lock:
                    self._retry(f"Cannot use {route}:{port}: {exc}")
                return
            self.local_ip, self.local_port = self.transport.local
        with self.transport.lock:
            self.proxy = proxy
            if self.transport.reliable and self.transport.sock is None:
                self.transport.peer = proxy
                if not self.transport.reconnect():
                    self._retry(f"Cannot connect to {self.config.server}:{self.config.port}")
                    return
                self.local_ip, self.local_port = self.transport.local
            self._backoff = 0.0
            log.info("SIP: the network is back: registering now")
            self._register()

    def _disconnected(self, reason: str) -> None:
        """TCP/TLS: the proxy closed our connection; register again over a new one now."""
        if self._stopping.is_set():
            return
        with self.transport.lock:
            if self.transport.reconnect():
                self.local_ip, self.local_port = self.transport.local
                self._register()
            else:
                self._retry(f"Cannot connect to {self.config.server}:{self.config.port}")

    def _expired(self, until: float) -> None:
        if self.registered_until == until and self.status[0] == "registered":
            self._set_status("registering", "Registration expired")

    def _retry(self, reason: str) -> None:
        self._backoff = min(self.backoff_max, max(2.0, self._backoff * 2))
        if time.monotonic() >= self.registered_until:
            self._set_status("registering", reason)
        log.warning("SIP: %s; retrying in %.0f s", reason, self._backoff)
        self._dns.pop(self.config.server, None)
        self._schedule(self._backoff)

    def _schedule(self, seconds: float) -> None:
        if self._reg_timer is not None:
            self._reg_timer.cancel()
        self._reg_timer = self.transport.later(seconds, self._reregister)

    def _reregister(self) -> None:
        try:
            self.proxy = self.resolve(self.config.server, self.config.port)
        except OSError:
            self._retry(f"Cannot resolve {self.config.server}")
            return
        if self.transport.reliable and self.transport.sock is None:
            self.transport.peer = self.proxy
            if not self.transport.reconnect():
                self._retry(f"Cannot connect to {self.config.server}:{self.config.port}")
                return
            self.local_ip, self.local_port = self.transport.local
        self._register()

    # ------------------------------------------------------------------ incoming traffic

    def _from_proxy(self, addr: Addr) -> bool:
        return addr == self.proxy

    def _request(self, req: Message, addr: Addr) -> None:
        call = self.calls.get(req.call_id)
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
        if req.method == "INVITE":
            self._invite(req, addr, call)
        elif req.method in ("OPTIONS", "NOTIFY"):
            self._reply(req, addr, 200, "OK")
        else:
            self._reply(req, addr, 405, "Method Not Allowed")

    def _invite(self, req: Message, addr: Addr, existing: SipCall | None) -> None:
        if not self._from_proxy(addr):
            self.ghosts += 1
            log.warning("SIP: INVITE from %s:%d (From %s) refused: not from the proxy %s:%d",
                        addr[0], addr[1], req.get("From")[:60], *self.proxy)
            self._reply(req, addr, 403, "Forbidden")
            return
        if existing is not None:
            return  # the same INVITE by another path; its first copy is being handled
        phone_id = f"sip-{next(self._ids)}"
        call = SipCall(self, phone_id, req.call_id, "in")
        self.calls[req.call_id] = call
        self.by_phone[phone_id] = call
        call.offer(req, addr)
        remote = address(req.get("From"))
        self.post(IncomingCall(phone_id, remote.user or remote.uri, remote.display or None))

    def _reply(self, req: Message, addr: Addr, status: int, reason: str) -> None:
        resp = Message(status=status, reason=reason)
        for via in req.all("Via"):
            resp.add("Via", via)
        resp.add("From", req.get("From"))
        to = req.get("To")
        resp.add("To", to if "tag=" in to or status == 100 else f"{to};tag={new_tag()}")
        resp.add("Call-ID", req.call_id)
        resp.add("CSeq", req.get("CSeq"))
        resp.add("Server", self.user_agent)
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


def _with_expires(config: SipConfig, expires: int) -> SipConfig:
    import dataclasses

    return dataclasses.replace(config, register_expires=expires)
