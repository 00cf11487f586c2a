"""SIP over UDP, TCP or TLS: the socket, a receive loop nothing can kill, retransmission, timers.

Owns: the SIP socket (UDP: one bound socket; TCP and TLS: one connection to the proxy, which the
proxy reuses for requests to us, re-opened when it drops), the receive thread, the timer thread
(`later`), client transactions (on UDP retransmit with T1 doubling to T2; give up after 64*T1;
match responses by Via branch and method) and the response cache of server transactions (a
retransmitted request gets the same answer again, never a second call). TLS verifies the
server's certificate and name unless told not to. Never touches: what a message means
(registration.py, ua.py and call.py decide).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware.sip.message import Message, ParseError, parse
from firmware.sip.stun import is_stun

log = logging.getLogger("sip")

T1, T2 = 0.5, 4.0
TIMEOUT = 64 * T1
Addr = tuple[str, int]


def family(host: str) -> socket.AddressFamily:
    """The socket family for an address: IPv6 when it has colons."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@dataclass
class Timer:
    at: float
    fn: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class ClientTx:
    request: Message
    dest: Addr
    on_response: Callable[[Message | None], None]  # None: timed out
    invite: bool
    interval: float = T1
    got_provisional: bool = False
    done: bool = False
    timer: Timer | None = None
    deadline: float = field(default_factory=lambda: time.monotonic() + TIMEOUT)


class Transport:
    """One UDP socket. `on_request(msg, addr)` and responses to our transactions run on the
    receive thread, under `lock`; so do timers. Everything that touches SIP state holds `lock`."""

    def __init__(self, bind: Addr, on_request: Callable[[Message, Addr], None],
                 on_stray_response: Callable[[Message, Addr], None], kind: str = "udp",
                 tls: ssl.SSLContext | None = None, server_name: str = "") -> None:
        self.bind_addr = bind
        self.kind = kind  # udp | tcp | tls
        self.tls = tls
        self.server_name = server_name
        self.peer: Addr | None = None  # TCP/TLS: the proxy we are connected to
        self.on_disconnect: Callable[[str], None] = lambda reason: None
        self.on_request = on_request
        self.on_stray_response = on_stray_response
        self.lock = threading.RLock()
        self.sock: socket.socket | None = None
        self.client: dict[tuple[str, str], ClientTx] = {}
        self.answered: dict[tuple[str, str, str], tuple[bytes, Addr, float]] = {}
        self.dropped = 0
        self._timers: list[tuple[float, int, Timer]] = []
        self._order = itertools.count()
        self._cond = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._buffer = b""
        # One writer at a time on a stream (two threads' sendall could interleave two messages),
        # and on TLS one SSL call at a time, reads included: OpenSSL's SSL object is not safe
        # for concurrent use (TLS 1.3 reads process session tickets that write state).
        self._io = threading.Lock()
        # When the peer (the proxy) was last heard from: any message or keep-alive pong on the
        # flow. The registration client reads it to tell a live flow from a dead one.
        self.heard = 0.0
        self.on_stun: Callable[[bytes, Addr], None] = lambda data, addr: None

    @property
    def local(self) -> Addr:
        assert self.sock is not None
        addr = self.sock.getsockname()
        return addr[0], addr[1]

    @property
    def reliable(self) -> bool:
        return self.kind != "udp"

    @property
    def running(self) -> bool:
        return bool(self._threads)

    def ensure(self, peer: Addr) -> None:
        """Open the transport towards `peer`, or (TCP/TLS) connect again when the connection
        dropped; nothing when it is up. Raises OSError / ssl errors naming the cause."""
        if not self.running:
            self.open(peer)
            return
        self.peer = peer
        if self.reliable and self.sock is None:
            sock = self._connect()
            with self.lock:
                self.sock = sock

    def open(self, peer: Addr | None = None) -> None:
        """UDP: bind. TCP/TLS: connect to `peer` from the bind address (OSError, ssl errors
        name the cause)."""
        if self.reliable:
            assert peer is not None
            self.peer = peer
            self.sock = self._connect()
        else:
            sock = socket.socket(family(self.bind_addr[0]), socket.SOCK_DGRAM)
            try:
                sock.bind(self.bind_addr)
            except OSError:
                sock.close()
                raise
            sock.settimeout(0.5)
            self.sock = sock
            self.peer = peer
        self._stop.clear()
        for target, name in ((self._recv_loop, "sip-recv"), (self._timer_loop, "sip-timers")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def _connect(self) -> socket.socket:
        assert self.peer is not None
        raw = socket.socket(family(self.peer[0]), socket.SOCK_STREAM)
        try:
            raw.bind((self.bind_addr[0], 0))
            raw.settimeout(5)
            raw.connect(self.peer)
            sock: socket.socket = raw
            if self.kind == "tls":
                assert self.tls is not None
                sock = self.tls.wrap_socket(raw, server_hostname=self.server_name)
        except (OSError, ssl.SSLError):
            raw.close()
            raise
        sock.settimeout(0.5)
        self._buffer = b""
        return sock

    def reconnect(self) -> bool:
        """TCP/TLS: a new connection after the old one dropped (True when it worked)."""
        if not self.reliable or self.sock is not None:
            return self.sock is not None
        try:
            self.sock = self._connect()
            return True
        except (OSError, ssl.SSLError) as exc:
            log.warning("SIP: cannot connect to %s:%d over %s: %s", *(self.peer or ("?", 0)),
                        self.kind.upper(), exc)
            return False

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # ------------------------------------------------------------------ timers

    def later(self, seconds: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + seconds, fn)
        with self._cond:
            heapq.heappush(self._timers, (timer.at, next(self._order), timer))
            self._cond.notify()
        return timer

    def _timer_loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                now = time.monotonic()
                due = []
                while self._timers and self._timers[0][0] <= now:
                    due.append(heapq.heappop(self._timers)[2])
                if not due:
                    wait = self._timers[0][0] - now if self._timers else 1.0
                    self._cond.wait(timeout=min(1.0, max(0.0, wait)))
                    continue
                for timer in due:
                    if timer.cancelled:
                        continue
                    try:
                        timer.fn()
                    except Exception:
                        log.exception("SIP timer failed")

    # ------------------------------------------------------------------ sending

    def send(self, msg: Message | bytes, dest: Addr) -> None:
        data = msg if isinstance(msg, bytes) else msg.encode()
        if self.reliable:
            # Everything goes over the one connection to the proxy, whatever the next hop.
            if self.sock is None and not self._stop.is_set():
                self.reconnect()
            sock = self.sock
            if sock is None:
                return
            try:
                with self._io:
                    sock.sendall(data)
            except OSError as exc:
                log.debug("send over %s failed: %s", self.kind, exc)
            return
        if self.sock is None:
            return
        try:
            self.sock.sendto(data, dest)
        except OSError as exc:
            log.debug("send to %s:%s failed: %s", dest[0], dest[1], exc)

    def request(self, msg: Message, dest: Addr, on_response: Callable[[Message | None], None]
                ) -> ClientTx:
        """Send a request reliably: retransmitted until a response (or 32 s) on UDP."""
        invite = msg.method == "INVITE"
        tx = ClientTx(msg, dest, on_response, invite)
        with self.lock:
            self.client[(msg.branch, msg.method)] = tx
            self.send(msg, dest)
            tx.timer = self.later(tx.interval, lambda: self._retransmit(tx))
        return tx

    def _retransmit(self, tx: ClientTx) -> None:
        if tx.done:
            return
        if time.monotonic() >= tx.deadline:
            tx.done = True
            self.client.pop((tx.request.branch, tx.request.method), None)
            tx.on_response(None)
            return
        if (tx.invite and tx.got_provisional) or self.reliable:
            # Wait for the final answer only: TCP and TLS never lose a message themselves.
            tx.timer = self.later(1.0, lambda: self._retransmit(tx))
            return
        self.send(tx.request, tx.dest)
        tx.interval = min(tx.interval * 2, T2) if not tx.invite else tx.interval * 2
        tx.timer = self.later(tx.interval, lambda: self._retransmit(tx))

    def finish(self, tx: ClientTx) -> None:
        tx.done = True
        if tx.timer is not None:
            tx.timer.cancel()
        self.client.pop((tx.request.branch, tx.request.method), None)

    def respond(self, request: Message, response: Message, dest: Addr) -> None:
        """Send a response and remember it for retransmissions of the same request."""
        key = (request.branch, request.method, request.call_id)
        data = response.encode()
        self.answered[key] = (data, dest, time.monotonic())
        self.send(data, dest)

    # ------------------------------------------------------------------ receiving

    def _recv_loop(self) -> None:
        if self.reliable:
            self._stream_loop()
            return
        while not self._stop.is_set():
            sock = self.sock
            if sock is None:
                return
            try:
                data, addr = sock.recvfrom(65535)
            except TimeoutError:
                self._expire_answers()
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # e.g. ICMP port unreachable reported on a later read
                continue
            try:
                self._datagram(data, (addr[0], addr[1]))
            except Exception:
                # Nothing a peer sends may kill this thread: the phone would go deaf.
                self.dropped += 1
                log.exception("SIP message from %s:%s could not be handled", *addr)

    def _stream_loop(self) -> None:
        """TCP/TLS: messages framed by Content-Length; a dropped connection is reported."""
        while not self._stop.is_set():
            sock = self.sock
            if sock is None:
                self._stop.wait(0.5)
                continue
            try:
                chunk = self._tls_recv(sock) if self.kind == "tls" else sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                self._expire_answers()
                continue
            except (OSError, ssl.SSLError) as exc:
                chunk = b""
                reason = str(exc)
            else:
                reason = "closed by the proxy"
            if chunk:
                self.heard = time.monotonic()  # a message or a pong: the flow is alive
            if not chunk:
                if self._stop.is_set():
                    return
                with self.lock:
                    if self.sock is sock:
                        self.sock = None
                        sock.close()
                log.warning("SIP: the %s connection to %s:%d dropped (%s)", self.kind.upper(),
                            *(self.peer or ("?", 0)), reason)
                self.on_disconnect(reason)
                continue
            self._buffer += chunk
            while True:
                self._buffer = self._buffer.lstrip(b"\r\n")  # keep-alive CRLFs
                head, sep, rest = self._buffer.partition(b"\r\n\r\n")
                if not sep:
                    if len(self._buffer) > 65536:
                        self._buffer = b""  # no end of headers in 64 KiB: garbage
                    break
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() in (b"content-length", b"l"):
                        length = int(value.strip()) if value.strip().isdigit() else 0
                if len(rest) < length:
                    break
                message, self._buffer = head + sep + rest[:length], rest[length:]
                try:
                    self._datagram(message, self.peer or ("", 0))
                except Exception:
                    self.dropped += 1
                    log.exception("SIP message over %s could not be handled", self.kind)

    def _tls_recv(self, sock: socket.socket) -> bytes:
        """Wait for the connection to be readable without the SSL object, then read under the
        I/O lock (a send waits at most for one read, never for the 0.5 s poll)."""
        assert isinstance(sock, ssl.SSLSocket)
        try:
            readable = sock.pending() or select.select([sock], [], [], 0.5)[0]
        except ValueError as exc:  # closed under us by close() or the registration
            raise OSError(str(exc)) from None
        if not readable:
            raise TimeoutError
        with self._io:
            return sock.recv(65536)

    def _datagram(self, data: bytes, addr: Addr) -> None:
        if addr == self.peer:
            self.heard = time.monotonic()
        if is_stun(data):
            self.on_stun(data, addr)  # a keep-alive's answer, on the SIP socket itself
            return
        if not data.strip(b"\r\n\0 "):
            return  # keep-alive
        try:
            msg = parse(data)
        except ParseError as exc:
            self.dropped += 1
            if self.dropped <= 20 or self.dropped % 1000 == 0:
                log.info("dropped a malformed datagram from %s:%s (%s; %d so far)", addr[0],
                         addr[1], exc, self.dropped)
            return
        with self.lock:
            if msg.is_request:
                key = (msg.branch, msg.method, msg.call_id)
                cached = self.answered.get(key)
                if cached is not None and msg.method != "ACK":
                    self.send(cached[0], cached[1])  # a retransmission: same answer again
                    return
                self.on_request(msg, addr)
                return
            try:
                method = msg.cseq[1]
            except ValueError:
                return
            tx = self.client.get((msg.branch, method))
            if tx is None:
                self.on_stray_response(msg, addr)
                return
            if msg.status < 200:
                tx.got_provisional = True
                tx.on_response(msg)
                return
            self.finish(tx)
            tx.on_response(msg)

    def _expire_answers(self) -> None:
        cutoff = time.monotonic() - TIMEOUT
        with self.lock:
            for key in [k for k, v in self.answered.items() if v[2] < cutoff]:
                del self.answered[key]
