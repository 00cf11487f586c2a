"""Key press to new frame: what the phone's loop spends between a key and the pixels to send.

Prints our figure next to two baselines measured in the same run, the same way:
- luma's own way to draw a screen: `luma.core.render.canvas` on the `dummy` device with Pillow's
  bitmap font, the same six rows of text;
- luma's `dummy` device taking an already drawn frame (the floor for any renderer).
The bus transfer to a real SSD1306 comes on top (about 23 ms at 400 kHz I2C, HARDWARE.md).

    .venv/bin/python bench/keypress.py [--presses N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from luma.core.device import dummy
from luma.core.render import canvas
from PIL import ImageFont

from firmware.events import KeyPressed
from firmware.ui import screens
from tests.phonekit import Driver
from tests.screenshots import CONTACTS


def ours(presses: int) -> list[float]:
    """Phone.handle + layout + render, as the daemon does for every key."""
    from firmware.events import ContactsUpdated

    d = Driver().registered()
    d.feed(ContactsUpdated(CONTACTS * 100))  # 300 contacts, so T9 search has work to do
    device = dummy(width=128, height=64, mode="1")
    times = []
    keys = "0470123456"
    for i in range(presses):
        key = keys[i % len(keys)] if i % 11 else "C"
        start = time.perf_counter()
        d.phone.handle(KeyPressed(key) if key != "C" else KeyPressed("C", long=True))
        snap = d.phone.snapshot()
        screens.lines(snap)
        device.display(screens.render(snap))
        times.append(time.perf_counter() - start)
    return times


def luma_canvas(presses: int) -> list[float]:
    device = dummy(width=128, height=64, mode="1")
    font = ImageFont.load_default_imagefont()
    rows = ["101 Alice Martin 12:00", "0470123456", "Zoë Dupont", "", "", "D:call C:del"]
    times = []
    for i in range(presses):
        rows[1] = str(i)
        start = time.perf_counter()
        with canvas(device) as draw:
            for y, row in enumerate(rows):
                draw.text((1, y * 10), row, font=font, fill="white")
        times.append(time.perf_counter() - start)
    return times


def luma_display(presses: int) -> list[float]:
    device = dummy(width=128, height=64, mode="1")
    snap = Driver().registered().phone.snapshot()
    image = screens.render(snap)
    times = []
    for _ in range(presses):
        start = time.perf_counter()
        device.display(image)
        times.append(time.perf_counter() - start)
    return times


def row(name: str, times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    p99 = ms[int(len(ms) * 0.99) - 1]
    return f"| {name} | {statistics.median(ms):.3f} | {p99:.3f} | {ms[-1]:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=2000)
    args = parser.parse_args()
    os.environ["TZ"] = "UTC"
    time.tzset()
    print(f"key press to frame, {args.presses} presses, CPU: {os.cpu_count()} cores\n")
    print("| path | median ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    print(row("ours: Phone.handle + layout + render + dummy.display", ours(args.presses)))
    print(row("baseline: luma canvas + default font on dummy", luma_canvas(args.presses)))
    print(row("baseline: dummy.display of a drawn frame", luma_display(args.presses)))


if __name__ == "__main__":
    main()
