"""systemd's notify protocol: READY, STATUS and WATCHDOG, in twenty lines of standard library.

Owns: the datagram socket to `$NOTIFY_SOCKET` and the watchdog interval from `$WATCHDOG_USEC`.
Never touches: phone state; the daemon decides when the loop is healthy enough to ping.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("systemd")


class Notifier:
    """Sends notify messages when systemd asked for them, and does nothing otherwise."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET", "")
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_seconds: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_seconds = int(usec) / 1_000_000
        self._sock: socket.socket | None = None

    def send(self, *fields: str) -> None:
        if not self.address:
            return
        address = self.address
        if address.startswith("@"):  # the abstract namespace
            address = "\0" + address[1:]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(fields).encode(), address)
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", self.address, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
