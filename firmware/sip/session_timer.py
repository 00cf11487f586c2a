"""Session timers (RFC 4028): a call nobody refreshes does not last for ever.

Owns: reading `Session-Expires` / `Min-SE` and choosing the refresher; the one timer of a call:
as the refresher, a refresh due at half the interval; otherwise the call's end when no refresh
came by the interval minus min(32 s, a third of it). Never touches: messages it does not read,
sockets or call state (the call is handed `refresh` and `expire` and does both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from firmware.sip.message import Message
from firmware.sip.transport import Timer, Transport

MIN_SE = 90  # seconds: RFC 4028's floor, and ours


@dataclass(frozen=True)
class Interval:
    seconds: int
    refresher: str  # "uac" | "uas"


def requested(msg: Message) -> Interval | None:
    """The Session-Expires of a request or response (refresher "" when it names none)."""
    value = msg.get("Session-Expires")  # or its compact form "x"
    number, _, params = value.partition(";")
    number = number.strip()
    if not number.isdigit():
        return None
    refresher = ""
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key.lower() == "refresher" and val.strip().lower() in ("uac", "uas"):
            refresher = val.strip().lower()
    return Interval(int(number), refresher)


def min_se(msg: Message) -> int:
    value = msg.get("Min-SE").split(";")[0].strip()
    return int(value) if value.isdigit() else MIN_SE


class SessionTimer:
    """The timer of one call; every method runs under the transport lock."""

    def __init__(self, transport: Transport, refresh: Callable[[], None],
                 expire: Callable[[], None]) -> None:
        self.transport = transport
        self.refresh = refresh
        self.expire = expire
        self.interval: Interval | None = None
        self.we_refresh = False
        self._timer: Timer | None = None

    def start(self, interval: Interval, we_refresh: bool) -> None:
        """(Re)start after a 2xx that set the interval, or a refresh that renewed it."""
        self.stop()
        self.interval, self.we_refresh = interval, we_refresh
        seconds = interval.seconds
        if we_refresh:
            self._timer = self.transport.later(seconds / 2, self._due)
        else:
            self._timer = self.transport.later(seconds - min(32, seconds / 3), self._due)

    def _due(self) -> None:
        if self.we_refresh:
            self.refresh()
        else:
            self.expire()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def header(self) -> str:
        assert self.interval is not None
        return f"{self.interval.seconds};refresher={self.interval.refresher}"
