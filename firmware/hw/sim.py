"""The simulator's hardware: the OLED drawn in the terminal and the keyboard as the keypad.

Owns: the terminal (raw mode on start, restored on stop) and the mapping from keyboard keys to the
very events the keypad and hook switch post. Never touches: phone state; it reads the daemon's
phone's hook position (handed in as a function) only to know which way the space bar moves
the hook.

Keys: 0-9 * # dial; a b c d are A B C D; shift (A B C D) is a long press; + is a long 0;
m and h are long * (mute) and long # (hold); space lifts or replaces the handset; q quits.
"""

from __future__ import annotations

import logging
import os
import select
import shutil
import sys
import termios
import threading
import tty
from collections.abc import Callable
from typing import Any, TextIO

from PIL import Image

from firmware.events import Action, Event, HookLifted, HookReplaced, KeyPressed, Post

log = logging.getLogger("sim")

HINT = "keys: 0-9*# abcd=A-D ABCD=long +=long0 m=mute h=hold space=hook q=quit"

_LONG = {"A": "A", "B": "B", "C": "C", "D": "D", "+": "0", "m": "*", "h": "#"}


def key_event(char: str, off_hook: bool) -> Event | None:
    """The event a keyboard key stands for, or None for keys that mean nothing here."""
    if char in "0123456789*#":
        return KeyPressed(char)
    if char in "abcd":
        return KeyPressed(char.upper())
    if char in _LONG:
        return KeyPressed(_LONG[char], long=True)
    if char == " ":
        return HookReplaced() if off_hook else HookLifted()
    return None


_BRAILLE = ((0, 0, 0x01), (0, 1, 0x02), (0, 2, 0x04), (1, 0, 0x08), (1, 1, 0x10), (1, 2, 0x20),
            (0, 3, 0x40), (1, 3, 0x80))


def frame_text(image: Image.Image, columns: int = 200) -> list[str]:
    """A 1-bit frame as text, pixel for pixel: half blocks (128 x 32 characters) when the
    terminal is wide enough, else braille (2 x 4 pixels a character, 64 x 16)."""
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    rows = []
    if columns < width + 2:
        for y in range(0, height, 4):
            chars = []
            for x in range(0, width, 2):
                bits = sum(bit for dx, dy, bit in _BRAILLE
                           if x + dx < width and y + dy < height and pixels[x + dx, y + dy])
                chars.append(chr(0x2800 + bits))
            rows.append("".join(chars))
        return rows
    for y in range(0, height, 2):
        chars = []
        for x in range(width):
            top = pixels[x, y]
            bottom = pixels[x, y + 1] if y + 1 < height else 0
            chars.append("█" if top and bottom else "▀" if top else "▄" if bottom else " ")
        rows.append("".join(chars))
    return rows


class TerminalScreen:
    """Draws every new frame in place, framed like the panel, with the key hint below."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def show(self, image: Image.Image, lines: list[str], dim: bool = False) -> None:
        body = frame_text(image, shutil.get_terminal_size().columns)
        width = len(body[0])
        text = ["┌" + "─" * width + "┐", *("│" + row + "│" for row in body),
                "└" + "─" * width + "┘", HINT]
        with self._lock:
            self.out.write("\x1b[H" + "\r\n".join(text) + "\x1b[J")
            self.out.flush()


class TerminalKeys:
    """Reads the keyboard in raw mode on its own thread and posts key and hook events."""

    name = "keyboard"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, off_hook: Callable[[], bool], quit: Callable[[], None],
                 stream: TextIO | None = None) -> None:
        self._off_hook = off_hook
        self._quit = quit
        self._stream = stream or sys.stdin
        self._saved: list[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, post: Post) -> None:
        fd = self._stream.fileno()
        if not os.isatty(fd):
            raise RuntimeError("the simulator needs a terminal; use --headless with [control]")
        self._saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        sys.stdout.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear the screen
        self._thread = threading.Thread(target=self._run, args=(post, fd), name="keyboard",
                                        daemon=True)
        self._thread.start()

    def _run(self, post: Post, fd: int) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            char = os.read(fd, 1).decode(errors="ignore")
            if char in ("q", "\x03", "\x04"):
                self._quit()
                return
            event = key_event(char, self._off_hook())
            if event is not None:
                post(event)

    def execute(self, action: Action) -> None:  # pragma: no cover - handles nothing
        pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        if self._saved is not None:
            termios.tcsetattr(self._stream.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
        sys.stdout.write("\x1b[?25h\r\n")
        sys.stdout.flush()
