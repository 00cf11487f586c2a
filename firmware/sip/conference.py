"""A local three-way conference: two calls' media and the handset mixed on the phone.

Owns: the frames that pass between two RTP sessions and the handset while a conference lasts.
Each leg sends the microphone plus what the other leg said; the earpiece plays both legs. Every
microphone frame goes to both legs exactly once, and every pair of received frames reaches the
earpiece as one mixed frame, so the handset's 20 ms clock sees one frame per period as in a
single call. A leg's voice reaches the other leg at that leg's next send, within one frame: no
extra latency beyond 20 ms. Sums are 16-bit and clipped at full scale (`pcm.mix`).

Never touches: SIP, sockets or the RTP sessions' own clocks; it only stands in for each
session's `source` and `sink` while it lasts, and gives them back on `dissolve`.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Protocol

from firmware.pcm import mix

DEPTH = 3  # frames kept per queue: two clocks' phase jitter, never a growing delay


class Leg(Protocol):
    """What the bridge needs of an RTP session."""

    source: Callable[[], bytes]
    sink: Callable[[bytes], None]
    muted: bool
    bridged: bool


class Bridge:
    """Joins two legs and the handset (`source` = the microphone, `sink` = the earpiece)."""

    def __init__(self, legs: tuple[Leg, Leg], source: Callable[[], bytes],
                 sink: Callable[[bytes], None]) -> None:
        self.legs = legs
        self.mic, self.ear = source, sink
        self._lock = threading.Lock()
        # Microphone frames not yet sent by each leg; what each leg heard, not yet sent to the
        # other; what each leg heard, not yet played (waiting for the other leg's frame).
        self._mic: tuple[collections.deque[bytes], ...] = tuple(
            collections.deque(maxlen=DEPTH) for _ in legs)
        self._relay: tuple[collections.deque[bytes], ...] = tuple(
            collections.deque(maxlen=DEPTH) for _ in legs)
        self._ear: tuple[collections.deque[bytes], ...] = tuple(
            collections.deque(maxlen=DEPTH) for _ in legs)
        self.mixed = 0  # frames the earpiece got from both legs at once
        for i, leg in enumerate(legs):
            leg.source = self._source_of(i)
            leg.sink = self._sink_of(i)
            leg.bridged = True

    def dissolve(self) -> None:
        """Each leg speaks to the handset alone again (a leg that ended is simply not used)."""
        for leg in self.legs:
            leg.source, leg.sink = self.mic, self.ear
            leg.bridged = False

    def _source_of(self, i: int) -> Callable[[], bytes]:
        other = 1 - i

        def source() -> bytes:
            with self._lock:
                if not self._mic[i]:
                    # A new period: one frame from the handset, for both legs.
                    frame = self.mic()
                    self._mic[other].append(frame)
                else:
                    frame = self._mic[i].popleft()
                heard = self._relay[other].popleft() if self._relay[other] else None
            if self.legs[i].muted:
                frame = bytes(len(frame))  # our microphone only: the other leg still speaks
            return frame if heard is None else mix(frame, heard)

        return source

    def _sink_of(self, i: int) -> Callable[[bytes], None]:
        other = 1 - i

        def sink(frame: bytes) -> None:
            with self._lock:
                self._relay[i].append(frame)
                if self._ear[other]:
                    out = mix(frame, self._ear[other].popleft())
                    self.mixed += 1
                elif len(self._ear[i]) == DEPTH - 1:
                    # The other leg has sent nothing for a while (on hold, lost): play this
                    # leg alone rather than let its voice wait.
                    out = self._ear[i].popleft()
                    self._ear[i].append(frame)
                else:
                    self._ear[i].append(frame)
                    return
            self.ear(out)

        return sink
