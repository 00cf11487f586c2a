"""PCM arithmetic on signed 16-bit little-endian mono frames: mixing, scaling, level.

Owns: the sums a media path and a sound card both need. Never touches: codecs, sockets,
devices or clocks. Uses `audioop` (`audioop-lts` on Python 3.13, where the standard library
dropped it) at width 2, so it costs no precision and runs in C.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 3.11/3.12 warn; 3.13 uses audioop-lts
    import audioop

WIDTH = 2  # bytes per sample


def mix(a: bytes, b: bytes) -> bytes:
    """Two frames summed, clipped at full scale."""
    return audioop.add(a, b, WIDTH)


def scale(pcm: bytes, factor: float) -> bytes:
    """A frame made louder or quieter by `factor`, clipped at full scale."""
    return audioop.mul(pcm, WIDTH, factor)


def rms(pcm: bytes) -> int:
    """The root-mean-square level of a frame (0 = silence, 32767 = full scale)."""
    return audioop.rms(pcm, WIDTH)


class Resampler:
    """One direction of audio from `source` Hz to `target` Hz (8000 <-> 16000 here), frame by
    frame, as a stream: the filter's state carries from one frame to the next, so there is no
    click at frame edges, and every frame in gives exactly one frame out (the filter's few
    milliseconds of delay are silence at the start, never a frame missing later).

    libsamplerate's SINC_FASTEST (a band-limited sinc: no aliasing when going down to 8 kHz,
    no images when going up), through `samplerate`, which has wheels for x86_64 and aarch64.
    audioop.ratecv was the other candidate: it interpolates linearly and filters nothing, so a
    voice's 4 to 8 kHz would fold back into a narrowband call.
    """

    def __init__(self, source: int, target: int) -> None:
        import numpy
        import samplerate

        self._np = numpy
        self.source, self.target = source, target
        self.ratio = target / source
        self._state = samplerate.Resampler("sinc_fastest", channels=1)
        self._pending = numpy.zeros(0, dtype=numpy.float32)

    def convert(self, pcm: bytes) -> bytes:
        np = self._np
        n_out = len(pcm) // WIDTH * self.target // self.source
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * (1 / 32768)
        y = self._state.process(x, self.ratio)
        out = np.concatenate((self._pending, y)) if self._pending.size else y
        if out.size < n_out:  # the filter's delay, at the start only: silence before it
            out = np.concatenate((np.zeros(n_out - out.size, dtype=np.float32), out))
        self._pending = out[n_out:]
        return (np.clip(out[:n_out] * 32768, -32768, 32767).astype("<i2")).tobytes()
