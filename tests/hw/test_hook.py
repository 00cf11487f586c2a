"""The hook switch on a mock pin, with a clock the test owns (mock pins do not bounce)."""

from __future__ import annotations

import pytest
from gpiozero.pins.mock import MockFactory

from firmware.events import Event, HookLifted, HookReplaced
from firmware.hw.hook import Hook
from firmware.hw.pins import HardwareError
from tests.hw.conftest import Clock
from tests.hw.matrix import ContactPin

PIN = 17


def make(factory: MockFactory, clock: Clock, **kw: object) -> tuple[Hook, list[Event]]:
    hook = Hook(lambda: factory, PIN, poll_seconds=0, clock=clock, **kw)  # type: ignore[arg-type]
    posted: list[Event] = []
    hook.start(posted.append)
    return hook, posted


def settle(hook: Hook, clock: Clock, seconds: float = 0.1) -> None:
    for _ in range(int(seconds / 0.01)):
        clock.now += 0.01
        hook.poll()


def test_lifting_and_replacing_give_one_event_each(factory: MockFactory, clock: Clock) -> None:
    hook, posted = make(factory, clock)
    pin = factory.pin(PIN)
    settle(hook, clock)
    assert posted == []  # on the cradle at boot: nothing
    pin.drive_low()  # active low: the contact closes to ground when the handset lifts
    settle(hook, clock)
    pin.drive_high()
    settle(hook, clock)
    assert posted == [HookLifted(), HookReplaced()]


def test_a_chattering_contact_gives_exactly_one_event(factory: MockFactory,
                                                        clock: Clock) -> None:
    hook, posted = make(factory, clock)
    pin = factory.pin(PIN)
    for _ in range(8):  # 8 bounces, 10-20 ms apart, as a worn contact does
        pin.drive_low()
        settle(hook, clock, 0.02)
        pin.drive_high()
        settle(hook, clock, 0.01)
    pin.drive_low()
    settle(hook, clock, 0.2)
    assert posted == [HookLifted()]


def test_a_bounce_that_ends_where_it_started_is_nothing(factory: MockFactory,
                                                         clock: Clock) -> None:
    hook, posted = make(factory, clock)
    pin = factory.pin(PIN)
    pin.drive_low()
    settle(hook, clock, 0.03)
    pin.drive_high()
    settle(hook, clock, 0.3)
    assert posted == []


def test_booting_off_hook_sends_nothing_until_the_handset_moves(factory: MockFactory,
                                                                 clock: Clock) -> None:
    contact = factory.pin(PIN, pin_class=ContactPin)
    contact.closed = True  # the handset is off the cradle at power-on
    hook, posted = make(factory, clock)
    assert hook.off_hook
    settle(hook, clock, 0.5)
    assert posted == []
    contact.closed = False
    settle(hook, clock)
    assert posted == [HookReplaced()]


def test_active_high_with_a_pull_down(factory: MockFactory, clock: Clock) -> None:
    hook, posted = make(factory, clock, active="high")
    assert factory.pin(PIN).pull == "down"
    factory.pin(PIN).drive_high()
    settle(hook, clock)
    assert posted == [HookLifted()]


def test_a_pin_in_use_is_named(factory: MockFactory, clock: Clock) -> None:
    from gpiozero import Button

    button = Button(PIN, pin_factory=factory)  # noqa: F841 (held: the reservation is weak)
    with pytest.raises(HardwareError, match="hook switch: cannot use GPIO pin 17"):
        make(factory, clock)


def test_the_poll_thread_posts_and_stops(factory: MockFactory) -> None:
    import queue

    hook = Hook(lambda: factory, PIN, poll_seconds=0.002, debounce_seconds=0.01)
    got: queue.Queue[Event] = queue.Queue()
    hook.start(got.put)
    factory.pin(PIN).drive_low()
    assert got.get(timeout=2) == HookLifted()
    hook.stop()
    Hook(lambda: factory, PIN, poll_seconds=0).start(lambda e: None)  # the pin was released
