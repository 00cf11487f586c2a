"""The shell around the Phone: one event queue, one loop thread, the adapters, the timers.

Owns: the queue every other thread posts to, the loop that feeds the Phone one event at a time and
hands its actions to the adapters, the timers, the published snapshot (screen lines and image) the
control API and the display read, start-up in dependency order and shut-down in reverse, and the
systemd notifications. Never touches: phone state (only the Phone changes it) and never blocks the
loop on I/O: adapters run their slow work on their own threads and answer with events.
"""

from __future__ import annotations

import faulthandler
import heapq
import itertools
import logging
import queue
import signal
import threading
import time
from collections.abc import Sequence

from firmware.events import (
    Action,
    Adapter,
    AdapterFailed,
    CancelTimer,
    Event,
    Post,
    StartTimer,
    Tick,
    TimerFired,
)
from firmware.frame import Published, ScreenSink
from firmware.phone import Phone
from firmware.systemd import Notifier
from firmware.ui import screens

log = logging.getLogger("daemon")

class Timers:
    """One thread for every timer of the Phone plus the once-a-second Tick.

    A timer restarted or cancelled while its event is already queued is caught by the Phone's
    token check, so this class needs no coordination with the loop.
    """

    def __init__(self, post: Post, tick_seconds: float = 1.0) -> None:
        self._post = post
        self._tick = tick_seconds
        self._heap: list[tuple[float, int, str, int]] = []
        self._live: dict[str, int] = {}
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def set(self, name: str, seconds: float, token: int) -> None:
        with self._cond:
            self._live[name] = token
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), name,
                                        token))
            self._cond.notify()

    def cancel(self, name: str) -> None:
        with self._cond:
            self._live.pop(name, None)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        next_tick = time.monotonic() + self._tick
        while True:
            due: list[tuple[str, int]] = []
            with self._cond:
                if self._stopped:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, name, token = heapq.heappop(self._heap)
                    if self._live.get(name) == token:
                        del self._live[name]
                        due.append((name, token))
                wake = min(next_tick, self._heap[0][0] if self._heap else next_tick)
                if not due and now < next_tick:
                    self._cond.wait(timeout=max(0.0, wake - now))
                    continue
            for name, token in due:
                self._post(TimerFired(name, token))
            if time.monotonic() >= next_tick:
                # Ticks keep their phase: a late loop does not make them drift or burst.
                next_tick += self._tick * max(1, int((time.monotonic() - next_tick) // self._tick)
                                              + 1)
                self._post(Tick())


_STOP = object()


class Daemon:
    """Runs the Phone: `start()` brings everything up, `stop()` takes it down in reverse."""

    def __init__(
        self,
        phone: Phone,
        adapters: Sequence[Adapter],
        screens_out: Sequence[ScreenSink] = (),
        notifier: Notifier | None = None,
        tick_seconds: float = 1.0,
    ) -> None:
        self.phone = phone
        self.adapters = list(adapters)
        self.screens_out = list(screens_out)
        self.notifier = notifier or Notifier({})
        self._queue: queue.Queue[object] = queue.Queue()
        self._timers = Timers(self.post, tick_seconds)
        self._routes: dict[type[Action], list[Adapter]] = {}
        self._started: list[Adapter] = []
        self._thread = threading.Thread(target=self._loop, name="phone-loop", daemon=True)
        self._stopped = threading.Event()
        self._stop_requested = threading.Event()
        self._published: Published | None = None
        self._status = ""
        self._last_ping = 0.0
        self.handled = 0  # events handled; tests and benchmarks read it
        self.restart_requested = False  # stop, then the CLI starts the phone again

    # ----------------------------------------------------------------- threads post here

    def post(self, event: Event) -> None:
        """Queue an event for the Phone. Safe from any thread; never blocks."""
        self._queue.put(event)

    @property
    def published(self) -> Published:
        assert self._published is not None, "the daemon has not started"
        return self._published

    # ----------------------------------------------------------------- life cycle

    def start(self) -> None:
        for adapter in self.adapters:
            for kind in adapter.handles:
                self._routes.setdefault(kind, []).append(adapter)
        self._publish()
        for adapter in self.adapters:
            try:
                adapter.start(self.post)
            except Exception as exc:
                log.exception("%s: failed to start; the phone carries on without it",
                              adapter.name)
                # The screen says so too: a phone without a keypad must not look healthy.
                self.post(AdapterFailed(adapter.name, str(exc) or type(exc).__name__))
                continue
            self._started.append(adapter)
            log.info("%s: started", adapter.name)
        self._timers.start()
        self._thread.start()
        self.notifier.ready(self._status_line())

    def request_stop(self) -> None:
        """Ask the main thread (blocked in wait()) to stop the phone. Safe in signal handlers."""
        self._stop_requested.set()

    def request_restart(self) -> None:
        """Stop, then start again with the config re-read (the web page's Restart)."""
        self.restart_requested = True
        self._stop_requested.set()

    def stop(self) -> None:
        """Stop the loop, then every adapter in the reverse order of starting."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._stop_requested.set()
        self.notifier.stopping()
        self._queue.put(_STOP)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._timers.stop()
        for adapter in reversed(self._started):
            try:
                adapter.stop()
                log.info("%s: stopped", adapter.name)
            except Exception:
                log.exception("%s: failed to stop cleanly", adapter.name)
        self._started.clear()
        self.notifier.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is requested (by a signal, the terminal or another thread)."""
        return self._stop_requested.wait(timeout)

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop the phone; SIGUSR1 dumps every thread's stack to stderr."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_stop())
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    # ----------------------------------------------------------------- the loop

    def _loop(self) -> None:
        watchdog = self.notifier.watchdog_seconds
        while True:
            try:
                item = self._queue.get(timeout=watchdog / 4 if watchdog else 1.0)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if isinstance(item, Event):
                self._handle(item)
            if watchdog and time.monotonic() - self._last_ping >= watchdog / 2:
                # Pinged only from here: a stuck loop stops the pings and systemd restarts us.
                self._last_ping = time.monotonic()
                self.notifier.watchdog()

    def _handle(self, event: Event) -> None:
        if not isinstance(event, (Tick, TimerFired)):
            log.debug("event %s", event)
        _, actions = self.phone.handle(event)
        self.handled += 1
        for action in actions:
            self._execute(action)
        self._publish()

    def _execute(self, action: Action) -> None:
        if isinstance(action, StartTimer):
            self._timers.set(action.name, action.seconds, action.token)
            return
        if isinstance(action, CancelTimer):
            self._timers.cancel(action.name)
            return
        log.debug("action %s", action)
        for adapter in self._routes.get(type(action), ()):
            if adapter not in self._started:
                continue
            try:
                adapter.execute(action)
            except Exception:
                # An adapter's bug must not stop the phone; the adapter reports what it can.
                log.exception("%s: %s failed", adapter.name, type(action).__name__)

    def _publish(self) -> None:
        snapshot = self.phone.snapshot()
        rows = tuple(screens.layout(snapshot))
        lines = tuple(screens.text_of(rows))
        status = self._status_line()
        if status != self._status:  # systemd's STATUS follows the state, not only the screen
            self._status = status
            self.notifier.status(status)
        previous = self._published
        dim = snapshot.state.asleep
        # The frame follows the rows drawn (text and highlight), never the text alone.
        same = previous is not None and previous.drawn == rows
        if same and previous is not None and previous.snapshot.state.asleep == dim:
            self._published = Published(snapshot, lines, previous.image, rows)
            return
        image = previous.image if same and previous is not None else screens.draw(list(rows))
        self._published = Published(snapshot, lines, image, rows)
        for sink in self.screens_out:
            try:
                sink.show(image, list(lines), dim)
            except Exception:
                log.exception("display failed")

    def _status_line(self) -> str:
        s = self.phone.state
        reason = f" ({s.registration_reason})" if s.registration_reason else ""
        network = "; no network" if s.address is None else ""
        return (f"{s.mode}; SIP {s.registration}{reason}; Odoo {s.odoo}; outbox {s.outbox}"
                f"{network}")
