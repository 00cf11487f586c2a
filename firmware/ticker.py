"""The 20 ms clock that paces call audio: one thread for every call on the phone.

Owns: the schedule (tick n at start + n * period on a monotonic clock: no drift however long the
call, and after a stall it skips ahead instead of bursting, telling each subscriber how many
ticks it skipped) and the list of subscribers it calls on every tick. A `Ticker` either runs
its own thread, only while it has subscribers (an idle phone wakes nobody), or is `driven`: the
audio engine calls `tick()` from its own 20 ms loop, so the sound card, the RTP send and
receive and RTCP of every call share one thread and one wake-up per frame (on a small board
each wake-up costs more than the work it does). Never touches: what subscribers do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("audio")

PERIOD = 0.02  # seconds: one frame of call audio

Tick = Callable[[int], None]  # called with the number of ticks skipped since the last one


class Pacer:
    """When tick n is due: at start + n * period on a monotonic clock. No drift however long
    the call (nothing accumulates), and after a stall longer than `max_late` periods it skips
    ahead instead of catching up in a burst (`delay()` says how many it skipped, so an RTP
    timestamp can jump by as much)."""

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic,
                 max_late: int = 5) -> None:
        self.period = period
        self.clock = clock
        self.max_late = max_late
        self.start = clock()
        self.n = 0

    def delay(self) -> tuple[float, int]:
        """(seconds to wait before the next tick, ticks skipped)."""
        self.n += 1
        delay = self.start + self.n * self.period - self.clock()
        skipped = 0
        if delay < -self.max_late * self.period:
            skipped = int(-delay / self.period)
            self.n += skipped
            delay = self.start + self.n * self.period - self.clock()
        return max(0.0, delay), skipped


class Ticker:
    """Calls its subscribers every `period`, in the order they subscribed."""

    def __init__(self, period: float = PERIOD, driven: bool = False, name: str = "media"
                 ) -> None:
        self.period = period
        self.driven = driven  # someone else calls tick(); no thread of our own
        self.name = name
        # Replaced whole on add and remove, never changed in place, so a tick reads it without
        # the lock: on a call the tick's every step counts (bench/audio.py --only wake).
        self._subscribers: tuple[Tick, ...] = ()
        self._lock = threading.Lock()  # add, remove and the thread's life
        self._thread: threading.Thread | None = None
        # A tick under way, for remove() to wait for, without a lock on the tick's path (a
        # lock taken and released after 20 ms asleep cost a cold tick about 10 us): the
        # thread running it while it runs, and how many ticks have begun.
        self._ticking: int | None = None
        self._begun = 0

    @property
    def busy(self) -> bool:
        return bool(self._subscribers)

    def add(self, fn: Tick) -> None:
        with self._lock:
            self._subscribers = (*self._subscribers, fn)
            if not self.driven and self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def remove(self, fn: Tick) -> None:
        """After this returns `fn` is not running and will not run again (unless it is the
        caller: a subscriber may remove itself)."""
        with self._lock:
            if fn in self._subscribers:
                rest = list(self._subscribers)
                rest.remove(fn)
                self._subscribers = tuple(rest)
        # A tick that began before the line above may still be running `fn`: wait for it to
        # end (or for the next to begin: that one reads the new subscribers). Not from inside
        # a tick: a subscriber leaving does not wait for itself.
        begun, me = self._begun, threading.get_ident()
        while (ticking := self._ticking) is not None and ticking != me and \
                self._begun == begun:
            time.sleep(0.0005)

    def tick(self, skipped: int = 0) -> None:
        """Call every subscriber once (the driven ticker's owner calls this every period, from
        one thread at a time: its 20 ms loop)."""
        if not self._subscribers:
            return
        # In this order, against remove()'s (tuple replaced, then _begun and _ticking read):
        # a tick that reads the old subscribers has already shown it runs.
        self._begun += 1
        self._ticking = threading.get_ident()
        try:
            for fn in self._subscribers:
                try:
                    fn(skipped)
                except Exception:
                    log.exception("%s tick failed", self.name)
        finally:  # whatever happens, remove() is not left waiting
            self._ticking = None

    def _run(self) -> None:
        pacer = Pacer(self.period)
        while True:
            delay, skipped = pacer.delay()
            if delay > 0:
                time.sleep(delay)  # cheaper than an Event's wait; nobody needs to wake us
            with self._lock:
                if not self._subscribers:
                    self._thread = None  # the last one left: the thread ends
                    return
            self.tick(skipped)
