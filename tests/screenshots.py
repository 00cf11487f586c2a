"""Every screen of the phone, set up through the pure Phone: the golden images in docs/screens
are made from these scenarios (`UPDATE_GOLDEN=1 pytest tests/unit/test_screens.py`)."""

from __future__ import annotations

from collections.abc import Callable

from firmware.events import (
    CallEnded,
    CallProgress,
    Contact,
    ContactsUpdated,
    HoldChanged,
    MediaCodec,
    MediaEncrypted,
    OdooStatusChanged,
    OutboxChanged,
    QueueUpdated,
    RegistrationChanged,
    TransferFailed,
)
from tests.phonekit import Driver, queue_entries

CONTACTS = (
    Contact(1, "Zoë Dupont", ("0470 12 34 56",), 51),
    Contact(2, "Marc Zöller", ("+49 30 1234567",), 52),
)


def _base() -> Driver:
    d = Driver().registered()
    d.feed(OdooStatusChanged("online"), QueueUpdated(queue_entries()), ContactsUpdated(CONTACTS))
    return d


def idle() -> Driver:
    return _base()


def idle_no_service() -> Driver:
    d = Driver()
    d.feed(RegistrationChanged("failed", "Wrong password (401)"),
           OdooStatusChanged("offline", "timeout"), OutboxChanged(2))
    return d


def idle_registering() -> Driver:
    d = Driver()
    d.feed(RegistrationChanged("registering"), OdooStatusChanged("online"))
    return d


def dial_tone() -> Driver:
    d = _base()
    d.lift()
    return d


def dialing() -> Driver:
    d = _base()
    d.lift()
    d.keys("+32470123")
    return d


def dialing_t9() -> Driver:
    d = _base()
    d.keys("96")
    return d


def contacts() -> Driver:
    d = _base()
    d.keys("96B")
    return d


def calling() -> Driver:
    d = _base()
    d.lift()
    d.keys("963BD")
    d.feed(CallProgress(d.last_call_id()))
    return d


def call_failed() -> Driver:
    d = _base()
    d.lift()
    d.keys("102D")
    d.feed(CallEnded(d.last_call_id(), "busy"))
    return d


def ringing() -> Driver:
    d = _base()
    d.ring("in-1", "+32470123456")
    return d


def ringing_unknown() -> Driver:
    d = _base()
    d.ring("in-1", "+442079460000")
    return d


def in_call() -> Driver:
    d = _base()
    d.ring("in-1", "+32470123456")
    d.lift()
    d.clock.advance(83)
    return d


def in_call_muted() -> Driver:
    d = in_call()
    d.keys("*", long=True)
    return d


def in_call_encrypted() -> Driver:
    d = in_call()
    d.feed(MediaEncrypted("in-1", True))
    return d


def in_call_hd() -> Driver:
    """A wideband (G.722) call, encrypted too."""
    d = in_call()
    d.feed(MediaCodec("in-1", "G722", True), MediaEncrypted("in-1", True))
    return d


def on_hold() -> Driver:
    d = in_call()
    d.keys("#", long=True)
    d.feed(HoldChanged("in-1", True))
    return d


def call_waiting() -> Driver:
    d = in_call()
    d.ring("in-2", "+3222222222", "Brasserie")
    return d


def two_calls() -> Driver:
    d = call_waiting()
    d.keys("D")
    d.feed(HoldChanged("in-1", True))
    d.clock.advance(42)
    return d


def consulting() -> Driver:
    d = in_call()
    d.keys("A102D")
    d.connect_outgoing()
    d.clock.advance(12)
    return d


def conference() -> Driver:
    d = two_calls()
    d.keys("B", long=True)
    return d


def recall() -> Driver:
    d = two_calls()
    d.replace()
    return d


def transfer_empty() -> Driver:
    d = in_call()
    d.keys("A")
    return d


def transfer() -> Driver:
    d = in_call()
    d.keys("A102")
    return d


def forward() -> Driver:
    d = in_call()
    d.keys("A+33142278186")
    return d


def transfer_failed() -> Driver:
    d = in_call()
    d.keys("A109A")
    d.feed(TransferFailed("in-1", "not_found"))
    return d


def queue() -> Driver:
    d = _base()
    d.keys("B")
    return d


def queue_empty() -> Driver:
    d = Driver().registered()
    d.keys("B")
    return d


def queue_unavailable() -> Driver:
    d = Driver().registered()
    d.feed(OdooStatusChanged("denied", "Odoo refused login 'alice@example.com': wrong login "
                                       "or API key, or the key was revoked"))
    d.keys("B")
    return d


def queue_call() -> Driver:
    d = _base()
    d.keys("BBD")  # Zoë, about the lead "Office fit-out"
    d.connect_outgoing()
    d.clock.advance(83)
    return d


def done_prompt() -> Driver:
    d = _base()
    d.keys("BBD")
    d.connect_outgoing()
    d.clock.advance(65)
    d.keys("C")
    return d


def remove_prompt() -> Driver:
    d = _base()
    d.keys("B#")
    return d


def recent() -> Driver:
    d = _base()
    d.ring("in-1", "+32470123456")
    d.feed(CallEnded("in-1", "cancelled"))
    d.keys("B", long=True)
    return d


def menu() -> Driver:
    d = _base()
    d.keys("A", long=True)
    return d


def status() -> Driver:
    from firmware.events import NetworkChanged

    d = _base()
    d.feed(NetworkChanged("192.168.1.20"))
    d.keys("A", long=True)
    d.keys("BD")
    return d


SCENARIOS: dict[str, Callable[[], Driver]] = {
    f.__name__: f for f in (
        idle, idle_no_service, idle_registering, dial_tone, dialing, dialing_t9, contacts,
        calling, call_failed, ringing, ringing_unknown, in_call, in_call_muted, in_call_encrypted,
        in_call_hd,
        on_hold,
        call_waiting, two_calls, recall, consulting, conference,
        transfer_empty, transfer, forward, transfer_failed, queue, queue_empty,
        queue_unavailable, queue_call, done_prompt, remove_prompt, recent, menu, status)
}
