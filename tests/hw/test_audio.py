"""The audio engine: WAV backend, and pyaudio against ALSA's file plugin (bit-exact both ways)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from firmware.events import PlayTone, Ring
from firmware.hw.audio import AudioEngine, AudioError, WavBackend
from tests.helpers import wait_for
from tests.lab.lab import goertzel, tone_wav

ROOT = Path(__file__).resolve().parents[2]


def read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes())


def test_wav_backend_plays_tones_ringer_and_the_call_and_records_nothing_twice(
        tmp_path: Path) -> None:
    mic = tone_wav(tmp_path / "mic.wav", 700, 2)
    engine = AudioEngine(WavBackend(mic, tmp_path / "ear.wav"), region="BE")
    engine.start(lambda e: None)
    engine.execute(PlayTone("dial"))
    wait_for(lambda: engine.frames >= 25, what="half a second of dial tone")
    engine.execute(PlayTone(None))
    engine.execute(Ring(True))  # no ringer device: the ringtone goes to the handset
    n = engine.frames
    wait_for(lambda: engine.frames >= n + 25, what="half a second of ringing")
    engine.execute(Ring(False))
    call = [struct.pack("<160h", *([1000 + k] * 160)) for k in range(20)]
    for frame in call:
        engine.sink(frame)  # faster than real time: the engine's 20 ms clock paces them
        if len(engine.call_frames) >= 5:
            n = engine.frames
            wait_for(lambda: engine.frames > n, what="a tick")  # noqa: B023
    wait_for(lambda: not engine.call_frames, what="the call audio played")
    heard = [engine.source() for _ in range(3)]
    engine.stop()
    ear = read_wav(tmp_path / "ear.wav")
    assert goertzel(ear[: 25 * 320], 425) > 0.05  # Belgian dial tone
    assert goertzel(ear[26 * 320: 50 * 320], 1000) > 0.03  # the ringtone
    assert b"".join(call) in ear  # every call frame, in order, bit-exact
    assert any(goertzel(h, 700) > 0.1 for h in heard)  # the microphone file


def test_a_wav_that_is_not_8_or_16k_mono_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "cd.wav"
    with wave.open(str(bad), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(bytes(400))
    with pytest.raises(AudioError, match="must be 8000 or 16000 Hz mono 16-bit"):
        WavBackend(bad, None).open()


ASOUNDRC = """
pcm.earpiece {{ type file slave.pcm "null" file "{ear}" format "raw" }}
pcm.mouth {{ type file slave.pcm "null" file "/dev/null" infile "{mouth}" format "raw" }}
pcm.!default {{
    type asym
    playback.pcm {{ type plug slave {{ pcm "earpiece" format S16_LE rate 8000 channels 1 }} }}
    capture.pcm {{ type plug slave {{ pcm "mouth" format S16_LE rate 8000 channels 1 }} }}
}}
"""


def test_pyaudio_through_alsa_file_plugin_is_bit_exact_both_ways(tmp_path: Path) -> None:
    if not shutil.which("aplay") and not Path("/usr/lib/x86_64-linux-gnu/libasound.so.2").exists() \
            and not list(Path("/usr/lib").glob("*/libasound.so.2")):
        pytest.skip("no ALSA library here")
    ear, mouth = tmp_path / "ear.raw", tmp_path / "mouth.raw"
    mouth.write_bytes(read_wav(tone_wav(tmp_path / "m.wav", 600, 20)))  # must exist first
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(ear=ear, mouth=mouth))
    done = subprocess.run([sys.executable, "-m", "tests.hw.alsa_call", str(ear), str(mouth)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    verdict = json.loads(done.stdout.strip().splitlines()[-1])
    assert verdict["stream_in_ear"], verdict  # 100 RTP packets -> earpiece, bit-exact, in order
    assert verdict["payloads"] >= 80 and verdict["mouth_run"] >= 80, verdict  # mouthpiece -> RTP
    assert "ALSA lib" not in done.stderr  # PortAudio's start-up noise is silenced


def test_a_sound_card_pulled_out_mid_call_is_named_and_taken_back(tmp_path: Path) -> None:
    from firmware.events import AdapterFailed, Event

    class Flaky:
        """A USB card: works, is unplugged (writes fail, reopening fails), comes back."""

        rate = 8000

        def __init__(self) -> None:
            self.plugged = True
            self.writes = 0

        def open(self) -> None:
            if not self.plugged:
                raise AudioError("audio: no output device named 'USB Audio' (have: none)")

        def close(self) -> None: ...

        def write(self, pcm: bytes) -> None:
            if not self.plugged:
                raise OSError(-9999, "Unanticipated host error")
            self.writes += 1

        def read(self) -> bytes:
            return bytes(320)

    card = Flaky()
    posted: list[Event] = []
    engine = AudioEngine(card)  # type: ignore[arg-type]
    engine.start(posted.append)
    wait_for(lambda: card.writes > 5, what="audio flowing")
    card.plugged = False
    wait_for(lambda: any(isinstance(e, AdapterFailed) and e.message for e in posted),
             what="the failure named")
    failure = next(e for e in posted if isinstance(e, AdapterFailed) and e.message)
    assert "handset device failed" in failure.message
    card.plugged = True
    wait_for(lambda: posted and posted[-1] == AdapterFailed("audio", ""), timeout=5,
             what="the problem cleared")
    writes = card.writes
    wait_for(lambda: card.writes > writes + 5, what="audio flowing again")
    engine.stop()


def test_a_missing_device_is_named_with_the_ones_there_are(tmp_path: Path) -> None:
    (tmp_path / ".asoundrc").write_text('pcm.!default { type null }\n')
    code = ("from firmware.hw.audio import PyAudioBackend, AudioError\n"
            "try:\n    PyAudioBackend('USB Audio Device').open()\n"
            "except AudioError as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**os.environ, "HOME": str(tmp_path)})
    assert "no output device named 'USB Audio Device' (have: " in done.stdout, done.stderr
