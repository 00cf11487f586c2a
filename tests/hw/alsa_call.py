"""Run in a subprocess whose HOME holds an .asoundrc (ALSA reads it once per process): a call's
audio through pyaudio into ALSA's file plugin and out of it. Prints a JSON verdict.

usage: python -m tests.hw.alsa_call EAR_RAW MOUTH_RAW
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
from pathlib import Path

from firmware.hw.audio import AudioEngine, PyAudioBackend
from firmware.sip import g711
from firmware.sip.media import RtpSession, header


def main() -> None:
    ear_path, mouth_path = sys.argv[1], sys.argv[2]
    engine = AudioEngine(PyAudioBackend("default"))
    engine.start(lambda e: print(json.dumps({"event": str(e)}), file=sys.stderr))
    far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    far.bind(("127.0.0.1", 0))
    far.settimeout(0.2)
    rtp = RtpSession("127.0.0.1", engine.source, engine.sink, lambda d: None, (41000, 41999))
    port = rtp.open()
    rtp.start("127.0.0.1", far.getsockname()[1], 0, None)
    # The far end: 100 packets of a known pattern, one every 20 ms.
    sent = []
    start = time.monotonic()
    received = []
    for n in range(100):
        pcm = struct.pack("<160h", *((n * 160 + i) % 4000 - 2000 for i in range(160)))
        payload = g711.encode(pcm, 0)
        sent.append(g711.decode(payload, 0))
        far.sendto(header(0, n, n * 160, 0x1234) + payload, ("127.0.0.1", port))
        while time.monotonic() < start + (n + 1) * 0.02:
            try:
                data = far.recv(2048)
                received.append(data[12:])
            except TimeoutError:
                pass
    time.sleep(0.3)
    rtp.stop()
    engine.stop()
    ear = Path(ear_path).read_bytes()
    joined = b"".join(sent)
    mouth = Path(mouth_path).read_bytes()
    mouth_frames = [g711.encode(mouth[i:i + 320], 0) for i in range(0, len(mouth) - 319, 320)]
    payloads = [p for p in received if len(p) == 160]
    # The mouthpiece's frames arrive in order, each one exactly the codec of the file's (the
    # first packets may go out before the microphone delivered: silence, skipped here).
    lead = next((i for i, p in enumerate(payloads) if p in mouth_frames), len(payloads))
    run = 0
    if lead < len(payloads):
        first = mouth_frames.index(payloads[lead])
        for a, b in zip(payloads[lead:], mouth_frames[first:], strict=False):
            if a != b:
                break
            run += 1
    print(json.dumps({
        "ear_bytes": len(ear), "stream_in_ear": joined in ear,
        "payloads": len(payloads), "mouth_run": run, "underruns": engine.underruns,
    }))


if __name__ == "__main__":
    main()
