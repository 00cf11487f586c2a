"""The phone's own network: which local address routes to the SIP server, and whether any does.

Owns: a thread that asks the kernel for the route every few seconds and posts `NetworkChanged`
when the answer changes. Never touches: phone state; DNS and routing lookups (which can block)
stay on this thread.
"""

from __future__ import annotations

import logging
import socket
import threading

from firmware.events import Action, NetworkChanged, Post

log = logging.getLogger("network")


def local_address(host: str, port: int) -> str | None:
    """The address this machine would send from to reach host:port, or None without a route."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError):
        return None
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.connect(address)  # UDP connect sends nothing: it only picks the route
                return str(probe.getsockname()[0])
        except OSError:
            continue
    return None


def routed_address() -> str | None:
    """The address this machine would send from towards the internet at all (a default route),
    or None. For a server whose name does not resolve by address (an SRV-only domain, or a DNS
    failure): that is the SIP client's problem to name, not "no network". The documentation
    addresses are only routed, never sent to (a UDP connect sends nothing)."""
    for family, address in ((socket.AF_INET, ("192.0.2.1", 9)),
                            (socket.AF_INET6, ("2001:db8::1", 9))):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect(address)
                return str(probe.getsockname()[0])
        except OSError:
            continue
    return None


class NetworkMonitor:
    name = "network"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, host: str, port: int, interval: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, post: Post) -> None:
        self._thread = threading.Thread(target=self._run, args=(post,), name="network",
                                        daemon=True)
        self._thread.start()

    def _run(self, post: Post) -> None:
        last: object = object()
        while True:
            address = local_address(self.host, self.port) or routed_address()
            if address != last:
                log.info("address towards %s: %s", self.host, address or "none (no network)")
                post(NetworkChanged(address))
                last = address
            if self._stop.wait(self.interval):
                return

    def execute(self, action: Action) -> None:  # pragma: no cover - handles nothing
        pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
