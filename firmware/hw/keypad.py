"""The matrix keypad: scanned on GPIO pins, debounced, long presses told apart.

Owns: the keypad's pins (drive lines and sense lines), one scan thread, and turning stable key
states into `KeyPressed(key, long)` facts. Never touches: what a key means (the Phone decides).

Electrical design. The sense lines are inputs with pull-ups. One drive line at a time is switched
to an output driven low; every other drive line floats (an input without pull). A held key joins
its drive line to its sense line, so that sense line reads low only while its own drive line is
scanned. Floating the idle drive lines means two keys held in one column never join a high
output to a low one (no short, no wrong key). Three keys at the corners of a rectangle can still
make the fourth corner read as held ("ghosting"), as on any matrix without diodes: boards that
must report three keys at once need a diode in series with each switch (docs/hardware.md).

Timing. A scan every `scan_seconds` (10 ms); a key's state changes after `stable_scans` equal
scans in a row (3, so 20-30 ms of debounce). Keys with no long meaning (`1`-`9`) are reported the
moment they are down, so dialling feels instant; keys with a long meaning (`0` for `+`, `*`, `#`,
`A`-`D`) are reported when released, or as long once held for `long_press_seconds`. No key of the
default map auto-repeats: each held key has its own long meaning instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from firmware.events import Action, KeyPressed, Post
from firmware.hw.pins import HardwareError

log = logging.getLogger("keypad")

LAYOUTS: dict[str, tuple[str, ...]] = {
    "4x4": ("123A", "456B", "789C", "*0#D"),
    "4x3": ("123", "456", "789", "*0#"),
}
LONG_KEYS = frozenset("0*#ABCD")


class _Key:
    __slots__ = ("count", "down", "down_at", "long_sent", "raw")

    def __init__(self) -> None:
        self.raw = False  # what the last scan read
        self.count = 0  # scans in a row that read `raw`
        self.down = False  # the debounced state
        self.down_at = 0.0
        self.long_sent = False


class Keypad:
    """A 4x4 or 4x3 matrix keypad. `poll()` does one scan (tests call it with a clock they own);
    `start()` runs it on a thread."""

    name = "keypad"
    handles: tuple[type[Action], ...] = ()

    def __init__(
        self,
        factory: Callable[[], Any],
        rows: Sequence[int],
        cols: Sequence[int],
        *,
        layout: str = "4x4",
        drive: str = "rows",
        long_press_seconds: float = 0.8,
        scan_seconds: float = 0.01,
        stable_scans: int = 3,
        clock: Callable[[], float] = time.monotonic,
        long_keys: frozenset[str] = LONG_KEYS,
    ) -> None:
        keys = LAYOUTS[layout]
        if len(rows) != len(keys) or len(cols) != len(keys[0]):
            raise HardwareError(f"keypad: the {layout} layout needs {len(keys)} row pins and "
                                f"{len(keys[0])} column pins")
        self._factory = factory
        self.rows, self.cols = tuple(rows), tuple(cols)
        self.layout = layout
        self.drive = drive
        self.long_press = long_press_seconds
        self.scan_seconds = scan_seconds
        self.stable_scans = max(1, stable_scans)
        self.clock = clock
        self.long_keys = long_keys
        # (drive index, sense index) -> key
        if drive == "rows":
            self._map = {(r, c): keys[r][c] for r in range(len(rows)) for c in range(len(cols))}
        else:
            self._map = {(c, r): keys[r][c] for r in range(len(rows)) for c in range(len(cols))}
        self._keys = {key: _Key() for key in self._map.values()}
        self._drive_devs: list[Any] = []
        self._sense_devs: list[Any] = []
        self._post: Post | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.scans = 0

    # ------------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Claim the pins: drive lines floating, sense lines pulled up."""
        from gpiozero import InputDevice

        factory = self._factory()
        drive_pins, sense_pins = (self.rows, self.cols) if self.drive == "rows" else \
            (self.cols, self.rows)
        try:
            for pin in drive_pins:
                self._drive_devs.append(InputDevice(pin, pull_up=None, active_state=False,
                                                    pin_factory=factory))
            for pin in sense_pins:
                self._sense_devs.append(InputDevice(pin, pull_up=True, pin_factory=factory))
        except Exception as exc:
            self.close()
            raise HardwareError(f"keypad: cannot use GPIO pins {list(drive_pins)} / "
                                f"{list(sense_pins)}: {exc}") from exc

    def close(self) -> None:
        for dev in self._drive_devs + self._sense_devs:
            try:
                dev.close()
            except Exception:
                log.debug("closing %r failed", dev, exc_info=True)
        self._drive_devs.clear()
        self._sense_devs.clear()

    def start(self, post: Post) -> None:
        self._post = post
        self.open()
        if self.scan_seconds > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="keypad", daemon=True)
            self._thread.start()
        log.info("%s keypad on %s pins %s, %s pins %s", self.layout,
                 self.drive, list(self.rows if self.drive == "rows" else self.cols),
                 "column" if self.drive == "rows" else "row",
                 list(self.cols if self.drive == "rows" else self.rows))

    def execute(self, action: Action) -> None:
        pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        self.close()

    def _run(self) -> None:
        # A fixed-rate schedule: the scan rate (and so the debounce time) does not stretch
        # with the time a scan takes.
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("keypad scan failed")
            next_at += self.scan_seconds
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at = time.monotonic()  # after a stall: carry on, no burst of scans
                delay = 0
            self._stop.wait(delay)

    # ------------------------------------------------------------------ one scan

    def scan(self) -> set[str]:
        """The keys that read as held right now (not debounced)."""
        held: set[str] = set()
        for d, drive in enumerate(self._drive_devs):
            pin = drive.pin
            pin.function = "output"
            pin.state = False
            try:
                for s, sense in enumerate(self._sense_devs):
                    if not sense.pin.state:
                        held.add(self._map[(d, s)])
            finally:
                pin.function = "input"
                pin.pull = "floating"
        self.scans += 1
        return held

    def poll(self) -> list[KeyPressed]:
        """One scan; posts (and returns) the key facts it completes."""
        held = self.scan()
        now = self.clock()
        out: list[KeyPressed] = []
        for key, k in self._keys.items():
            raw = key in held
            if raw == k.raw:
                k.count += 1
            else:
                k.raw, k.count = raw, 1
            if k.count >= self.stable_scans and raw != k.down:
                k.down = raw
                if raw:
                    k.down_at, k.long_sent = now, False
                    if key not in self.long_keys:
                        out.append(KeyPressed(key))
                elif key in self.long_keys and not k.long_sent:
                    out.append(KeyPressed(key))
            if k.down and key in self.long_keys and not k.long_sent and \
                    now - k.down_at >= self.long_press:
                k.long_sent = True
                out.append(KeyPressed(key, long=True))
        if out and self._post is not None:
            for event in out:
                log.debug("key %s%s", event.key, " (long)" if event.long else "")
                self._post(event)
        return out
