"""A SIP adapter for builds and configs without working SIP: the phone says "No service".

Owns: answering every SIP action with the fact that there is no service. Never touches: the
network. The real adapter (firmware/sip/ua.py) replaces it once it exists; the simulator uses
this one when `[sip]` cannot be reached by any adapter of this build.
"""

from __future__ import annotations

import logging

from firmware.events import (
    Action,
    Answer,
    CallEnded,
    Hangup,
    PlaceCall,
    Post,
    RegistrationChanged,
    Reject,
    SendDtmf,
    SetHold,
    SetMute,
    Transfer,
    TransferFailed,
)

log = logging.getLogger("sip")


class NoSip:
    name = "sip"
    handles: tuple[type[Action], ...] = (PlaceCall, Answer, Reject, Hangup, Transfer, SendDtmf,
                                         SetHold, SetMute)

    def __init__(self, reason: str = "SIP not in this build") -> None:
        self.reason = reason
        self._post: Post | None = None

    def start(self, post: Post) -> None:
        self._post = post
        log.warning("no SIP: %s", self.reason)
        post(RegistrationChanged("failed", self.reason))

    def execute(self, action: Action) -> None:
        assert self._post is not None
        if isinstance(action, PlaceCall):
            self._post(CallEnded(action.call_id, "no_service", self.reason))
        elif isinstance(action, Transfer):
            self._post(TransferFailed(action.call_id, "no_service", self.reason))

    def stop(self) -> None:
        self._post = None
