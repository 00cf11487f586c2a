"""The registration client: the phone registered with its provider, and honest about it.

Owns: bringing the flow up (DNS, the local address, the socket or connection) on one path used
at start, after a failure, when the network returns and when the flow dies; REGISTER with
digest auth (401/407), 423 and refreshes at half the expiry; keep-alives on the flow (on UDP a
STUN Binding where the server answers it, else OPTIONS; on TCP/TLS the CRLF ping and its pong)
and declaring the flow dead when a ping goes a whole period unanswered; the public address the
provider sees behind a NAT router (`received`/`rport`, RFC 3581, or STUN's mapped address),
registered as our Contact; retries with a jittered backoff; the status and its reason. Never
touches: calls, the phone's state (it reports through `on_status`), or requests from the
network.

Threads: connecting may block (DNS, TCP, TLS), so it runs on this client's own thread
(`sip-register`), woken when an attempt is due; responses and keep-alives run on the
transport's threads under its lock.
"""

from __future__ import annotations

import logging
import math
import random
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable

from firmware.config import SipConfig, split_host_port
from firmware.sip.dns import Resolver, Target
from firmware.sip.identity import Addr, Identity, host_port, is_address
from firmware.sip.message import (
    Message,
    ParseError,
    address,
    authorization,
    challenge,
    new_tag,
    parse_uri,
)
from firmware.sip.stun import binding_request, mapped
from firmware.sip.transport import ClientTx, Transport

log = logging.getLogger("sip")

WRONG_PASSWORD_RETRY = 60.0
FIRST_BACKOFF = 2.0
MAX_REDIRECTS = 5  # 3xx in a row before the configured server is used again
MAX_RETRY_AFTER = 3600  # seconds: a Retry-After longer than an hour is read as an hour
STUN_PORT = 3478
STUN_WAITS = (0.5, 1.0, 2.0)  # a Binding request sent three times: 3.5 s at most


def split_bind(bind: str | None, default_port: int = 5060) -> tuple[str, int]:
    """`[sip] bind` as (host, port): "10.0.0.5", "10.0.0.5:5062", "[fd00::5]:5062"."""
    if not bind:
        return "", default_port
    return split_host_port(bind, default_port)


def route_ip(dest: Addr) -> str:
    """The address of the interface that routes to `dest` (no packet is sent)."""
    probe = socket.socket(socket.AF_INET6 if ":" in dest[0] else socket.AF_INET,
                          socket.SOCK_DGRAM)
    try:
        probe.connect(dest)
        return str(probe.getsockname()[0])
    except OSError:
        return "0.0.0.0"
    finally:
        probe.close()


def seen_at(response: Message) -> Addr | None:
    """Where the server saw our request come from: the top Via's `received` and `rport`
    (RFC 3581), falling back to its sent-by. None when they are not an address and a port."""
    sent_by, _, params = response.get("Via").split(",")[0].strip().partition(";")
    words = sent_by.split()
    sent_by = words[-1] if words else ""
    if sent_by.startswith("["):
        host, _, rest = sent_by[1:].partition("]")
        port = rest.lstrip(":") or "5060"
    else:
        host, _, port = sent_by.partition(":")
        port = port or "5060"
    values = dict(p.strip().partition("=")[::2] for p in params.split(";") if p.strip())
    host = values.get("received") or host
    port = values.get("rport") or port
    if not is_address(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


class Registration:
    def __init__(self, config: SipConfig, me: Identity, transport: Transport,
                 on_status: Callable[[str, str], None], *, backoff_max: float = 30.0,
                 dns: Resolver | None = None) -> None:
        self.config = config
        self.me = me
        self.transport = transport
        self.on_status = on_status
        self.backoff_max = backoff_max
        self.dns = dns or Resolver()
        self._targets: list[Target] = []  # where the server's name leads, in RFC 3263 order
        self._target = 0  # the one in use; a failure moves on to the next
        self._fresh = False  # set from other threads: look the name up again first
        # A 3xx named another registrar (host, port or None): used until it fails.
        self._redirect: tuple[str, int | None] | None = None
        self._redirects = 0  # in a row: a loop of redirects ends after MAX_REDIRECTS
        self._tx: ClientTx | None = None  # the REGISTER in flight
        # UDP keep-alives: a STUN Binding and an OPTIONS first ("probe", then "probing" until
        # the next tick); "stun" when the server answers the Binding, else "options".
        self._ping = "probe"
        self._stun_tid = b""
        transport.on_stun = self._stun_answer
        # `[sip] stun_server`: asked once per socket (and after a dead flow) before REGISTER.
        self._asked_for: Addr | None = None  # the local address it was last asked about
        self._question: tuple[Addr, bytes] | None = None  # (server, transaction id) in flight
        self._answer: Addr | None = None
        self._answered = threading.Event()
        self.status = ("", "")
        self.registered_until = 0.0
        self.expires = config.register_expires
        self._call_id = f"{secrets.token_hex(12)}@deskphone"
        self._tag = new_tag()
        self._cseq = 0
        self._nonce = ""
        self._backoff = 0.0
        self._due = 0.0  # monotonic time of the next attempt to connect and register
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._flow = 0  # bumped whenever the flow is declared dead: old keep-alives stop
        self._pinged = 0.0  # when the last keep-alive went out
        self._bad_received = 0

    @property
    def server(self) -> str:
        return self.config.server

    @property
    def where(self) -> str:
        """The server in use, for the screen: `host:port` as configured, or the DNS target
        ("pbx1.example.com (SRV 1/2)")."""
        if self.config.port is not None or not self._targets:
            return host_port(self.config.server.strip("[]"), self.config.port or 5060)
        return self._targets[self._target % len(self._targets)].where

    # ------------------------------------------------------------------ the worker

    def start(self, delay: float = 0.0) -> None:
        """Register from now on, the first time after `delay` seconds (a power-on's jitter)."""
        self._due = time.monotonic() + delay
        self._set("registering", "")
        self._thread = threading.Thread(target=self._run, name="sip-register", daemon=True)
        self._thread.start()

    def network_back(self) -> None:
        """The network returned or our address changed: start afresh, at once, from the first
        server DNS gives."""
        self._backoff = 0.0
        self._fresh = True
        self._asked_for = None
        self.now()

    def now(self, delay: float = 0.0) -> None:
        """Connect (as needed) and register after `delay` seconds."""
        self._due = time.monotonic() + delay
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            delay = self._due - time.monotonic()
            if delay > 0:
                # A wait, never a spin: woken early by now(), else at the due time.
                self._wake.wait(min(delay, 60.0))
                self._wake.clear()
                continue
            self._due = math.inf
            try:
                reason = self._connect()
            except Exception as exc:  # a bug must not end registration for good
                log.exception("SIP: bringing the flow up failed")
                reason = f"Cannot reach {self.server}: {exc}"
            with self.transport.lock:
                if reason is not None:
                    self._retry(reason)
                else:
                    self._register()

    def _connect(self) -> str | None:
        """The one way up: resolve the server, choose the local address (rebinding when the
        route now leaves from another one), open or reconnect the transport. Returns why it
        failed, or None."""
        try:
            proxy = self._resolve()
        except OSError as exc:
            log.error("SIP: cannot resolve %s (%s)", self.server, exc)
            self._targets = []
            return f"Cannot resolve {self.server}"
        host, port = split_bind(self.config.bind)
        local = host or route_ip(proxy)
        t = self.transport
        if t.running and not host and not t.reliable and local not in (self.me.local_ip,
                                                                          "0.0.0.0"):
            # Closing joins the transport's threads, which take the lock: not under it.
            log.info("SIP: our address changed (%s -> %s): rebinding", self.me.local_ip, local)
            t.close()
        if not t.running:
            t.bind_addr = (local, port)
        try:
            t.ensure(proxy)
        except ssl.SSLCertVerificationError as exc:
            log.error("SIP: TLS to %s: %s", host_port(*proxy), exc.verify_message)
            return f"TLS: {self.server}'s certificate is not trusted"
        except (OSError, ssl.SSLError) as exc:
            if t.reliable:
                reason = f"Cannot connect to {self.where}"
            elif getattr(exc, "errno", None) == 98:
                reason = f"SIP port {local}:{port} in use"
            else:
                reason = f"Cannot use {local}:{port}: {getattr(exc, 'strerror', exc)}"
            log.error("SIP: %s (%s)", reason, exc)
            return reason
        with t.lock:
            if self.me.local != t.local:
                self.me.local = t.local
                self.me.public = None  # a new socket: its NAT mapping is learnt anew
                log.info("SIP: %s on %s via %s", self.me.aor, host_port(*self.me.local),
                         host_port(*proxy))
            self.me.proxy = proxy
        if self.config.stun_server.strip() and not t.reliable and self._asked_for != t.local:
            self._asked_for = t.local
            self._discover()
        return None

    def _discover(self) -> None:
        """Ask `[sip] stun_server` where the NAT router maps our SIP socket, from that socket
        itself (RFC 5389), so the first REGISTER already carries a Contact the provider can
        reach. One that never answers costs 3.5 s and a line on screen and in the log: the
        registrar's `received`/`rport` (RFC 3581) still teach the address afterwards."""
        name = self.config.stun_server.strip()
        host, port = split_host_port(name, STUN_PORT)
        host = host.strip("[]")
        try:
            found = [host] if is_address(host) else self.dns.addresses(host)
        except OSError as exc:
            found = []
            log.warning("SIP: cannot resolve the STUN server %s (%s)", name, exc)
        if not found:
            self._stun_failed(f"Cannot resolve STUN server {name}")
            return
        server = (found[0], port)
        tid, request = binding_request()
        self._answered.clear()
        self._answer = None
        self._question = (server, tid)
        try:
            for wait in STUN_WAITS:
                self.transport.send(request, server)
                if self._answered.wait(wait):
                    break
        finally:
            self._question = None
        seen = self._answer
        if seen is None:
            log.warning("SIP: the STUN server %s did not answer; registering without it", name)
            self._stun_failed(f"No answer from STUN server {name}")
            return
        with self.transport.lock:
            self._seen(seen)
        log.info("SIP: the STUN server %s sees us at %s", name, host_port(*seen))

    def _resolve(self) -> Addr:
        """The target to use (the worker's thread only: DNS blocks). The list is looked up
        again (answers are cached for their TTL) when it is empty or was used up."""
        if self._fresh or not self._targets or self._target >= len(self._targets):
            self._fresh = False
            if self._redirect is not None and self._target >= len(self._targets) > 0:
                log.info("SIP: the registrar %s we were sent to failed: back to %s",
                         self._redirect[0], self.server)
                self._redirect = None
            server, port = self._redirect or (self.server, self.config.port)
            self._targets = self.dns.targets(server, port, self.config.transport)
            self._target = 0
            if len(self._targets) > 1:
                log.info("SIP: %s leads to %s", self.server,
                         ", ".join(f"{t.where} {host_port(t.address, t.port)}"
                                   for t in self._targets))
        target = self._targets[self._target]
        self.me.names[target.host] = target.address
        return target.address, target.port

    def _next_target(self) -> None:
        """The one in use failed: the next one is tried (RFC 3263 4.3)."""
        if self._targets:
            self._target += 1
            self._ping = "probe"  # another server may speak STUN where this one did not
            if self._target < len(self._targets):
                log.info("SIP: trying the next server: %s", self.where)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self.transport.lock:
            if self.status[0] == "registered" and self.transport.sock is not None:
                self._send(expires=0)  # best effort: the registrar forgets us
        if self._thread is not None:
            self._thread.join(timeout=2)

    # ------------------------------------------------------------------ REGISTER

    def _set(self, status: str, reason: str) -> None:
        if (status, reason) != self.status:
            self.status = (status, reason)
            self.on_status(status, reason)

    def _to_server(self, method: str, to: str, tag: str, call_id: str, cseq: int) -> Message:
        """An out-of-dialog request to the server (REGISTER, OPTIONS)."""
        msg = Message(method=method, uri=f"sip:{self.me.domain}")
        msg.add("Via", self.me.via())
        msg.add("Max-Forwards", "70")
        msg.add("From", f"<{self.me.aor}>;tag={tag}")
        msg.add("To", f"<{to}>")
        msg.add("Call-ID", call_id)
        msg.add("CSeq", f"{cseq} {method}")
        return msg

    def _send(self, expires: int, auth: tuple[str, str] | None = None) -> None:
        self._cseq += 1
        msg = self._to_server("REGISTER", self.me.aor, self._tag, self._call_id, self._cseq)
        msg.add("Contact", f"{self.me.contact()};expires={expires}")
        msg.add("Expires", str(expires))
        msg.add("User-Agent", self.me.user_agent)
        if auth is not None:
            msg.add(*auth)
        self._tx = self.transport.request(msg, self.me.proxy, self._response if expires else
                                          (lambda r: None))

    def _register(self, auth: tuple[str, str] | None = None) -> None:
        if self._stopping.is_set():
            return
        if auth is None:
            self._nonce = ""  # no credentials in this one: its challenge says nothing of them
        self._send(self.expires, auth)
        cseq = self._cseq

        def silent() -> None:
            # UDP retransmits for 32 s before giving up; the screen says so after a few.
            if self._cseq != cseq or time.monotonic() < self.registered_until:
                return
            where = self.where
            if self._tx is not None and len(self._targets) - self._target > 1:
                # DNS named another server: try it now rather than after 32 s of silence.
                self.transport.finish(self._tx)
                self._retry(f"No answer from {where}")
            else:
                self._set("registering", f"No answer from {where}")

        self.transport.later(4.0, silent)

    def _response(self, resp: Message | None) -> None:
        if self._stopping.is_set():
            return
        if resp is None:
            self._retry(f"No answer from {self.where}")
            return
        if resp.status < 200:
            return
        if resp.status in (401, 407):
            self._challenged(resp)
            return
        if resp.status == 423 and resp.get("Min-Expires").isdigit():
            self.expires = int(resp.get("Min-Expires"))
            self._register()
            return
        if 300 <= resp.status < 400 and resp.get("Contact") and \
                self._redirects < MAX_REDIRECTS and self._redirected(resp):
            return
        if resp.status >= 300:
            after = resp.get("Retry-After").split(";")[0].split("(")[0].strip()
            if after.isdigit() and resp.status in (404, 413, 480, 486, 500, 503, 600, 603):
                # RFC 3261 21.5.4/20.33: the registrar says when to come back; not before.
                self._retry(f"Registrar said {resp.status} {resp.reason}",
                            at=min(int(after), MAX_RETRY_AFTER))
            else:
                self._retry(f"Registrar said {resp.status} {resp.reason}")
            return
        if self._learn(resp):
            log.info("SIP: the provider sees us at %s: registering that Contact",
                     host_port(*self.me.reachable))
            self._register()
            return
        if not self._kept(resp):
            self._retry("Registrar did not keep our Contact")
            return
        self._redirects = 0
        expires = self._granted(resp)
        self.registered_until = time.monotonic() + expires
        self._backoff = 0.0
        self._nonce = ""
        self._set("registered", "")
        self._schedule(max(5.0, expires * 0.5))
        until = self.registered_until
        self.transport.later(expires, lambda: self._expired(until))
        self._keep_alive()

    def _challenged(self, resp: Message) -> None:
        name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
        chal = challenge(resp.get(name))
        nonce = chal.get("nonce", "")
        if nonce and nonce == self._nonce and chal.get("stale", "").lower() != "true":
            # Our answer to this very challenge was refused: the password is wrong.
            self._nonce = ""
            self._set("failed", f"Wrong password ({resp.status})")
            log.error("SIP: %s refused the password for %s (%d); retrying in %.0f s",
                      self.server, self.me.auth_user, resp.status, WRONG_PASSWORD_RETRY)
            self._schedule(WRONG_PASSWORD_RETRY)
            return
        self._nonce = nonce
        header = "Authorization" if resp.status == 401 else "Proxy-Authorization"
        self._register((header, authorization(chal, "REGISTER", f"sip:{self.me.domain}",
                                              self.me.auth_user, self.me.password)))

    def _redirected(self, resp: Message) -> bool:
        """A 3xx: register with the registrar its Contact names (RFC 3261 8.1.3.4), at once."""
        try:
            uri = parse_uri(address(resp.get("Contact")).uri)
        except ParseError:
            return False
        host = uri.host.strip("[]")
        if not host:
            return False
        self._redirects += 1
        self._redirect = (host, uri.port)
        self._targets, self._target = [], 0
        log.info("SIP: %s sends us to %s (%d %s)", self.where,
                 host_port(host, uri.port or 5060), resp.status, resp.reason)
        self._set("registering", f"Sent to {host}")
        self._schedule(0.0)
        return True

    def _kept(self, resp: Message) -> bool:
        """Whether a 200 lists our binding. It lists the AOR's bindings (RFC 3261 10.3): when
        it lists some and none is this account's user, ours was not kept. (No Contact at all:
        some registrars never list them; believed.)"""
        contacts = resp.all("Contact")
        if not contacts:
            return True
        for contact in contacts:
            try:
                if parse_uri(address(contact).uri).user == self.me.username:
                    return True
            except ParseError:
                continue
        return False

    def _granted(self, resp: Message) -> int:
        """The expiry the registrar gave our Contact (else its Expires, else ours)."""
        expires = self.expires
        ours = host_port(*self.me.reachable)
        for contact in resp.all("Contact"):
            if address(contact).uri.split(";")[0].endswith(ours) and "expires=" in contact:
                value = contact.rsplit("expires=", 1)[-1].split(";")[0]
                if value.isdigit():
                    expires = int(value)
        if resp.get("Expires").isdigit() and not resp.all("Contact"):
            expires = int(resp.get("Expires"))
        return expires

    def _learn(self, resp: Message) -> bool:
        """Note where the provider sees us; True when that changed what our Contact says."""
        seen = seen_at(resp)
        if seen is None:
            self._bad_received += 1
            if self._bad_received <= 3:
                log.warning("SIP: %s's Via says nothing usable about our address (%s); "
                            "keeping %s", self.server, resp.get("Via")[:80],
                            host_port(*self.me.reachable))
            return False
        return self._seen(seen)

    def _seen(self, seen: Addr) -> bool:
        """The provider (Via or STUN) saw us at `seen`: True when that changes our public
        address (None when it is our own: no NAT in between)."""
        public = None if seen == self.me.local else seen
        if public == self.me.public:
            return False
        self.me.public = public
        return True

    def _expired(self, until: float) -> None:
        if self.registered_until == until and self.status[0] == "registered":
            self._set("registering", "Registration expired")

    def _retry(self, reason: str, at: float | None = None) -> None:
        """Try again after a wait doubling from 2 s to the cap, each one randomised to
        50-100 % so that a fleet of phones does not stampede a registrar that returns; or,
        when the registrar said when (`at`, its Retry-After), that long and up to 10 % more."""
        self._backoff = min(self.backoff_max, max(FIRST_BACKOFF, self._backoff * 2))
        wait = self._backoff * random.uniform(0.5, 1.0)
        if at is not None:
            wait = at * random.uniform(1.0, 1.1)
        if time.monotonic() >= self.registered_until:
            self._set("registering", reason)
        log.warning("SIP: %s; retrying in %.1f s", reason, wait)
        self._next_target()
        self._schedule(wait)

    def _schedule(self, seconds: float) -> None:
        self.now(seconds)  # replaces whatever was due: one next attempt at a time

    # ------------------------------------------------------------------ flow health

    def _keep_alive(self) -> None:
        """Start pinging the flow (once per registration; a refresh keeps the chain)."""
        period = self.config.keepalive_seconds
        if period <= 0 or self._pinged:
            return
        flow = self._flow
        # The REGISTER just answered counts as the first ping, and its answer as the pong.
        self._pinged = self.transport.heard or time.monotonic()
        self.transport.later(period, lambda: self._tick(flow))

    def _tick(self, flow: int) -> None:
        if self._stopping.is_set() or flow != self._flow:
            return
        if self.transport.heard < self._pinged:
            # Nothing at all from the server since the last ping went out, a whole period ago
            # (and the one before was the last thing it answered): the flow is dead.
            self._dead(f"No answer from {self.server}: registering again")
            return
        if self._ping == "probing":
            # The last ping was a STUN Binding and an OPTIONS; only the OPTIONS was answered.
            log.info("SIP: %s answers no STUN; keep-alives by OPTIONS", self.server)
            self._ping = "options"
        self._pinged = time.monotonic()
        if self.transport.reliable:
            self.transport.send(b"\r\n\r\n", self.me.proxy)  # RFC 5626 4.4.1: pong is CRLF
        elif self._ping == "options":
            self._options()
        elif self._ping == "probe":
            # Both at once: whichever the server answers, the flow is judged within a period.
            self._ping = "probing"
            self._stun_tid, request = binding_request()
            self.transport.send(request, self.me.proxy)
            self._options()
        else:
            # RFC 5626 4.4.2: a STUN Binding on the flow; a quarter of an OPTIONS' bytes.
            self._stun_tid, request = binding_request()
            self.transport.send(request, self.me.proxy)
        self.transport.later(self.config.keepalive_seconds, lambda: self._tick(flow))

    def _stun_failed(self, reason: str) -> None:
        with self.transport.lock:
            if time.monotonic() >= self.registered_until:  # never hides a valid registration
                self._set("registering", reason)

    def _stun_answer(self, data: bytes, addr: Addr) -> None:
        """A STUN response on the SIP socket (the transport's receive thread): from the STUN
        server `_discover` waits for, or a keep-alive's pong from the registrar."""
        question = self._question
        if question is not None and addr == question[0]:
            self._answer = mapped(data, question[1])
            if self._answer is not None:
                self._answered.set()
            return
        seen = mapped(data, self._stun_tid)
        if seen is None or addr != self.me.proxy:
            return
        with self.transport.lock:
            if self._ping in ("probe", "probing"):
                log.info("SIP: %s answers STUN: keep-alives by STUN Binding", self.server)
                self._ping = "stun"
            if self.status[0] == "registered" and self._seen(seen):
                self._nat_changed()

    def _options(self) -> None:
        """An OPTIONS to the server: any answer proves the flow, and its Via shows where the
        NAT router maps us today."""
        msg = self._to_server("OPTIONS", f"sip:{self.me.domain}", new_tag(),
                              f"{secrets.token_hex(12)}@deskphone", 1)
        msg.add("User-Agent", self.me.user_agent)
        self.transport.request(msg, self.me.proxy, self._pong)

    def _pong(self, resp: Message | None) -> None:
        if resp is None or self._stopping.is_set() or self.status[0] != "registered":
            return
        if self._learn(resp):
            self._nat_changed()

    def _nat_changed(self) -> None:
        self._dead(f"NAT binding changed ({host_port(*self.me.reachable)}): registering again")

    def _dead(self, reason: str) -> None:
        self._flow += 1
        self._asked_for = None  # the router may map us anew: ask the STUN server again
        self._pinged = 0.0
        self.registered_until = 0.0
        self._backoff = 0.0
        log.warning("SIP: %s", reason)
        self._set("registering", reason)
        self._next_target()
        self._schedule(0.0)

    def flow_dropped(self) -> None:
        """TCP/TLS: the server closed our connection; connect and register again at once."""
        if not self._stopping.is_set():
            self._schedule(0.0)
