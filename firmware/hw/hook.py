"""The hook switch under the handset: one debounced GPIO input.

Owns: the hook pin, its own debounce, and the `HookLifted` / `HookReplaced` facts. Never touches:
what lifting means (answer, dial tone, pre-dial: the Phone decides).

A hook contact chatters for tens of milliseconds when the handset goes down or comes up, and
mock pins do not bounce at all, so the debounce lives here, tested against a clock the tests
own: the pin must read the same for `debounce_seconds` before a change counts, and a chatter
that ends where it started reports nothing. The position at start-up is read without an event:
a phone that boots with the handset off the cradle does not start dialling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from firmware.events import Action, Event, HookLifted, HookReplaced, Post
from firmware.hw.pins import HardwareError

log = logging.getLogger("hook")


class Hook:
    name = "hook"
    handles: tuple[type[Action], ...] = ()

    def __init__(
        self,
        factory: Callable[[], Any],
        pin: int,
        *,
        active: str = "low",
        pull: str = "",
        debounce_seconds: float = 0.05,
        poll_seconds: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self.pin = pin
        self.active_high = active == "high"
        # The pull that holds the contact at its inactive level, unless the config says otherwise.
        self.pull = pull or ("down" if self.active_high else "up")
        self.debounce = debounce_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.off_hook = False  # the debounced position
        self._raw = False
        self._since = 0.0
        self._dev: Any = None
        self._post: Post | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        from gpiozero import InputDevice

        pull_up = {"up": True, "down": False, "floating": None}[self.pull]
        try:
            self._dev = InputDevice(self.pin, pull_up=pull_up,
                                    active_state=self.active_high if pull_up is None else None,
                                    pin_factory=self._factory())
        except Exception as exc:
            raise HardwareError(f"hook switch: cannot use GPIO pin {self.pin}: {exc}") from exc
        self.off_hook = self._raw = self.read()
        self._since = self.clock()
        log.info("hook switch on GPIO %d (lifted = %s, pull %s): handset %s at start",
                 self.pin, "high" if self.active_high else "low", self.pull,
                 "off the cradle" if self.off_hook else "on the cradle")

    def read(self) -> bool:
        """True when the pin says the handset is lifted (not debounced)."""
        return bool(self._dev.pin.state) == self.active_high

    def start(self, post: Post) -> None:
        self._post = post
        self.open()
        if self.poll_seconds > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hook", daemon=True)
            self._thread.start()

    def execute(self, action: Action) -> None:
        pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None
        if self._dev is not None:
            self._dev.close()
            self._dev = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:
                log.exception("hook switch read failed")

    def poll(self) -> Event | None:
        """Read the pin once; post (and return) a hook fact when the position has settled."""
        raw = self.read()
        now = self.clock()
        if raw != self._raw:
            self._raw, self._since = raw, now
        if raw == self.off_hook or now - self._since < self.debounce:
            return None
        self.off_hook = raw
        event: Event = HookLifted() if raw else HookReplaced()
        log.debug("handset %s", "lifted" if raw else "replaced")
        if self._post is not None:
            self._post(event)
        return event
