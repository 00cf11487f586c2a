"""The keypad on gpiozero's MockFactory with a switch matrix: what a person pressing keys gets."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from firmware.events import Event, KeyPressed
from firmware.hw.keypad import LAYOUTS, LONG_KEYS, Keypad
from firmware.hw.pins import HardwareError
from tests.hw.conftest import Clock
from tests.hw.matrix import Matrix

ROWS = [5, 6, 13, 26]
COLS = [16, 22, 23, 24]


def make(factory: MockFactory, clock: Clock, layout: str = "4x4", drive: str = "rows"
         ) -> tuple[Keypad, Matrix, list[Event]]:
    cols = COLS[: len(LAYOUTS[layout][0])]
    matrix = Matrix(factory, ROWS, cols, LAYOUTS[layout], drive)
    pad = Keypad(lambda: factory, ROWS, cols, layout=layout, drive=drive, scan_seconds=0,
                 clock=clock)
    posted: list[Event] = []
    pad.start(posted.append)
    return pad, matrix, posted


def scans(pad: Keypad, clock: Clock, n: int = 3, step: float = 0.01) -> None:
    for _ in range(n):
        clock.now += step
        pad.poll()


def tap(pad: Keypad, matrix: Matrix, clock: Clock, key: str) -> None:
    matrix.press(key)
    scans(pad, clock)
    matrix.release(key)
    scans(pad, clock)


@pytest.mark.parametrize("layout", ["4x4", "4x3"])
@pytest.mark.parametrize("drive", ["rows", "cols"])
def test_every_key_of_the_layout_is_reported_once(factory: MockFactory, clock: Clock,
                                                   layout: str, drive: str) -> None:
    pad, matrix, posted = make(factory, clock, layout, drive)
    keys = "".join(LAYOUTS[layout])
    for key in keys:
        tap(pad, matrix, clock, key)
    assert [e.key for e in posted if isinstance(e, KeyPressed)] == list(keys)
    assert not any(e.long for e in posted if isinstance(e, KeyPressed))
    pad.stop()


def test_digits_are_reported_on_press_and_long_keys_on_release(
        factory: MockFactory, clock: Clock) -> None:
    pad, matrix, posted = make(factory, clock)
    matrix.press("5")
    scans(pad, clock)
    assert posted == [KeyPressed("5")]  # dialling feels instant
    matrix.release("5")
    matrix.press("0")
    scans(pad, clock)
    assert posted == [KeyPressed("5")]  # 0 might still become "+"
    matrix.release("0")
    scans(pad, clock)
    assert posted == [KeyPressed("5"), KeyPressed("0")]


@pytest.mark.parametrize("key", sorted(LONG_KEYS))
def test_holding_a_key_gives_one_long_press_and_nothing_on_release(
        factory: MockFactory, clock: Clock, key: str) -> None:
    pad, matrix, posted = make(factory, clock)
    matrix.press(key)
    scans(pad, clock)
    clock.now += 0.7
    pad.poll()
    assert posted == []
    clock.now += 0.2
    pad.poll()
    scans(pad, clock, 20)  # held on: no repeat
    matrix.release(key)
    scans(pad, clock)
    assert posted == [KeyPressed(key, long=True)]


def test_two_keys_in_one_column_are_both_read_without_a_short(
        factory: MockFactory, clock: Clock) -> None:
    pad, matrix, posted = make(factory, clock)
    matrix.press("2")
    scans(pad, clock)
    matrix.press("8")  # same column, next-but-one row, while 2 is still held
    scans(pad, clock)
    assert posted == [KeyPressed("2"), KeyPressed("8")]
    assert pad.scan() == {"2", "8"}
    assert matrix.shorts == 0  # idle rows float: no output high joined to one driven low


def test_a_bouncing_contact_gives_one_key(factory: MockFactory, clock: Clock) -> None:
    pad, matrix, posted = make(factory, clock)
    for _ in range(5):  # contact chatter shorter than the debounce
        matrix.press("7")
        scans(pad, clock, 2)
        matrix.release("7")
        scans(pad, clock, 1)
    matrix.press("7")
    scans(pad, clock, 10)
    for _ in range(5):
        matrix.release("7")
        scans(pad, clock, 1)
        matrix.press("7")
        scans(pad, clock, 2)
    matrix.release("7")
    scans(pad, clock, 5)
    assert posted == [KeyPressed("7")]


def test_a_glitch_of_one_scan_is_ignored(factory: MockFactory, clock: Clock) -> None:
    pad, matrix, posted = make(factory, clock)
    matrix.press("1")
    scans(pad, clock, 1)
    matrix.release("1")
    scans(pad, clock, 5)
    assert posted == []


def test_the_scan_thread_posts_keys_and_stops(factory: MockFactory) -> None:
    import queue
    import threading

    matrix = Matrix(factory, ROWS, COLS, LAYOUTS["4x4"])
    pad = Keypad(lambda: factory, ROWS, COLS, scan_seconds=0.002)
    got: queue.Queue[Event] = queue.Queue()
    pad.start(got.put)
    matrix.press("9")
    assert got.get(timeout=2) == KeyPressed("9")
    matrix.release("9")
    pad.stop()
    assert not [t for t in threading.enumerate() if t.name == "keypad"]
    Keypad(lambda: factory, ROWS, COLS, scan_seconds=0).start(lambda e: None)  # pins released


def test_pins_in_use_are_named(factory: MockFactory, clock: Clock) -> None:
    from gpiozero import LED

    lamp = LED(13, pin_factory=factory)  # noqa: F841 (held: the reservation is weak)
    pad = Keypad(lambda: factory, ROWS, COLS, scan_seconds=0, clock=clock)
    with pytest.raises(HardwareError, match=r"keypad: cannot use GPIO pins \[5, 6, 13, 26\]"):
        pad.start(lambda e: None)


def test_wrong_pin_count_is_refused(factory: MockFactory) -> None:
    with pytest.raises(HardwareError, match="4x3 layout needs 4 row pins and 3 column pins"):
        Keypad(lambda: factory, ROWS, COLS, layout="4x3")
