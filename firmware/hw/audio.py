"""Audio devices: the earpiece, the microphone and the ringer.

Owns: turning `PlayTone`, `Ring` and `SetMute` into sound, the 20 ms audio clock that feeds the
earpiece (call audio from RTP, or the call-progress tone, or the ringtone) and collects the
microphone for RTP, and the three backends of DESIGN.md:
- `null`: no device; remembers what it was asked (the simulator's default and most tests);
- `wav`: the microphone is a WAV file (silence after its end), the earpiece a WAV file written
  in real time at the microphone file's rate and closed cleanly on stop (tests and demos);
- `pyaudio`: the handset (and optionally a separate ringer) sound card by name, 20 ms frames, a
  clear error naming a device that is missing or busy, and recovery when a USB card is unplugged
  and plugged back. ALSA's and JACK's start-up chatter is silenced.
Everything runs at one rate, the handset's (`rate`): 16 kHz when the phone may speak wideband
G.722, 8 kHz otherwise, or the wav backend's file; the RTP session converts a call whose codec
samples at another rate. The engine's 20 ms loop is also the clock every call's RTP runs on
(`clock`, ticker.py), so `source()` and `sink()` are called on the audio thread just before the
card is fed. Never touches: SIP or the phone's state; `execute` only swaps which tone plays and
returns at once.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import logging
import threading
import time
import wave
from pathlib import Path
from typing import Any, Protocol

from firmware.events import Action, AdapterFailed, PlayTone, Post, Ring, SetMute
from firmware.hw.tones import FRAME, ToneGenerator, plan
from firmware.pcm import mix
from firmware.ticker import Pacer, Ticker

log = logging.getLogger("audio")

RATE = 8000  # narrowband; WIDE for a phone that may speak G.722
WIDE = 16000
FRAME_BYTES = FRAME * 2  # at RATE
SILENCE = bytes(FRAME_BYTES)
FRAME_SECONDS = 0.02


class AudioError(RuntimeError):
    """A device is missing, busy or unusable; the message names it."""


class Backend(Protocol):
    rate: int

    def open(self) -> None: ...

    def write(self, pcm: bytes) -> None: ...

    def read(self) -> bytes: ...

    def close(self) -> None: ...


class NullAudio:
    """No sound device at all: tones and the ringer are remembered, not played."""

    name = "audio"
    handles: tuple[type[Action], ...] = (PlayTone, Ring, SetMute)

    def __init__(self, rate: int = RATE) -> None:
        self.rate = rate  # of every frame source() gives and sink() takes
        self.silence = bytes(rate // 50 * 2)
        # What paces call audio: here a thread of its own while a call runs; the engine's
        # own 20 ms loop when there is a sound card.
        self.clock = Ticker()
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
        """The microphone's next 20 ms (at `rate`, 16-bit): silence."""
        return self.silence

    def sink(self, pcm: bytes) -> None:
        """The earpiece takes 20 ms of call audio: dropped."""

    def stop(self) -> None:
        self.tone = None
        self.ringing = False


class AudioEngine(NullAudio):
    """A real earpiece (and maybe ringer): a 20 ms clock thread mixes what is to be heard."""

    def __init__(self, handset: Backend, ringer: Backend | None = None,
                 region: str | None = None) -> None:
        super().__init__(handset.rate)
        # Each call's RTP runs on this loop's ticks (right before the card is fed and read),
        # so one frame in each direction is all the slack it needs.
        self.clock = Ticker(driven=True)
        if ringer is not None:
            ringer.rate = handset.rate
        self.handset = handset
        self.ringer = ringer
        self.region = region
        # RTP pushes, we pull: playout starts once `_slack()` frames are queued (one when RTP
        # runs on our ticks, two on a clock of its own); an underrun re-primes.
        self.call_frames: collections.deque[bytes] = collections.deque(maxlen=6)
        self._primed = False
        self._mic_primed = False
        self.underruns = 0
        self.mic_frames: collections.deque[bytes] = collections.deque(maxlen=10)
        self._tone: ToneGenerator | None = None
        self._ring: ToneGenerator | None = None
        self._post: Post = lambda e: None
        self._running = False  # the 20 ms loop goes on (a flag, not an Event: see _tick)
        self._thread: threading.Thread | None = None
        self._broken: dict[str, float] = {}  # device -> when to try it again
        self.frames = 0
        self.late = 0

    def start(self, post: Post) -> None:
        self._post = post
        for label, dev in (("handset", self.handset), ("ringer", self.ringer)):
            if dev is None:
                continue
            try:
                dev.open()
            except AudioError as exc:
                self._fail(label, str(exc))
        self._running = True
        self._thread = threading.Thread(target=self._run, name="audio", daemon=True)
        self._thread.start()

    def execute(self, action: Action) -> None:
        super().execute(action)
        if isinstance(action, PlayTone):
            self._tone = ToneGenerator(plan(action.tone, self.region), self.rate) \
                if action.tone else None
        elif isinstance(action, Ring):
            self._ring = ToneGenerator(plan("ringtone", self.region), self.rate) \
                if action.on else None

    def source(self) -> bytes:
        # Same slack as the earpiece, for the same clocks the other way round.
        if not self._mic_primed:
            if len(self.mic_frames) < self._slack():
                return self.silence
            self._mic_primed = True
        try:
            return self.mic_frames.popleft()
        except IndexError:
            self._mic_primed = False
            self.underruns += 1
            return self.silence

    def sink(self, pcm: bytes) -> None:
        self.call_frames.append(pcm)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        for dev in (self.handset, self.ringer):
            if dev is not None:
                with contextlib.suppress(Exception):
                    dev.close()
        super().stop()

    # ------------------------------------------------------------------ the 20 ms clock

    def _run(self) -> None:
        pacer = Pacer(FRAME_SECONDS)  # with a card, its blocking write paces us as well
        while self._running:
            delay, skipped = pacer.delay()
            if delay > 0:
                time.sleep(delay)  # at most 20 ms: stop() sees the flag at the next turn
            if skipped:
                self.late += 1  # after a stall: on from now, no burst
            self.clock.tick(skipped)  # the calls' RTP: what to play, what to send
            try:
                self._tick()
            except Exception:
                log.exception("audio tick failed")

    def _slack(self) -> int:
        # RTP on our own ticks hands over one frame per tick in step; on another clock the
        # two drift in phase and two frames absorb that.
        return 1 if self.clock.busy else 2

    def _tick(self) -> None:
        """One frame to the earpiece (call audio, mixed with a tone or the ringtone when one
        plays) and one from the microphone.

        The common case (a call's frame, no tone, the card working) does as little as it can:
        after 20 ms asleep what a tick touches has left the caches (bench/audio.py --only
        wake; RtpSession._tick)."""
        calls = self.call_frames
        if not self._primed and len(calls) >= self._slack():
            self._primed = True  # RTP pushes, we pull: enough queued to start playing
        ear = None
        if self._primed:
            if calls:
                ear = calls.popleft()
            else:  # an underrun: wait for the slack again
                self._primed = False
                self.underruns += 1
        ring = None
        if self._tone is not None or self._ring is not None:
            tone = self._tone.frame() if self._tone is not None else None
            ring = self._ring.frame() if self._ring is not None else None
            if tone is not None:
                ear = tone if ear is None else mix(ear, tone)
            if ring is not None and self.ringer is None:
                ear = ring if ear is None else mix(ear, ring)
        handset = self.handset
        if not self._broken or self._usable("handset", handset):
            try:
                handset.write(ear or self.silence)
                self.mic_frames.append(handset.read())
            except Exception as exc:
                # A USB card pulled out mid-call: say so, keep the call, try the device again.
                self._fail("handset", f"handset device failed: {exc}")
        ringer = self.ringer
        if ringer is not None and (not self._broken or self._usable("ringer", ringer)):
            try:
                ringer.write(ring or self.silence)
            except Exception as exc:
                self._fail("ringer", f"ringer device failed: {exc}")
        self.frames += 1

    def _usable(self, label: str, dev: Backend) -> bool:
        """Whether a device that failed may be used again: it is reopened every 2 s, and the
        phone is told when it works again."""
        retry = self._broken.get(label)
        if retry is None:
            return True
        if time.monotonic() < retry:
            return False
        try:
            dev.close()
            dev.open()
        except AudioError as exc:
            self._broken[label] = time.monotonic() + 2.0
            log.debug("%s still unusable: %s", label, exc)
            return False
        del self._broken[label]
        log.info("%s device works again", label)
        self._post(AdapterFailed("audio", ""))
        return True

    def _fail(self, label: str, message: str) -> None:
        log.error("%s", message)
        self._broken[label] = time.monotonic() + 2.0
        self._post(AdapterFailed("audio", message))


# --------------------------------------------------------------------------- backends


class WavBackend:
    """The microphone is a WAV (8 or 16 kHz mono 16-bit), the earpiece a WAV written as it plays
    at the microphone file's rate (the engine's)."""

    def __init__(self, mic: str | Path | None, ear: str | Path | None) -> None:
        self.mic_path = Path(mic) if mic else None
        self.ear_path = Path(ear) if ear else None
        self._mic: wave.Wave_read | None = None
        self._ear: wave.Wave_write | None = None
        self.rate = RATE
        if self.mic_path is not None:
            with contextlib.suppress(OSError, wave.Error, EOFError), \
                    wave.open(str(self.mic_path), "rb") as w:
                self.rate = w.getframerate()  # open() says what is wrong with a bad file
        self._frame = self.rate // 50

    def open(self) -> None:
        if self.mic_path is not None:
            try:
                mic = wave.open(str(self.mic_path), "rb")  # noqa: SIM115 (kept open: read per frame)
            except (OSError, wave.Error, EOFError) as exc:
                raise AudioError(f"audio: cannot read the microphone file {self.mic_path}: "
                                 f"{exc}") from exc
            if mic.getframerate() not in (RATE, WIDE) or \
                    (mic.getnchannels(), mic.getsampwidth()) != (1, 2):
                mic.close()
                raise AudioError(f"audio: {self.mic_path} must be 8000 or 16000 Hz mono "
                                 f"16-bit (sox in.wav -r 16000 -c 1 -b 16 out.wav)")
            self._mic = mic
        if self.ear_path is not None:
            self.ear_path.parent.mkdir(parents=True, exist_ok=True)
            ear = wave.open(str(self.ear_path), "wb")  # noqa: SIM115 (closed in close())
            ear.setnchannels(1)
            ear.setsampwidth(2)
            ear.setframerate(self.rate)
            self._ear = ear

    def write(self, pcm: bytes) -> None:
        if self._ear is not None:
            self._ear.writeframes(pcm)

    def read(self) -> bytes:
        if self._mic is None:
            return bytes(self._frame * 2)
        data = self._mic.readframes(self._frame)
        return data + bytes(self._frame * 2 - len(data))  # silence after the end

    def close(self) -> None:
        if self._mic is not None:
            self._mic.close()
            self._mic = None
        if self._ear is not None:
            self._ear.close()  # writes the header's final length
            self._ear = None


_ALSA_HANDLER: Any = None


def silence_alsa() -> None:
    """PortAudio's start-up makes ALSA print dozens of lines; route them to nowhere."""
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None:
        return
    name = ctypes.util.find_library("asound")
    if not name:
        return
    try:
        asound = ctypes.cdll.LoadLibrary(name)
        handler_type = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                                        ctypes.c_int, ctypes.c_char_p)
        _ALSA_HANDLER = handler_type(lambda *args: None)  # kept: C holds the pointer
        asound.snd_lib_error_set_handler(_ALSA_HANDLER)
    except (OSError, AttributeError):
        pass
    jack = ctypes.util.find_library("jack")
    if jack:
        with contextlib.suppress(OSError, AttributeError):
            lib = ctypes.cdll.LoadLibrary(jack)
            quiet = ctypes.CFUNCTYPE(None, ctypes.c_char_p)(lambda msg: None)
            lib.jack_set_error_function(quiet)
            lib.jack_set_info_function(quiet)
            globals()["_JACK_HANDLER"] = quiet


class PyAudioBackend:
    """One sound card through PortAudio: output (and input, for the handset) by device name."""

    def __init__(self, device: str, capture: bool = True, rate: int = RATE) -> None:
        self.device = device
        self.capture = capture
        # PortAudio opens the card at this rate; ALSA's plug layer (the "default" device and
        # plughw) converts when the card cannot do it itself.
        self.rate = rate
        self._pa: Any = None
        self._out: Any = None
        self._in: Any = None

    def _find(self, pa: Any, output: bool) -> int | None:
        if not self.device or self.device == "default":
            return None
        key = "maxOutputChannels" if output else "maxInputChannels"
        names = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            names.append(str(info["name"]))
            if self.device.lower() in str(info["name"]).lower() and info[key] > 0:
                return i
        raise AudioError(f"audio: no {'output' if output else 'input'} device named "
                         f"{self.device!r} (have: {', '.join(names) or 'none'})")

    def open(self) -> None:
        silence_alsa()
        import pyaudio

        self._pa = pyaudio.PyAudio()
        try:
            out = self._find(self._pa, True)
            self._out = self._pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate,
                                      output=True, output_device_index=out,
                                      frames_per_buffer=self.rate // 50)
            if self.capture:
                inp = self._find(self._pa, False)
                self._in = self._pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate,
                                         input=True, input_device_index=inp,
                                         frames_per_buffer=self.rate // 50)
        except AudioError:
            self.close()
            raise
        except (OSError, ValueError) as exc:
            self.close()
            raise AudioError(f"audio: cannot open {self.device or 'the default device'!r} "
                             f"(missing or busy?): {exc}") from exc

    def write(self, pcm: bytes) -> None:
        if self._out is None:
            raise AudioError(f"audio: {self.device!r} is not open")
        self._out.write(pcm, exception_on_underflow=False)

    def read(self) -> bytes:
        if self._in is None:
            return bytes(self.rate // 50 * 2)
        data = self._in.read(self.rate // 50, exception_on_overflow=False)
        return bytes(data)

    def close(self) -> None:
        for stream in (self._out, self._in):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.stop_stream()
                    stream.close()
        self._out = self._in = None
        if self._pa is not None:
            with contextlib.suppress(Exception):
                self._pa.terminate()
            self._pa = None

