"""Voice messages waiting: RFC 3842 message-summary over RFC 6665 SUBSCRIBE / NOTIFY.

Owns: reading a message-summary body; the subscription to the account's own mailbox (`[sip]
mwi`): SUBSCRIBE with digest auth once registered, refreshed before it expires, made again
after a failure with a backoff (1 min doubling to 30 min), given up when the server has no such
event package (489, 405, 501: said once in the log); the NOTIFYs of that subscription and the
unsolicited ones a proxy sends without one (Asterisk's `unsolicited_mwi`). Never touches: calls,
registration, the Phone (counts go out through `on_count`). Every method runs under the
transport lock.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable

from firmware.sip.identity import Identity
from firmware.sip.message import Message, address, authorization, challenge, new_tag
from firmware.sip.transport import Timer, Transport

log = logging.getLogger("sip")

EVENT = "message-summary"
BODY_TYPE = "application/simple-message-summary"
FIRST_RETRY, MAX_RETRY = 60.0, 1800.0
NO_PACKAGE = (405, 489, 501)  # the server has no voicemail events: stop asking


def summary(body: bytes) -> tuple[int, int] | None:
    """(new, old) voice messages of a message-summary body; None when it says nothing usable.

    `Voice-Message: 2/8 (0/2)` gives the counts; without it, `Messages-Waiting: yes` is one new
    message (the lamp must light) and `no` none."""
    text = body.decode("utf-8", "replace")
    waiting: bool | None = None
    counts: tuple[int, int] | None = None
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        if not colon:
            continue
        name = name.strip().lower()
        if name == "messages-waiting":
            waiting = value.strip().lower() == "yes"
        elif name == "voice-message":
            found = re.match(r"\s*(\d{1,6})\s*/\s*(\d{1,6})", value)
            if found:
                counts = (int(found[1]), int(found[2]))
    if counts is not None:
        return counts
    if waiting is None:
        return None
    return (1, 0) if waiting else (0, 0)


class Mailbox:
    def __init__(self, me: Identity, transport: Transport,
                 on_count: Callable[[int, int], None], expires: int = 3600) -> None:
        self.me = me
        self.transport = transport
        self.on_count = on_count
        self.expires = expires
        self.call_id = ""  # the subscription's dialog, while there is one
        self.active = False
        self.gave_up = False
        self._tag = new_tag()
        self._remote_tag = ""
        self._target = ""
        self._routes: list[str] = []
        self._cseq = 0
        self._nonce = ""
        self._retry = FIRST_RETRY
        self._timer: Timer | None = None
        self.count: tuple[int, int] | None = None

    # ------------------------------------------------------------------ the subscription

    def registered(self) -> None:
        """The account is registered: subscribe unless a subscription stands."""
        if self.gave_up or self.active or self.call_id:
            return
        self._subscribe()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.active:
            self._send(expires=0)  # best effort: the server stops notifying us
        self.active = False

    def _subscribe(self) -> None:
        """A new subscription: a new dialog."""
        self.call_id = f"{secrets.token_hex(12)}@deskphone"
        self._tag = new_tag()
        self._remote_tag, self._target, self._routes = "", "", []
        self._cseq = 0
        self._nonce = ""
        self._send(self.expires)

    def _send(self, expires: int, auth: tuple[str, str] | None = None) -> None:
        self._cseq += 1
        uri = self._target or self.me.aor
        msg = Message(method="SUBSCRIBE", uri=uri)
        msg.add("Via", self.me.via())
        msg.add("Max-Forwards", "70")
        for route in self._routes:
            msg.add("Route", route)
        msg.add("From", f"<{self.me.aor}>;tag={self._tag}")
        to = f"<{self.me.aor}>" + (f";tag={self._remote_tag}" if self._remote_tag else "")
        msg.add("To", to)
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{self._cseq} SUBSCRIBE")
        msg.add("Contact", self.me.contact())
        msg.add("Event", EVENT)
        msg.add("Accept", BODY_TYPE)
        msg.add("Expires", str(expires))
        msg.add("User-Agent", self.me.user_agent)
        if auth is not None:
            msg.add(*auth)
        self.transport.request(msg, self.me.proxy, self._response if expires else
                               (lambda r: None))

    def _response(self, resp: Message | None) -> None:
        if resp is None:
            self._failed("no answer")
            return
        if resp.status < 200:
            return
        if resp.status in (401, 407):
            name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            chal = challenge(resp.get(name))
            nonce = chal.get("nonce", "")
            if nonce and nonce == self._nonce and chal.get("stale", "").lower() != "true":
                self._failed(f"credentials refused ({resp.status})")
                return
            self._nonce = nonce
            header = "Authorization" if resp.status == 401 else "Proxy-Authorization"
            self._send(self.expires, (header, authorization(
                chal, "SUBSCRIBE", self._target or self.me.aor, self.me.auth_user,
                self.me.password)))
            return
        if resp.status in NO_PACKAGE:
            self.gave_up = True
            self.call_id = ""
            log.info("SIP: %s has no voicemail notifications (%d %s); not asking again",
                     self.me.domain, resp.status, resp.reason)
            return
        if resp.status >= 300:
            self._failed(f"{resp.status} {resp.reason}")
            return
        # 200/202: the subscription stands; its dialog is what the 2xx made.
        self._remote_tag = resp.to_tag()
        contact = resp.get("Contact")
        if contact:
            self._target = address(contact).uri
        self._routes = list(reversed(resp.all("Record-Route")))
        self._nonce = ""
        self.active = True
        self._retry = FIRST_RETRY
        granted = resp.get("Expires")
        expires = int(granted) if granted.isdigit() else self.expires
        self._later(max(30.0, expires * 0.8), self._refresh)

    def _refresh(self) -> None:
        if self.active and self.call_id:
            self._send(self.expires)

    def _failed(self, why: str) -> None:
        log.warning("SIP: voicemail subscription: %s; again in %.0f s", why, self._retry)
        self.active = False
        self.call_id = ""
        self._later(self._retry, self._subscribe)
        self._retry = min(MAX_RETRY, self._retry * 2)

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.transport.later(seconds, fn)

    # ------------------------------------------------------------------ notifications

    def notify(self, req: Message) -> tuple[int, str]:
        """A NOTIFY, in our subscription's dialog or unsolicited from the proxy: the status
        to answer it with. A body that says nothing usable is refused (400) and changes
        nothing; the end of the subscription starts a new one."""
        if req.get("Event").split(";")[0].strip().lower() != EVENT:
            return 489, "Bad Event"
        state = req.get("Subscription-State").split(";")[0].strip().lower()
        if req.call_id == self.call_id and state == "terminated":
            self.active = False
            self.call_id = ""
            self._later(FIRST_RETRY if "reason=" not in req.get("Subscription-State") else 5.0,
                        self._subscribe)
        if not req.body.strip():
            return 200, "OK"  # the first NOTIFY of a subscription may carry no state yet
        counts = summary(req.body)
        if counts is None:
            log.info("SIP: a message-summary NOTIFY without a count: %r", req.body[:80])
            return 400, "Bad Request"
        if counts != self.count:
            self.count = counts
            log.info("SIP: voicemail: %d new, %d old", *counts)
            self.on_count(*counts)
        return 200, "OK"

    def owns(self, req: Message) -> bool:
        """True for a request of our subscription's dialog."""
        return bool(self.call_id) and req.call_id == self.call_id
