"""The screen saver: an idle phone nobody touches dims; a key, the hook or a call wakes it."""

from __future__ import annotations

from firmware.events import Tick
from firmware.phone import IDLE, Settings
from tests.phonekit import Driver


def driver(seconds: float = 300) -> Driver:
    return Driver(settings=Settings(extension="101", region="BE", screensaver_seconds=seconds))


def idle_for(d: Driver, seconds: float) -> None:
    for _ in range(int(seconds)):
        d.clock.advance(1)
        d.feed(Tick())


def test_an_idle_phone_dims_after_the_set_time_and_a_key_wakes_it() -> None:
    d = driver().registered()
    idle_for(d, 299)
    assert not d.state.asleep
    idle_for(d, 1)
    assert d.state.asleep and d.state.mode == IDLE
    d.keys("4")
    assert not d.state.asleep
    assert d.state.entry == "4"  # the key also does its job: nobody has to press twice
    d.keys("C")
    idle_for(d, 299)
    assert not d.state.asleep  # the count started again at the last key


def test_a_ringing_call_and_the_handset_wake_it_and_keep_it_awake() -> None:
    d = driver(10).registered()
    idle_for(d, 10)
    assert d.state.asleep
    d.ring()
    assert not d.state.asleep
    idle_for(d, 30)
    assert not d.state.asleep  # not while it rings
    d.lift()
    idle_for(d, 30)
    assert not d.state.asleep  # nor during the call
    d.replace()
    idle_for(d, 10)
    assert d.state.asleep


def test_zero_means_never() -> None:
    d = driver(0).registered()
    idle_for(d, 3600)
    assert not d.state.asleep
