"""The screens: a `Snapshot` -> rows of text -> a 128x64 1-bit image.

Owns: what each mode shows and where. `layout(snapshot)` decides the rows; `lines()` gives their
text (for `/state` and tests) and `render()` draws the same rows (for the OLED, `/screen.png`
and golden images), so the text and the pixels cannot disagree. Never touches: devices, state
changes, or anything but the snapshot it is given.

The panel fits 21 characters by 6 rows of the 6x10 font: a header (inverse), four content rows,
and a footer with the keys that do something now.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass

from PIL import Image

from firmware import numbers
from firmware.phone import (
    CALLING,
    CONTACTS,
    DIALING,
    IDLE,
    IN_CALL,
    MENU,
    MENU_ITEMS,
    PROMPT,
    QUEUE,
    RECENT,
    RINGING,
    TRANSFER,
    Snapshot,
    matches,
)
from firmware.ui.fonts import default_font

WIDTH = 128
HEIGHT = 64
COLUMNS = 21
CONTENT_ROWS = 4
ROW_Y = (0, 12, 22, 32, 42, 54)  # header, four content rows, footer

MODEL_LABELS = {
    "crm.lead": "Lead",
    "project.task": "Task",
    "helpdesk.ticket": "Ticket",
    "res.partner": "Contact",
    "sale.order": "Quotation",
}


@dataclass(frozen=True)
class Row:
    text: str
    inverse: bool = False


def _fit(text: str, width: int = COLUMNS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _tail(text: str, width: int = COLUMNS) -> str:
    """The end of a long entry: the digits a person just typed must stay in view."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _wrap(text: str) -> list[Row]:
    """A message over as many rows as it needs (the content area cuts it at four)."""
    return [Row(line) for line in textwrap.wrap(text, COLUMNS)] if text else []


def problem_text(part: str, message: str) -> str:
    """"display: /dev/i2c-1 not found" whether or not the adapter named itself already."""
    return message if message.lower().startswith(part.lower()) else f"{part}: {message}"


LOCK = "\U0001F512"  # drawn by fonts.py's own glyph (the 6x10 font has none)


def _header(left: str, right: str) -> Row:
    room = COLUMNS - len(right) - (1 if right else 0)
    return Row(_fit(left, room).ljust(room) + (" " + right if right else ""), inverse=True)


def _clock(snap: Snapshot) -> str:
    return time.strftime("%H:%M", time.localtime(snap.wall))


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _number(snap: Snapshot, number: str) -> str:
    """One spelling per number on every screen (numbers.display)."""
    return numbers.display(number, snap.settings.region, snap.settings.max_extension_digits)


def _status(snap: Snapshot) -> str:
    """The registration, in the header of the idle screen."""
    s = snap.state
    if s.address is None:
        return "No network"  # even while the last registration has not expired: no calls come
    if s.registration == "registered":
        # The name has the header's whole width; the extension is on the date's row.
        return snap.settings.name or snap.settings.extension
    if s.registration == "registering":
        return "Registering…"
    return "No service"


def _odoo_refusal(reason: str) -> str:
    """Why Odoo said no, in one row: three causes an admin fixes in three places (ODOO.md)."""
    reason = reason.lower()
    return "No such Odoo database" if "database" in reason else \
        "Odoo: missing rights" if "rights" in reason else "Odoo: key refused"


def _odoo_rows(snap: Snapshot) -> list[Row]:
    s = snap.state
    rows = []
    if s.odoo == "offline" and s.outbox:
        return [Row(_fit(f"Odoo down, {s.outbox} to send"))]  # one row: both must show
    if s.odoo == "offline":
        rows.append(Row("Odoo offline"))
    elif s.odoo == "denied":
        rows.append(Row(_odoo_refusal(s.odoo_reason)))
    elif s.odoo == "connecting":
        rows.append(Row("Odoo: connecting"))
    if s.outbox:
        rows.append(Row(f"{s.outbox} to send to Odoo"))
    return rows


def _content(rows: list[Row]) -> list[Row]:
    rows = rows[:CONTENT_ROWS]
    return rows + [Row("")] * (CONTENT_ROWS - len(rows))


# --------------------------------------------------------------------------- each mode


def _idle(snap: Snapshot) -> list[Row]:
    s = snap.state
    day = time.strftime("%a %d %b", time.localtime(snap.wall))
    ext = f"Ext {snap.settings.extension}" if snap.settings.extension else ""
    rows = [Row(day + ext.rjust(COLUMNS - len(day)) if ext else day)]
    rows += _wrap(s.message)
    if s.registration in ("failed", "off", "registering") and s.registration_reason:
        rows += _wrap(s.registration_reason)
    rows += _odoo_rows(snap)
    for part, problem in s.problems:
        rows += _wrap(problem_text(part, problem))
    if s.queue:
        count = len(s.queue)
        rows.append(Row(f"{count} call{'s' if count != 1 else ''} to make"))
    if s.missed_unseen:
        rows.append(Row(f"{s.missed_unseen} missed call{'s' if s.missed_unseen != 1 else ''}"))
    if s.mwi[0]:
        rows.append(Row(_fit(f"{s.mwi[0]} voice message{'s' if s.mwi[0] != 1 else ''}")))
    if s.dnd:
        rows.append(Row("Do not disturb"))
    hints = "B:queue" + (" D:redial" if s.last_dialled else "")
    return [_header(_status(snap), _clock(snap)), *_content(rows), Row(hints)]


def _dialing(snap: Snapshot) -> list[Row]:
    s = snap.state
    found = matches(s)
    # The typed digits, spelt as every other screen will spell the number once it is valid.
    rows = [Row(_tail(_number(snap, s.entry))) if s.entry else
            Row("Dial a number" if s.off_hook else "")]
    if found:
        # `D` (and lifting the handset) call the digits typed; a contact they spell is another
        # choice, on its own row with the key that picks it, never shown as what `D` calls.
        first = found[0]
        more = f" +{len(found) - 1}" if len(found) > 1 else ""
        rows.append(Row(_fit(f"B: {first.contact.name}", COLUMNS - len(more)) + more))
    rows += _wrap(s.message)
    title = "Dial" if s.off_hook else "Pre-dial"
    hints = "D:call number C:del" if found else "D:call C:del"
    return [_header(title, _clock(snap)), *_content(rows), Row(hints)]


def _position(selected: int, count: int) -> str:
    return f"{min(selected, count - 1) + 1}/{count}" if count else "0/0"


def _queue(snap: Snapshot) -> list[Row]:
    s = snap.state
    entries = s.queue
    header = _header("Call queue", _position(s.selected, len(entries)))
    if not entries:
        # An empty queue only says "nothing to do" when Odoo could have said otherwise.
        if s.odoo == "denied":
            rows = [Row("Queue unavailable:"), Row(_odoo_refusal(s.odoo_reason))]
        elif s.odoo == "connecting":
            rows = [Row("Loading the queue…")]
        else:
            rows = [Row("No calls to make"), Row("today")]
        return [header, *_content([*rows, *_wrap(s.message)]), Row("C:back")]
    entry = entries[min(s.selected, len(entries) - 1)]
    when = "overdue" if entry.overdue else "today"
    label = MODEL_LABELS.get(entry.model, "")
    if entry.overdue:  # said in the header, so the record's title has a whole row
        header = _header("Overdue call", _position(s.selected, len(entries)))
    rows = [Row(_fit(entry.name), inverse=True), Row(_number(snap, entry.number)),
            Row(_fit(entry.summary or (label and f"{label} call") or "Call")),
            # The lead's, task's or ticket's own title: what the call is about.
            Row(s.message or _fit(entry.title or f"{when}{' · ' + label if label else ''}"))]
    return [header, *_content(rows), Row("D:call B:next #:del")]


def _contacts(snap: Snapshot) -> list[Row]:
    s = snap.state
    found = matches(s)
    header = _header(f"Find {_tail(s.entry, 8)}", _position(s.selected, len(found)))
    if not found:
        return [header, *_content([Row("No contact found")]), Row("C:back")]
    i = min(s.selected, len(found) - 1)
    rows = [Row(_fit(found[i].contact.name), inverse=True), Row(_number(snap, found[i].number))]
    if i + 1 < len(found):
        rows += [Row(_fit(found[i + 1].contact.name)), Row(_number(snap, found[i + 1].number))]
    return [header, *_content(rows), Row("D:call B:next C:back")]


_RECENT_MARK = {"in": "<", "out": ">"}


def _recent(snap: Snapshot) -> list[Row]:
    s = snap.state
    header = _header("Recent calls", _position(s.selected, len(s.recent)))
    if not s.recent:
        return [header, *_content([Row("No calls yet")]), Row("C:back")]
    rec = s.recent[min(s.selected, len(s.recent) - 1)]
    mark = "!" if rec.outcome == "missed" else _RECENT_MARK.get(rec.direction, " ")
    when = time.strftime("%d %b %H:%M", time.localtime(rec.started))
    what = {"missed": "missed", "rejected": "rejected", "failed": "no answer",
            "aborted": "cancelled"}.get(rec.outcome, _duration(rec.seconds))
    rows = [Row(_fit(f"{mark} {rec.name or _number(snap, rec.number)}"), inverse=True)]
    if rec.name:
        rows.append(Row(_number(snap, rec.number)))  # without a name, the number is said once
    rows.append(Row(_fit(f"{when} {what}")))
    return [header, *_content(rows), Row("D:call B:next C:back")]


def _call_rows(snap: Snapshot) -> list[Row]:
    call = snap.state.call
    assert call is not None
    number = _number(snap, call.remote)
    rows = [Row(_fit(call.name)), Row(_fit(number))] if call.name else [Row(_fit(number))]
    # A call from the queue: what it is about (the lead "Office fit-out").
    entry = next((e for e in snap.state.queue if e.id == call.activity_id), None) \
        if call.activity_id else None
    if entry is not None and entry.title:
        rows.append(Row(_fit(entry.title)))
    return rows


def _ringing(snap: Snapshot) -> list[Row]:
    s = snap.state
    call = s.call
    assert call is not None
    rows = _call_rows(snap) + _wrap(s.message)
    if call.recall:
        # The held call rings again: the handset went down with it still on hold.
        return [_header("Call on hold", _duration(snap.call_seconds())), *_content(rows),
                Row("Lift:resume C:end")]
    hints = "D:answer C:reject" if s.off_hook else "Lift handset C:reject"
    return [_header("Incoming call", _clock(snap)), *_content(rows), Row(hints)]


def _other_call(snap: Snapshot) -> list[Row]:
    """The second call, in one row: who waits, or who is held and for how long."""
    rows = []
    for call in snap.state.others:
        who = call.name or _number(snap, call.remote)
        if call.state == "ringing":
            rows.append(Row(_fit(f"Waiting: {who}")))
        elif call.state == "transferring":
            rows.append(Row(_fit(f"Transferring {who}…")))
        elif call.conference:
            rows.append(Row(_fit(f"+ {who}")))
        else:
            rows.append(Row(_fit(f"Held {_duration(snap.call_seconds(call))} {who}")))
    return rows


def _calling(snap: Snapshot) -> list[Row]:
    s = snap.state
    call = s.call
    assert call is not None
    rows = _call_rows(snap)
    if s.others:  # a consultation: the caller waits on hold
        rows = rows[:2] + _other_call(snap)
    rows += _wrap(s.message)
    title = "Ringing…" if call.progress else "Calling…"
    hints = "A:transfer C:back" if call.consult_for else "C:cancel"
    return [_header(title, _clock(snap)), *_content(rows), Row(hints)]


def _in_call(snap: Snapshot) -> list[Row]:
    s = snap.state
    call = s.call
    assert call is not None
    rows = _call_rows(snap)
    if call.conference:
        rows = [Row(_fit(call.name or _number(snap, call.remote))), *_other_call(snap)]
    elif s.others:
        rows = rows[:2] + _other_call(snap)
    if call.state == "transferring":
        rows.append(Row(_fit(f"Transfer to {_number(snap, call.transfer_target or '')}…")))
    flags = [label for on, label in ((call.held, "On hold"),
                                     (call.held_by_remote, "Held by far end"),
                                     (call.muted, "Muted")) if on]
    if flags:
        rows.append(Row(_fit(", ".join(flags))))
    rows += _wrap(s.message)
    if any(c.state == "ringing" for c in s.others):
        hints = "D:answer C:reject"
    elif call.conference:
        hints = "A:transfer" + ("" if s.off_hook else " C:end")
    elif call.consult_for and any(c.id == call.consult_for for c in s.others):
        hints = "A:transfer C:back"
    elif s.others:
        hints = "A:transfer B:swap"
    else:
        hints = "A:transfer" + ("" if s.off_hook else " C:hang up")
    title = "Conference" if call.conference else "In call"
    if call.wideband:
        title += " HD"  # wideband audio (G.722), as Yealink and Snom phones say it
    if call.encrypted:
        title += " " + LOCK  # the media is encrypted (SRTP)
    return [_header(title, _duration(snap.call_seconds())), *_content(rows), Row(hints)]


def _transfer(snap: Snapshot) -> list[Row]:
    s = snap.state
    call = s.call
    assert call is not None
    outside = s.entry.startswith("+") or len(s.entry) > snap.settings.max_extension_digits
    title = "Forward" if outside else "Transfer"
    # Who is being moved, then the target line as typed so far (never a name that could read
    # as the target before anything is typed).
    rows = [Row(_fit(f"Caller: {call.name or _number(snap, call.remote)}")),
            Row(_tail(f"To: {_number(snap, s.entry) if s.entry else '_'}")), *_wrap(s.message)]
    return [_header(title, _duration(snap.call_seconds())), *_content(rows),
            Row("A:now D:call first")]


def _prompt(snap: Snapshot) -> list[Row]:
    s = snap.state
    prompt = s.prompt
    assert prompt is not None
    rows = [Row(prompt.question), Row(_fit(prompt.detail)), *_wrap(s.message)]
    return [_header("Question", _clock(snap)), *_content(rows), Row("D:yes C:no")]


def _menu(snap: Snapshot) -> list[Row]:
    s = snap.state
    if s.menu_page == "status":
        address = s.address or ("none" if s.address is None else "?")
        rows = [Row(f"IP {address}"), Row(_fit(f"SIP {s.registration}")),
                Row(_fit(f"Odoo {s.odoo}, outbox {s.outbox}")),
                Row(f"Version {snap.settings.version}")]
        return [_header("Status", _clock(snap)), *_content(rows), Row("C:back")]
    labels = {"dnd": f"Do not disturb: {'on' if s.dnd else 'off'}", "status": "Phone status"}
    selected = s.selected % len(MENU_ITEMS)
    rows = [Row(labels[item], inverse=i == selected) for i, item in enumerate(MENU_ITEMS)]
    rows += _wrap(s.message)
    return [_header("Menu", _clock(snap)), *_content(rows), Row("D:ok B:next C:back")]


_SCREENS = {
    IDLE: _idle, DIALING: _dialing, QUEUE: _queue, CONTACTS: _contacts, RECENT: _recent,
    RINGING: _ringing, CALLING: _calling, IN_CALL: _in_call, TRANSFER: _transfer,
    PROMPT: _prompt, MENU: _menu,
}


def layout(snap: Snapshot) -> list[Row]:
    """The six rows of the screen for this snapshot."""
    rows = _SCREENS[snap.state.mode](snap)
    return [r if len(r.text) <= COLUMNS else Row(r.text[: COLUMNS - 1] + "…", r.inverse)
            for r in rows]


def lines(snap: Snapshot) -> list[str]:
    """The screen as text, one string per row, trailing spaces removed."""
    return text_of(layout(snap))


def text_of(rows: list[Row] | tuple[Row, ...]) -> list[str]:
    return [row.text.rstrip() for row in rows]


def render(snap: Snapshot) -> Image.Image:
    """The screen as the 128x64 1-bit image the OLED shows."""
    return draw(layout(snap))


def draw(rows: list[Row]) -> Image.Image:
    font = default_font()
    image = Image.new("1", (WIDTH, HEIGHT), 0)
    for y, row in zip(ROW_Y, rows, strict=False):
        if row.inverse:
            image.paste(1, (0, y, WIDTH, y + font.height))
            font.draw(image, 1, y, row.text, fill=0)
        else:
            font.draw(image, 1, y, row.text)
    # A rule above the footer keeps the key hints apart from the content.
    image.paste(1, (0, ROW_Y[-1] - 2, WIDTH, ROW_Y[-1] - 1))
    return image
