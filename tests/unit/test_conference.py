"""The conference bridge: what each leg sends and what the earpiece plays, frame by frame."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware.sip.conference import Bridge


def frame(value: int) -> bytes:
    return struct.pack("<160h", *([value] * 160))


def level(pcm: bytes) -> int:
    return struct.unpack("<160h", pcm)[0]


@dataclass
class FakeLeg:
    source: Callable[[], bytes] = lambda: b""
    sink: Callable[[bytes], None] = lambda pcm: None
    muted: bool = False
    bridged: bool = False


@dataclass
class Handset:
    mic_values: list[int] = field(default_factory=lambda: list(range(100, 200)))
    ear: list[int] = field(default_factory=list)

    def source(self) -> bytes:
        return frame(self.mic_values.pop(0))

    def sink(self, pcm: bytes) -> None:
        self.ear.append(level(pcm))


def joined() -> tuple[Bridge, FakeLeg, FakeLeg, Handset]:
    a, b, h = FakeLeg(), FakeLeg(), Handset()
    return Bridge((a, b), h.source, h.sink), a, b, h


def test_each_leg_sends_every_microphone_frame_once_plus_what_the_other_leg_said():
    _, a, b, _ = joined()
    a.sink(frame(1000))  # A said 1000, B said 2000, in the same period
    b.sink(frame(2000))
    assert level(a.source()) == 100 + 2000  # our mic + B, to A
    assert level(b.source()) == 100 + 1000  # the same mic frame + A, to B
    assert level(a.source()) == 101  # the next period: a new mic frame, nobody spoke
    assert level(b.source()) == 101


def test_the_earpiece_gets_one_mixed_frame_per_period_and_sums_clip_safely():
    _, a, b, h = joined()
    for _ in range(5):
        a.sink(frame(30000))
        b.sink(frame(10000))
    assert h.ear == [32767] * 5  # clipped at full scale, never wrapped to a negative value


def test_a_silent_leg_does_not_hold_the_other_back_more_than_two_frames():
    _, a, _, h = joined()
    for i in range(6):
        a.sink(frame(i + 1))
    assert h.ear == [1, 2, 3, 4]  # played alone, two frames late at most


def test_mute_silences_our_microphone_not_the_other_party():
    _, a, b, _ = joined()
    a.muted = b.muted = True
    b.sink(frame(2000))
    assert level(a.source()) == 2000


def test_dissolve_gives_the_handset_back_to_each_leg():
    bridge, a, b, h = joined()
    assert a.bridged and b.bridged
    bridge.dissolve()
    assert level(a.source()) == 100 and not a.bridged
    b.sink(frame(5))
    assert h.ear == [5]
