"""The hardware drivers: what keypad scanning costs, and key press to new frame through them.

1. CPU of the keypad's scan thread (10 ms scans of a 4x4 matrix) and the hook's poll thread
   (10 ms), in CPU seconds per minute, next to the same process doing nothing for the same time
   (the floor), measured in the same run. On gpiozero's MockFactory: on a Pi each pin change is an
   lgpio call instead of a Python attribute write, so rerun this on the device for its figure.
2. Key press to new frame: a key held down on the mock matrix -> keypad thread -> daemon queue ->
   Phone -> screen -> display thread -> luma `dummy` device. Next to it the floor set by the
   debounce (3 stable scans of 10 ms) and the same path without the keypad (a `KeyPressed` posted
   straight to the daemon, as the control API does).

    .venv/bin/python bench/hardware.py [--seconds 20] [--presses 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpiozero.pins.mock import MockFactory

from firmware.config import HardwareConfig
from firmware.daemon import Daemon
from firmware.events import KeyPressed, RegistrationChanged
from firmware.hw.display import Display, open_device
from firmware.hw.hook import Hook
from firmware.hw.keypad import LAYOUTS, Keypad
from firmware.phone import Phone, Settings
from tests.hw.matrix import Matrix

ROWS, COLS = [5, 6, 13, 26], [16, 22, 23, 24]


def cpu_per_minute(seconds: float, scanning: bool) -> tuple[float, int]:
    factory = MockFactory()
    Matrix(factory, ROWS, COLS, LAYOUTS["4x4"])
    pad = Keypad(lambda: factory, ROWS, COLS)
    hook = Hook(lambda: factory, 17)
    if scanning:
        pad.start(lambda e: None)
        hook.start(lambda e: None)
    start_cpu, start = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - start_cpu, time.monotonic() - start
    if scanning:
        pad.stop()
        hook.stop()
    factory.reset()
    return cpu / wall * 60, pad.scans


def key_to_frame(presses: int, through_keypad: bool) -> list[float]:
    factory = MockFactory()
    matrix = Matrix(factory, ROWS, COLS, LAYOUTS["4x4"])
    pad = Keypad(lambda: factory, ROWS, COLS)
    hw = HardwareConfig(display="dummy")
    display = Display(lambda: open_device(hw))
    phone = Phone(Settings(extension="101", region="BE"))
    daemon = Daemon(phone, [pad, display] if through_keypad else [display], [display])
    daemon.start()
    daemon.post(RegistrationChanged("registered"))
    times = []
    try:
        for i in range(presses):
            key = "123456789"[i % 9]
            display.idle()
            before = display.frames
            changed = threading.Event()
            start = time.perf_counter()
            if through_keypad:
                matrix.press(key)
            else:
                daemon.post(KeyPressed(key))
            while display.frames == before:
                changed.wait(0.0002)
            times.append(time.perf_counter() - start)
            matrix.release(key)
            time.sleep(0.05)  # let the release debounce before the next press
            if i % 10 == 9:
                daemon.post(KeyPressed("C", long=True))
    finally:
        daemon.stop()
        factory.reset()
    return times


def row(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[max(0, int(len(ms) * 0.99) - 1)]
    return f"| {name} | {statistics.median(ms):.1f} | {p99:.1f} | {ms[-1]:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--presses", type=int, default=100)
    args = parser.parse_args()
    os.environ["TZ"] = "UTC"
    time.tzset()
    print(f"hardware drivers on MockFactory, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}\n")
    idle, _ = cpu_per_minute(args.seconds, scanning=False)
    busy, scans = cpu_per_minute(args.seconds, scanning=True)
    print("| what | CPU s per minute | scans |")
    print("|---|---|---|")
    print(f"| keypad (4x4, 10 ms) + hook (10 ms) threads | {busy:.2f} | {scans} |")
    print(f"| baseline: the same process idle | {idle:.2f} | 0 |")
    print(f"\nper scan: {(busy - idle) / 60 / (scans / args.seconds) * 1e6:.0f} µs of CPU\n")
    keypad = [t * 1000 for t in key_to_frame(args.presses, True)]
    direct = [t * 1000 for t in key_to_frame(args.presses, False)]
    print("| key press to new frame on luma dummy | median ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    print(row("ours: matrix -> keypad thread -> Phone -> display thread", keypad))
    print(row("baseline: KeyPressed posted to the daemon (no keypad)", direct))
    print("| floor: debounce, 3 stable scans of 10 ms | 20.0-30.0 | | |")


if __name__ == "__main__":
    main()
