"""The Phone: the one owner of phone state, as an explicit transition table.

Owns: `PhoneState` and every decision about what a key, a hook movement, a SIP or Odoo fact means
in the current state. `Phone.handle(event)` returns the new state and the actions to carry out.
Never touches: I/O, threads, sockets, devices or the wall clock beyond the injected `Clock`. It
never waits and never fails on an event: one that makes no sense in the current state (a bouncing
hook, a late SIP response, a key during ringing) is logged and ignored.

The table `TRANSITIONS` lists, for each mode, which events it reacts to, what else a row asks of
the event and the state (its guard: the key, the timer, "something typed"), and which modes it can
lead to. Each row's handler is typed for its event and does one thing; `handle` refuses (and logs)
a result outside the declared targets, and `docs/state-diagram.md` is generated from the same
table, with the keys on its arrows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, Protocol, TypeVar

from firmware import numbers
from firmware.config import PhoneConfig
from firmware.events import (
    Action,
    ActivityDoneElsewhere,
    AdapterFailed,
    Answer,
    CallAnswered,
    CallEnded,
    CallerIdentified,
    CallProgress,
    CallRecord,
    CancelTimer,
    Conference,
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
    MediaCodec,
    MediaEncrypted,
    MessageWaiting,
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
    ReregisterAsked,
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


MAX_CALLS = 2  # the active call and one held or waiting: a third gets 486


@dataclass(frozen=True)
class Call:
    """One call the phone has: the active one (`PhoneState.call`) or one held or waiting
    (`PhoneState.others`)."""

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
    early_media: bool = False  # ... and sends its own sound: no ringback tone of ours
    muted: bool = False
    held: bool = False
    held_by_remote: bool = False
    encrypted: bool = False  # SRTP: the screen shows a lock
    codec: str = ""  # of its media, once agreed
    wideband: bool = False  # G.722: the screen shows "HD"
    transfer_target: str | None = None
    recall: bool = False  # a held call ringing the phone again after the handset went down
    consult_for: str | None = None  # a consultation: the id of the caller held meanwhile
    conference: bool = False  # joined with the other call; its state says "conference" unless
    # a hold is in the way (a late 200 to a hold asked before the join, or the far end's own)


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
    call: Call | None = None  # the active call
    others: tuple[Call, ...] = ()  # held calls, and a call waiting (state "ringing")
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
    mwi: tuple[int, int] = (0, 0)  # voice messages waiting: (new, old)
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
    """The state under construction and the actions decided so far, for one event.

    Handlers change the state as `step.s = replace(step.s, ...)`: mypy checks every field name
    and type of a `dataclasses.replace`, so a misspelt field is a lint error, not a dropped event.
    """

    def __init__(self, phone: Phone, state: PhoneState) -> None:
        self.phone = phone
        self.s = state
        self.actions: list[Action] = []

    @property
    def settings(self) -> Settings:
        return self.phone.settings

    @property
    def active(self) -> Call:
        """The call, for handlers whose row only exists while there is one (the call modes)."""
        call = self.s.call
        if call is None:
            raise TransitionError("a call-mode handler ran without a call")
        return call

    def do(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def timer(self, name: str, seconds: float) -> None:
        token = self.s.next_token
        timers = (*tuple((n, t) for n, t in self.s.timers if n != name), (name, token))
        self.s = replace(self.s, timers=timers, next_token=token + 1)
        self.do(StartTimer(name, seconds, token))

    def cancel(self, *names: str) -> None:
        for name in names:
            if any(n == name for n, _ in self.s.timers):
                self.s = replace(self.s, timers=tuple((n, t) for n, t in self.s.timers
                                                      if n != name))
                self.do(CancelTimer(name))

    def tone(self, tone: str | None) -> None:
        if self.s.tone != tone:
            self.s = replace(self.s, tone=tone)
            self.do(PlayTone(tone))

    def ring(self, on: bool) -> None:
        if self.s.ringing != on:
            self.s = replace(self.s, ringing=on)
            self.do(Ring(on))

    def say(self, text: str) -> None:
        """A transient line on screen, cleared after message_seconds."""
        self.s = replace(self.s, message=text)
        if text:
            self.timer("message", self.settings.message_seconds)
        else:
            self.cancel("message")


# --------------------------------------------------------------------------- rows and guards


E = TypeVar("E", bound=Event)
T = TypeVar("T")


@dataclass(frozen=True)
class Guard:
    """What a row matches beyond the mode and the event type: a key, a timer, a condition of
    the state. `label` is what the state diagram writes on the arrow."""

    label: str  # "" = not worth an arrow's words (e.g. "the event is about this call")
    test: Callable[[PhoneState, Any], bool]

    def __and__(self, other: Guard) -> Guard:
        return Guard(" & ".join(g.label for g in (self, other) if g.label),
                     lambda s, e: self.test(s, e) and other.test(s, e))


def key(keys: str, long: bool | None = False, label: str = "") -> Guard:
    """A key among `keys`: a short press (`long=False`), a long one (True) or either (None)."""
    name = label or "/".join(keys)
    if long:
        name = f"long {name}"
    return Guard(name, lambda s, e: e.key in keys and (long is None or e.long == long))


def timer(name: str) -> Guard:
    return Guard(f"{name} timer", lambda s, e: e.name == name)


def when(label: str, test: Callable[[PhoneState], bool]) -> Guard:
    return Guard(label, lambda s, e: test(s))


DIGIT = key(DIAL_KEYS, long=None, label="digit")
ENTRY = when("typed", lambda s: bool(s.entry))
NO_ENTRY = when("nothing typed", lambda s: not s.entry)
ROOM = when("room left", lambda s: len(s.entry) < MAX_ENTRY)
REDIAL = when("a last number", lambda s: bool(s.last_dialled))
LISTED = when("an entry", lambda s: bool(_rows(s)))
FOUND = when("contacts found", lambda s: bool(matches(s)))
NOT_FOUND = when("none found", lambda s: not matches(s))
ON_HOOK = when("on hook", lambda s: not s.off_hook)
OFF_HOOK = when("off hook", lambda s: s.off_hook)
PAGE = when("a page open", lambda s: bool(s.menu_page))
LIST = when("the list", lambda s: not s.menu_page)
ON_DND = when("on DND", lambda s: MENU_ITEMS[s.selected % len(MENU_ITEMS)] == "dnd")
ON_PAGE_ITEM = when("on a page", lambda s: MENU_ITEMS[s.selected % len(MENU_ITEMS)] != "dnd")
DONE_PROMPT = when("done?", lambda s: s.prompt is not None and s.prompt.kind == "done")
REMOVE_PROMPT = when("remove?", lambda s: s.prompt is not None and s.prompt.kind == "remove")
CALLABLE = when("a number", lambda s: bool(s.entry or s.last_dialled))
# A SIP fact about the current call; late facts about old calls fall to the "late" rows.
OURS = Guard("", lambda s, e: s.call is not None and s.call.id == e.call_id)
STEADY = when("not transferring", lambda s: s.call is not None and s.call.state != "transferring")
WAITING = when("a call waiting", lambda s: _waiting(s) is not None)
HELD_OTHER = when("a call held", lambda s: _held(s) is not None)
# A SIP fact about the held or waiting call.
OTHER = Guard("", lambda s, e: any(c.id == e.call_id for c in s.others))
ONE_CALL = when("one call", lambda s: not s.others)
CONSULTING = when("consulting", lambda s: s.call is not None and s.call.consult_for is not None
                  and any(c.id == s.call.consult_for for c in s.others))
IN_CONF = when("in a conference", lambda s: _in_conference(s))
REPLACING = Guard("Replaces", lambda s, e: e.replaces is not None
                  and any(c.id == e.replaces for c in _calls(s)))


@dataclass(frozen=True)
class Transition(Generic[E]):
    """One row of the table: in `modes`, an `event` that passes `guard` is handled by `handler`
    (typed for that event) and leads to one of `targets`. Rows are tried in order; the first
    whose guard passes wins, so specific rows come before the catch-all ones."""

    modes: tuple[str, ...]
    event: type[E]
    targets: tuple[str, ...]
    handler: Callable[[Step, E], None]
    guard: Guard | None = None
    label: str = ""  # the arrow's label when no guard names it (a SIP response, "lift")
    does: str = ""  # what it does, for the table in docs/state-diagram.md

    @property
    def arrow(self) -> str:
        """What the state diagram writes on the arrow: the event and what the guard asks."""
        return " & ".join(x for x in (self.label, self.guard.label if self.guard else "") if x)


# --------------------------------------------------------------------------- helpers


def _key_char(event: KeyPressed, entry: str) -> str:
    """The character a dial key adds to an entry: long 0 is "+" at the start of a number."""
    if event.long and event.key == "0" and not entry:
        return "+"
    return event.key


def _rows(s: PhoneState) -> Sequence[object]:
    """The entries of the list open in this mode (queue, contacts, recent)."""
    if s.mode == QUEUE:
        return s.queue
    if s.mode == CONTACTS:
        return matches(s)
    if s.mode == RECENT:
        return s.recent
    return ()


def _selected(rows: Sequence[T], selected: int) -> T:
    return rows[min(selected, len(rows) - 1)]


def _rest(step: Step) -> None:
    """Back to where a phone rests for its hook position, with nothing typed."""
    step.cancel("interdigit", "offhook", "predial", "prompt")
    step.s = replace(step.s, entry="", selected=0, prompt=None, menu_page="")
    if step.s.off_hook:
        step.s = replace(step.s, mode=DIALING)
    else:
        step.s = replace(step.s, mode=IDLE)
        step.tone(None)


def _to_idle_or_dial(step: Step) -> None:
    """On hook: idle. Off hook: a fresh dial tone, as when the handset is lifted."""
    _rest(step)
    if step.s.off_hook:
        step.tone("dial")
        step.timer("offhook", step.settings.offhook_seconds)


def _record(step: Step, call: Call, outcome: str, transferred_to: str | None = None
            ) -> CallRecord:
    seconds = 0
    if call.connected_at is not None:
        seconds = max(0, round(step.phone.clock.monotonic() - call.connected_at))
    return CallRecord(key=call.key, direction=call.direction, number=call.remote, name=call.name,
                      outcome=outcome, started=call.started, seconds=seconds,
                      activity_id=call.activity_id, partner_id=call.partner_id,
                      transferred_to=transferred_to)


def _remember(step: Step, record: CallRecord) -> None:
    step.s = replace(step.s, recent=((record, *step.s.recent))[:MAX_RECENT])
    if record.outcome == "missed":
        step.s = replace(step.s, missed_unseen=step.s.missed_unseen + 1)
        step.do(SetLed(True))


def _end_call(step: Step, outcome: str, stage: str, message: str) -> None:
    """The active call is over: log it, forget it, and show what comes next (the other call,
    a prompt or rest)."""
    call = step.active
    record = _record(step, call, outcome,
                     call.transfer_target if stage == "transferred" else None)
    step.do(LogCall(stage, record))
    _remember(step, record)
    step.ring(False)
    if call.state == "ringing":
        step.cancel("ring")  # otherwise the timer is a waiting call's, which goes on
    step.s = replace(step.s, call=None)
    step.tone(None)
    if call.direction == "out" or call.activity_id is not None:
        step.do(RefreshQueue())
    if step.s.others:
        # The "done?" question waits for no one: the other call comes first.
        _next_call(step, call, message)
        return
    if call.activity_id is not None and call.connected_at is not None:
        entry = next((e for e in step.s.queue if e.id == call.activity_id), None)
        label = entry.name if entry else (call.name or call.remote)
        _rest(step)
        step.s = replace(step.s, mode=PROMPT, prompt=Prompt(
            kind="done", activity_id=call.activity_id, question="Mark call done?",
            detail=label, feedback=_feedback(step, call, record)))
        step.timer("prompt", step.settings.prompt_seconds)
        step.say(message)
        return
    _rest(step)
    step.say(message)


def _next_call(step: Step, ended: Call, message: str) -> None:
    """The active call ended with another one left: a waiting call rings as any call does (the
    call-waiting tone goes on while the handset is up: `D` answers); a held call stays on screen
    while the handset is up (long # resumes it; at once after a consultation: back to the
    caller) and rings the phone again (recall) once the handset is down, so no caller is
    forgotten on hold."""
    call, *rest = step.s.others
    step.cancel("interdigit", "offhook", "predial", "prompt")
    step.s = replace(step.s, others=tuple(rest), entry="", selected=0, prompt=None, menu_page="")
    if call.conference:
        # The conference is down to one party: an ordinary call.
        call = replace(call, conference=False)
        step.s = replace(step.s, mode=IN_CALL, call=replace(call, state=_steady_state(call)))
    elif call.state == "ringing":
        step.s = replace(step.s, mode=RINGING, call=call)
        if step.s.off_hook:
            step.tone("waiting")
        else:
            step.ring(True)
    elif step.s.off_hook:
        if ended.consult_for == call.id and call.held:
            step.do(SetHold(call.id, False))
            call = replace(call, held=False,
                           state="held" if call.held_by_remote else "connected")
        step.s = replace(step.s, mode=IN_CALL, call=call)
    else:
        step.s = replace(step.s, mode=RINGING, call=replace(call, recall=True))
        step.ring(True)
    step.say(message)


def _steady_state(call: Call) -> str:
    """What a call is, from its hold flags, once a hold or resume is through."""
    if call.held or call.held_by_remote:
        return "held"
    return "conference" if call.conference else "connected"


def _calls(s: PhoneState) -> tuple[Call, ...]:
    """Every call the phone holds, active first (as /state lists them)."""
    return s.others if s.call is None else (s.call, *s.others)


def _waiting(s: PhoneState) -> Call | None:
    return next((c for c in s.others if c.state == "ringing"), None)


def _held(s: PhoneState) -> Call | None:
    return next((c for c in s.others if c.state != "ringing" and not c.conference), None)


def _in_conference(s: PhoneState) -> bool:
    return s.call is not None and s.call.conference


def _other(step: Step, call_id: str) -> Call:
    call = next((c for c in step.s.others if c.id == call_id), None)
    if call is None:
        raise TransitionError("an other-call handler ran without that call")
    return call


def _update_other(step: Step, call: Call) -> None:
    """The held or waiting call with this id, replaced by `call`."""
    step.s = replace(step.s, others=tuple(call if c.id == call.id else c for c in step.s.others))


def _without(step: Step, call: Call) -> None:
    step.s = replace(step.s, others=tuple(c for c in step.s.others if c.id != call.id))


def _feedback(step: Step, call: Call, record: CallRecord) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.started))
    minutes, seconds = divmod(record.seconds, 60)
    who = step.settings.name + (f" ({step.settings.extension})" if step.settings.extension else "")
    return (f"Called {call.name or call.remote} ({call.remote}) from {who} on {when}, "
            f"{minutes} min {seconds:02d} s")


def _new_call(step: Step, call_id: str | None, direction: str, remote: str, state: str, *,
              name: str | None = None, partner_id: int | None = None,
              activity_id: int | None = None) -> Call:
    key = step.s.next_key
    step.s = replace(step.s, next_key=key + 1)
    return Call(id=call_id or f"out-{key}", key=key, direction=direction, remote=remote,
                state=state, started=step.phone.clock.time(), name=name, partner_id=partner_id,
                activity_id=activity_id)


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
    step.s = replace(step.s, mode=CALLING, call=call, entry="", last_dialled=typed, prompt=None,
                     selected=0)
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


def _predial(step: Step, entry: str) -> None:
    """On hook, the typed number waits on screen for `D` or the handset."""
    step.s = replace(step.s, mode=DIALING, entry=entry)
    step.timer("predial", step.settings.offhook_seconds)


# --------------------------------------------------------------------------- idle


def idle_digit(step: Step, event: KeyPressed) -> None:
    step.say("")
    _predial(step, _key_char(event, ""))


def open_queue(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, mode=QUEUE, selected=0)
    # The idle polls are slow (odoo/sync.py): a person looking at the queue gets it fresh.
    step.do(RefreshQueue())


def open_recent(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, mode=RECENT, selected=0, missed_unseen=0)
    step.do(SetLed(step.s.mwi[0] > 0))  # missed calls seen; a voice message still waits


def redial_now(step: Step, event: KeyPressed) -> None:
    _place(step, step.s.last_dialled)


def redial_shown(step: Step, event: KeyPressed) -> None:
    """Redial: the last number comes back; D again (or the handset) calls it."""
    _predial(step, step.s.last_dialled)


def open_menu(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, mode=MENU, selected=0, menu_page="")


def clear_message(step: Step, event: KeyPressed) -> None:
    step.say("")


def idle_lift(step: Step, event: HookLifted) -> None:
    step.s = replace(step.s, off_hook=True, mode=DIALING, entry="")
    step.say("")
    step.tone("dial")
    step.timer("offhook", step.settings.offhook_seconds)


# --------------------------------------------------------------------------- dialing


def dialing_digit(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, entry=step.s.entry + _key_char(event, step.s.entry))
    step.say("")
    if step.s.off_hook:
        step.tone(None)
        step.cancel("offhook")
        step.timer("interdigit", step.settings.interdigit_seconds)
    else:
        step.timer("predial", step.settings.offhook_seconds)


def dialing_delete(step: Step, event: KeyPressed) -> None:
    """C deletes a digit (long C: all); an empty entry on hook goes back to idle."""
    entry = "" if event.long else step.s.entry[:-1]
    step.s = replace(step.s, entry=entry)
    if not entry and not step.s.off_hook:
        step.cancel("predial")
        step.s = replace(step.s, mode=IDLE)
    elif not entry:
        step.cancel("interdigit")


def dialing_call(step: Step, event: KeyPressed) -> None:
    _place(step, step.s.entry or step.s.last_dialled)


def open_contacts(step: Step, event: KeyPressed) -> None:
    step.cancel("interdigit")
    step.s = replace(step.s, mode=CONTACTS, selected=0)


def no_contact(step: Step, event: KeyPressed) -> None:
    step.say("No contact found")


def dialing_lift(step: Step, event: HookLifted) -> None:
    step.s = replace(step.s, off_hook=True)
    step.cancel("predial")
    if step.s.entry:
        _place(step, step.s.entry)
    else:
        step.tone("dial")
        step.timer("offhook", step.settings.offhook_seconds)


def hang_up_idle(step: Step, event: HookReplaced) -> None:
    """The handset goes back with no call: whatever was typed or shown is dropped."""
    step.s = replace(step.s, off_hook=False)
    step.say("")
    _rest(step)


def interdigit_elapsed(step: Step, event: TimerFired) -> None:
    _place(step, step.s.entry)


def offhook_too_long(step: Step, event: TimerFired) -> None:
    step.tone("congestion")
    step.say("Replace the handset")


def predial_expired(step: Step, event: TimerFired) -> None:
    step.s = replace(step.s, mode=IDLE, entry="")


# --------------------------------------------------------------------------- lists


def move(step: Step, event: KeyPressed) -> None:
    """In a list, B moves to the next entry and * to the previous one (both wrap)."""
    count = len(MENU_ITEMS) if step.s.mode == MENU else len(_rows(step.s))
    if count:
        delta = 1 if event.key == "B" else -1
        step.s = replace(step.s, selected=(step.s.selected + delta) % count)


def call_queue_entry(step: Step, event: KeyPressed | HookLifted) -> None:
    step.s = replace(step.s, off_hook=step.s.off_hook or isinstance(event, HookLifted))
    entry = _selected(step.s.queue, step.s.selected)
    _place(step, entry.number, name=entry.name, activity_id=entry.id,
           partner_id=entry.partner_id)


def ask_remove(step: Step, event: KeyPressed) -> None:
    entry = _selected(step.s.queue, step.s.selected)
    step.s = replace(step.s, mode=PROMPT, prompt=Prompt(
        kind="remove", activity_id=entry.id, question="Remove from queue?", detail=entry.name))
    step.timer("prompt", step.settings.prompt_seconds)


def leave_list(step: Step, event: KeyPressed) -> None:
    _rest(step)


def list_digit(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, selected=0)
    _predial(step, _key_char(event, ""))


def call_contact(step: Step, event: KeyPressed | HookLifted) -> None:
    step.s = replace(step.s, off_hook=step.s.off_hook or isinstance(event, HookLifted))
    row = _selected(matches(step.s), step.s.selected)
    _place(step, row.number, name=row.contact.name, partner_id=row.contact.partner_id)


def back_to_dialing(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, mode=DIALING, selected=0)


def call_recent(step: Step, event: KeyPressed | HookLifted) -> None:
    step.s = replace(step.s, off_hook=step.s.off_hook or isinstance(event, HookLifted))
    row = _selected(step.s.recent, step.s.selected)
    _place(step, row.number, name=row.name, partner_id=row.partner_id)


def browse_lift(step: Step, event: HookLifted) -> None:
    """Lifting the handset where there is nothing to call gives a dial tone."""
    step.s = replace(step.s, off_hook=True)
    _to_idle_or_dial(step)


def toggle_dnd(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, dnd=not step.s.dnd)
    step.say("Do not disturb on" if step.s.dnd else "Do not disturb off")


def open_page(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, menu_page=MENU_ITEMS[step.s.selected % len(MENU_ITEMS)])


def close_page(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, menu_page="")


# --------------------------------------------------------------------------- prompt


def _answered(step: Step) -> Prompt:
    prompt = step.s.prompt
    if prompt is None:
        raise TransitionError("a prompt handler ran without a prompt")
    step.cancel("prompt")
    step.s = replace(step.s, queue=tuple(e for e in step.s.queue if e.id != prompt.activity_id),
                     prompt=None)
    return prompt


def confirm_done(step: Step, event: KeyPressed) -> None:
    prompt = _answered(step)
    step.do(MarkDone(prompt.activity_id, prompt.feedback))
    _rest(step)
    step.say("Marked done")


def confirm_remove(step: Step, event: KeyPressed) -> None:
    prompt = _answered(step)
    step.do(RemoveFromQueue(prompt.activity_id))
    step.s = replace(step.s, mode=QUEUE,
                     selected=min(step.s.selected, max(0, len(step.s.queue) - 1)))
    step.say("Removed from queue")


def leave_prompt(step: Step, event: KeyPressed | TimerFired) -> None:
    """No (or no answer): a removal goes back to the queue, a done question to rest."""
    prompt = step.s.prompt
    step.cancel("prompt")
    if prompt is not None and prompt.kind == "remove":
        step.s = replace(step.s, mode=QUEUE, prompt=None)
    else:
        _rest(step)


def prompt_hook(step: Step, event: HookLifted | HookReplaced) -> None:
    """The question stays on screen whatever the handset does."""
    step.s = replace(step.s, off_hook=isinstance(event, HookLifted))


# --------------------------------------------------------------------------- ringing


def incoming(step: Step, event: IncomingCall) -> None:
    s = step.s
    if any(c.id == event.call_id for c in _calls(s)):
        return  # a retransmitted INVITE of a call we already have
    name, partner_id = _name_for(s, event.remote, step.settings.region)
    call = _new_call(step, event.call_id, "in", event.remote, "ringing",
                     name=name or event.display_name or None, partner_id=partner_id)
    if s.mode in (IN_CALL, TRANSFER) and len(_calls(s)) < MAX_CALLS and \
            step.settings.call_waiting and not s.dnd:
        # Call waiting: the caller hears ringing, we hear the tone over the call; D answers.
        step.s = replace(step.s, others=(*s.others, call))
        step.tone("waiting")
        step.timer("ring", step.settings.ring_timeout_seconds)
        step.do(LogCall("started", _record(step, call, "ringing")))
        if name is None:
            step.do(LookupCaller(event.call_id, event.remote))
        return
    busy = s.call is not None or s.off_hook
    if busy or s.dnd:
        # A third call, a second one with call waiting off, a lifted handset or do-not-disturb
        # sends the caller away.
        step.do(Reject(event.call_id, 486 if busy else 480))
        record = _record(step, call, "missed")
        step.do(LogCall("missed", record))
        _remember(step, record)
        return
    step.cancel("interdigit", "offhook", "predial", "prompt")
    step.s = replace(step.s, mode=RINGING, call=call, entry="", selected=0, prompt=None,
                     menu_page="")
    step.say("")
    step.ring(True)
    step.timer("ring", step.settings.ring_timeout_seconds)
    step.do(LogCall("started", _record(step, call, "ringing")))
    if name is None:
        step.do(LookupCaller(event.call_id, event.remote))


def answer(step: Step, event: HookLifted | KeyPressed) -> None:
    step.s = replace(step.s, off_hook=True, mode=IN_CALL)
    step.ring(False)
    step.tone(None)
    step.cancel("ring")
    if step.active.recall:
        # The held call ringing again: taking it up resumes it (it was answered long ago).
        call = replace(step.active, recall=False)
        step.s = replace(step.s, call=call)
        step.do(SetHold(call.id, False))
        return
    call = replace(step.active, state="connected", connected_at=step.phone.clock.monotonic())
    step.s = replace(step.s, call=call)
    step.do(Answer(call.id), LogCall("answered", _record(step, call, "answered")))


def reject(step: Step, event: KeyPressed) -> None:
    if step.active.recall:
        step.do(Hangup(step.active.id))
        _end_call(step, "answered", "ended", "Call ended")
        return
    step.do(Reject(step.active.id, step.settings.reject_code))
    _end_call(step, "rejected", "rejected", "Call rejected")


def ring_timeout(step: Step, event: TimerFired) -> None:
    step.do(Reject(step.active.id, 480))
    _end_call(step, "missed", "missed", "Missed call")


def caller_gave_up(step: Step, event: CallEnded) -> None:
    if step.active.recall:
        _end_call(step, "answered", "ended", REASONS.get(event.reason, REASONS["error"]))
        return
    _end_call(step, "missed", "missed", "Missed call")


def ringing_on_hook(step: Step, event: HookReplaced) -> None:
    """The handset goes down while a call rings (a waiting call left alone): now the bell."""
    step.s = replace(step.s, off_hook=False)
    step.tone(None)
    step.ring(True)


# --------------------------------------------------------------------------- calls


def far_end_ringing(step: Step, event: CallProgress) -> None:
    early = step.active.early_media or event.early_media
    step.s = replace(step.s, call=replace(step.active, progress=True, early_media=early))
    if early:
        step.tone(None)  # the far end's own ringback or announcement is in the earpiece
    elif step.s.off_hook:
        step.tone("ringback")


def far_end_answered(step: Step, event: CallAnswered) -> None:
    call = replace(step.active, state="connected", connected_at=step.phone.clock.monotonic(),
                   progress=False, early_media=False)
    step.s = replace(step.s, mode=IN_CALL, call=call)
    step.tone(None)
    step.do(LogCall("answered", _record(step, call, "answered")))


def calling_lift(step: Step, event: HookLifted) -> None:
    step.s = replace(step.s, off_hook=True)
    if step.active.progress and not step.active.early_media:
        step.tone("ringback")


def call_failed(step: Step, event: CallEnded) -> None:
    _end_call(step, "failed", "failed", REASONS.get(event.reason, REASONS["error"]))
    if step.s.off_hook and step.s.mode == DIALING:
        step.cancel("offhook")
        step.tone("busy" if event.reason in ("busy", "declined", "no_answer") else "congestion")


def cancel_call(step: Step, event: KeyPressed) -> None:
    step.do(Hangup(step.active.id))
    _end_call(step, "aborted", "aborted", "Call cancelled")


def hang_up(step: Step, event: HookReplaced) -> None:
    """The handset goes back during a call: the call ends, whatever state it is in."""
    call = step.active
    step.s = replace(step.s, off_hook=False)
    step.do(Hangup(call.id))
    if call.connected_at is None:
        _end_call(step, "aborted", "aborted", "")
    else:
        _end_call(step, "answered", "ended", "")


def toggle_mute(step: Step, event: KeyPressed) -> None:
    call = step.active
    step.do(SetMute(call.id, not call.muted))
    if call.conference:  # one microphone for both parties
        for other in step.s.others:
            step.do(SetMute(other.id, not call.muted))
        step.s = replace(step.s, others=tuple(replace(c, muted=not call.muted)
                                              for c in step.s.others))
    # The screen shows "Muted" while it lasts.
    step.s = replace(step.s, call=replace(call, muted=not call.muted))


def toggle_hold(step: Step, event: KeyPressed) -> None:
    call = step.active
    if call.conference:
        step.say("Not in a conference")
        return
    step.do(SetHold(call.id, not call.held))
    step.say("Holding..." if not call.held else "Resuming...")


def send_dtmf(step: Step, event: KeyPressed) -> None:
    step.do(SendDtmf(step.active.id, event.key))


def open_transfer(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, mode=TRANSFER, entry="")
    step.say("")


def end_call_on_hook(step: Step, event: KeyPressed) -> None:
    """With the handset in its cradle, C is the only way to end the call."""
    step.do(Hangup(step.active.id))
    _end_call(step, "answered", "ended", "")


def far_end_hung_up(step: Step, event: CallEnded) -> None:
    _end_call(step, "answered", "ended", REASONS.get(event.reason, REASONS["error"]))
    if step.s.off_hook and step.s.mode == DIALING:
        step.tone("busy")


def _hold_applied(call: Call, event: HoldChanged) -> Call:
    """The call with a hold or resume (ours or the far end's) taken into its flags and state."""
    if event.by_remote:
        call = replace(call, held_by_remote=event.held)
    else:
        call = replace(call, held=event.held)
    return replace(call, state=_steady_state(call))


def hold_changed(step: Step, event: HoldChanged) -> None:
    call = _hold_applied(step.active, event)
    if not event.by_remote:
        # Held: the "On hold" flag says it (a message would say it twice); resumed: say so once.
        step.say("" if event.held or call.conference else "Resumed")
    step.s = replace(step.s, call=call)


def transfer_done(step: Step, event: TransferSucceeded) -> None:
    target = numbers.display(step.active.transfer_target or "", step.settings.region,
                             step.settings.max_extension_digits)
    _end_call(step, "answered", "transferred", f"Transferred to {target}")


def transfer_failed(step: Step, event: TransferFailed) -> None:
    call = step.active
    call = replace(call, state="held" if call.held or call.held_by_remote else "connected",
                   transfer_target=None)
    step.s = replace(step.s, mode=IN_CALL, call=call)
    step.say(f"Transfer failed: {REASONS.get(event.reason, REASONS['error'])}")


def transfer_digit(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, entry=step.s.entry + _key_char(event, step.s.entry))
    step.say("")


def transfer_delete(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, entry=step.s.entry[:-1])


def transfer_cancel(step: Step, event: KeyPressed) -> None:
    step.s = replace(step.s, mode=IN_CALL, entry="")
    step.say("Transfer cancelled")


def _typed_target(step: Step) -> str | None:
    """The transfer target typed so far, as dialled; None (and why, on screen) when it is not
    a number."""
    try:
        return numbers.dial_target(step.s.entry, step.settings.region,
                                   step.settings.max_extension_digits).value
    except numbers.NumberError as exc:
        step.say(str(exc))
        return None


def transfer_now(step: Step, event: KeyPressed) -> None:
    target = _typed_target(step)
    if target is None:
        return
    call = replace(step.active, state="transferring", transfer_target=target)
    step.s = replace(step.s, mode=IN_CALL, entry="", call=call)
    step.do(Transfer(call.id, target))


# --------------------------------------------------------------------------- two calls


def answer_waiting(step: Step, event: KeyPressed) -> None:
    """D with a call waiting: the active call is held (first, so the handset is never shared)
    and the waiting one answered."""
    waiting = _waiting(step.s)
    assert waiting is not None
    active = step.active
    if not active.held:
        step.do(SetHold(active.id, True))
    call = replace(waiting, state="connected", connected_at=step.phone.clock.monotonic())
    step.s = replace(step.s, call=call, others=(replace(active, held=True, state="held"),))
    step.cancel("ring")
    step.tone(None)
    step.say("")
    step.do(Answer(call.id), LogCall("answered", _record(step, call, "answered")))


def _waiting_gone(step: Step, waiting: Call, message: str) -> None:
    _without(step, waiting)
    step.cancel("ring")
    step.tone(None)
    record = _record(step, waiting, "missed")
    step.do(LogCall("missed", record))
    _remember(step, record)
    step.say(message)


def reject_waiting(step: Step, event: KeyPressed) -> None:
    waiting = _waiting(step.s)
    assert waiting is not None
    step.do(Reject(waiting.id, 486))
    _waiting_gone(step, waiting, "Call rejected")


def waiting_timeout(step: Step, event: TimerFired) -> None:
    waiting = _waiting(step.s)
    assert waiting is not None
    step.do(Reject(waiting.id, 480))
    _waiting_gone(step, waiting, "Missed call")


def other_ended(step: Step, event: CallEnded) -> None:
    """The waiting caller gave up (a missed call), or the held party hung up."""
    call = _other(step, event.call_id)
    if call.state == "ringing":
        _waiting_gone(step, call, "Missed call")
        return
    _without(step, call)
    record = _record(step, call, "answered")
    step.do(LogCall("ended", record))
    _remember(step, record)
    if _in_conference(step.s):
        alone = replace(step.active, conference=False)
        step.s = replace(step.s, call=replace(alone, state=_steady_state(alone)))
    step.say(f"{call.name or numbers.display(call.remote, step.settings.region)} hung up")


def other_hold_changed(step: Step, event: HoldChanged) -> None:
    _update_other(step, _hold_applied(_other(step, event.call_id), event))


def swap(step: Step, event: KeyPressed) -> None:
    """B with a call held: the active call is held and the held one resumed, in that order."""
    held = _held(step.s)
    assert held is not None
    active = step.active
    if not active.held:
        step.do(SetHold(active.id, True))
    step.do(SetHold(held.id, False))
    resumed = replace(held, held=False, state="held" if held.held_by_remote else "connected")
    step.s = replace(step.s, call=resumed, others=(replace(active, held=True, state="held"),))
    step.say("")


def consult(step: Step, event: KeyPressed) -> None:
    """D on a transfer target: the caller is held and the target called first (attended)."""
    target = _typed_target(step)
    if target is None:
        return
    if step.s.registration != "registered":
        step.say("No service: cannot call")
        return
    caller = step.active
    if not caller.held:
        step.do(SetHold(caller.id, True))
    name, partner_id = _name_for(step.s, target, step.settings.region)
    call = replace(_new_call(step, None, "out", target, "calling", name=name,
                             partner_id=partner_id), consult_for=caller.id)
    step.s = replace(step.s, mode=CALLING, call=call, entry="",
                     others=(replace(caller, held=True, state="held"),))
    step.say("")
    step.do(PlaceCall(call.id, target), LogCall("started", _record(step, call, "calling")))


def transfer_while_ringing(step: Step, event: KeyPressed) -> None:
    """A while the target still rings: the consultation is cancelled and the caller sent to
    the target (a blind transfer: Replaces cannot name a call nobody answered)."""
    consult_call = step.active
    caller = _other(step, consult_call.consult_for or "")
    step.do(Hangup(consult_call.id))
    record = _record(step, consult_call, "aborted")
    step.do(LogCall("aborted", record))
    _remember(step, record)
    step.tone(None)
    step.s = replace(step.s, mode=IN_CALL, others=(), call=replace(
        caller, state="transferring", transfer_target=consult_call.remote))
    step.do(Transfer(caller.id, consult_call.remote))


def join_transfer(step: Step, event: KeyPressed) -> None:
    """A with one call held and one active (after a consultation, or any two calls): the held
    party is sent to the active one and takes our place in that call (REFER with Replaces)."""
    held = _held(step.s) or (step.s.others[0] if _in_conference(step.s) else None)
    assert held is not None
    active = step.active
    if held.state == "transferring":
        return
    _update_other(step, replace(held, state="transferring", transfer_target=active.remote))
    step.say("Transferring…")
    step.do(Transfer(held.id, active.remote, replaces=active.id))


def joined(step: Step, event: TransferSucceeded) -> None:
    """The two parties talk to each other now: both our legs end."""
    moved = _other(step, event.call_id)
    _without(step, moved)
    record = _record(step, moved, "answered", moved.transfer_target)
    step.do(LogCall("transferred", record))
    _remember(step, record)
    target = numbers.display(moved.transfer_target or "", step.settings.region,
                             step.settings.max_extension_digits)
    step.do(Hangup(step.active.id))
    _end_call(step, "answered", "ended", f"Transferred to {target}")


def join_failed(step: Step, event: TransferFailed) -> None:
    """The completion failed: both calls stay as they were, and the screen says why."""
    moved = _other(step, event.call_id)
    _update_other(step, replace(moved, transfer_target=None,
                                state="held" if moved.held or moved.held_by_remote
                                else "connected"))
    step.say(f"Transfer failed: {REASONS.get(event.reason, REASONS['error'])}")


def end_consult(step: Step, event: KeyPressed) -> None:
    """C in a consultation: it ends and the caller comes back."""
    step.do(Hangup(step.active.id))
    _end_call(step, "answered", "ended", "Back to the caller")


def replaced(step: Step, event: IncomingCall) -> None:
    """An INVITE with Replaces (we are the target of someone's attended transfer): the new
    party takes the old one's place at once, no ringing; the old leg ends."""
    old = next(c for c in _calls(step.s) if c.id == event.replaces)
    name, partner_id = _name_for(step.s, event.remote, step.settings.region)
    call = replace(_new_call(step, event.call_id, "in", event.remote, "connected",
                             name=name or event.display_name or None, partner_id=partner_id),
                   connected_at=step.phone.clock.monotonic())
    step.do(Answer(call.id), LogCall("started", _record(step, call, "ringing")),
            LogCall("answered", _record(step, call, "answered")))
    if old.held:
        step.do(SetHold(call.id, True))  # it takes the held call's place: held too
        call = replace(call, held=True, state="held")
    step.do(Hangup(old.id))
    record = _record(step, old, "answered")
    step.do(LogCall("ended", record))
    _remember(step, record)
    if step.s.call is not None and step.s.call.id == old.id:
        step.s = replace(step.s, call=call)
    else:
        step.s = replace(step.s, others=tuple(call if c.id == old.id else c
                                              for c in step.s.others))
    step.say(f"Now with {call.name or numbers.display(call.remote, step.settings.region)}")


def join_conference(step: Step, event: KeyPressed) -> None:
    """Long B with one call held: both parties and the handset, mixed by the phone."""
    held = _held(step.s)
    assert held is not None
    active = step.active
    if held.state == "transferring":
        return
    for call in (active, held):
        if call.held:
            step.do(SetHold(call.id, False))
    step.do(Conference((active.id, held.id)))
    step.s = replace(step.s, call=replace(active, held=False, state="conference",
                                          conference=True),
                     others=(replace(held, held=False, state="conference", conference=True),))
    step.say("Conference")


def end_conference(step: Step, event: KeyPressed | HookReplaced) -> None:
    """The handset goes down (or C with it down): both parties are hung up."""
    if isinstance(event, HookReplaced):
        step.s = replace(step.s, off_hook=False)
    for call in step.s.others:
        step.do(Hangup(call.id))
        record = _record(step, call, "answered")
        step.do(LogCall("ended", record))
        _remember(step, record)
    step.s = replace(step.s, others=())
    step.do(Hangup(step.active.id))
    _end_call(step, "answered", "ended", "Conference ended")


def call_voicemail(step: Step, event: KeyPressed) -> None:
    number = step.settings.voicemail
    if not number:
        step.say("No voicemail number set")
        return
    _place(step, number, name="Voicemail")


# --------------------------------------------------------------------------- anywhere


def registration(step: Step, event: RegistrationChanged) -> None:
    step.s = replace(step.s, registration=event.status, registration_reason=event.reason)


def odoo_status(step: Step, event: OdooStatusChanged) -> None:
    step.s = replace(step.s, odoo=event.status, odoo_reason=event.reason)


def media_encrypted(step: Step, event: MediaEncrypted) -> None:
    """Whichever call it is (active, held or waiting), it carries the lock from now on."""
    _update_call(step, event.call_id, encrypted=event.encrypted)


def media_codec(step: Step, event: MediaCodec) -> None:
    """Whichever call it is, its codec (and "HD" for a wideband one) from now on."""
    _update_call(step, event.call_id, codec=event.codec, wideband=event.wideband)


def _update_call(step: Step, call_id: str, **changes: Any) -> None:
    call = step.s.call
    if call is not None and call.id == call_id:
        step.s = replace(step.s, call=replace(call, **changes))
        return
    other = next((c for c in step.s.others if c.id == call_id), None)
    if other is not None:
        _update_other(step, replace(other, **changes))


def message_waiting(step: Step, event: MessageWaiting) -> None:
    before = step.s.mwi[0] > 0
    step.s = replace(step.s, mwi=(max(0, event.new), max(0, event.old)))
    if (step.s.mwi[0] > 0) != before:
        # The lamp blinks while a voice message or a missed call waits to be seen.
        step.do(SetLed(step.s.mwi[0] > 0 or step.s.missed_unseen > 0))


def outbox(step: Step, event: OutboxChanged) -> None:
    step.s = replace(step.s, outbox=event.depth)


def done_elsewhere(step: Step, event: ActivityDoneElsewhere) -> None:
    # Nothing the person wrote is lost, and they hear why the feedback became a note.
    step.say("Already done in Odoo: note added" if event.note_added else
             "Already done in Odoo")


def network(step: Step, event: NetworkChanged) -> None:
    before = step.s.address
    step.s = replace(step.s, address=event.address)
    if event.address and before != "" and before != event.address:
        # Back from no network, or a new address (DHCP, Wi-Fi roaming): the registrar must
        # hear from us now, not at the next refresh minutes away.
        step.do(Reregister())


def reregister_asked(step: Step, event: ReregisterAsked) -> None:
    step.do(Reregister())


def queue_updated(step: Step, event: QueueUpdated) -> None:
    s = step.s
    ordered = queue_order(event.entries)
    selected = s.selected
    if s.mode == QUEUE:
        selected = 0
        if s.queue:
            # Keep the highlight on the same activity when the list refreshes under it.
            current = s.queue[min(s.selected, len(s.queue) - 1)].id
            selected = next((i for i, e in enumerate(ordered) if e.id == current),
                            min(s.selected, max(0, len(ordered) - 1)))
    step.s = replace(step.s, queue=ordered, selected=selected)


def contacts_updated(step: Step, event: ContactsUpdated) -> None:
    step.s = replace(step.s, directory=index_contacts(event.contacts, step.settings.region))
    if step.s.mode == CONTACTS and not matches(step.s):
        step.s = replace(step.s, mode=DIALING, selected=0)


def history_loaded(step: Step, event: HistoryLoaded) -> None:
    """Recent calls from before a restart go after the ones made since."""
    seen = {(r.key, r.started) for r in step.s.recent}
    older = tuple(r for r in event.records if (r.key, r.started) not in seen)
    step.s = replace(step.s, recent=(step.s.recent + older)[:MAX_RECENT])


def caller_identified(step: Step, event: CallerIdentified) -> None:
    call = step.s.call
    if call is not None and call.id == event.call_id:
        call = replace(call, name=event.name, partner_id=event.partner_id)
        step.s = replace(step.s, call=call)
    step.s = replace(step.s, others=tuple(
        replace(c, name=event.name, partner_id=event.partner_id) if c.id == event.call_id else c
        for c in step.s.others))


def late_call_event(step: Step, event: Event) -> None:
    """A SIP fact for a call we no longer have (or never had)."""
    log.info("ignored %s: no such call", type(event).__name__)


def dtmf_in(step: Step, event: DtmfReceived) -> None:
    """Nothing to decide: the daemon logs it."""


def adapter_failed(step: Step, event: AdapterFailed) -> None:
    problems = tuple(p for p in step.s.problems if p[0] != event.part)
    if event.message:
        problems += ((event.part, event.message),)
    step.s = replace(step.s, problems=problems)


def nothing(step: Step, event: Event) -> None:
    """The event changes no state (the daemon still redraws: the clock moved)."""


def ignore_lift(step: Step, event: HookLifted) -> None:
    step.s = replace(step.s, off_hook=True)


# --------------------------------------------------------------------------- the table

SAME = "="  # in `targets`: the mode the event arrived in
BROWSE = (IDLE, DIALING, QUEUE, CONTACTS, RECENT, MENU, PROMPT)
ANY = MODES
MOVE = key("B*", long=None, label="B/*")
Row = Transition

TRANSITIONS: tuple[Transition[Any], ...] = (
    # idle: the phone at rest, handset down
    Row((IDLE,), KeyPressed, (CALLING, IDLE), call_voicemail, key("1", long=True),
        does="calls the voicemail"),
    Row((IDLE,), KeyPressed, (DIALING,), idle_digit, DIGIT, does="pre-dial"),
    Row((IDLE,), KeyPressed, (RECENT,), open_recent, key("B", long=True), does="recent calls"),
    Row((IDLE,), KeyPressed, (QUEUE,), open_queue, key("B"), does="today's call queue"),
    Row((IDLE,), KeyPressed, (CALLING, IDLE), redial_now, key("D", long=True) & REDIAL,
        does="calls the last number"),
    Row((IDLE,), KeyPressed, (DIALING,), redial_shown, key("D") & REDIAL,
        does="the last number, to call"),
    Row((IDLE,), KeyPressed, (MENU,), open_menu, key("A", long=True), does="the menu"),
    Row((IDLE,), KeyPressed, (IDLE,), clear_message, key("C", long=None), does="clears a message"),
    Row((IDLE,), HookLifted, (DIALING,), idle_lift, label="lift", does="dial tone"),
    # dialing: digits typed, on hook (pre-dial) or off hook (dial tone)
    Row((DIALING,), KeyPressed, (CALLING, DIALING), call_voicemail,
        key("1", long=True) & NO_ENTRY, does="calls the voicemail"),
    Row((DIALING,), KeyPressed, (DIALING,), dialing_digit, DIGIT & ROOM),
    Row((DIALING,), KeyPressed, (DIALING, IDLE), dialing_delete, key("C", long=None),
        does="deletes a digit (long: all); empty on hook: idle"),
    Row((DIALING,), KeyPressed, (CALLING, DIALING), dialing_call, key("D", long=None) & CALLABLE,
        does="calls the number (or the last one)"),
    Row((DIALING,), KeyPressed, (CONTACTS,), open_contacts, key("B", long=None) & FOUND,
        does="the contacts the digits find"),
    Row((DIALING,), KeyPressed, (DIALING,), no_contact, key("B", long=None) & NOT_FOUND),
    Row((DIALING,), HookLifted, (DIALING, CALLING), dialing_lift, label="lift",
        does="calls the pre-typed number"),
    Row((DIALING, QUEUE, CONTACTS, RECENT, MENU), HookReplaced, (IDLE,), hang_up_idle,
        label="replace"),
    Row((DIALING,), TimerFired, (CALLING, DIALING), interdigit_elapsed,
        timer("interdigit") & ENTRY, does="calls what was typed"),
    Row((DIALING,), TimerFired, (DIALING,), offhook_too_long, timer("offhook"),
        does='"Replace the handset"'),
    Row((DIALING,), TimerFired, (IDLE,), predial_expired, timer("predial")),
    # the lists: queue, contacts, recent, menu
    Row((QUEUE, CONTACTS, RECENT), KeyPressed, (SAME,), move, MOVE, does="next / previous"),
    Row((MENU,), KeyPressed, (MENU,), move, MOVE & LIST, does="next / previous"),
    Row((QUEUE,), KeyPressed, (CALLING, QUEUE), call_queue_entry, key("D") & LISTED),
    Row((QUEUE,), KeyPressed, (PROMPT,), ask_remove, key("#") & LISTED, does="remove?"),
    Row((QUEUE,), KeyPressed, (DIALING,), list_digit, key("0123456789", long=None, label="digit"),
        does="pre-dial"),
    Row((QUEUE, RECENT), KeyPressed, (IDLE, DIALING), leave_list, key("C", long=None)),
    Row((QUEUE,), HookLifted, (CALLING, DIALING, SAME), call_queue_entry, LISTED,
        label="lift", does="calls the selected entry"),
    Row((CONTACTS,), KeyPressed, (CALLING, CONTACTS), call_contact, key("D") & LISTED),
    Row((CONTACTS,), KeyPressed, (DIALING,), back_to_dialing, key("C", long=None)),
    Row((CONTACTS,), HookLifted, (CALLING, DIALING, SAME), call_contact, LISTED, label="lift",
        does="calls the selected contact"),
    Row((RECENT,), KeyPressed, (CALLING, RECENT), call_recent, key("D") & LISTED,
        does="calls back"),
    Row((RECENT,), HookLifted, (CALLING, DIALING, SAME), call_recent, LISTED, label="lift",
        does="calls the selected entry"),
    Row((QUEUE, CONTACTS, RECENT, MENU), HookLifted, (DIALING,), browse_lift, label="lift",
        does="nothing to call: dial tone"),
    Row((MENU,), KeyPressed, (MENU,), close_page, key("CD", long=None) & PAGE,
        does="back to the list"),
    Row((MENU,), KeyPressed, (MENU,), toggle_dnd, key("D", long=None) & LIST & ON_DND,
        does="do not disturb on/off"),
    Row((MENU,), KeyPressed, (MENU,), open_page, key("D", long=None) & LIST & ON_PAGE_ITEM,
        does="opens the item"),
    Row((MENU,), KeyPressed, (IDLE, DIALING), leave_list, key("C", long=None) & LIST),
    # prompt: a question on screen
    Row((PROMPT,), KeyPressed, (IDLE, DIALING), confirm_done, key("D", long=None) & DONE_PROMPT,
        does="marks the activity done"),
    Row((PROMPT,), KeyPressed, (QUEUE,), confirm_remove,
        key("D", long=None) & REMOVE_PROMPT, does="removes the activity"),
    Row((PROMPT,), KeyPressed, (IDLE, DIALING, QUEUE), leave_prompt, key("C", long=None),
        does="keeps the activity"),
    Row((PROMPT,), TimerFired, (IDLE, DIALING, QUEUE), leave_prompt, timer("prompt"),
        does="no answer: keep"),
    Row((PROMPT,), HookLifted, (PROMPT,), prompt_hook, label="lift"),
    Row((PROMPT,), HookReplaced, (PROMPT,), prompt_hook, label="replace"),
    # a call arrives, rings
    Row(BROWSE, IncomingCall, (RINGING, SAME), incoming, label="INVITE",
        does="rings; off hook or DND: 486/480 and missed"),
    Row((RINGING,), HookLifted, (IN_CALL,), answer, label="lift",
        does="answer (a recalled held call: resume)"),
    Row((RINGING,), KeyPressed, (IN_CALL,), answer, key("D", long=None) & OFF_HOOK,
        does="answer with the handset already up"),
    Row((RINGING,), HookReplaced, (RINGING,), ringing_on_hook, label="replace",
        does="the bell rings"),
    Row((RINGING,), KeyPressed, (IDLE,), reject, key("C", long=None), does="reject"),
    Row((RINGING,), TimerFired, (IDLE,), ring_timeout, timer("ring"), does="missed"),
    Row((RINGING,), CallEnded, (IDLE,), caller_gave_up, OURS, label="CANCEL", does="missed"),
    # calling out
    Row((CALLING,), CallProgress, (CALLING,), far_end_ringing, OURS, label="180",
        does="ringback"),
    Row((CALLING,), CallAnswered, (IN_CALL,), far_end_answered, OURS, label="200"),
    Row((CALLING,), HookLifted, (CALLING,), calling_lift, label="lift"),
    Row((CALLING,), CallEnded, (IDLE, DIALING, IN_CALL, RINGING), call_failed, OURS,
        label="failure", does="busy, not found, no answer ..."),
    Row((CALLING,), KeyPressed, (IN_CALL,), transfer_while_ringing, key("A") & CONSULTING,
        does="the target still rings: blind transfer"),
    Row((CALLING,), KeyPressed, (IDLE, DIALING, IN_CALL, RINGING), cancel_call,
        key("C", long=None), does="cancel (a consultation: back to the caller)"),
    Row((IN_CALL,), HookReplaced, (IDLE, PROMPT), end_conference, IN_CONF, label="replace",
        does="ends the conference: both hung up"),
    Row((CALLING, IN_CALL, TRANSFER), HookReplaced, (IDLE, PROMPT, RINGING), hang_up,
        label="replace", does="hang up; a held call rings again"),
    # two calls: one waiting or held beside the active one
    Row((IN_CALL,), KeyPressed, (IN_CALL,), answer_waiting, key("D", long=None) & WAITING & STEADY,
        does="answers the waiting call, holds this one"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), reject_waiting, key("C", long=None) & WAITING,
        does="rejects the waiting call (486)"),
    Row((IN_CALL, TRANSFER), TimerFired, (SAME,), waiting_timeout, timer("ring") & WAITING,
        does="the waiting call is missed"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), swap, key("B") & HELD_OTHER & STEADY,
        does="swaps the active and the held call"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), join_transfer, key("A") & HELD_OTHER & STEADY,
        does="attended transfer: REFER with Replaces"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), join_conference,
        key("B", long=True) & HELD_OTHER & STEADY, does="three-way conference"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), join_transfer, key("A") & IN_CONF,
        does="leaves the two parties talking (REFER with Replaces)"),
    Row((IN_CALL,), KeyPressed, (IDLE, PROMPT), end_conference,
        key("C", long=None) & IN_CONF & ON_HOOK, does="ends the conference"),
    Row((IN_CALL,), KeyPressed, (IN_CALL, RINGING, IDLE, PROMPT), end_consult,
        key("C", long=None) & CONSULTING, does="ends the consultation, back to the caller"),
    Row((IN_CALL, TRANSFER), TransferSucceeded, (IDLE, DIALING, PROMPT, RINGING, IN_CALL),
        joined, OTHER, label="NOTIFY 200", does="both legs end"),
    Row((IN_CALL, TRANSFER), TransferFailed, (SAME,), join_failed, OTHER,
        label="REFER failed", does="both calls kept, the reason on screen"),
    Row((CALLING, IN_CALL, TRANSFER), CallEnded, (SAME,), other_ended, OTHER,
        label="BYE/CANCEL", does="the held or waiting party hung up"),
    Row((CALLING, IN_CALL, TRANSFER), HoldChanged, (SAME,), other_hold_changed, OTHER,
        label="hold"),
    Row((CALLING, IN_CALL, TRANSFER), DtmfReceived, (SAME,), dtmf_in, OTHER, label="DTMF"),
    Row((CALLING, IN_CALL, TRANSFER), IncomingCall, (SAME,), replaced, REPLACING,
        label="INVITE Replaces", does="the new party takes the old one's place"),
    # in a call
    Row((IN_CALL,), KeyPressed, (IN_CALL,), toggle_mute, key("*", long=True) & STEADY,
        does="mute"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), toggle_hold, key("#", long=True) & STEADY,
        does="hold"),
    Row((IN_CALL,), KeyPressed, (IN_CALL,), send_dtmf, key(DIAL_KEYS, label="digit") & STEADY,
        does="DTMF"),
    Row((IN_CALL,), KeyPressed, (TRANSFER,), open_transfer, key("A", long=None) & STEADY,
        does="transfer to ..."),
    Row((IN_CALL,), KeyPressed, (IDLE, PROMPT, RINGING), end_call_on_hook,
        key("C", long=None) & ON_HOOK & STEADY, does="hang up (handset down)"),
    Row((IN_CALL, TRANSFER), CallEnded, (IDLE, DIALING, PROMPT, RINGING, IN_CALL),
        far_end_hung_up, OURS, label="BYE", does="the other call, if any, comes next"),
    Row((IN_CALL, TRANSFER, RINGING), HoldChanged, (SAME,), hold_changed, OURS, label="hold"),
    Row((IN_CALL, TRANSFER), DtmfReceived, (SAME,), dtmf_in, OURS, label="DTMF"),
    Row((IN_CALL, TRANSFER), CallAnswered, (SAME,), nothing, OURS, label="200",
        does="our answer confirmed"),
    Row((IN_CALL,), TransferSucceeded, (IDLE, DIALING, PROMPT, RINGING, IN_CALL), transfer_done,
        OURS, label="NOTIFY 200"),
    Row((IN_CALL, TRANSFER), TransferFailed, (IN_CALL,), transfer_failed, OURS,
        label="REFER failed", does="back to the call, reason on screen"),
    Row((TRANSFER,), KeyPressed, (TRANSFER,), transfer_digit, DIGIT & ROOM),
    Row((TRANSFER,), KeyPressed, (TRANSFER,), transfer_delete, key("C") & ENTRY,
        does="deletes a digit"),
    Row((TRANSFER,), KeyPressed, (IN_CALL,), transfer_cancel, key("C", long=None),
        does="nothing typed or long C: cancel"),
    Row((TRANSFER,), KeyPressed, (IN_CALL, TRANSFER), transfer_now, key("A", long=None),
        does="blind transfer (REFER)"),
    Row((TRANSFER,), KeyPressed, (CALLING, TRANSFER), consult, key("D", long=None) & ONE_CALL,
        does="calls the target first, the caller held"),
    Row((CALLING, IN_CALL, TRANSFER, RINGING), IncomingCall, (SAME,), incoming,
        label="INVITE", does="waits (call waiting), or 486 and missed"),
    Row((IN_CALL, TRANSFER), HookLifted, (SAME,), ignore_lift, label="lift",
        does="handset taken up during a call"),
    # facts every mode takes the same way
    Row(ANY, RegistrationChanged, (SAME,), registration, label="registration"),
    Row(ANY, OdooStatusChanged, (SAME,), odoo_status, label="odoo"),
    Row(ANY, OutboxChanged, (SAME,), outbox, label="outbox"),
    Row(ANY, ActivityDoneElsewhere, (SAME,), done_elsewhere, label="done in Odoo"),
    Row(ANY, NetworkChanged, (SAME,), network, label="network"),
    Row(ANY, ReregisterAsked, (SAME,), reregister_asked, label="register now",
        does="the web page's button"),
    Row(ANY, MessageWaiting, (SAME,), message_waiting, label="voicemail count"),
    Row(ANY, MediaEncrypted, (SAME,), media_encrypted, label="encrypted media"),
    Row(ANY, MediaCodec, (SAME,), media_codec, label="codec agreed"),
    Row(ANY, QueueUpdated, (SAME,), queue_updated, label="queue"),
    Row(ANY, ContactsUpdated, (SAME, DIALING), contacts_updated, label="contacts"),
    Row(ANY, CallerIdentified, (SAME,), caller_identified, label="caller name"),
    Row(ANY, HistoryLoaded, (SAME,), history_loaded, label="history"),
    Row(ANY, AdapterFailed, (SAME,), adapter_failed, label="problem"),
    Row(ANY, Tick, (SAME,), nothing, label="tick"),
    Row(ANY, TimerFired, (SAME,), nothing, label="timer", does="a timer of another mode"),
    Row(ANY, CallEnded, (SAME,), late_call_event, label="late"),
    Row(ANY, CallAnswered, (SAME,), late_call_event, label="late"),
    Row(ANY, CallProgress, (SAME,), late_call_event, label="late"),
    Row(ANY, TransferSucceeded, (SAME,), late_call_event, label="late"),
    Row(ANY, TransferFailed, (SAME,), late_call_event, label="late"),
    Row(ANY, HoldChanged, (SAME,), late_call_event, label="late"),
    Row(ANY, DtmfReceived, (SAME,), late_call_event, label="late"),
)


def _index(rows: tuple[Transition[Any], ...]) -> dict[tuple[str, type[Event]],
                                                        list[Transition[Any]]]:
    """The rows each (mode, event type) may take, in table order: the first whose guard passes
    wins, so specific rows listed above the catch-all ones take precedence."""
    table: dict[tuple[str, type[Event]], list[Transition[Any]]] = {}
    for row in rows:
        for mode in row.modes:
            table.setdefault((mode, row.event), []).append(row)
    return table


_TABLE = _index(TRANSITIONS)


def route(state: PhoneState, event: Event) -> Transition[Any] | None:
    """The row that takes `event` in `state`, or None when nothing does."""
    for row in _TABLE.get((state.mode, type(event)), ()):
        if row.guard is None or row.guard.test(state, event):
            return row
    return None


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
        self.state = state = self._screensaver(event, state)
        return state, actions

    def _screensaver(self, event: Event, s: PhoneState) -> PhoneState:
        """Someone at the desk (a key, the hook, a ringing call) wakes the screen; an idle phone
        with nobody touching it for `screensaver_seconds` dims it. The content never changes."""
        now = self.clock.monotonic()
        if isinstance(event, (KeyPressed, HookLifted, HookReplaced, IncomingCall)):
            if s.asleep or s.last_activity != now:
                return replace(s, last_activity=now, asleep=False)
            return s
        if isinstance(event, Tick):
            idle = s.mode == IDLE and s.call is None and not s.ringing and not s.off_hook
            asleep = bool(self.settings.screensaver_seconds) and idle and \
                now - s.last_activity >= self.settings.screensaver_seconds
            return replace(s, asleep=asleep) if asleep != s.asleep else s
        if s.asleep and s.mode != IDLE:
            return replace(s, asleep=False)
        return s

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
        row = route(state, event)
        if row is None:
            # A key with no meaning here, or a fact for another mode: logged and ignored.
            log.info("ignored %s in %s", event, state.mode)
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

    def call_seconds(self, call: Call | None = None) -> int:
        """How long a call (the active one by default) has been connected."""
        call = call or self.state.call
        if call is None or call.connected_at is None:
            return 0
        return max(0, int(self.monotonic - call.connected_at))

    def calls(self) -> tuple[Call, ...]:
        """Every call, active first."""
        return _calls(self.state)
