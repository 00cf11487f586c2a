"""The codecs a call can use: G.722 checked bit for bit against spandsp (the ITU-tested G.722
baresip's g722 module runs), its wideband reach, and the resampler between 8 and 16 kHz."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import random
import struct

import pytest

from firmware.pcm import Resampler
from firmware.sip import codecs
from tests.lab.lab import goertzel


def signal(n: int, rate: int = 16000, seed: int = 7) -> bytes:
    """Speech-like test audio: tones across the band (300 Hz to 7 kHz), a sweep and noise."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = i / rate
        v = (0.2 * math.sin(2 * math.pi * 300 * t) + 0.15 * math.sin(2 * math.pi * 1900 * t)
             + 0.1 * math.sin(2 * math.pi * 6100 * t)
             + 0.1 * math.sin(2 * math.pi * (200 + 3000 * t % 7000) * t)
             + 0.05 * rnd.uniform(-1, 1))
        out.append(max(-32768, min(32767, int(v * 32767))))
    return struct.pack(f"<{n}h", *out)


def spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp")
    if not name:
        pytest.fail("libspandsp (Debian's libspandsp2, installed with baresip) is missing")
    lib = ctypes.CDLL(name)
    lib.g722_encode_init.restype = ctypes.c_void_p
    lib.g722_encode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_decode_init.restype = ctypes.c_void_p
    lib.g722_decode_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.g722_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.g722_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    return lib


def test_g722_is_bit_exact_with_spandsp_both_ways() -> None:
    lib = spandsp()
    enc = lib.g722_encode_init(None, 64000, 0)
    dec = lib.g722_decode_init(None, 64000, 0)
    ours = codecs.Coder(codecs.G722)
    pcm = signal(16000 * 3)
    for i in range(0, len(pcm), 640):  # frame by frame, as a call: the state carries over
        frame = pcm[i:i + 640]
        theirs = ctypes.create_string_buffer(160)
        assert lib.g722_encode(enc, theirs, frame, 320) == 160
        payload = ours.encode(frame)
        assert payload == theirs.raw, f"encoder differs in frame {i // 640}"
        out = ctypes.create_string_buffer(640)
        assert lib.g722_decode(dec, out, payload, 160) == 320
        assert ours.decode(payload) == out.raw, f"decoder differs in frame {i // 640}"


def test_g722_carries_the_band_above_4_khz_and_g711_does_not() -> None:
    tone = struct.pack("<3200h", *(int(8000 * math.sin(2 * math.pi * 6000 * i / 16000))
                                   for i in range(3200)))
    c = codecs.Coder(codecs.G722)
    heard = b"".join(c.decode(c.encode(tone[i:i + 640])) for i in range(0, len(tone), 640))
    assert goertzel(heard[640:], 6000, 16000) > 0.15  # 8000/32768 = 0.24 sent
    narrow = Resampler(16000, 8000)
    down = b"".join(narrow.convert(tone[i:i + 640]) for i in range(0, len(tone), 640))
    # Down to 8 kHz for G.711: the 6 kHz tone is filtered out, not folded back to 2 kHz.
    assert goertzel(down[320:], 2000, 8000) < 0.005
    assert codecs.G722.wideband and not codecs.PCMU.wideband


def test_the_resampler_keeps_a_voice_band_tone_and_one_frame_in_is_one_frame_out() -> None:
    up = Resampler(8000, 16000)
    tone = struct.pack("<1600h", *(int(8000 * math.sin(2 * math.pi * 1000 * i / 8000))
                                   for i in range(1600)))
    out = [up.convert(tone[i:i + 320]) for i in range(0, len(tone), 320)]
    assert {len(f) for f in out} == {640}
    level = goertzel(b"".join(out[2:]), 1000, 16000)
    assert 0.22 < level < 0.26  # 8000/32768 = 0.244: kept
    assert goertzel(b"".join(out[2:]), 7000, 16000) < 0.003  # no image of it at 7 kHz


def test_codec_names_and_payload_types() -> None:
    assert codecs.pts(["G722", "PCMA"]) == (9, 8)
    assert codecs.BY_PT[9].rate == 16000 and codecs.RTP_CLOCK == 8000
