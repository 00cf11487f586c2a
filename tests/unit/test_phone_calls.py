"""Making, receiving and ending calls through the pure Phone: every action a person's key or
hook movement causes, and the odd paths (bounce, late SIP facts, C everywhere)."""

from __future__ import annotations

from firmware.events import (
    Answer,
    CallAnswered,
    CallEnded,
    CallerIdentified,
    CallProgress,
    Contact,
    ContactsUpdated,
    Hangup,
    HookLifted,
    IncomingCall,
    LogCall,
    LookupCaller,
    PlaceCall,
    PlayTone,
    Reject,
    Ring,
    SendDtmf,
    SetLed,
)
from firmware.phone import Settings
from tests.phonekit import Driver


def test_lifting_the_handset_gives_dial_tone_and_digits_stop_it():
    d = Driver().registered()
    assert PlayTone("dial") in d.lift()
    assert d.state.mode == "dialing"
    assert PlayTone(None) in d.keys("1")
    assert d.state.entry == "1"


def test_off_hook_dialing_calls_after_the_interdigit_timeout():
    d = Driver().registered()
    d.lift()
    d.keys("0470123456")
    assert d.of(PlaceCall) == []
    d.elapse(3.9)
    assert d.of(PlaceCall) == []
    d.elapse(0.2)
    assert d.of(PlaceCall) == [PlaceCall("out-1", "+32470123456")]
    assert d.state.mode == "calling"
    assert d.state.call is not None and d.state.call.remote == "+32470123456"


def test_each_digit_restarts_the_interdigit_timer():
    d = Driver().registered()
    d.lift()
    d.keys("10")
    d.elapse(3)
    d.keys("1")
    d.elapse(3)
    assert d.of(PlaceCall) == []
    d.elapse(1.5)
    assert d.of(PlaceCall) == [PlaceCall("out-1", "101")]


def test_d_calls_at_once_and_the_long_zero_is_plus():
    d = Driver().registered()
    d.lift()
    d.keys("+33142278186D")
    assert d.of(PlaceCall) == [PlaceCall("out-1", "+33142278186")]


def test_pre_dial_on_hook_then_lift_calls_the_typed_number():
    d = Driver().registered()
    d.keys("102")
    assert d.state.mode == "dialing" and not d.state.off_hook
    assert not [a for a in d.actions if isinstance(a, PlayTone)]  # no dial tone on hook
    d.lift()
    assert d.of(PlaceCall) == [PlaceCall("out-1", "102")]


def test_pre_dial_expires_back_to_idle():
    d = Driver().registered()
    d.keys("10")
    d.elapse(31)
    assert d.state.mode == "idle" and d.state.entry == ""


def test_c_deletes_digits_then_leaves_pre_dial():
    d = Driver().registered()
    d.keys("12")
    d.keys("C")
    assert d.state.entry == "1"
    d.keys("C")
    assert d.state.mode == "idle"


def test_long_c_clears_the_whole_entry():
    d = Driver().registered()
    d.lift()
    d.keys("0470")
    d.keys("C", long=True)
    assert d.state.entry == "" and d.state.mode == "dialing"


def test_a_number_that_cannot_be_dialled_says_why_and_stays():
    d = Driver().registered()
    d.keys("+3247D")
    assert d.of(PlaceCall) == []
    assert d.state.mode == "dialing"
    assert d.state.message == "Number too short"


def test_national_number_without_region_asks_for_country_code():
    from firmware.phone import Settings

    d = Driver(settings=Settings(region=None)).registered()
    d.keys("0470123456D")
    assert d.state.message == "Dial + and country code"


def test_no_call_without_registration():
    d = Driver()
    d.lift()
    d.keys("101D")
    assert d.of(PlaceCall) == []
    assert d.state.message == "No service: cannot call"
    assert PlayTone("congestion") in d.actions


def test_off_hook_too_long_without_digits_warns():
    d = Driver().registered()
    d.lift()
    d.elapse(30.5)
    assert PlayTone("congestion") in d.actions
    assert d.state.message == "Replace the handset"


def test_outgoing_call_rings_back_connects_and_hangs_up_by_replacing_the_handset():
    d = Driver().registered()
    d.lift()
    d.keys("102D")
    call_id = d.last_call_id()
    assert PlayTone("ringback") in d.feed(CallProgress(call_id))
    acts = d.feed(CallAnswered(call_id))
    assert PlayTone(None) in acts
    assert d.state.mode == "in_call" and d.state.call is not None
    assert d.state.call.state == "connected"
    d.clock.advance(75)
    acts = d.replace()
    assert Hangup(call_id) in acts
    ended = [a for a in acts if isinstance(a, LogCall)]
    assert ended and ended[-1].stage == "ended" and ended[-1].record.seconds == 75
    assert d.state.mode == "idle" and d.state.call is None
    assert d.state.recent[0].outcome == "answered"
    assert d.state.last_dialled == "102"


def test_dtmf_in_a_call():
    d = Driver().registered()
    d.keys("102D")
    call_id = d.connect_outgoing()
    acts = d.keys("1#*")
    assert [a for a in acts if isinstance(a, SendDtmf)] == [
        SendDtmf(call_id, "1"), SendDtmf(call_id, "#"), SendDtmf(call_id, "*")]


def test_a_busy_callee_gives_busy_tone_and_says_so():
    d = Driver().registered()
    d.lift()
    d.keys("102D")
    acts = d.feed(CallEnded(d.last_call_id(), "busy", "486 Busy Here"))
    assert PlayTone("busy") in acts
    assert d.state.call is None and d.state.mode == "dialing"
    assert d.state.message == "Busy"
    assert [a.stage for a in d.of(LogCall)] == ["started", "failed"]


def test_a_number_not_found_gives_congestion():
    d = Driver().registered()
    d.lift()
    d.keys("109D")
    acts = d.feed(CallEnded(d.last_call_id(), "not_found"))
    assert PlayTone("congestion") in acts
    assert d.state.message == "Number not found"


def test_c_cancels_an_outgoing_call():
    d = Driver().registered()
    d.keys("102D")
    call_id = d.last_call_id()
    acts = d.keys("C")
    assert Hangup(call_id) in acts
    assert d.state.mode == "idle" and d.state.call is None
    assert d.state.recent[0].outcome == "aborted"


def test_far_end_hangs_up_while_handset_is_up():
    d = Driver().registered()
    d.lift()
    d.keys("102D")
    call_id = d.connect_outgoing()
    acts = d.feed(CallEnded(call_id, "hangup"))
    assert PlayTone("busy") in acts
    assert d.state.mode == "dialing" and d.state.call is None
    assert d.state.message == "Call ended"
    d.replace()
    assert d.state.mode == "idle"
    assert PlayTone(None) in d.actions[-3:]


def test_incoming_call_rings_and_is_answered_by_lifting_the_handset():
    d = Driver().registered()
    acts = d.ring("in-1", "+32470123456")
    assert Ring(True) in acts
    assert LookupCaller("in-1", "+32470123456") in acts
    assert d.state.mode == "ringing"
    acts = d.lift()
    assert Answer("in-1") in acts and Ring(False) in acts
    assert d.state.mode == "in_call"
    assert d.state.call is not None and d.state.call.state == "connected"
    d.clock.advance(12)
    d.replace()
    assert [a.stage for a in d.of(LogCall)] == ["started", "answered", "ended"]
    assert d.of(LogCall)[-1].record.seconds == 12


def test_caller_name_from_contacts_and_from_odoo_lookup():
    d = Driver().registered()
    d.feed(ContactsUpdated((Contact(5, "Zoë Dupont", ("0470 12 34 56",), 51),)))
    acts = d.ring("in-1", "+32470123456")
    assert d.state.call is not None and d.state.call.name == "Zoë Dupont"
    assert not [a for a in acts if isinstance(a, LookupCaller)]
    d.replace()  # bounce: ignored
    d.feed(CallEnded("in-1", "cancelled"))
    d.ring("in-2", "+3222222222")
    d.feed(CallerIdentified("in-2", "Brasserie De Koning", 52))
    assert d.state.call is not None and d.state.call.name == "Brasserie De Koning"


def test_reject_with_c():
    d = Driver().registered()
    d.ring()
    acts = d.keys("C")
    assert Reject("in-1", 486) in acts and Ring(False) in acts
    assert d.state.mode == "idle"
    assert d.of(LogCall)[-1].stage == "rejected"


def test_keys_during_ringing_do_nothing():
    d = Driver().registered()
    d.ring()
    acts = d.keys("123ABD*#")
    assert acts == []
    assert d.state.mode == "ringing"


def test_caller_gives_up_is_a_missed_call_counted_until_seen():
    d = Driver().registered()
    d.ring()
    acts = d.feed(CallEnded("in-1", "cancelled"))
    assert Ring(False) in acts and SetLed(True) in acts
    assert d.state.mode == "idle" and d.state.missed_unseen == 1
    assert d.state.message == "Missed call"
    assert d.of(LogCall)[-1].stage == "missed"
    d.keys("B", long=True)  # Recent
    assert d.state.mode == "recent" and d.state.missed_unseen == 0
    assert SetLed(False) in d.actions


def test_ring_timeout_sends_480_and_counts_missed():
    d = Driver().registered()
    d.ring()
    acts = d.elapse(121)
    assert Reject("in-1", 480) in acts
    assert d.state.mode == "idle" and d.state.missed_unseen == 1


def test_second_incoming_call_during_a_call_is_486_and_missed_with_call_waiting_off():
    d = Driver(settings=Settings(region="BE", call_waiting=False)).registered()
    d.ring("in-1")
    d.lift()
    acts = d.ring("in-2", "+3222222222")
    assert Reject("in-2", 486) in acts
    assert d.state.call is not None and d.state.call.id == "in-1"
    assert d.state.recent[0].outcome == "missed"


def test_incoming_call_while_dialling_off_hook_is_busy():
    d = Driver().registered()
    d.lift()
    acts = d.ring("in-1")
    assert Reject("in-1", 486) in acts
    assert d.state.mode == "dialing"


def test_hook_bounce_is_ignored():
    d = Driver().registered()
    d.lift()
    acts = d.feed(HookLifted(), HookLifted())
    assert acts == []
    d.replace()
    assert d.replace() == []
    assert d.state.mode == "idle"


def test_late_sip_facts_for_an_old_call_change_nothing():
    d = Driver().registered()
    d.keys("102D")
    old = d.last_call_id()
    d.keys("C")
    before = d.state
    assert d.feed(CallAnswered(old), CallProgress(old), CallEnded(old)) == []
    assert d.state == before
    d.ring("in-1")
    ringing = d.state
    # A fact for a call that never existed, and a retransmitted INVITE of the ringing call.
    assert d.feed(CallAnswered("nope"), IncomingCall("in-1", "+32470123456")) == []
    assert d.state == ringing


def test_hang_up_with_c_when_the_handset_is_in_its_cradle():
    d = Driver().registered()
    d.keys("102D")  # called on hook (headset or speaker)
    call_id = d.connect_outgoing()
    acts = d.keys("C")
    assert Hangup(call_id) in acts
    assert d.state.mode == "idle"


def test_c_in_a_call_with_the_handset_up_does_not_hang_up():
    d = Driver().registered()
    d.lift()
    d.keys("102D")
    d.connect_outgoing()
    assert d.keys("C") == []
    assert d.state.mode == "in_call"


def test_redial_with_d_and_long_d():
    d = Driver().registered()
    d.keys("102D")
    d.keys("C")
    d.keys("D")
    assert d.state.mode == "dialing" and d.state.entry == "102"
    d.keys("D")
    assert d.of(PlaceCall)[-1].target == "102"
    d.keys("C")
    d.keys("D", long=True)
    assert len(d.of(PlaceCall)) == 3


def test_early_media_silences_our_ringback_until_the_answer():
    from firmware.events import CallAnswered, CallProgress, PlayTone

    plain = Driver().registered()
    plain.lift()
    plain.keys("102D")
    assert PlayTone("ringback") in plain.feed(CallProgress(plain.last_call_id()))

    d = Driver().registered()
    d.lift()
    d.keys("102D")
    call_id = d.last_call_id()
    assert PlayTone("ringback") not in d.feed(CallProgress(call_id, early_media=True))
    assert d.state.tone is None and d.state.call is not None and d.state.call.early_media
    assert d.feed(CallProgress(call_id)) == []  # a later plain 180: still the far end's sound
    d.feed(CallAnswered(call_id))
    assert d.state.call is not None and not d.state.call.early_media
