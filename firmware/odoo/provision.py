"""SIP credentials from Odoo: the user's own `voip_username` and `voip_secret` (ODOO.md).

Owns: reading them once at start-up (`[odoo] sip_from_odoo = true`) and keeping the last good
pair in the local store, so a phone that boots while Odoo is down still registers. Never touches:
the SIP account itself (the SIP adapter takes the pair) or the PBX address, which only admins can
read in Odoo and so stays in the phone's own config. The secret never reaches a log line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from firmware.config import OdooConfig, Secret
from firmware.odoo.client import OdooClient, OdooDown, OdooError
from firmware.odoo.store import Store

log = logging.getLogger("odoo")


def sip_credentials(config: OdooConfig, state_dir: Path) -> tuple[str, Secret] | None:
    """(extension, password) from the user's Odoo record, or the cached pair, or None."""
    store = Store(state_dir / "odoo.sqlite")
    os.chmod(store.path, 0o600)  # the cached SIP secret lives here
    client = OdooClient(config.url, config.database, config.login, config.api_key.reveal(),
                        timeout=config.timeout_seconds)
    try:
        uid = client.authenticate()
        [me] = client.call("res.users", "search_read", [["id", "=", uid]],
                           fields=["voip_username", "voip_secret"])
        username, secret = me.get("voip_username"), me.get("voip_secret")
        if not username or not secret:
            log.error("Odoo: user %s has no VoIP extension or secret (Preferences -> VoIP)",
                      config.login)
            return None
        store.put("sip", {"username": str(username), "secret": str(secret)})
        log.info("SIP extension %s taken from Odoo", username)
        return str(username), Secret(str(secret))
    except OdooDown as exc:
        cached = store.get("sip")
        if cached:
            log.warning("Odoo unreachable (%s): SIP extension %s from the last start", exc,
                        cached["username"])
            return cached["username"], Secret(cached["secret"])
        log.error("Odoo unreachable (%s) and no SIP credentials cached yet", exc)
        return None
    except OdooError as exc:
        log.error("Odoo: cannot read the SIP credentials of %s: %s (is the voip module "
                  "installed?)", config.login, exc)
        return None
    finally:
        client.close()
        store.close()
