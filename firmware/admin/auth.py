"""Who may use the web page: the password check, cookie sessions with their CSRF tokens, and the
login rate limit.

Owns: session and CSRF tokens (random, kept in memory: a restart logs everyone out), the
failures counted per client address. Never touches: HTTP, pages or the phone. The password is
compared in constant time and never logged or kept beyond the config's `Secret`.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware.config import Secret

USER = "admin"
SESSION_SECONDS = 8 * 3600
MAX_SESSIONS = 64  # the oldest goes first: a script logging in forever cannot fill memory


def password_ok(given: str, password: Secret | None) -> bool:
    """Constant time, whatever the lengths; with no password set, nobody gets in by one."""
    if password is None:
        return False
    return hmac.compare_digest(given.encode(), password.reveal().encode())


@dataclass
class Session:
    csrf: str
    expires: float


class Sessions:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_token: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> tuple[str, Session]:
        token = secrets.token_urlsafe(32)
        session = Session(secrets.token_urlsafe(32), self._clock() + SESSION_SECONDS)
        with self._lock:
            if len(self._by_token) >= MAX_SESSIONS:
                oldest = min(self._by_token, key=lambda t: self._by_token[t].expires)
                del self._by_token[oldest]
            self._by_token[token] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            session = self._by_token.get(token)
            if session is None:
                return None
            if session.expires < self._clock():
                del self._by_token[token]
                return None
            session.expires = self._clock() + SESSION_SECONDS  # sliding: in use, kept
            return session

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


def csrf_ok(given: str, session: Session) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), session.csrf.encode())


class LoginLimiter:
    """Per client address: 5 wrong passwords, then a wait of 30 s that doubles with each further
    failure (up to 15 minutes); a right one clears the count."""

    FREE = 5
    FIRST_WAIT = 30.0
    MAX_WAIT = 900.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # address -> (count, locked until)
        self._lock = threading.Lock()

    def wait(self, address: str) -> float:
        """Seconds this address must wait before trying again (0: it may try now)."""
        with self._lock:
            _, until = self._failures.get(address, (0, 0.0))
        return max(0.0, until - self._clock())

    def failed(self, address: str) -> None:
        with self._lock:
            count, _ = self._failures.get(address, (0, 0.0))
            count += 1
            until = 0.0
            if count >= self.FREE:
                wait = min(self.MAX_WAIT, self.FIRST_WAIT * 2 ** (count - self.FREE))
                until = self._clock() + wait
            self._failures[address] = (count, until)
            if len(self._failures) > 4096:  # a scan from many addresses: forget the oldest
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
