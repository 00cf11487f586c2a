"""Call-progress tones and the ringtone, as 20 ms frames of 16-bit PCM at the handset's rate
(8 or 16 kHz).

Owns: the tone plans of each region (ITU-T E.180 and its supplement: frequencies in Hz, cadence
in seconds on/off), and a `ToneGenerator` that plays one plan frame by frame with a continuous
phase (no click between frames) and an exact cadence. Never touches: devices or call state.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

RATE = 8000  # the default rate
FRAME = 160  # samples per 20 ms at RATE
LEVEL = 0.1  # about -20 dBFS per tone: comfortable in an earpiece


@dataclass(frozen=True)
class Plan:
    freqs: tuple[float, ...]
    cadence: tuple[float, ...] = ()  # on, off, on, off ... seconds; () = continuous
    level: float = LEVEL


# region -> tone -> plan (E.180 Supplement 2). "ringtone" is what the ringer plays; "waiting" is
# the call-waiting tone, heard over a call (short bursts, long pauses: it must not drown the talk).
REGIONS: dict[str, dict[str, Plan]] = {
    "BE": {"dial": Plan((425,)), "ringback": Plan((425,), (1.0, 3.0)),
           "busy": Plan((425,), (0.5, 0.5)), "congestion": Plan((425,), (0.167, 0.167)),
           "waiting": Plan((425,), (0.2, 0.2, 0.2, 4.4))},
    "FR": {"dial": Plan((440,)), "ringback": Plan((440,), (1.5, 3.5)),
           "busy": Plan((440,), (0.5, 0.5)), "congestion": Plan((440,), (0.25, 0.25)),
           "waiting": Plan((440,), (0.3, 10.0))},
    "DE": {"dial": Plan((425,)), "ringback": Plan((425,), (1.0, 4.0)),
           "busy": Plan((425,), (0.48, 0.48)), "congestion": Plan((425,), (0.24, 0.24)),
           "waiting": Plan((425,), (0.2, 0.2, 0.2, 5.0))},
    "NL": {"dial": Plan((425,)), "ringback": Plan((425,), (1.0, 4.0)),
           "busy": Plan((425,), (0.5, 0.5)), "congestion": Plan((425,), (0.25, 0.25)),
           "waiting": Plan((425,), (0.5, 9.5))},
    "GB": {"dial": Plan((350, 440)), "ringback": Plan((400, 450), (0.4, 0.2, 0.4, 2.0)),
           "busy": Plan((400,), (0.375, 0.375)),
           "congestion": Plan((400,), (0.4, 0.35, 0.225, 0.525)),
           "waiting": Plan((400,), (0.1, 2.0))},
    "US": {"dial": Plan((350, 440)), "ringback": Plan((440, 480), (2.0, 4.0)),
           "busy": Plan((480, 620), (0.5, 0.5)), "congestion": Plan((480, 620), (0.25, 0.25)),
           "waiting": Plan((440,), (0.3, 9.7))},
}
DEFAULT_REGION = "BE"  # 425 Hz, the CEPT tone most of Europe shares
RINGTONE = Plan((1000, 1250), (1.0, 3.0), level=0.25)


def plan(tone: str, region: str | None) -> Plan:
    if tone == "ringtone":
        return RINGTONE
    table = REGIONS.get((region or "").upper(), REGIONS[DEFAULT_REGION])
    return table.get(tone, table["busy"])


class ToneGenerator:
    """One tone, frame after frame. Dual tones are summed; the ringtone alternates its two
    frequencies every 50 ms (a warble, like a desk phone's ringer), the others play together."""

    def __init__(self, p: Plan, rate: int = RATE) -> None:
        self.plan = p
        self.rate = rate
        self.frame_samples = rate // 50
        self.sample = 0
        self.phases = [0.0] * len(p.freqs)

    def _on(self, t: float) -> bool:
        cadence = self.plan.cadence
        if not cadence:
            return True
        t %= sum(cadence)
        for i, length in enumerate(cadence):
            if t < length:
                return i % 2 == 0
            t -= length
        return False

    def frame(self) -> bytes:
        out = []
        warble = self.plan is RINGTONE
        amp = self.plan.level * 32767 / (1 if warble else len(self.plan.freqs))
        rate = self.rate
        for _ in range(self.frame_samples):
            t = self.sample / rate
            value = 0.0
            if self._on(t):
                if warble:
                    i = int(t * 20) % len(self.plan.freqs)
                    value = math.sin(self.phases[i])
                else:
                    value = sum(math.sin(p) for p in self.phases)
            for i, f in enumerate(self.plan.freqs):
                self.phases[i] = (self.phases[i] + 2 * math.pi * f / rate) % (2 * math.pi)
            out.append(int(amp * value))
            self.sample += 1
        return struct.pack(f"<{len(out)}h", *out)
