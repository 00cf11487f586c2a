"""Transfer and forward, the call queue with "done?", contacts by T9, recent, menu and DND."""

from __future__ import annotations

from firmware.events import (
    ActivityDoneElsewhere,
    CallEnded,
    Contact,
    ContactsUpdated,
    Hangup,
    HoldChanged,
    LogCall,
    MarkDone,
    PlaceCall,
    QueueUpdated,
    RefreshQueue,
    Reject,
    RemoveFromQueue,
    SetHold,
    SetMute,
    Transfer,
    TransferFailed,
    TransferSucceeded,
)
from firmware.phone import queue_order
from tests.phonekit import Driver, queue_entries


def _answered(d: Driver) -> str:
    d.ring("in-1", "+32470123456")
    d.lift()
    return "in-1"


def test_transfer_to_an_extension_with_a_then_a():
    d = Driver().registered()
    call_id = _answered(d)
    d.keys("A")
    assert d.state.mode == "transfer"
    acts = d.keys("102A")
    assert Transfer(call_id, "102") in acts
    assert d.state.mode == "in_call"
    assert d.state.call is not None and d.state.call.state == "transferring"
    acts = d.feed(TransferSucceeded(call_id))
    assert d.state.call is None
    assert d.state.message == "Transferred to 102"
    assert d.of(LogCall)[-1].stage == "transferred"
    d.replace()
    assert d.state.mode == "idle"


def test_forward_to_a_full_number_with_a():
    d = Driver().registered()
    call_id = _answered(d)
    d.keys("A+33142278186A")
    assert Transfer(call_id, "+33142278186") in d.actions
    d.feed(TransferSucceeded(call_id))
    assert d.state.message == "Transferred to +33 1 42 27 81 86"


def test_digits_while_typing_a_transfer_target_are_not_dtmf():
    from firmware.events import SendDtmf

    d = Driver().registered()
    _answered(d)
    d.keys("A102")
    assert d.of(SendDtmf) == []
    assert d.state.entry == "102"


def test_transfer_to_an_empty_target_says_so_and_waits():
    d = Driver().registered()
    _answered(d)
    acts = d.keys("AA")
    assert not [a for a in acts if isinstance(a, Transfer)]
    assert d.state.mode == "transfer"
    assert d.state.message == "Enter a number"


def test_c_deletes_then_cancels_the_transfer_and_the_call_goes_on():
    d = Driver().registered()
    _answered(d)
    d.keys("A10")
    d.keys("C")
    assert d.state.entry == "1"
    d.keys("CC")
    assert d.state.mode == "in_call" and d.state.message == "Transfer cancelled"
    assert d.state.call is not None and d.state.call.state == "connected"
    assert d.of(Transfer) == []


def test_failed_transfer_returns_to_the_call_with_the_reason():
    d = Driver().registered()
    call_id = _answered(d)
    d.keys("A109A")
    d.feed(TransferFailed(call_id, "not_found", "404"))
    assert d.state.mode == "in_call"
    assert d.state.call is not None and d.state.call.state == "connected"
    assert d.state.message == "Transfer failed: Number not found"
    # And the person can try again.
    d.keys("A102A")
    assert d.of(Transfer)[-1] == Transfer(call_id, "102")


def test_hanging_up_while_typing_a_transfer_ends_the_call():
    d = Driver().registered()
    call_id = _answered(d)
    d.keys("A10")
    assert Hangup(call_id) in d.replace()
    assert d.state.mode == "idle" and d.state.call is None


def test_caller_hangs_up_during_transfer_typing():
    d = Driver().registered()
    call_id = _answered(d)
    d.keys("A10")
    d.feed(CallEnded(call_id))
    assert d.state.call is None and d.state.mode == "dialing"


def test_queue_opens_in_screen_order_and_b_moves():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    assert [e.id for e in d.state.queue] == [3, 7, 9]  # overdue first, then due date, then id
    d.keys("B")
    assert d.state.mode == "queue" and d.state.selected == 0
    d.keys("B")
    assert d.state.selected == 1
    d.keys("*")
    assert d.state.selected == 0
    d.keys("*")
    assert d.state.selected == 2  # wraps


def test_call_from_the_queue_then_mark_done():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    d.keys("BBD")  # Zoë, the second entry
    assert d.of(PlaceCall) == [PlaceCall("out-1", "+32470123456")]
    call_id = d.connect_outgoing()
    assert d.state.call is not None and d.state.call.activity_id == 7
    d.clock.advance(65)
    acts = d.keys("C")  # on hook: C hangs up
    assert Hangup(call_id) in acts and RefreshQueue() in acts
    assert d.state.mode == "prompt"
    assert d.state.prompt is not None and d.state.prompt.question == "Mark call done?"
    acts = d.keys("D")
    done = [a for a in acts if isinstance(a, MarkDone)]
    assert len(done) == 1 and done[0].activity_id == 7
    assert "Zoë Dupont" in done[0].feedback and "1 min 05 s" in done[0].feedback
    assert [e.id for e in d.state.queue] == [3, 9]
    assert d.state.mode == "idle" and d.state.message == "Marked done"


def test_an_activity_done_elsewhere_is_told_not_hidden():
    d = Driver().registered()
    d.feed(ActivityDoneElsewhere(7, note_added=True))
    assert d.state.message == "Already done in Odoo: note added"
    d.feed(ActivityDoneElsewhere(3, note_added=False))
    assert d.state.message == "Already done in Odoo"


def test_keep_the_activity_with_c_or_by_waiting():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    d.keys("BD")
    d.connect_outgoing()
    d.keys("C")
    d.keys("C")
    assert d.of(MarkDone) == [] and d.state.mode == "idle"
    assert len(d.state.queue) == 3
    d.keys("BD")
    d.connect_outgoing()
    d.keys("C")
    d.elapse(31)
    assert d.of(MarkDone) == [] and d.state.mode == "idle"


def test_no_done_prompt_when_the_queue_call_was_not_answered():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    d.keys("BD")
    d.feed(CallEnded(d.last_call_id(), "no_answer"))
    assert d.state.mode == "idle" and d.state.message == "No answer"
    assert RefreshQueue() in d.actions


def test_lifting_the_handset_in_the_queue_calls_the_selected_entry():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    d.keys("BB")
    d.lift()
    assert d.of(PlaceCall) == [PlaceCall("out-1", "+32470123456")]


def test_remove_from_queue_asks_first():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    d.keys("B#")
    assert d.state.mode == "prompt"
    d.keys("C")
    assert d.state.mode == "queue" and d.of(RemoveFromQueue) == []
    d.keys("#D")
    assert d.of(RemoveFromQueue) == [RemoveFromQueue(3)]
    assert d.state.mode == "queue" and [e.id for e in d.state.queue] == [7, 9]


def test_queue_refresh_keeps_the_highlight_on_the_same_entry():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()))
    d.keys("BB")  # entry 7
    d.feed(QueueUpdated(queue_entries()[1:]))  # 7 gone? no: entry 7 is the first of the tuple
    assert d.state.queue[d.state.selected].id in (3, 9)
    d.feed(QueueUpdated(queue_entries()))
    d.keys("B")
    current = d.state.queue[d.state.selected].id
    d.feed(QueueUpdated(tuple(reversed(queue_entries()))))
    assert d.state.queue[d.state.selected].id == current


def test_empty_queue_and_c_leaves():
    d = Driver().registered()
    d.keys("B")
    assert d.state.mode == "queue"
    d.keys("D")
    assert d.of(PlaceCall) == []
    d.keys("C")
    assert d.state.mode == "idle"


def test_queue_order_is_overdue_then_due_date_then_id():
    ordered = queue_order(queue_entries())
    assert [e.id for e in ordered] == [3, 7, 9]


CONTACTS = (
    Contact(1, "Zoë Dupont", ("0470 12 34 56",), 51),
    Contact(2, "Marc Zöller", ("+49 30 1234567", "+49 151 2345678"), 52),
    Contact(3, "Brasserie De Koning", ("+32 2 222 22 22",), 53),
)


def test_contacts_found_by_t9_name_and_called():
    d = Driver().registered()
    d.feed(ContactsUpdated(CONTACTS))
    d.keys("963")  # Z-O-E
    d.keys("B")
    assert d.state.mode == "contacts"
    d.keys("D")
    assert d.of(PlaceCall) == [PlaceCall("out-1", "+32470123456")]
    assert d.state.call is not None and d.state.call.name == "Zoë Dupont"


def test_contacts_found_by_a_second_word_and_by_digits_of_the_number():
    from firmware.phone import matches

    d = Driver().registered()
    d.feed(ContactsUpdated(CONTACTS))
    d.keys("96")  # Zo: Zoë and Zöller
    assert {row.contact.id for row in matches(d.state)} == {1, 2}
    d.keys("C", long=True)
    d.keys("3876")  # "Dupont" starts D-U-P-O
    assert [row.contact.id for row in matches(d.state)] == [1]
    d.keys("C", long=True)
    d.keys("2222")  # inside the brasserie's number
    assert [row.contact.id for row in matches(d.state)] == [3]
    d.keys("C", long=True)
    d.keys("0470")  # the national form of an E.164 number
    assert [row.contact.id for row in matches(d.state)] == [1]


def test_every_number_of_a_contact_is_a_row_and_b_moves():
    d = Driver().registered()
    d.feed(ContactsUpdated(CONTACTS))
    d.keys("9655B")  # Z-O-L-L: Zöller, two numbers
    d.keys("B")
    d.keys("D")
    assert d.of(PlaceCall)[-1].target in ("+49301234567", "+491512345678")
    assert len({d.of(PlaceCall)[-1].target}) == 1


def test_b_without_a_match_says_so():
    d = Driver().registered()
    d.feed(ContactsUpdated(CONTACTS))
    d.keys("0000B")
    assert d.state.mode == "dialing" and d.state.message == "No contact found"


def test_c_in_contacts_goes_back_to_the_typed_digits():
    d = Driver().registered()
    d.feed(ContactsUpdated(CONTACTS))
    d.keys("963BC")
    assert d.state.mode == "dialing" and d.state.entry == "963"


def test_recent_calls_and_call_back():
    d = Driver().registered()
    d.ring("in-1", "+3222222222")
    d.feed(CallEnded("in-1", "cancelled"))
    d.keys("102D")
    d.keys("C")
    d.keys("B", long=True)
    assert [r.outcome for r in d.state.recent] == ["aborted", "missed"]
    d.keys("BD")
    assert d.of(PlaceCall)[-1] == PlaceCall("out-3", "+3222222222")


def test_mute_and_hold_in_a_call():
    d = Driver().registered()
    call_id = _answered(d)
    assert SetMute(call_id, True) in d.keys("*", long=True)
    assert d.state.call is not None and d.state.call.muted
    assert SetMute(call_id, False) in d.keys("*", long=True)
    assert SetHold(call_id, True) in d.keys("#", long=True)
    d.feed(HoldChanged(call_id, True))
    assert d.state.call is not None and d.state.call.state == "held"
    d.keys("#", long=True)
    d.feed(HoldChanged(call_id, False))
    assert d.state.call is not None and d.state.call.state == "connected"
    d.feed(HoldChanged(call_id, True, by_remote=True))
    assert d.state.call is not None and d.state.call.state == "held"


def test_do_not_disturb_from_the_menu_rejects_and_logs_missed():
    d = Driver().registered()
    d.keys("A", long=True)
    assert d.state.mode == "menu"
    d.keys("D")
    assert d.state.dnd
    d.keys("C")
    acts = d.ring("in-1")
    assert Reject("in-1", 480) in acts
    assert d.state.mode == "idle" and d.state.recent[0].outcome == "missed"
    d.keys("A", long=True)
    d.keys("D")
    assert not d.state.dnd


def test_menu_status_page():
    d = Driver().registered()
    d.keys("A", long=True)
    d.keys("BD")
    assert d.state.menu_page == "status"
    d.keys("C")
    assert d.state.menu_page == "" and d.state.mode == "menu"
    d.keys("C")
    assert d.state.mode == "idle"


def test_c_everywhere_leads_back_to_rest():
    d = Driver().registered()
    d.feed(QueueUpdated(queue_entries()), ContactsUpdated(CONTACTS))
    for keys in ("B", "963B", "A", "1"):
        if keys == "A":
            d.keys("A", long=True)
        else:
            d.keys(keys)
        for _ in range(6):
            d.keys("C")
        assert d.state.mode == "idle", keys
