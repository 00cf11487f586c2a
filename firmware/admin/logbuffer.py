"""The last lines of the phone's own log, for the web page's Logs view.

Owns: a bounded ring of formatted log lines fed by a `logging.Handler` on the root logger, the
search over it, and its copy in the state directory that carries the lines over a restart (the
web page's own Restart and an applied config are restarts: the lines that led to them stay on
the page). Never touches: the journal (reading it would need the `systemd-journal` group, and
with it every other service's log; `journalctl -u deskphone` keeps the full log). The phone
never logs a secret, so nothing here needs masking.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from pathlib import Path

LINES = 2000


class LogBuffer(logging.Handler):
    def __init__(self, lines: int = LINES) -> None:
        super().__init__(level=logging.INFO)
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%Y-%m-%d %H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a bad log call must not break the caller
            return
        with self._guard:
            self._lines.append(line)

    def search(self, text: str = "", limit: int = 300) -> list[str]:
        """The newest `limit` lines containing `text` (any case), oldest first."""
        needle = text.casefold()
        with self._guard:
            lines = list(self._lines)
        found = [line for line in lines if needle in line.casefold()]
        return found[-limit:]

    def load(self, path: Path) -> None:
        """The lines kept by the last `save`, before this run's."""
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return
        with self._guard:
            self._lines.extend(lines)

    def save(self, path: Path) -> None:
        with self._guard:
            text = "".join(f"{line}\n" for line in self._lines)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".new")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only or full state directory costs the next run these lines only

    def install(self) -> None:
        logging.getLogger().addHandler(self)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)
