"""The GPIO pin factory, chosen explicitly: lgpio on a Pi, gpiozero's MockFactory in tests.

Owns: turning `[hardware] pin_factory` (or `$GPIOZERO_PIN_FACTORY`, gpiozero's own switch, which
wins when set) into a gpiozero pin factory, and a clear error when that factory cannot run here.
Never touches: pins themselves. gpiozero would silently fall back from one factory to the next;
a desk phone must not quietly run with mock pins on a Pi, so nothing here falls back.
"""

from __future__ import annotations

import contextlib
import os
from importlib.metadata import entry_points
from typing import Any

from firmware.config import PIN_FACTORIES


class HardwareError(RuntimeError):
    """A part of the hardware is missing or unusable; the message says which and what to do."""




def factory_name(configured: str) -> str:
    return os.environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower() or configured


def make_factory(configured: str) -> Any:
    """The pin factory for `configured` (or $GPIOZERO_PIN_FACTORY), or a HardwareError."""
    name = factory_name(configured)
    if name not in PIN_FACTORIES:
        raise HardwareError(f"GPIO: unknown pin factory {name!r} (one of "
                            f"{', '.join(sorted(PIN_FACTORIES))})")
    # gpiozero names its factories in its own entry points, as gpiozero itself looks them up.
    found = entry_points(group="gpiozero_pin_factories", name=name)
    try:
        if not found:
            raise ImportError(f"gpiozero has no {name!r} pin factory")
        return next(iter(found)).load()()
    except ImportError as exc:
        raise HardwareError(f"GPIO: the {name} pin factory is not installed ({exc}); "
                            f"see docs/hardware.md") from exc
    except Exception as exc:
        if ".lgd-nfy" in str(exc):
            # lgpio makes its pipes in the working directory (the unit gives it /run/deskphone).
            raise HardwareError(f"GPIO: lgpio cannot make its pipe in {os.getcwd()}: start the "
                                f"phone in a directory it can write to") from exc
        raise HardwareError(f"GPIO: cannot open the {name} pin factory: {exc} (is this a "
                            f"Raspberry Pi with /dev/gpiochip*? the simulator needs no GPIO)"
                            ) from exc


def close_factory(factory: Any) -> None:
    # Closing a half-opened chip must not hide the real error.
    with contextlib.suppress(Exception):
        factory.close()


class Gpio:
    """The adapter that owns the pin factory: started before the keypad, hook and lamps, which
    ask it for the factory, and stopped after them."""

    name = "gpio"
    handles: tuple[type, ...] = ()

    def __init__(self, configured: str) -> None:
        self.configured = configured
        self.factory: Any = None

    def start(self, post: object) -> None:
        self.factory = make_factory(self.configured)

    def get(self) -> Any:
        if self.factory is None:
            raise HardwareError(f"GPIO: the {factory_name(self.configured)} pin factory did not "
                                f"start (see the gpio error)")
        return self.factory

    def execute(self, action: object) -> None:
        pass

    def stop(self) -> None:
        if self.factory is not None:
            close_factory(self.factory)
            self.factory = None
