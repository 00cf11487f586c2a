"""The Phone: the one owner of phone state, as an explicit transition table.

Owns: `PhoneState` and every decision about what a key, a hook movement, a SIP or Odoo fact means
in the current state. `Phone.handle(event)` returns the new state and the actions to carry out.
Never touches: I/O, threads, sockets, devices or the wall clock beyond the injected `Clock`. It
never waits and never fails on an event: one that makes no sense in the current state (a bouncing
hook, a late SIP response, a key during ringing) is logged and ignored.

The table `TRANSITIONS` lists, for each mode, which events it reacts to and which modes it can
lead to; `handle` refuses (and logs) a result outside the declared targets, and
`docs/state-diagram.md` is generated from the same table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from firmware import numbers
from firmware.config import PhoneConfig
from firmware.events import (
    Action,
    AdapterFailed,
    Answer,
    CallAnswered,
    CallEnded,
    CallerIdentified,
    CallProgress,
    CallRecord,
    CancelTimer,
    Contact,
    ContactsUpdated,
    DtmfReceived,
    Event,
    Hangup,
    HistoryLoaded,
    HoldChanged,
    HookLifted,
    HookReplaced,
    IncomingCall,
    KeyPressed,
    LogCall,
    LookupCaller,
    MarkDone,
    NetworkChanged,
    OdooStatusChanged,
    OutboxChanged,
    PlaceCall,
    PlayTone,
    QueueEntry,
    QueueUpdated,
    RefreshQueue,
    RegistrationChanged,
    Reject,
    RemoveFromQueue,
    Reregister,
    Ring,
    SendDtmf,
    SetHold,
    SetLed,
    SetMute,
    StartTimer,
    Tick,
    TimerFired,
    Transfer,
    TransferFailed,
    TransferSucceeded,
)

log = logging.getLogger("phone")

# Modes, as /state reports them (DESIGN.md section 2).
IDLE = "idle"
DIALING = "dialing"
RINGING = "ringing"
CALLING = "calling"
IN_CALL = "in_call"
TRANSFER = "transfer"
QUEUE = "queue"
CONTACTS = "contacts"
RECENT = "recent"
MENU = "menu"
PROMPT = "prompt"
MODES = (IDLE, DIALING, RINGING, CALLING, IN_CALL, TRANSFER, QUEUE, CONTACTS, RECENT, MENU,
         PROMPT)
CALL_MODES = (RINGING, CALLING, IN_CALL, TRANSFER)

DIAL_KEYS = "0123456789*#"
MAX_ENTRY = 32
MAX_RECENT = 50

REASONS = {
    "hangup": "Call ended",
    "cancelled": "Missed call",
    "busy": "Busy",
    "declined": "Call declined",
    "not_found": "Number not found",
    "no_answer": "No answer",
    "unavailable": "Not available",
    "network": "Network error",
    "no_service": "No service",
    "timeout": "Call lost",
    "forbidden": "Not allowed",
    "error": "Call failed",
}
"""What a person reads for each reason code of `CallEnded` / `TransferFailed`."""

MENU_ITEMS = ("dnd", "status")


class Clock(Protocol):
    """Time as the Phone sees it; tests pass a clock they move by hand."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()


@dataclass(frozen=True)
class Settings(PhoneConfig):
    """What the Phone needs from the config: every `[phone]` setting (config.PhoneConfig, so a
    new one reaches the Phone with no copy), plus what other sections and the build tell it."""

    extension: str = ""  # [sip] username
    version: str = ""
    screensaver_seconds: float = 0.0  # [hardware]; 0 = the screen never dims

    @classmethod
    def of(cls, phone: PhoneConfig, **others: Any) -> Settings:
        return cls(**{f.name: getattr(phone, f.name) for f in fields(phone)}, **others)


@dataclass(frozen=True)
class Call:
    """The one call the phone has (call waiting comes later)."""

    id: str
    key: int
    direction: str  # "in" | "out"
    remote: str  # extension or E.164 number
    state: str  # "ringing" | "calling" | "connected" | "held" | "transferring"
    started: float  # wall clock, for the log
    name: str | None = None
    partner_id: int | None = None
    activity_id: int | None = None
    connected_at: float | None = None  # monotonic
    progress: bool = False  # the far end is ringing
    muted: bool = False
    held: bool = False
    held_by_remote: bool = False
    transfer_target: str | None = None


@dataclass(frozen=True)
class Prompt:
    """A question on screen: `D` yes, `C` no."""

    kind: str  # "done" | "remove"
    activity_id: int
    question: str
    detail: str = ""
    feedback: str = ""


@dataclass(frozen=True)
class Listing:
    """One number of one contact, with the forms that typed digits and callers are matched on."""

    contact: Contact
    number: str
    key: str | None  # numbers.normalize(): E.164, or digits for an extension
    digits: tuple[str, ...]  # the number as stored, E.164 and national, digits only
    words: tuple[str, ...]  # the name's words in T9 digits
    folded: str  # the name without case or accents, for sorting


@dataclass(frozen=True)
class PhoneState:
    mode: str = IDLE
    off_hook: bool = False
    entry: str = ""
    call: Call | None = None
    selected: int = 0
    prompt: Prompt | None = None
    message: str = ""
    registration: str = "off"
    registration_reason: str = ""
    odoo: str = "off"
    odoo_reason: str = ""
    outbox: int = 0
    address: str | None = ""  # "" = not known yet, None = no network
    queue: tuple[QueueEntry, ...] = ()
    directory: tuple[Listing, ...] = ()
    recent: tuple[CallRecord, ...] = ()
    missed_unseen: int = 0
    last_dialled: str = ""
    dnd: bool = False
    tone: str | None = None
    ringing: bool = False
    menu_page: str = ""  # "" = the list, or the item being shown ("status")
    timers: tuple[tuple[str, int], ...] = ()
    next_token: int = 1
    next_key: int = 1
    problems: tuple[tuple[str, str], ...] = ()  # (part, message) a person should see
    last_activity: float = 0.0  # monotonic time of the last key, hook or incoming call
    asleep: bool = False  # the screen saver: the display dims, the content stays


# --------------------------------------------------------------------------- one step


class Step:
    """The state under construction and the actions decided so far, for one event."""

    def __init__(self, phone: Phone, state: PhoneState) -> None:
        self.phone = phone
        self.s = state
        self.actions: list[Action] = []

    @property
    def settings(self) -> Settings:
        return self.phone.settings

    def set(self, **changes: object) -> None:
        self.s = replace(self.s, **changes)  # type: ignore[arg-type]

    def do(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def timer(self, name: str, seconds: float) -> None:
        token = self.s.next_token
        timers = (*tuple((n, t) for n, t in self.s.timers if n != name), (name, token))
        self.set(timers=timers, next_token=token + 1)
        self.do(StartTimer(name, seconds, token))

    def cancel(self, *names: str) -> None:
        for name in names:
            if any(n == name for n, _ in self.s.timers):
                self.set(timers=tuple((n, t) for n, t in self.s.timers if n != name))
                self.do(CancelTimer(name))

    def tone(self, tone: str | None) -> None:
        if self.s.tone != tone:
            self.set(tone=tone)
            self.do(PlayTone(tone))

    def ring(self, on: bool) -> None:
        if self.s.ringing != on:
            self.set(ringing=on)
            self.do(Ring(on))

    def say(self, text: str) -> None:
        """A transient line on screen, cleared after message_seconds."""
        self.set(message=text)
        if text:
            self.timer("message", self.settings.message_seconds)
        else:
            self.cancel("message")

    def call(self, **changes: object) -> None:
        assert self.s.call is not None
        self.set(call=replace(self.s.call, **changes))  # type: ignore[arg-type]


Handler = Callable[[Step, Event], None]


@dataclass(frozen=True)
class Transition:
    """One row of the table: in `modes`, `event` is handled by `handler` and leads to `targets`."""

    modes: tuple[str, ...]
    event: type[Event]
    targets: tuple[str, ...]
    handler: Handler
    label: str = ""
    when: str = ""


# --------------------------------------------------------------------------- helpers


def _key_char(event: KeyPressed, entry: str) -> str | None:
    """The character a dial key adds to an entry: long 0 is "+" at the start of a number."""
    if event.key not in DIAL_KEYS:
        return None
    if event.long and event.key == "0" and not entry:
        return "+"
    return event.key


def _rest(step: Step) -> None:
    """Back to where a phone rests for its hook position, with nothing typed."""
    step.cancel("interdigit", "offhook", "predial", "prompt")
    step.set(entry="", selected=0, prompt=None, menu_page="")
    if step.s.off_hook:
        step.set(mode=DIALING)
    else:
        step.set(mode=IDLE)
        step.tone(None)


def _to_idle_or_dial(step: Step) -> None:
    """On hook: idle. Off hook: a fresh dial tone, as when the handset is lifted."""
    _rest(step)
    if step.s.off_hook:
        step.tone("dial")
        step.timer("offhook", step.settings.offhook_seconds)


def _record(step: Step, call: Call, outcome: str) -> CallRecord:
    seconds = 0
    if call.connected_at is not None:
        seconds = max(0, round(step.phone.clock.monotonic() - call.connected_at))
    return CallRecord(key=call.key, direction=call.direction, number=call.remote, name=call.name,
                      outcome=outcome, started=call.started, seconds=seconds,
                      activity_id=call.activity_id, partner_id=call.partner_id)


def _remember(step: Step, record: CallRecord) -> None:
    step.set(recent=((record, *step.s.recent))[:MAX_RECENT])
    if record.outcome == "missed":
        step.set(missed_unseen=step.s.missed_unseen + 1)
        step.do(SetLed(True))


def _end_call(step: Step, outcome: str, stage: str, message: str) -> None:
    """The call is over: log it, forget it, and show what comes next (a prompt or rest)."""
    call = step.s.call
    assert call is not None
    record = _record(step, call, outcome)
    step.do(LogCall(stage, record))
    _remember(step, record)
    step.ring(False)
    step.cancel("ring")
    step.set(call=None)
    step.tone(None)
    if call.direction == "out" or call.activity_id is not None:
        step.do(RefreshQueue())
    if call.activity_id is not None and call.connected_at is not None:
        entry = next((e for e in step.s.queue if e.id == call.activity_id), None)
        label = entry.name if entry else (call.name or call.remote)
        _rest(step)
        step.set(mode=PROMPT, prompt=Prompt(
            kind="done", activity_id=call.activity_id, question="Mark call done?",
            detail=label, feedback=_feedback(step, call, record)))
        step.timer("prompt", step.settings.prompt_seconds)
        step.say(message)
        return
    _rest(step)
    step.say(message)


def _feedback(step: Step, call: Call, record: CallRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.started))
    minutes, seconds = divmod(record.seconds, 60)
    who = step.settings.name + (f" ({step.settings.extension})" if step.settings.extension else "")
    return (f"Called {call.name or call.remote} ({call.remote}) from {who} on {when}, "
            f"{minutes} min {seconds:02d} s")


def _new_call(step: Step, call_id: str | None, direction: str, remote: str, state: str,
              **extra: object) -> Call:
    key = step.s.next_key
    step.set(next_key=key + 1)
    return Call(id=call_id or f"out-{key}", key=key, direction=direction, remote=remote,
                state=state, started=step.phone.clock.time(), **extra)  # type: ignore[arg-type]


def _place(step: Step, typed: str, *, name: str | None = None, activity_id: int | None = None,
           partner_id: int | None = None) -> None:
    """Dial what was typed (or chosen); on a number that cannot be dialled, say why and stay."""
    settings = step.settings
    if any(c not in "+0123456789*#" for c in typed):
        # A number as stored in Odoo ("0470 12 34 56"), not as typed on the keypad.
        typed = numbers.normalize(typed, settings.region) or typed
    try:
        target = numbers.dial_target(typed, settings.region, settings.max_extension_digits)
    except numbers.NumberError as exc:
        step.say(str(exc))
        return
    if step.s.registration != "registered":
        step.say("No service: cannot call")
        if step.s.off_hook:
            step.tone("congestion")
        return
    if name is None:
        name, partner_id = _name_for(step.s, target.value, settings.region)
    call = _new_call(step, None, "out", target.value, "calling", name=name,
                     activity_id=activity_id, partner_id=partner_id)
    step.cancel("interdigit", "offhook", "predial", "prompt")
    step.set(mode=CALLING, call=call, entry="", last_dialled=typed, prompt=None, selected=0)
    step.tone(None)
    step.say("")
    step.do(PlaceCall(call.id, target.value), LogCall("started", _record(step, call, "calling")))


def _name_for(state: PhoneState, number: str, region: str | None) -> tuple[str | None, int | None]:
    """The contact or queue entry behind a number, matched as E.164 (or extension digits)."""
    key = numbers.normalize(number, region)
    if key is None:
        return None, None
    for listing in state.directory:
        if listing.key == key:
            return listing.contact.name, listing.contact.partner_id
    for entry in state.queue:
        if numbers.normalize(entry.number, region) == key:
            return entry.name, entry.partner_id
    return None, None


def index_contacts(contacts: Iterable[Contact], region: str | None) -> tuple[Listing, ...]:
    """Work out once, when contacts arrive, what every keypress and caller will be matched on."""
    rows = []
    for contact in contacts:
        words = tuple(numbers.t9_words(contact.name))
        for number in contact.numbers:
            rows.append(Listing(contact=contact, number=number,
                                key=numbers.normalize(number, region),
                                digits=numbers.digit_forms(number, region), words=words,
                                folded=numbers.fold(contact.name)))
    return tuple(rows)


def matches(state: PhoneState) -> list[Listing]:
    """The contacts the typed digits find, one row per number: a word of the name starting with
    the digits in T9 first, then numbers containing them (3 digits at least), each A-Z."""
    typed = state.entry
    if not typed.isdigit():
        return []
    found: list[tuple[int, str, str, Listing]] = []
    for row in state.directory:
        if any(word.startswith(typed) for word in row.words):
            found.append((0, row.folded, row.number, row))
        elif len(typed) >= 3 and any(typed in digits for digits in row.digits):
            found.append((1, row.folded, row.number, row))
    found.sort(key=lambda item: item[:3])
    return [row for *_, row in found[:20]]


def queue_order(entries: Iterable[QueueEntry]) -> tuple[QueueEntry, ...]:
    """As on screen: overdue first, then by due date, then by id."""
    return tuple(sorted(entries, key=lambda e: (not e.overdue, e.due, e.id)))


def _moved(step: Step, event: KeyPressed, count: int) -> bool:
    """In a list, B moves to the next entry and * to the previous one (both wrap)."""
    delta = {"B": 1, "*": -1}.get(event.key)
    if delta is None:
        return False
    if count:
        step.set(selected=(step.s.selected + delta) % count)
    return True


# --------------------------------------------------------------------------- handlers: idle


def idle_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    char = _key_char(event, "")
    if char is not None:
        step.say("")
        step.set(mode=DIALING, entry=char)
        step.timer("predial", step.settings.offhook_seconds)
    elif event.key == "B" and event.long:
        _open_recent(step)
    elif event.key == "B":
        step.set(mode=QUEUE, selected=0)
    elif event.key == "D" and event.long and step.s.last_dialled:
        _place(step, step.s.last_dialled)
    elif event.key == "D" and step.s.last_dialled:
        # Redial: the last number comes back; D again (or the handset) calls it.
        step.set(mode=DIALING, entry=step.s.last_dialled)
        step.timer("predial", step.settings.offhook_seconds)
    elif event.key == "A" and event.long:
        step.set(mode=MENU, selected=0, menu_page="")
    elif event.key == "C":
        step.say("")


def idle_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True, mode=DIALING, entry="")
    step.say("")
    step.tone("dial")
    step.timer("offhook", step.settings.offhook_seconds)


# --------------------------------------------------------------------------- dialing


def dialing_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    s = step.s
    char = _key_char(event, s.entry)
    if char is not None:
        if len(s.entry) >= MAX_ENTRY:
            return
        step.set(entry=s.entry + char)
        step.say("")
        if s.off_hook:
            step.tone(None)
            step.cancel("offhook")
            step.timer("interdigit", step.settings.interdigit_seconds)
        else:
            step.timer("predial", step.settings.offhook_seconds)
    elif event.key == "C":
        entry = "" if event.long else s.entry[:-1]
        step.set(entry=entry)
        if not entry and not s.off_hook:
            step.cancel("predial")
            step.set(mode=IDLE)
        elif not entry:
            step.cancel("interdigit")
    elif event.key == "D":
        typed = s.entry or s.last_dialled
        if typed:
            _place(step, typed)
    elif event.key == "B":
        if matches(s):
            step.cancel("interdigit")
            step.set(mode=CONTACTS, selected=0)
        else:
            step.say("No contact found")


def dialing_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True)
    step.cancel("predial")
    if step.s.entry:
        _place(step, step.s.entry)
    else:
        step.tone("dial")
        step.timer("offhook", step.settings.offhook_seconds)


def hang_up_idle(step: Step, event: Event) -> None:
    """The handset goes back with no call: whatever was typed or shown is dropped."""
    step.set(off_hook=False)
    step.say("")
    _rest(step)


def dialing_timer(step: Step, event: Event) -> None:
    assert isinstance(event, TimerFired)
    if event.name == "interdigit" and step.s.entry:
        _place(step, step.s.entry)
    elif event.name == "offhook":
        step.tone("congestion")
        step.say("Replace the handset")
    elif event.name == "predial":
        step.set(mode=IDLE, entry="")


# --------------------------------------------------------------------------- lists


def queue_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    entries = step.s.queue
    if _moved(step, event, len(entries)):
        return
    if event.key == "D" and entries:
        entry = entries[min(step.s.selected, len(entries) - 1)]
        _place(step, entry.number, name=entry.name, activity_id=entry.id,
               partner_id=entry.partner_id)
    elif event.key == "#" and entries:
        entry = entries[min(step.s.selected, len(entries) - 1)]
        step.set(mode=PROMPT, prompt=Prompt(kind="remove", activity_id=entry.id,
                                            question="Remove from queue?", detail=entry.name))
        step.timer("prompt", step.settings.prompt_seconds)
    elif event.key == "C":
        _rest(step)
    elif event.key in "0123456789":
        step.set(mode=DIALING, entry=_key_char(event, "") or event.key, selected=0)
        step.timer("predial", step.settings.offhook_seconds)


def queue_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True)
    entries = step.s.queue
    if entries:
        entry = entries[min(step.s.selected, len(entries) - 1)]
        _place(step, entry.number, name=entry.name, activity_id=entry.id,
               partner_id=entry.partner_id)
    else:
        _to_idle_or_dial(step)


def contacts_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    found = matches(step.s)
    if _moved(step, event, len(found)):
        return
    if event.key == "D" and found:
        row = found[min(step.s.selected, len(found) - 1)]
        _place(step, row.number, name=row.contact.name, partner_id=row.contact.partner_id)
    elif event.key == "C":
        step.set(mode=DIALING, selected=0)


def contacts_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True)
    found = matches(step.s)
    if found:
        row = found[min(step.s.selected, len(found) - 1)]
        _place(step, row.number, name=row.contact.name, partner_id=row.contact.partner_id)
    else:
        _to_idle_or_dial(step)


def _open_recent(step: Step) -> None:
    step.set(mode=RECENT, selected=0, missed_unseen=0)
    step.do(SetLed(False))


def recent_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    rows = step.s.recent
    if _moved(step, event, len(rows)):
        return
    if event.key == "D" and rows:
        row = rows[min(step.s.selected, len(rows) - 1)]
        _place(step, row.number, name=row.name, partner_id=row.partner_id)
    elif event.key == "C":
        _rest(step)


def recent_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True)
    rows = step.s.recent
    if rows:
        row = rows[min(step.s.selected, len(rows) - 1)]
        _place(step, row.number, name=row.name, partner_id=row.partner_id)
    else:
        _to_idle_or_dial(step)


def menu_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    if step.s.menu_page:
        if event.key in "CD":
            step.set(menu_page="")
        return
    if _moved(step, event, len(MENU_ITEMS)):
        return
    if event.key == "D":
        item = MENU_ITEMS[step.s.selected % len(MENU_ITEMS)]
        if item == "dnd":
            step.set(dnd=not step.s.dnd)
            step.say("Do not disturb on" if step.s.dnd else "Do not disturb off")
        else:
            step.set(menu_page=item)
    elif event.key == "C":
        _rest(step)


def browse_lift(step: Step, event: Event) -> None:
    """Lifting the handset in the menu leaves it for a dial tone."""
    step.set(off_hook=True)
    _to_idle_or_dial(step)


# --------------------------------------------------------------------------- prompt


def prompt_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    prompt = step.s.prompt
    assert prompt is not None
    if event.key == "D":
        step.cancel("prompt")
        remaining = tuple(e for e in step.s.queue if e.id != prompt.activity_id)
        step.set(queue=remaining, prompt=None)
        if prompt.kind == "done":
            step.do(MarkDone(prompt.activity_id, prompt.feedback))
            _rest(step)
            step.say("Marked done")
        else:
            step.do(RemoveFromQueue(prompt.activity_id))
            step.set(mode=QUEUE, selected=min(step.s.selected, max(0, len(remaining) - 1)))
            step.say("Removed from queue")
    elif event.key == "C":
        _leave_prompt(step)


def _leave_prompt(step: Step) -> None:
    prompt = step.s.prompt
    step.cancel("prompt")
    if prompt is not None and prompt.kind == "remove":
        step.set(mode=QUEUE, prompt=None)
    else:
        _rest(step)


def prompt_timer(step: Step, event: Event) -> None:
    assert isinstance(event, TimerFired)
    if event.name == "prompt":
        _leave_prompt(step)


def prompt_hook(step: Step, event: Event) -> None:
    """The question stays on screen whatever the handset does."""
    step.set(off_hook=isinstance(event, HookLifted))


# --------------------------------------------------------------------------- ringing


def incoming(step: Step, event: Event) -> None:
    assert isinstance(event, IncomingCall)
    s = step.s
    if s.call is not None and s.call.id == event.call_id:
        return  # a retransmitted INVITE of the call we already have
    name, partner_id = _name_for(s, event.remote, step.settings.region)
    call = _new_call(step, event.call_id, "in", event.remote, "ringing",
                     name=name or event.display_name or None, partner_id=partner_id)
    busy = s.call is not None or s.off_hook
    if busy or s.dnd:
        # One line: a second call, a lifted handset or do-not-disturb sends the caller away.
        step.do(Reject(event.call_id, 486 if busy else 480))
        record = _record(step, call, "missed")
        step.do(LogCall("missed", record))
        _remember(step, record)
        return
    step.cancel("interdigit", "offhook", "predial", "prompt")
    step.set(mode=RINGING, call=call, entry="", selected=0, prompt=None, menu_page="")
    step.say("")
    step.ring(True)
    step.timer("ring", step.settings.ring_timeout_seconds)
    step.do(LogCall("started", _record(step, call, "ringing")))
    if name is None:
        step.do(LookupCaller(event.call_id, event.remote))


def ringing_lift(step: Step, event: Event) -> None:
    call = step.s.call
    assert call is not None
    step.set(off_hook=True)
    step.ring(False)
    step.cancel("ring")
    step.call(state="connected", connected_at=step.phone.clock.monotonic())
    step.set(mode=IN_CALL)
    step.do(Answer(call.id), LogCall("answered", _record(step, step.s.call or call, "answered")))


def ringing_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    call = step.s.call
    assert call is not None
    if event.key == "C":
        step.do(Reject(call.id, step.settings.reject_code))
        _end_call(step, "rejected", "rejected", "Call rejected")


def ringing_timer(step: Step, event: Event) -> None:
    assert isinstance(event, TimerFired)
    call = step.s.call
    if event.name == "ring" and call is not None:
        step.do(Reject(call.id, 480))
        _end_call(step, "missed", "missed", "Missed call")


def ringing_ended(step: Step, event: Event) -> None:
    assert isinstance(event, CallEnded)
    if _ours(step, event.call_id):
        _end_call(step, "missed", "missed", "Missed call")


# --------------------------------------------------------------------------- calls


def _ours(step: Step, call_id: str) -> bool:
    """Is this SIP fact about the current call? Late facts about old calls are ignored."""
    call = step.s.call
    if call is None or call.id != call_id:
        log.info("ignored a late event for call %s", call_id)
        return False
    return True


def calling_progress(step: Step, event: Event) -> None:
    assert isinstance(event, CallProgress)
    if _ours(step, event.call_id):
        step.call(progress=True)
        if step.s.off_hook:
            step.tone("ringback")


def calling_answered(step: Step, event: Event) -> None:
    assert isinstance(event, CallAnswered)
    if not _ours(step, event.call_id):
        return
    step.call(state="connected", connected_at=step.phone.clock.monotonic(), progress=False)
    step.set(mode=IN_CALL)
    step.tone(None)
    call = step.s.call
    assert call is not None
    step.do(LogCall("answered", _record(step, call, "answered")))


def calling_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True)
    call = step.s.call
    if call is not None and call.progress:
        step.tone("ringback")


def calling_ended(step: Step, event: Event) -> None:
    assert isinstance(event, CallEnded)
    if not _ours(step, event.call_id):
        return
    words = REASONS.get(event.reason, REASONS["error"])
    _end_call(step, "failed", "failed", words)
    if step.s.off_hook and step.s.mode == DIALING:
        step.cancel("offhook")
        step.tone("busy" if event.reason in ("busy", "declined", "no_answer") else "congestion")


def calling_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    call = step.s.call
    assert call is not None
    if event.key == "C":
        step.do(Hangup(call.id))
        _end_call(step, "aborted", "aborted", "Call cancelled")


def hang_up(step: Step, event: Event) -> None:
    """The handset goes back during a call: the call ends, whatever state it is in."""
    call = step.s.call
    assert call is not None
    step.set(off_hook=False)
    step.do(Hangup(call.id))
    if call.connected_at is None:
        _end_call(step, "aborted", "aborted", "")
    else:
        _end_call(step, "answered", "ended", "")


def in_call_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    call = step.s.call
    assert call is not None
    if call.state == "transferring":
        return
    if event.long and event.key == "*":
        step.do(SetMute(call.id, not call.muted))
        step.call(muted=not call.muted)  # the screen shows "Muted" while it lasts
    elif event.long and event.key == "#":
        step.do(SetHold(call.id, not call.held))
        step.say("Holding..." if not call.held else "Resuming...")
    elif event.key in DIAL_KEYS and not event.long:
        step.do(SendDtmf(call.id, event.key))
    elif event.key == "A":
        step.set(mode=TRANSFER, entry="")
        step.say("")
    elif event.key == "C" and not step.s.off_hook:
        # With the handset in its cradle, C is the only way to end the call.
        step.do(Hangup(call.id))
        _end_call(step, "answered", "ended", "")


def in_call_ended(step: Step, event: Event) -> None:
    assert isinstance(event, CallEnded)
    if not _ours(step, event.call_id):
        return
    words = REASONS.get(event.reason, REASONS["error"])
    _end_call(step, "answered", "ended", words)
    if step.s.off_hook and step.s.mode == DIALING:
        step.tone("busy")


def hold_changed(step: Step, event: Event) -> None:
    assert isinstance(event, HoldChanged)
    if not _ours(step, event.call_id):
        return
    call = step.s.call
    assert call is not None
    if event.by_remote:
        step.call(held_by_remote=event.held)
    else:
        step.call(held=event.held)
        step.say("On hold" if event.held else "Resumed")
    call = step.s.call
    assert call is not None
    step.call(state="held" if call.held or call.held_by_remote else "connected")


def transfer_done(step: Step, event: Event) -> None:
    assert isinstance(event, TransferSucceeded)
    call = step.s.call
    if not _ours(step, event.call_id) or call is None:
        return
    target = numbers.display(call.transfer_target or "", step.settings.region)
    _end_call(step, "answered", "transferred", f"Transferred to {target}")


def transfer_failed(step: Step, event: Event) -> None:
    assert isinstance(event, TransferFailed)
    if not _ours(step, event.call_id):
        return
    step.call(state="connected", transfer_target=None)
    step.set(mode=IN_CALL)
    step.say(f"Transfer failed: {REASONS.get(event.reason, REASONS['error'])}")


def transfer_key(step: Step, event: Event) -> None:
    assert isinstance(event, KeyPressed)
    s = step.s
    call = s.call
    assert call is not None
    char = _key_char(event, s.entry)
    if char is not None:
        if len(s.entry) < MAX_ENTRY:
            step.set(entry=s.entry + char)
            step.say("")
    elif event.key == "C":
        if s.entry and not event.long:
            step.set(entry=s.entry[:-1])
        else:
            step.set(mode=IN_CALL, entry="")
            step.say("Transfer cancelled")
    elif event.key in "AD":
        settings = step.settings
        try:
            target = numbers.dial_target(s.entry, settings.region, settings.max_extension_digits)
        except numbers.NumberError as exc:
            step.say(str(exc))
            return
        step.call(state="transferring", transfer_target=target.value)
        step.set(mode=IN_CALL, entry="")
        step.do(Transfer(call.id, target.value))


def dtmf_in(step: Step, event: Event) -> None:
    assert isinstance(event, DtmfReceived)
    _ours(step, event.call_id)  # nothing to decide: logged by the daemon


# --------------------------------------------------------------------------- anywhere


def registration(step: Step, event: Event) -> None:
    assert isinstance(event, RegistrationChanged)
    step.set(registration=event.status, registration_reason=event.reason)


def odoo_status(step: Step, event: Event) -> None:
    assert isinstance(event, OdooStatusChanged)
    step.set(odoo=event.status, odoo_reason=event.reason)


def outbox(step: Step, event: Event) -> None:
    assert isinstance(event, OutboxChanged)
    step.set(outbox=event.depth)


def network(step: Step, event: Event) -> None:
    assert isinstance(event, NetworkChanged)
    before = step.s.address
    step.set(address=event.address)
    if event.address and before != "" and before != event.address:
        # Back from no network, or a new address (DHCP, Wi-Fi roaming): the registrar must
        # hear from us now, not at the next refresh minutes away.
        step.do(Reregister())


def queue_updated(step: Step, event: Event) -> None:
    assert isinstance(event, QueueUpdated)
    s = step.s
    ordered = queue_order(event.entries)
    selected = 0
    if s.mode == QUEUE and s.queue:
        # Keep the highlight on the same activity when the list refreshes under it.
        current = s.queue[min(s.selected, len(s.queue) - 1)].id
        selected = next((i for i, e in enumerate(ordered) if e.id == current),
                        min(s.selected, max(0, len(ordered) - 1)))
    step.set(queue=ordered, selected=selected if s.mode == QUEUE else s.selected)


def contacts_updated(step: Step, event: Event) -> None:
    assert isinstance(event, ContactsUpdated)
    step.set(directory=index_contacts(event.contacts, step.settings.region))
    if step.s.mode == CONTACTS and not matches(step.s):
        step.set(mode=DIALING, selected=0)


def history_loaded(step: Step, event: Event) -> None:
    """Recent calls from before a restart go after the ones made since."""
    assert isinstance(event, HistoryLoaded)
    seen = {(r.key, r.started) for r in step.s.recent}
    older = tuple(r for r in event.records if (r.key, r.started) not in seen)
    step.set(recent=(step.s.recent + older)[:MAX_RECENT])


def caller_identified(step: Step, event: Event) -> None:
    assert isinstance(event, CallerIdentified)
    call = step.s.call
    if call is not None and call.id == event.call_id:
        step.call(name=event.name, partner_id=event.partner_id)


def late_call_event(step: Step, event: Event) -> None:
    """A SIP fact for a call we no longer have (or never had)."""
    log.info("ignored %s: no such call", type(event).__name__)


def second_call(step: Step, event: Event) -> None:
    incoming(step, event)


def adapter_failed(step: Step, event: Event) -> None:
    assert isinstance(event, AdapterFailed)
    problems = tuple(p for p in step.s.problems if p[0] != event.part)
    if event.message:
        problems += ((event.part, event.message),)
    step.set(problems=problems)


def nothing(step: Step, event: Event) -> None:
    """The event changes no state (the daemon still redraws: the clock moved)."""


def ignore_lift(step: Step, event: Event) -> None:
    step.set(off_hook=True)


# --------------------------------------------------------------------------- the table

SAME = "="  # in `targets`: the mode the event arrived in
BROWSE = (IDLE, DIALING, QUEUE, CONTACTS, RECENT, MENU, PROMPT)
ANY = MODES

TRANSITIONS: tuple[Transition, ...] = (
    Transition((IDLE,), KeyPressed, (IDLE, DIALING, QUEUE, RECENT, MENU, CALLING), idle_key,
               "key", "digit: pre-dial; B: queue; long B: recent; D: redial; long A: menu"),
    Transition((IDLE,), HookLifted, (DIALING,), idle_lift, "lift", "dial tone"),
    Transition((DIALING,), KeyPressed, (DIALING, IDLE, CONTACTS, CALLING), dialing_key,
               "key", "digit; C: delete; D: call; B: contacts found"),
    Transition((DIALING,), HookLifted, (DIALING, CALLING), dialing_lift, "lift",
               "calls the pre-typed number"),
    Transition((DIALING, QUEUE, CONTACTS, RECENT, MENU), HookReplaced, (IDLE,), hang_up_idle,
               "replace"),
    Transition((DIALING,), TimerFired, (DIALING, CALLING, IDLE), dialing_timer, "timer",
               "inter-digit: call; off hook too long; pre-dial expires"),
    Transition((QUEUE,), KeyPressed, (QUEUE, CALLING, PROMPT, IDLE, DIALING), queue_key, "key",
               "B/*: move; D: call; #: remove?; C: leave"),
    Transition((QUEUE,), HookLifted, (CALLING, DIALING, SAME), queue_lift, "lift",
               "calls the selected entry"),
    Transition((CONTACTS,), KeyPressed, (CONTACTS, CALLING, DIALING), contacts_key, "key",
               "B/*: move; D: call; C: back"),
    Transition((CONTACTS,), HookLifted, (CALLING, DIALING, SAME), contacts_lift, "lift",
               "calls the selected contact"),
    Transition((RECENT,), KeyPressed, (RECENT, CALLING, IDLE, DIALING), recent_key, "key",
               "B/*: move; D: call back; C: leave"),
    Transition((RECENT,), HookLifted, (CALLING, DIALING, SAME), recent_lift, "lift",
               "calls the selected entry"),
    Transition((MENU,), KeyPressed, (MENU, IDLE, DIALING), menu_key, "key",
               "B/*: move; D: toggle/open; C: leave"),
    Transition((MENU,), HookLifted, (DIALING,), browse_lift, "lift"),
    Transition((PROMPT,), KeyPressed, (PROMPT, IDLE, DIALING, QUEUE), prompt_key, "key",
               "D: yes; C: no"),
    Transition((PROMPT,), TimerFired, (PROMPT, IDLE, DIALING, QUEUE), prompt_timer, "timer",
               "no answer: keep"),
    Transition((PROMPT,), HookLifted, (PROMPT,), prompt_hook, "lift"),
    Transition((PROMPT,), HookReplaced, (PROMPT,), prompt_hook, "replace"),
    Transition(BROWSE, IncomingCall, (RINGING, SAME), incoming, "INVITE",
               "rings; off hook or DND: 486/480 and missed"),
    Transition((RINGING,), HookLifted, (IN_CALL,), ringing_lift, "lift", "answer"),
    Transition((RINGING,), KeyPressed, (RINGING, IDLE), ringing_key, "key", "C: reject"),
    Transition((RINGING,), TimerFired, (RINGING, IDLE), ringing_timer, "timer",
               "ring timeout: missed"),
    Transition((RINGING,), CallEnded, (IDLE, RINGING), ringing_ended, "CANCEL", "missed"),
    Transition((CALLING,), CallProgress, (CALLING,), calling_progress, "180", "ringback"),
    Transition((CALLING,), CallAnswered, (IN_CALL, CALLING), calling_answered, "200"),
    Transition((CALLING,), HookLifted, (CALLING,), calling_lift, "lift"),
    Transition((CALLING,), CallEnded, (IDLE, DIALING, CALLING), calling_ended, "failure",
               "busy, not found, no answer ..."),
    Transition((CALLING,), KeyPressed, (CALLING, IDLE, DIALING), calling_key, "key",
               "C: cancel"),
    Transition((CALLING, IN_CALL, TRANSFER), HookReplaced, (IDLE, PROMPT), hang_up, "replace",
               "hang up"),
    Transition((IN_CALL,), KeyPressed, (IN_CALL, TRANSFER, IDLE, PROMPT), in_call_key, "key",
               "digit: DTMF; A: transfer; long */#: mute/hold"),
    Transition((IN_CALL, TRANSFER), CallEnded, (IDLE, DIALING, PROMPT, SAME),
               in_call_ended, "BYE"),
    Transition((IN_CALL, TRANSFER), HoldChanged, (SAME,), hold_changed, "hold"),
    Transition((IN_CALL, TRANSFER), DtmfReceived, (SAME,), dtmf_in, "DTMF"),
    Transition((IN_CALL,), TransferSucceeded, (IDLE, DIALING, PROMPT, IN_CALL), transfer_done,
               "NOTIFY 200"),
    Transition((IN_CALL, TRANSFER), TransferFailed, (IN_CALL,), transfer_failed,
               "REFER failed", "back to the call, reason on screen"),
    Transition((TRANSFER,), KeyPressed, (TRANSFER, IN_CALL), transfer_key, "key",
               "digit; C: delete/cancel; A/D: transfer"),
    Transition((CALLING, IN_CALL, TRANSFER, RINGING), IncomingCall, (SAME,), second_call,
               "INVITE", "486, missed"),
    Transition((IN_CALL, TRANSFER), HookLifted, (SAME,), ignore_lift, "lift",
               "handset taken up during a call"),
    Transition(ANY, RegistrationChanged, (SAME,), registration, "registration"),
    Transition(ANY, OdooStatusChanged, (SAME,), odoo_status, "odoo"),
    Transition(ANY, OutboxChanged, (SAME,), outbox, "outbox"),
    Transition(ANY, NetworkChanged, (SAME,), network, "network"),
    Transition(ANY, QueueUpdated, (SAME,), queue_updated, "queue"),
    Transition(ANY, ContactsUpdated, (SAME, DIALING), contacts_updated, "contacts"),
    Transition(ANY, CallerIdentified, (SAME,), caller_identified, "caller name"),
    Transition(ANY, HistoryLoaded, (SAME,), history_loaded, "history"),
    Transition(ANY, AdapterFailed, (SAME,), adapter_failed, "problem"),
    Transition(ANY, Tick, (SAME,), nothing, "tick"),
    Transition(ANY, TimerFired, (SAME,), nothing, "timer", "a timer of another mode"),
    Transition(ANY, CallEnded, (SAME,), late_call_event, "late"),
    Transition(ANY, CallAnswered, (SAME,), late_call_event, "late"),
    Transition(ANY, CallProgress, (SAME,), late_call_event, "late"),
    Transition(ANY, TransferSucceeded, (SAME,), late_call_event, "late"),
    Transition(ANY, TransferFailed, (SAME,), late_call_event, "late"),
    Transition(ANY, HoldChanged, (SAME,), late_call_event, "late"),
    Transition(ANY, DtmfReceived, (SAME,), late_call_event, "late"),
)


def _index(rows: tuple[Transition, ...]) -> dict[tuple[str, type[Event]], Transition]:
    """First row wins, so specific rows listed above the catch-all ones take precedence."""
    table: dict[tuple[str, type[Event]], Transition] = {}
    for row in rows:
        for mode in row.modes:
            table.setdefault((mode, row.event), row)
    return table


_TABLE = _index(TRANSITIONS)


# --------------------------------------------------------------------------- the Phone


class TransitionError(RuntimeError):
    """A handler produced a mode its table row does not declare (a bug, logged, not raised)."""


@dataclass
class Phone:
    """Holds the current `PhoneState`; `handle` moves it on by one event."""

    settings: Settings = field(default_factory=Settings)
    clock: Clock = field(default_factory=SystemClock)
    state: PhoneState = field(default_factory=PhoneState)
    strict: bool = False  # tests: raise on an undeclared transition instead of logging it

    def __post_init__(self) -> None:
        if not self.state.last_activity:  # the screen saver counts from power-on
            self.state = replace(self.state, last_activity=self.clock.monotonic())

    def handle(self, event: Event) -> tuple[PhoneState, list[Action]]:
        state, actions = self._step(event)
        awake = self._screensaver(event)
        if awake is not None:
            self.state = state = replace(state, **awake)  # type: ignore[arg-type]
        return state, actions

    def _screensaver(self, event: Event) -> dict[str, object] | None:
        """Someone at the desk (a key, the hook, a ringing call) wakes the screen; an idle phone
        with nobody touching it for `screensaver_seconds` dims it. The content never changes."""
        s = self.state
        now = self.clock.monotonic()
        if isinstance(event, (KeyPressed, HookLifted, HookReplaced, IncomingCall)):
            return {"last_activity": now, "asleep": False} if s.asleep or \
                s.last_activity != now else None
        if isinstance(event, Tick):
            idle = s.mode == IDLE and s.call is None and not s.ringing and not s.off_hook
            asleep = bool(self.settings.screensaver_seconds) and idle and \
                now - s.last_activity >= self.settings.screensaver_seconds
            return {"asleep": asleep} if asleep != s.asleep else None
        if s.asleep and s.mode != IDLE:
            return {"asleep": False}
        return None

    def _step(self, event: Event) -> tuple[PhoneState, list[Action]]:
        state = self.state
        if isinstance(event, TimerFired):
            if (event.name, event.token) not in state.timers:
                log.debug("stale timer %s", event.name)
                return state, []
            state = replace(state, timers=tuple(t for t in state.timers if t[0] != event.name))
            if event.name == "message":
                self.state = replace(state, message="")
                return self.state, []
        if isinstance(event, (HookLifted, HookReplaced)) and \
                state.off_hook == isinstance(event, HookLifted):
            log.debug("hook bounce ignored: %s", type(event).__name__)
            return state, []
        row = _TABLE.get((state.mode, type(event)))
        if row is None:
            log.info("ignored %s in %s", type(event).__name__, state.mode)
            self.state = state
            return state, []
        step = Step(self, state)
        try:
            row.handler(step, event)
        except Exception:
            # A bug must not take the phone down: keep the old state and say so in the log.
            log.exception("handling %r in %s failed", event, state.mode)
            if self.strict:
                raise
            return self.state, []
        stays = SAME in row.targets and step.s.mode == state.mode
        if step.s.mode not in row.targets and not stays:
            message = (f"{row.handler.__name__}: {state.mode} -> {step.s.mode} on "
                       f"{type(event).__name__} is not in the table")
            if self.strict:
                raise TransitionError(message)
            log.error(message)
        self.state = step.s
        return step.s, step.actions

    def snapshot(self) -> Snapshot:
        """What the screen and /state show: the state plus the time it is now."""
        return Snapshot(state=self.state, settings=self.settings,
                        monotonic=self.clock.monotonic(), wall=self.clock.time())


@dataclass(frozen=True)
class Snapshot:
    """The Phone's state at one instant; screens and /state are pure functions of it."""

    state: PhoneState
    settings: Settings
    monotonic: float
    wall: float

    def call_seconds(self) -> int:
        call = self.state.call
        if call is None or call.connected_at is None:
            return 0
        return max(0, int(self.monotonic - call.connected_at))
