"""The vocabulary of the house: events (facts posted to the Phone) and actions (what it decides).

Owns: the frozen dataclasses every part of the firmware speaks, and the small value types they
carry (queue entries, contacts, call records). Never touches: state, I/O, threads or clocks.

Events are past-tense facts (`HookLifted`, `CallAnswered`); drivers and adapters post them and
never interpret them. Actions are imperative (`PlaceCall`, `Hangup`); only the Phone creates them
and only the daemon carries them out on the adapters. `Post` and `Adapter` are the contract
between the two: an adapter needs this module only, never the daemon, the Phone or the screens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

KEYS = "0123456789*#ABCD"
"""Every key of the 4x4 keypad, in the names the Phone understands."""


# --------------------------------------------------------------------------- value types


@dataclass(frozen=True)
class QueueEntry:
    """One call activity of today's queue (Odoo `mail.activity` of category phonecall)."""

    id: int
    name: str
    number: str
    summary: str = ""
    model: str = ""
    res_id: int = 0
    due: str = ""  # YYYY-MM-DD
    overdue: bool = False
    partner_id: int | None = None
    title: str = ""  # the record's own name (res_name): the lead "Office fit-out"


@dataclass(frozen=True)
class Contact:
    """A person the phone can call: from Odoo's contacts (or later a local book)."""

    id: int
    name: str
    numbers: tuple[str, ...]  # as stored; matching normalises them
    partner_id: int | None = None


@dataclass(frozen=True)
class CallRecord:
    """What the phone remembers of a call, for Recent and for the Odoo call log."""

    key: int  # the Phone's own call number, unique for this run
    direction: str  # "in" | "out"
    number: str
    name: str | None
    outcome: str  # "answered" | "missed" | "rejected" | "aborted" | "failed" | "transferred"
    started: float  # wall clock (epoch seconds)
    seconds: int  # talk time, 0 when never connected
    activity_id: int | None = None
    partner_id: int | None = None
    transferred_to: str | None = None  # the extension or number a transferred call went to


# --------------------------------------------------------------------------- events


class Event:
    """Base of every fact posted to the Phone's queue."""


# Keypad, hook and timers -------------------------------------------------------------


@dataclass(frozen=True)
class KeyPressed(Event):
    """A key went down and up. `long` is a press held past the long-press time."""

    key: str
    long: bool = False


@dataclass(frozen=True)
class HookLifted(Event):
    """The handset left its cradle."""


@dataclass(frozen=True)
class HookReplaced(Event):
    """The handset is back in its cradle."""


@dataclass(frozen=True)
class TimerFired(Event):
    """A timer the Phone started has run out. `token` tells a stale timer from a live one."""

    name: str
    token: int


@dataclass(frozen=True)
class Tick(Event):
    """Once a second from the daemon: the clock on screen and call durations move on."""


# SIP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationChanged(Event):
    """The SIP account's registration: "off" | "registering" | "registered" | "failed"."""

    status: str
    reason: str = ""


@dataclass(frozen=True)
class MessageWaiting(Event):
    """The voicemail box's count (RFC 3842 message-summary): new and old voice messages."""

    new: int
    old: int


@dataclass(frozen=True)
class IncomingCall(Event):
    """An INVITE reached the phone. `remote` is the caller's user part (number or extension)."""

    call_id: str
    remote: str
    display_name: str | None = None
    replaces: str | None = None  # the call this one takes the place of (INVITE with Replaces)


@dataclass(frozen=True)
class CallProgress(Event):
    """An outgoing call is ringing at the far end (180/183). `early_media`: the far end sends
    its own sound before answering (a 18x with SDP: ringback, an announcement), which the
    earpiece plays instead of the phone's ringback tone."""

    call_id: str
    early_media: bool = False


@dataclass(frozen=True)
class CallAnswered(Event):
    """The far end answered an outgoing call (200 OK)."""

    call_id: str


@dataclass(frozen=True)
class MediaEncrypted(Event):
    """The call's media is now encrypted (SRTP agreed in its SDP), or no longer is."""

    call_id: str
    encrypted: bool


@dataclass(frozen=True)
class MediaCodec(Event):
    """The codec the call's media uses from now on (its SDP's answer): "G722" is wideband."""

    call_id: str
    codec: str
    wideband: bool


@dataclass(frozen=True)
class CallEnded(Event):
    """A call is gone: the far end hung up, cancelled, or the call failed.

    `reason` is a code the Phone turns into words: "hangup" (BYE), "cancelled" (caller gave up),
    "busy", "declined", "not_found", "no_answer", "unavailable", "network", "no_service",
    "timeout" (no media) or "error". `detail` is extra text for the log (a SIP status line).
    """

    call_id: str
    reason: str = "hangup"
    detail: str = ""


@dataclass(frozen=True)
class TransferSucceeded(Event):
    """The far end accepted the REFER and reached the target: our leg is over."""

    call_id: str


@dataclass(frozen=True)
class TransferFailed(Event):
    """The transfer did not happen; the call is still ours. `reason` as in CallEnded."""

    call_id: str
    reason: str = "error"
    detail: str = ""


@dataclass(frozen=True)
class HoldChanged(Event):
    """The call went on hold or came back, by our request or the far end's."""

    call_id: str
    held: bool
    by_remote: bool = False


@dataclass(frozen=True)
class DtmfReceived(Event):
    """The far end sent a DTMF digit (RFC 4733)."""

    call_id: str
    digit: str


# Odoo --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OdooStatusChanged(Event):
    """Odoo's reachability: "off" | "connecting" | "online" | "offline" | "denied"."""

    status: str
    reason: str = ""


@dataclass(frozen=True)
class QueueUpdated(Event):
    """Today's call activities as Odoo (or the local cache) has them now."""

    entries: tuple[QueueEntry, ...]


@dataclass(frozen=True)
class ContactsUpdated(Event):
    """The contacts the phone can dial by name or number."""

    contacts: tuple[Contact, ...]


@dataclass(frozen=True)
class CallerIdentified(Event):
    """Odoo knows who is calling (or who was called)."""

    call_id: str
    name: str
    partner_id: int | None = None


@dataclass(frozen=True)
class HistoryLoaded(Event):
    """The calls the phone remembers from before it started (newest first), for Recent."""

    records: tuple[CallRecord, ...]


@dataclass(frozen=True)
class OutboxChanged(Event):
    """How many writes to Odoo are waiting in the outbox."""

    depth: int


@dataclass(frozen=True)
class ActivityDoneElsewhere(Event):
    """The activity the phone marked done was already done in Odoo (someone used the browser
    meanwhile); `note_added` when the person's feedback was posted on the record instead."""

    activity_id: int
    note_added: bool


@dataclass(frozen=True)
class AdapterFailed(Event):
    """A part of the phone (display, audio, Odoo ...) reports a problem a person should see."""

    part: str
    message: str


@dataclass(frozen=True)
class NetworkChanged(Event):
    """The phone's own network: its address, or None when it has none."""

    address: str | None


@dataclass(frozen=True)
class ReregisterAsked(Event):
    """Someone asked for a new registration now (the web page's button)."""


# --------------------------------------------------------------------------- actions


class Action:
    """Base of everything the Phone asks the daemon to do."""


@dataclass(frozen=True)
class PlaceCall(Action):
    """Call `target` (an extension or an E.164 number); events come back as `call_id`."""

    call_id: str
    target: str


@dataclass(frozen=True)
class Answer(Action):
    call_id: str


@dataclass(frozen=True)
class Reject(Action):
    """Refuse an incoming call with a SIP status: 486 busy, 603 decline, 480 unavailable."""

    call_id: str
    code: int = 486


@dataclass(frozen=True)
class Hangup(Action):
    """End the call in whatever state it is (CANCEL before answer, BYE after)."""

    call_id: str


@dataclass(frozen=True)
class Transfer(Action):
    """Blind transfer (extension) or forward (E.164 number) by REFER; with `replaces` (another
    call's id), attended: the far end of `call_id` takes our place in that call (RFC 5589)."""

    call_id: str
    target: str
    replaces: str | None = None


@dataclass(frozen=True)
class SendDtmf(Action):
    call_id: str
    digit: str


@dataclass(frozen=True)
class SetHold(Action):
    call_id: str
    held: bool


@dataclass(frozen=True)
class Conference(Action):
    """Mix these two calls and the handset: a local three-way conference, until one ends."""

    call_ids: tuple[str, str]


@dataclass(frozen=True)
class SetMute(Action):
    call_id: str
    muted: bool


@dataclass(frozen=True)
class PlayTone(Action):
    """Play a call-progress tone in the earpiece: "dial", "ringback", "busy", "congestion",
    or None for silence."""

    tone: str | None


@dataclass(frozen=True)
class Ring(Action):
    """Start or stop the ringer."""

    on: bool


@dataclass(frozen=True)
class StartTimer(Action):
    """Post `TimerFired(name, token)` after `seconds`; a new timer of the same name replaces it."""

    name: str
    seconds: float
    token: int


@dataclass(frozen=True)
class CancelTimer(Action):
    name: str


@dataclass(frozen=True)
class LogCall(Action):
    """A step of a call's life for Odoo's call log and the local history.

    `stage` is "started" (the call exists), "answered", or the end: "ended", "missed",
    "rejected", "aborted", "failed", "transferred".
    """

    stage: str
    record: CallRecord


@dataclass(frozen=True)
class MarkDone(Action):
    """Mark a call activity done in Odoo with a feedback line."""

    activity_id: int
    feedback: str


@dataclass(frozen=True)
class RemoveFromQueue(Action):
    """Delete a call activity from the queue in Odoo (the widget's red minus)."""

    activity_id: int


@dataclass(frozen=True)
class RefreshQueue(Action):
    """Ask Odoo for the queue now (after every call), not at the next poll."""


@dataclass(frozen=True)
class LookupCaller(Action):
    """Find the name behind a number in Odoo; answered by `CallerIdentified`."""

    call_id: str
    number: str


@dataclass(frozen=True)
class Reregister(Action):
    """Register again now (the network came back or the phone's address changed)."""


@dataclass(frozen=True)
class SetLed(Action):
    """The message / missed-call lamp, when the hardware has one."""

    on: bool



# --------------------------------------------------------------------------- adapters

Post = Callable[[Event], None]
"""How a driver or adapter hands a fact to the Phone: puts it on the one queue, returns at once."""


class Adapter(Protocol):
    """A part of the phone behind the loop: SIP, audio, display, keypad, Odoo, control API.

    `start` may post events (an initial status); `execute` receives only the action types listed
    in `handles` and must return at once; `stop` undoes `start`.
    """

    name: str
    handles: tuple[type[Action], ...]

    def start(self, post: Post) -> None: ...

    def execute(self, action: Action) -> None: ...

    def stop(self) -> None: ...
