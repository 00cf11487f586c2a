"""The simulator's keyboard and terminal screen: the same events as the keypad, every pixel."""

from __future__ import annotations

from PIL import Image

from firmware.events import HookLifted, HookReplaced, KeyPressed
from firmware.hw.sim import frame_text, key_event
from firmware.ui import screens
from tests.screenshots import SCENARIOS


def test_keyboard_keys_are_keypad_events():
    assert key_event("5", off_hook=False) == KeyPressed("5")
    assert key_event("a", off_hook=False) == KeyPressed("A")
    assert key_event("B", off_hook=False) == KeyPressed("B", long=True)
    assert key_event("+", off_hook=False) == KeyPressed("0", long=True)
    assert key_event("m", off_hook=True) == KeyPressed("*", long=True)
    assert key_event(" ", off_hook=False) == HookLifted()
    assert key_event(" ", off_hook=True) == HookReplaced()
    assert key_event("x", off_hook=False) is None


def _decode_blocks(rows: list[str]) -> Image.Image:
    image = Image.new("1", (len(rows[0]), len(rows) * 2))
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            if char in "█▀":
                image.putpixel((x, 2 * y), 1)
            if char in "█▄":
                image.putpixel((x, 2 * y + 1), 1)
    return image


def _decode_braille(rows: list[str]) -> Image.Image:
    dots = ((0, 0, 0x01), (0, 1, 0x02), (0, 2, 0x04), (1, 0, 0x08), (1, 1, 0x10),
            (1, 2, 0x20), (0, 3, 0x40), (1, 3, 0x80))
    image = Image.new("1", (len(rows[0]) * 2, len(rows) * 4))
    for y, row in enumerate(rows):
        for x, char in enumerate(row):
            bits = ord(char) - 0x2800
            for dx, dy, bit in dots:
                if bits & bit:
                    image.putpixel((2 * x + dx, 4 * y + dy), 1)
    return image


def test_the_terminal_shows_the_oled_pixel_for_pixel():
    image = screens.render(SCENARIOS["queue"]().phone.snapshot())
    wide = frame_text(image, columns=200)
    assert len(wide) == 32 and len(wide[0]) == 128
    assert _decode_blocks(wide).tobytes() == image.tobytes()
    narrow = frame_text(image, columns=80)
    assert len(narrow) == 16 and len(narrow[0]) == 64
    assert _decode_braille(narrow).tobytes() == image.tobytes()
