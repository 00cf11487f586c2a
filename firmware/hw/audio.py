"""Audio devices: the earpiece, the microphone and the ringer.

Owns: turning `PlayTone`, `Ring` and `SetMute` into sound. Never touches: phone state or SIP.
This first backend is `null`: it plays nothing and remembers what it was asked, so the simulator
and tests can see the tone and the ringer (the pyaudio and wav backends come with the media
engine).
"""

from __future__ import annotations

import logging

from firmware.daemon import Post
from firmware.events import Action, PlayTone, Ring, SetMute

log = logging.getLogger("audio")


class NullAudio:
    name = "audio"
    handles: tuple[type[Action], ...] = (PlayTone, Ring, SetMute)

    def __init__(self) -> None:
        self.tone: str | None = None
        self.ringing = False
        self.history: list[Action] = []

    def start(self, post: Post) -> None:
        pass

    def execute(self, action: Action) -> None:
        self.history.append(action)
        if isinstance(action, PlayTone):
            self.tone = action.tone
            log.debug("tone %s", action.tone or "off")
        elif isinstance(action, Ring):
            self.ringing = action.on
            log.debug("ringer %s", "on" if action.on else "off")

    def source(self) -> bytes:
        """The microphone's next 20 ms (8 kHz, 16-bit): silence."""
        return bytes(320)

    def sink(self, pcm: bytes) -> None:
        """The earpiece takes 20 ms of call audio: dropped."""

    def stop(self) -> None:
        self.tone = None
        self.ringing = False
