"""The last lines of the phone's own log, for the web page's Logs view.

Owns: a bounded ring of formatted log lines fed by a `logging.Handler` on the root logger, and
the search over it. Never touches: the journal or files (under systemd the journal keeps the
full log; this is what the installer needs at a glance). The phone never logs a secret, so
nothing here needs masking.
"""

from __future__ import annotations

import collections
import logging
import threading

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

    def install(self) -> None:
        logging.getLogger().addHandler(self)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)
