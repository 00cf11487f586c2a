"""The optional GPIO outputs: a buzzer that rings and a message / missed-call lamp.

Owns: `[hardware] ringer_pin` and `led_pin` and the `Ring` / `SetLed` actions on them. Never
touches: when to ring or light (the Phone decides) or sound devices (a ringer sound card is the
audio engine's). The ring cadence is the common 1 s on, 3 s off (ITU-T E.180's usual ringing
cadence, shared by the regions the phone supports closely enough for a buzzer); gpiozero's own
background thread times the blinking, so `execute` returns at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from firmware.events import Action, Post, Ring, SetLed
from firmware.hw.pins import HardwareError

log = logging.getLogger("lamps")

RING_ON_SECONDS = 1.0
RING_OFF_SECONDS = 3.0


class Lamps:
    name = "lamps"
    handles: tuple[type[Action], ...] = (Ring, SetLed)

    def __init__(self, factory: Callable[[], Any], ringer_pin: int | None,
                 led_pin: int | None) -> None:
        self._factory = factory
        self.ringer_pin = ringer_pin
        self.led_pin = led_pin
        self.ringer: Any = None
        self.led: Any = None

    def start(self, post: Post) -> None:
        from gpiozero import LED, Buzzer

        factory = self._factory()
        try:
            if self.ringer_pin is not None:
                self.ringer = Buzzer(self.ringer_pin, pin_factory=factory)
            if self.led_pin is not None:
                self.led = LED(self.led_pin, pin_factory=factory)
        except Exception as exc:
            self.stop()
            raise HardwareError(f"ringer/lamp: cannot use GPIO pin: {exc}") from exc

    def execute(self, action: Action) -> None:
        if isinstance(action, Ring) and self.ringer is not None:
            if action.on:
                self.ringer.blink(on_time=RING_ON_SECONDS, off_time=RING_OFF_SECONDS)
            else:
                self.ringer.off()
        elif isinstance(action, SetLed) and self.led is not None:
            if action.on:
                self.led.blink(on_time=0.5, off_time=1.5)  # a waiting message blinks
            else:
                self.led.off()

    def stop(self) -> None:
        for dev in (self.ringer, self.led):
            if dev is not None:
                try:
                    dev.close()
                except Exception:
                    log.debug("closing %r failed", dev, exc_info=True)
        self.ringer = self.led = None
