"""The GPIO buzzer and the message lamp on mock pins."""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory

from firmware.events import Ring, SetLed
from firmware.hw.lamps import RING_ON_SECONDS, Lamps
from tests.helpers import wait_for


def test_the_buzzer_rings_in_cadence_and_stops(factory: MockFactory) -> None:
    lamps = Lamps(lambda: factory, ringer_pin=12, led_pin=None)
    lamps.start(lambda e: None)
    pin = factory.pin(12)
    lamps.execute(Ring(True))
    wait_for(lambda: pin.state, timeout=2, what="the buzzer to sound")
    wait_for(lambda: not pin.state, timeout=RING_ON_SECONDS + 1, what="the ring's pause")
    wait_for(lambda: len(pin.states) >= 3, timeout=1)
    on = pin.states[2].timestamp  # time spent high before going low
    assert RING_ON_SECONDS - 0.05 < on < RING_ON_SECONDS + 0.5  # a cadence, not a buzz
    lamps.execute(Ring(True))
    lamps.execute(Ring(False))
    wait_for(lambda: not pin.state, timeout=2, what="the buzzer to stop")
    assert not lamps.ringer.is_active
    lamps.stop()


def test_the_lamp_blinks_for_missed_calls_and_goes_out(factory: MockFactory) -> None:
    lamps = Lamps(lambda: factory, ringer_pin=None, led_pin=25)
    lamps.start(lambda e: None)
    pin = factory.pin(25)
    lamps.execute(SetLed(True))
    wait_for(lambda: pin.state, timeout=2)
    lamps.execute(SetLed(False))
    wait_for(lambda: not pin.state, timeout=2)
    lamps.execute(Ring(True))  # no buzzer configured: nothing to do, no error
    lamps.stop()
    Lamps(lambda: factory, ringer_pin=12, led_pin=25).start(lambda e: None)  # pins released
