"""The OLED: a luma.oled panel (or a luma emulator) fed with the Phone's frames.

Owns: opening the panel named in `[hardware] display` over i2c or spi, its own drawing thread
(the latest frame wins, so a slow I2C bus never holds up the phone's loop), skipping frames that
did not change (a full SSD1306 frame is 1024 bytes, ~23 ms on a 400 kHz bus), contrast and the
screen saver's dimming, and a clear message when the panel is missing, after which the phone
works on without a screen. Never touches: what is on the screen (ui/screens.py draws it).
"""

from __future__ import annotations

import errno
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

from PIL import Image

from firmware.config import EMULATORS, PANELS, HardwareConfig
from firmware.events import Action, AdapterFailed, Post
from firmware.hw.pins import HardwareError

log = logging.getLogger("display")

# luma.oled 3.x still calls Image.getdata, deprecated by Pillow 12: harmless, but it must not
# fill the journal (or fail the tests, which turn warnings into errors).
warnings.filterwarnings("ignore", message=r"Image\.Image\.getdata is deprecated",
                        category=DeprecationWarning)

WIDTH, HEIGHT = 128, 64
DIM_CONTRAST = 8  # the screen saver: still readable up close, no glow across a dark office


def open_device(hw: HardwareConfig, serial: Any = None) -> Any:
    """The luma device the config names; `serial` replaces the bus (tests record bytes)."""
    name = hw.display
    if name == "dummy":
        from luma.core.device import dummy

        return dummy(width=WIDTH, height=HEIGHT, mode="1", rotate=hw.display_rotate)
    if name in EMULATORS:
        import os

        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            from luma.emulator import device as emulators
        except ImportError as exc:
            raise HardwareError(f"display: the {name} emulator needs luma.emulator and pygame "
                                f"({exc})") from exc
        return getattr(emulators, name)(width=WIDTH, height=HEIGHT, mode="1",
                                        rotate=hw.display_rotate)
    if name not in PANELS:
        raise HardwareError(f"display: unknown panel {name!r}")
    from luma.core.error import DeviceNotFoundError, DevicePermissionError
    from luma.oled import device as panels

    where = (f"/dev/i2c-{hw.display_port} at 0x{hw.display_address:02X}"
             if hw.display_interface == "i2c" else f"/dev/spidev{hw.display_port}.0")
    try:
        if serial is None:
            if hw.display_interface == "i2c":
                from luma.core.interface.serial import i2c

                serial = i2c(port=hw.display_port, address=hw.display_address)
            else:
                from luma.core.interface.serial import spi

                serial = spi(port=hw.display_port, device=0)
        return getattr(panels, name)(serial, width=WIDTH, height=HEIGHT,
                                     rotate=hw.display_rotate)
    except DevicePermissionError as exc:
        raise HardwareError(f"display: {exc}: the service user needs the "
                            f"{hw.display_interface} group") from exc
    except DeviceNotFoundError as exc:
        if "address" in str(exc):
            raise HardwareError(f"display: no panel answers on {where}: check the wiring and "
                                f"the address (i2cdetect -y {hw.display_port})") from exc
        raise HardwareError(f"display: {where.split(' ')[0]} not found: enable "
                            f"{hw.display_interface.upper()} (raspi-config, or dtparam="
                            f"{'i2c_arm' if hw.display_interface == 'i2c' else 'spi'}=on in "
                            f"/boot/firmware/config.txt) and reboot") from exc
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise HardwareError(f"display: {where} not found: enable "
                                f"{hw.display_interface.upper()} and reboot") from exc
        raise HardwareError(f"display: {where}: {exc}") from exc


class Display:
    """A screen sink and an adapter: `show` hands a frame over and returns; a thread draws."""

    name = "display"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, opener: Callable[[], Any], contrast: int = 255) -> None:
        self._opener = opener
        self.contrast = contrast
        self.device: Any = None
        self.frames = 0  # frames sent to the panel
        self.skipped = 0  # frames that were the same as the panel's
        self.error = ""
        self._cond = threading.Condition()
        self._pending: tuple[Image.Image, bool] | None = None
        self._shown: tuple[bytes, bool] | None = None
        self._stopped = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._post: Post | None = None

    # ------------------------------------------------------------------ adapter

    def start(self, post: Post) -> None:
        self._post = post
        try:
            self.device = self._opener()
            self.device.contrast(self.contrast)
        except HardwareError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:
            self._fail(f"display: {type(exc).__name__}: {exc}")
            return
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)
        self._thread.start()

    def execute(self, action: Action) -> None:
        pass

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.device is not None:
            try:
                self.device.cleanup()
            except Exception:
                log.debug("display cleanup failed", exc_info=True)
            self.device = None

    def _fail(self, message: str) -> None:
        # The phone rings and answers without a screen; the log and /state say why.
        self.error = message
        log.error("%s; the phone carries on without a screen", message)
        if self._post is not None:
            self._post(AdapterFailed("display", message))

    # ------------------------------------------------------------------ frames

    def show(self, image: Image.Image, lines: list[str], dim: bool = False) -> None:
        with self._cond:
            self._pending = (image, dim)  # an older frame not drawn yet is simply replaced
            self._cond.notify()

    def idle(self, timeout: float = 2.0) -> bool:
        """Wait until every frame handed over has been drawn (tests and benchmarks)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy,
                                       timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stopped)
                if self._stopped:
                    return
                assert self._pending is not None
                image, dim = self._pending
                self._pending = None
                self._busy = True
            try:
                self.draw(image, dim)
            except Exception as exc:
                if not self.error:
                    self._fail(f"display: drawing failed: {exc}")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def draw(self, image: Image.Image, dim: bool) -> None:
        """Send one frame to the panel, or nothing when the panel already shows it."""
        if self.device is None:
            return
        data = image.tobytes()
        previous = self._shown
        if previous is not None and previous == (data, dim):
            self.skipped += 1
            return
        if previous is None or previous[1] != dim:
            self.device.contrast(DIM_CONTRAST if dim else self.contrast)
        if previous is None or previous[0] != data:
            if image.mode != self.device.mode:
                image = image.convert(self.device.mode)
            self.device.display(image)
            self.frames += 1
        self._shown = (data, dim)
        if self.error:
            log.info("display works again")
            self.error = ""
