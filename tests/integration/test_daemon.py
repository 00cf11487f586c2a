"""The daemon: systemd notifications and watchdog, real timers, start and stop order."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from firmware.daemon import Daemon
from firmware.events import Action, HookLifted, KeyPressed, PlaceCall, RegistrationChanged
from firmware.phone import Phone, Settings
from firmware.systemd import Notifier
from tests.helpers import wait_for


class Recorder:
    """An adapter that records what it was told and when it started and stopped."""

    handles: tuple[type[Action], ...] = (PlaceCall,)

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal
        self.actions: list[Action] = []

    def start(self, post):
        self.journal.append(f"start {self.name}")

    def execute(self, action):
        self.actions.append(action)

    def stop(self):
        self.journal.append(f"stop {self.name}")


class Broken(Recorder):
    def start(self, post):
        raise RuntimeError("no such device")


def notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock, path


def messages(sock, until: str, timeout: float = 5.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if until in got[-1]:
            return got
    raise AssertionError(f"no {until!r} in {got}")


def test_ready_status_and_watchdog_pings_stop_when_the_loop_is_stuck(tmp_path):
    sock, path = notify_socket(tmp_path)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    daemon = Daemon(Phone(Settings(extension="101")), [], notifier=notifier)
    daemon.start()
    try:
        first = messages(sock, "READY=1")
        assert any("STATUS=idle; SIP off" in m for m in first)
        messages(sock, "WATCHDOG=1")
        daemon.post(RegistrationChanged("registered"))
        messages(sock, "STATUS=idle; SIP registered")
        messages(sock, "WATCHDOG=1")
        # Wedge the loop: a handler that never returns stands for any stuck loop.
        release = threading.Event()
        original = daemon.phone.handle

        def stuck(event):
            release.wait(10)
            return original(event)

        daemon.phone.handle = stuck  # type: ignore[method-assign]
        daemon.post(KeyPressed("1"))
        time.sleep(0.15)  # let a ping already in flight arrive
        sock.settimeout(0.1)
        while True:
            try:
                sock.recv(4096)
            except TimeoutError:
                break
        sock.settimeout(0.6)  # three watchdog periods
        silent = []
        with contextlib.suppress(TimeoutError):
            silent.append(sock.recv(4096).decode())
        assert not any("WATCHDOG" in m for m in silent), silent
        release.set()
        sock.settimeout(5)
        messages(sock, "WATCHDOG=1")
    finally:
        daemon.stop()
        sock.close()


def test_adapters_start_in_order_and_stop_in_reverse_and_a_broken_one_is_skipped():
    journal: list[str] = []
    adapters = [Recorder("audio", journal), Broken("display", journal),
                Recorder("sip", journal)]
    daemon = Daemon(Phone(), adapters)
    daemon.start()
    daemon.stop()
    assert journal == ["start audio", "start sip", "stop sip", "stop audio"]


def test_real_timers_dial_after_the_interdigit_timeout():
    sip = Recorder("sip", [])
    daemon = Daemon(Phone(Settings(interdigit_seconds=1.0, region="BE")), [sip])
    daemon.start()
    try:
        daemon.post(RegistrationChanged("registered"))
        daemon.post(HookLifted())
        for key in "102":
            daemon.post(KeyPressed(key))
        wait_for(lambda: sip.actions, timeout=5, what="the call after the inter-digit timeout")
        assert [a for a in sip.actions if isinstance(a, PlaceCall)] == [PlaceCall("out-1", "102")]
    finally:
        daemon.stop()


def test_ticks_move_the_call_timer_on_screen():
    daemon = Daemon(Phone(), [], tick_seconds=0.05)
    daemon.start()
    try:
        start = daemon.handled
        wait_for(lambda: daemon.handled >= start + 3, timeout=5, what="ticks")
    finally:
        daemon.stop()


def test_the_menu_highlight_moves_on_the_published_frame():
    """Two frames whose text is the same and whose highlight differs are two images: the
    screen shows the item `D` will act on (a frame reused by its text alone did not)."""
    daemon = Daemon(Phone(Settings(region="BE")), [])
    daemon.start()
    try:
        daemon.post(KeyPressed("A", long=True))
        wait_for(lambda: daemon.published.snapshot.state.mode == "menu", what="the menu")
        first = daemon.published
        daemon.post(KeyPressed("B"))
        wait_for(lambda: daemon.published.snapshot.state.selected != first.snapshot.state.selected,
                 what="the next item selected")
        second = daemon.published
        assert second.lines == first.lines  # the same words on screen...
        assert second.image.tobytes() != first.image.tobytes()  # ...another item highlighted
        from firmware.ui import screens
        assert second.image.tobytes() == screens.render(second.snapshot).tobytes()
    finally:
        daemon.stop()
