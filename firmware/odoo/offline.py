"""An Odoo adapter for phones without Odoo: the phone works, its queue stays empty.

Owns: telling the Phone that Odoo is off (no `[odoo]` section) or not reachable by this build.
Never touches: the network. The sync adapter (firmware/odoo/sync.py) replaces it.
"""

from __future__ import annotations

import logging

from firmware.events import Action, OdooStatusChanged, Post

log = logging.getLogger("odoo")


class NoOdoo:
    name = "odoo"
    handles: tuple[type[Action], ...] = ()

    def __init__(self, status: str = "off", reason: str = "") -> None:
        self.status = status
        self.reason = reason

    def start(self, post: Post) -> None:
        if self.reason:
            log.warning("Odoo %s: %s", self.status, self.reason)
        post(OdooStatusChanged(self.status, self.reason))

    def execute(self, action: Action) -> None:
        log.info("Odoo is %s: %s not sent", self.status, type(action).__name__)

    def stop(self) -> None:
        pass
