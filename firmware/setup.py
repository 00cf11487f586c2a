"""First boot: a phone without a usable config says so on its own screen and waits for one.

Owns: `deskphone run` when the config is missing or broken. The display (with the default
`[hardware]` wiring, which is what a fresh image has) shows what is wrong and where the config
goes; systemd gets READY so it does not restart-loop; the file is checked every few seconds and
once it is valid the process exits with EX_TEMPFAIL (75), which systemd's `Restart=on-failure`
turns into a normal start. Never touches: SIP, Odoo or audio (there is nothing to use yet).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from firmware import config
from firmware.events import AdapterFailed
from firmware.phone import Phone, Settings
from firmware.provisioning import Provisioner
from firmware.systemd import Notifier
from firmware.ui import screens

log = logging.getLogger("setup")

EX_TEMPFAIL = 75
CHECK_SECONDS = 5.0
FETCH_SECONDS = 60.0  # provisioning, while no usable config is here


def problem_lines(path: Path, problems: list[str]) -> str:
    if not path.exists():
        return f"No config: put it in {path} (docs/admin-guide.md)"
    return f"Config {path.name}: " + "; ".join(problems[:3])


def wait_for_config(path: Path, problems: list[str], stop: threading.Event | None = None,
                    notifier: Notifier | None = None) -> int:
    """Show the problem until the config is valid (75) or `stop` is set (0)."""
    stop = stop or threading.Event()
    notifier = notifier or Notifier()
    display = _display()
    phone = Phone(Settings(name="Setup"))
    shown = ""
    ready = False
    # A card that holds only [provisioning] (or a file the served settings complete) gets them
    # here: once they make a usable config, the restart below comes up on them.
    provisioning = config.provisioning_of(path)
    provisioner = (Provisioner(provisioning[0], path, provisioning[1])
                   if provisioning is not None else None)
    next_fetch = 0.0
    while True:
        message = problem_lines(path, problems)
        if message != shown:
            log.error("%s", message)
            phone.handle(AdapterFailed("config", message))
            snap = phone.snapshot()
            if display is not None:
                display.show(screens.render(snap), screens.lines(snap))
            if ready:
                notifier.status(message)
            else:
                notifier.ready(message)  # READY with the status: no restart loop
                ready = True
            shown = message
        notifier.watchdog()  # alive: waiting for a config is this process's job now
        if stop.wait(CHECK_SECONDS):
            break
        if provisioner is not None and time.monotonic() >= next_fetch:
            next_fetch = time.monotonic() + FETCH_SECONDS
            provisioner.once()
        try:
            config.load(path)
        except config.ConfigError as exc:
            problems = exc.problems
            # Root-only secrets added since this process started reach it only through a new
            # start (LoadCredential=): when nothing else is wrong, restart for them.
            if not all(config.HANDED_OVER_AT_START in problem for problem in problems):
                continue
        log.info("%s is valid now: restarting into the phone", path)
        if display is not None:
            display.stop()
        return EX_TEMPFAIL
    if display is not None:
        display.stop()
    return 0


def _display() -> Any:
    """The panel a fresh image is wired for, or None (the journal still says it all)."""
    from firmware.hw.display import Display, open_device

    hw = config.HardwareConfig()
    display = Display(lambda: open_device(hw), hw.display_contrast)
    display.start(lambda e: None)
    return None if display.device is None else display
