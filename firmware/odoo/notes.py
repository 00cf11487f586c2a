"""The words of a call note in an Odoo chatter (Community, where there is no `voip.call`).

Owns: what a note says about one call (direction, who, when in the user's Odoo time zone,
how long, how it ended) and the words a search finds it by. Never touches: Odoo, the outbox or
the phone's state.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from firmware.events import CallRecord

log = logging.getLogger("odoo")

# A call's last stage -> how it ended, in words
ENDINGS = {
    "missed": "missed",
    "rejected": "declined",
    "aborted": "not answered",
    "failed": "not answered",
    "transferred": "transferred",
}


def local_time(epoch: float, tz: str) -> dt.datetime:
    """`epoch` in the user's Odoo zone; the phone's own zone when Odoo has none (or one this
    machine does not know)."""
    if tz:
        try:
            return dt.datetime.fromtimestamp(epoch, zoneinfo.ZoneInfo(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            log.info("time zone %r unknown here: notes use the phone's", tz)
    return dt.datetime.fromtimestamp(epoch).astimezone()


def duration(seconds: int) -> str:
    minutes, secs = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def headline(record: CallRecord, tz: str) -> str:
    """The note's first line: unique enough (who, number, minute) to find it again."""
    when = local_time(record.started, tz)
    who = f"{record.name} ({record.number})" if record.name else record.number
    if record.direction == "in":
        kind = "Missed call" if record.outcome == "missed" else "Incoming call"
        return f"{kind} from {who}, {when:%d %b %Y %H:%M} {when:%Z}".rstrip()
    return f"Outgoing call to {who}, {when:%d %b %Y %H:%M} {when:%Z}".rstrip()


def call_note(record: CallRecord, stage: str, tz: str) -> str:
    """The note for a call that has ended at `stage`."""
    first = headline(record, tz)
    if record.seconds and stage in ("ended", "transferred"):
        rest = f"Talked {duration(record.seconds)}"
        if stage == "transferred":
            rest += ", then transferred" + (f" to {record.transferred_to}"
                                            if record.transferred_to else "")
    elif record.outcome == "missed" or stage == "missed":
        rest = "Not answered"
    else:
        rest = ENDINGS.get(stage, "ended").capitalize()
    return f"{first}. {rest}. (Desk phone)"
