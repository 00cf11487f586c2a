"""Call-progress tones per region (ITU-T E.180): frequency, cadence, no clicks."""

from __future__ import annotations

import itertools
import struct

import pytest

from firmware.hw.tones import REGIONS, RINGTONE, ToneGenerator, plan
from tests.lab.lab import goertzel


def frames(tone: str, region: str, seconds: float) -> list[bytes]:
    gen = ToneGenerator(plan(tone, region))
    return [gen.frame() for _ in range(int(seconds * 50))]


def cadence(fs: list[bytes]) -> list[tuple[bool, float]]:
    """Runs of sound/silence, in seconds (20 ms resolution)."""
    runs: list[tuple[bool, float]] = []
    for f in fs:
        on = any(struct.unpack("<160h", f))
        if runs and runs[-1][0] == on:
            runs[-1] = (on, runs[-1][1] + 0.02)
        else:
            runs.append((on, 0.02))
    return runs


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_each_regions_tones_have_their_frequency_and_cadence(region: str) -> None:
    for tone, p in REGIONS[region].items():
        fs = frames(tone, region, 12)
        first_burst = []
        for f in fs:
            if not any(f) and first_burst:
                break
            if any(f):
                first_burst.append(f)
        pcm = b"".join(first_burst)
        for freq in p.freqs:
            assert goertzel(pcm, freq) > 0.02, (region, tone, freq)
        assert goertzel(pcm, 1000) < 0.005
        runs = cadence(fs)
        if not p.cadence:
            assert runs == [(True, pytest.approx(12.0))]
        else:
            expected = list(p.cadence)
            got = [length for _, length in runs[: len(expected)]]
            assert got == pytest.approx(expected, abs=0.041), (region, tone)  # 20 ms frames


def test_dial_tone_is_425_hz_in_belgium_and_350_plus_440_in_the_us() -> None:
    be = b"".join(frames("dial", "BE", 1))
    us = b"".join(frames("dial", "US", 1))
    assert goertzel(be, 425) > 0.05 and goertzel(be, 440) < 0.01
    assert goertzel(us, 350) > 0.03 and goertzel(us, 440) > 0.03


def test_no_click_between_frames() -> None:
    gen = ToneGenerator(plan("dial", "FR"))
    samples = struct.unpack("<1600h", b"".join(gen.frame() for _ in range(10)))
    steps = [abs(b - a) for a, b in itertools.pairwise(samples)]
    assert max(steps) < 0.1 * 32767 * 0.4  # 440 Hz at 8 kHz moves < 35 % of its amplitude


def test_ringtone_warbles_and_pauses() -> None:
    fs = [ToneGenerator(RINGTONE).frame() for _ in range(1)]
    gen = ToneGenerator(RINGTONE)
    fs = [gen.frame() for _ in range(200)]
    on = b"".join(fs[:50])
    assert goertzel(on, 1000) > 0.05 and goertzel(on, 1250) > 0.05
    assert cadence(fs)[:2] == [(True, pytest.approx(1.0)), (False, pytest.approx(3.0))]
