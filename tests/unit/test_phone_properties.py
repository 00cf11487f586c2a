"""Any sequence of facts, in any order, leaves the Phone consistent and never raises.

Hypothesis throws keys, hook movements, SIP and Odoo facts (including late, duplicate and
nonsensical ones) and timer firings at a strict Phone, which raises if a handler leads anywhere
its table row does not declare."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.events import (
    CallAnswered,
    CallEnded,
    CallProgress,
    ContactsUpdated,
    Hangup,
    HoldChanged,
    HookLifted,
    HookReplaced,
    IncomingCall,
    KeyPressed,
    OdooStatusChanged,
    PlaceCall,
    QueueUpdated,
    RegistrationChanged,
    Tick,
    TransferFailed,
    TransferSucceeded,
)
from firmware.phone import CALL_MODES, MODES, PROMPT
from firmware.ui import screens
from tests.phonekit import Driver, queue_entries
from tests.screenshots import CONTACTS

call_ids = st.sampled_from(["out-1", "out-2", "out-3", "in-1", "in-2"])
facts = st.one_of(
    st.builds(KeyPressed, st.sampled_from(list("0123456789*#ABCD")), st.booleans()),
    st.just(HookLifted()), st.just(HookReplaced()), st.just(Tick()),
    st.builds(IncomingCall, call_ids, st.sampled_from(["+32470123456", "102", "anonymous"])),
    st.builds(CallProgress, call_ids), st.builds(CallAnswered, call_ids),
    st.builds(CallEnded, call_ids, st.sampled_from(["hangup", "busy", "cancelled", "xyz"])),
    st.builds(TransferSucceeded, call_ids), st.builds(TransferFailed, call_ids),
    st.builds(HoldChanged, call_ids, st.booleans(), st.booleans()),
    st.builds(RegistrationChanged, st.sampled_from(["registered", "registering", "failed"])),
    st.builds(OdooStatusChanged, st.sampled_from(["online", "offline", "denied"])),
    st.just(QueueUpdated(queue_entries())), st.just(QueueUpdated(())),
    st.just(ContactsUpdated(CONTACTS)),
)
steps = st.lists(st.one_of(facts, st.floats(min_value=0.1, max_value=200)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_the_phone_stays_consistent(sequence):
    d = Driver().registered()
    open_calls: set[str] = set()
    for item in sequence:
        if isinstance(item, IncomingCall):
            open_calls.add(item.call_id)
        actions = d.elapse(item) if isinstance(item, float) else d.feed(item)
        for action in actions:
            if isinstance(action, PlaceCall):
                open_calls.add(action.call_id)
            if isinstance(action, Hangup):
                # Only a call the phone was offered or placed is ever hung up.
                assert action.call_id in open_calls
        s = d.state
        assert s.mode in MODES
        # A call exists exactly in the call modes (and "call" is null as soon as it ends).
        assert (s.call is not None) == (s.mode in CALL_MODES), (s.mode, s.call)
        assert (s.prompt is not None) == (s.mode == PROMPT)
        assert len(s.entry) <= 32
        assert len({name for name, _ in s.timers}) == len(s.timers)
        if s.mode != "ringing":
            assert not s.ringing
        rows = screens.lines(d.phone.snapshot())
        assert len(rows) == 6 and all(len(r) <= screens.COLUMNS for r in rows)
