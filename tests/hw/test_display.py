"""The display on luma's dummy device and on the real ssd1306 driver over a recording I2C bus."""

from __future__ import annotations

import dataclasses

import pytest
from luma.core.interface.serial import i2c
from PIL import Image

from firmware.config import HardwareConfig
from firmware.events import AdapterFailed, Event
from firmware.hw.display import DIM_CONTRAST, Display, open_device
from firmware.hw.pins import HardwareError
from firmware.phone import Phone
from firmware.ui import screens

SSD1306_CONTRAST = 0x81


class RecordingBus:
    """An SMBus that keeps every write: (mode byte, payload)."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, list[int]]] = []

    def write_i2c_block_data(self, address: int, mode: int, data: list[int]) -> None:
        assert address == 0x3C
        self.writes.append((mode, list(data)))

    def data_bytes(self) -> int:
        return sum(len(d) for mode, d in self.writes if mode == 0x40)

    def commands(self) -> list[int]:
        return [b for mode, d in self.writes if mode == 0x00 for b in d]

    def close(self) -> None:
        pass


def frame(text: str = "") -> Image.Image:
    phone = Phone()
    image = screens.render(phone.snapshot())
    if text:
        from PIL import ImageDraw

        ImageDraw.Draw(image).text((0, 30), text, fill=1)
    return image


def started(opener: object) -> tuple[Display, list[Event]]:
    display = Display(opener)  # type: ignore[arg-type]
    posted: list[Event] = []
    display.start(posted.append)
    return display, posted


def test_the_dummy_device_shows_the_phones_frame() -> None:
    hw = dataclasses.replace(HardwareConfig(), display="dummy")
    display, posted = started(lambda: open_device(hw))
    image = frame()
    display.show(image, [])
    assert display.idle()
    assert display.device.image.tobytes() == image.tobytes()
    assert posted == []
    display.stop()


def test_ssd1306_sends_a_frame_once_and_nothing_when_unchanged() -> None:
    bus = RecordingBus()
    hw = HardwareConfig()
    display, _ = started(lambda: open_device(hw, serial=i2c(bus=bus, address=0x3C)))
    before = bus.data_bytes()
    display.show(frame("one"), [])
    assert display.idle()
    assert bus.data_bytes() - before == 1024  # 128 x 64 pixels, one bit each
    sent = len(bus.writes)
    for _ in range(5):
        display.show(frame("one"), [])  # the clock ticked but the picture is the same
        assert display.idle()
    assert len(bus.writes) == sent
    display.show(frame("two"), [])
    assert display.idle()
    assert bus.data_bytes() - before == 2048
    display.stop()


def test_the_screen_saver_dims_without_redrawing_and_wakes_up() -> None:
    bus = RecordingBus()
    display, _ = started(lambda: open_device(HardwareConfig(),
                                             serial=i2c(bus=bus, address=0x3C)))
    image = frame()
    display.show(image, [])
    assert display.idle()
    data = bus.data_bytes()
    display.show(image, [], dim=True)
    assert display.idle()
    assert bus.commands()[-2:] == [SSD1306_CONTRAST, DIM_CONTRAST]
    assert bus.data_bytes() == data  # dimming sends no pixels
    display.show(image, [], dim=False)
    assert display.idle()
    assert bus.commands()[-2:] == [SSD1306_CONTRAST, 255]
    display.stop()


def test_the_latest_frame_wins_when_the_panel_is_slow() -> None:
    import threading

    gate = threading.Event()
    hw = dataclasses.replace(HardwareConfig(), display="dummy")
    shown: list[bytes] = []

    def slow() -> object:
        device = open_device(hw)
        real = device.display

        def display(image: Image.Image) -> None:
            gate.wait(2)
            shown.append(image.tobytes())
            real(image)

        device.display = display
        return device

    display, _ = started(slow)
    frames = [frame(str(n)) for n in range(5)]
    for image in frames:
        display.show(image, [])  # returns at once: the phone's loop never waits for I2C
    gate.set()
    assert display.idle()
    assert shown[-1] == frames[-1].tobytes()
    assert len(shown) <= 2  # the first (already being drawn) and the last
    display.stop()


def test_a_missing_panel_is_named_and_the_phone_goes_on_without_it() -> None:
    hw = dataclasses.replace(HardwareConfig(), display_port=9)
    with pytest.raises(HardwareError, match=r"/dev/i2c-9 not found: enable I2C"):
        open_device(hw)
    display, posted = started(lambda: open_device(hw))
    assert posted == [AdapterFailed("display", display.error)]
    assert "/dev/i2c-9 not found" in display.error
    display.show(frame(), [])  # frames keep coming: nothing breaks
    display.stop()


def test_a_panel_that_does_not_answer_is_named() -> None:
    import errno

    class Silent(RecordingBus):
        def write_i2c_block_data(self, address: int, mode: int, data: list[int]) -> None:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    with pytest.raises(HardwareError, match=r"no panel answers on /dev/i2c-1 at 0x3C"):
        open_device(HardwareConfig(), serial=i2c(bus=Silent(), address=0x3C))
