"""Two calls at once through the pure Phone: call waiting, swap, recall, the voicemail key, and
the odd paths (the waiting caller gives up, the held party hangs up, a third call)."""

from __future__ import annotations

from firmware.events import (
    Answer,
    CallAnswered,
    CallEnded,
    Conference,
    DtmfReceived,
    Hangup,
    HoldChanged,
    HookReplaced,
    IncomingCall,
    LogCall,
    PlaceCall,
    PlayTone,
    Reject,
    Reregister,
    ReregisterAsked,
    Ring,
    SetHold,
    SetMute,
    Transfer,
    TransferFailed,
    TransferSucceeded,
)
from firmware.phone import Settings
from tests.phonekit import Driver


def in_call_with_waiting() -> Driver:
    """Alice talks to in-1; in-2 calls."""
    d = Driver().registered()
    d.ring("in-1", "+32470123456", "Bob")
    d.lift()
    d.ring("in-2", "+3222222222", "Carol")
    return d


def two_calls_one_held() -> Driver:
    """in-2 answered by D: in-1 is held."""
    d = in_call_with_waiting()
    d.keys("D")
    d.feed(HoldChanged("in-1", True))
    return d


def test_a_call_during_a_call_waits_with_the_tone_and_the_caller_on_screen():
    d = Driver().registered()
    d.ring("in-1")
    d.lift()
    acts = d.ring("in-2", "+3222222222", "Carol")
    assert PlayTone("waiting") in acts
    assert not [a for a in acts if isinstance(a, (Reject, Ring))]  # no 486, no bell over a call
    s = d.state
    assert s.mode == "in_call" and s.call is not None and s.call.id == "in-1"
    assert [(c.id, c.state, c.direction) for c in s.others] == [("in-2", "ringing", "in")]


def test_d_holds_the_first_call_then_answers_the_waiting_one():
    d = in_call_with_waiting()
    acts = d.keys("D")
    hold, answer = acts.index(SetHold("in-1", True)), acts.index(Answer("in-2"))
    assert hold < answer  # the handset is never shared by two calls
    assert PlayTone(None) in acts
    s = d.state
    assert s.call is not None and s.call.id == "in-2" and s.call.state == "connected"
    assert [(c.id, c.state) for c in s.others] == [("in-1", "held")]
    assert [a.stage for a in d.of(LogCall)][-1] == "answered"  # type: ignore[attr-defined]


def test_c_rejects_the_waiting_call_with_486_and_it_is_missed():
    d = in_call_with_waiting()
    acts = d.keys("C")
    assert Reject("in-2", 486) in acts and PlayTone(None) in acts
    s = d.state
    assert s.call is not None and s.call.id == "in-1" and s.others == ()
    assert s.recent[0].number == "+3222222222" and s.recent[0].outcome == "missed"
    assert not d.of(Hangup)  # the first call goes on


def test_a_waiting_caller_who_gives_up_is_a_missed_call_and_the_tone_stops():
    d = in_call_with_waiting()
    acts = d.feed(CallEnded("in-2", "cancelled"))
    assert PlayTone(None) in acts
    assert d.state.others == () and d.state.missed_unseen == 1
    assert d.state.call is not None and d.state.call.id == "in-1"


def test_a_waiting_call_nobody_answers_times_out_as_missed():
    d = in_call_with_waiting()
    acts = d.elapse(121)
    assert Reject("in-2", 480) in acts
    assert d.state.others == () and d.state.mode == "in_call"


def test_when_the_first_call_ends_the_waiting_call_rings():
    d = in_call_with_waiting()
    d.feed(CallEnded("in-1", "hangup"))
    s = d.state
    assert s.mode == "ringing" and s.call is not None and s.call.id == "in-2"
    assert s.tone == "waiting"  # the handset is still up: the tone goes on, D answers
    acts = d.keys("D")
    assert Answer("in-2") in acts and d.state.mode == "in_call"


def test_the_waiting_call_rings_the_bell_once_the_handset_is_down():
    d = in_call_with_waiting()
    acts = d.replace()  # hangs up in-1
    assert Hangup("in-1") in acts and Ring(True) in acts
    assert d.state.mode == "ringing" and d.state.call is not None
    assert d.state.call.id == "in-2"
    assert Answer("in-2") in d.lift()


def test_b_swaps_the_active_and_the_held_call():
    d = two_calls_one_held()
    acts = d.keys("B")
    assert acts.index(SetHold("in-2", True)) < acts.index(SetHold("in-1", False))
    s = d.state
    assert s.call is not None and s.call.id == "in-1" and s.call.state == "connected"
    assert [(c.id, c.state) for c in s.others] == [("in-2", "held")]
    d.keys("B")
    assert d.state.call is not None and d.state.call.id == "in-2"


def test_replacing_the_handset_ends_the_active_call_and_the_held_one_rings_again():
    d = two_calls_one_held()
    acts = d.replace()
    assert Hangup("in-2") in acts and Ring(True) in acts
    assert Hangup("in-1") not in acts
    s = d.state
    assert s.mode == "ringing" and s.call is not None and s.call.id == "in-1" and s.call.recall
    acts = d.lift()  # taking the recall resumes the held call; it is not answered again
    assert SetHold("in-1", False) in acts and not [a for a in acts if isinstance(a, Answer)]
    assert d.state.mode == "in_call" and Ring(False) in acts


def test_a_recalled_call_rings_until_the_held_party_hangs_up():
    d = two_calls_one_held()
    d.replace()
    d.elapse(600)
    assert d.state.mode == "ringing"  # no ring timeout for a caller we put on hold
    d.feed(CallEnded("in-1", "hangup"))
    assert d.state.mode == "idle"
    assert d.state.recent[0].outcome == "answered"  # not a missed call


def test_c_on_a_recall_ends_the_held_call():
    d = two_calls_one_held()
    d.replace()
    acts = d.keys("C")
    assert Hangup("in-1") in acts and d.state.mode == "idle"


def test_the_far_end_hanging_up_leaves_the_held_call_on_screen_while_the_handset_is_up():
    d = two_calls_one_held()
    d.feed(CallEnded("in-2", "hangup"))
    s = d.state
    assert s.mode == "in_call" and s.call is not None and s.call.id == "in-1"
    assert s.call.state == "held"
    acts = d.keys("#", long=True)  # resume
    assert SetHold("in-1", False) in acts


def test_the_held_party_hanging_up_leaves_the_active_call_alone():
    d = two_calls_one_held()
    d.feed(CallEnded("in-1", "hangup"))
    s = d.state
    assert s.mode == "in_call" and s.call is not None and s.call.id == "in-2" and s.others == ()
    assert "hung up" in s.message


def test_a_third_call_gets_486_and_is_missed():
    d = two_calls_one_held()
    acts = d.ring("in-3", "+3233333333")
    assert Reject("in-3", 486) in acts
    assert len(d.state.others) == 1 and d.state.recent[0].outcome == "missed"


def test_with_dnd_a_second_call_does_not_wait():
    d = Driver().registered()
    d.keys("A", long=True)
    d.keys("D")  # do not disturb on
    d.keys("C")
    d.ring("in-1")  # DND: 480 at once
    assert d.of(Reject) == [Reject("in-1", 480)]


def test_long_1_calls_the_voicemail_and_says_so_when_there_is_none():
    d = Driver(settings=Settings(region="BE", voicemail="*97")).registered()
    d.keys("1", long=True)
    assert d.of(PlaceCall) == [PlaceCall("out-1", "*97")]
    assert d.state.call is not None and d.state.call.name == "Voicemail"
    d = Driver().registered()
    d.keys("1", long=True)
    assert d.of(PlaceCall) == [] and d.state.message == "No voicemail number set"
    d.lift()
    d.keys("1", long=True)  # with dial tone too
    assert d.state.mode == "dialing" and d.state.entry == ""


# --------------------------------------------------------------------------- attended transfer


def consulting() -> Driver:
    """Bob (in-1) is held while Alice calls 102 (out-2), who answers."""
    d = Driver().registered()
    d.ring("in-1", "+32470123456", "Bob")
    d.lift()
    d.keys("A102D")
    return d


def test_a_target_then_d_holds_the_caller_and_calls_the_target():
    d = consulting()
    assert SetHold("in-1", True) in d.actions and PlaceCall("out-2", "102") in d.actions
    assert d.actions.index(SetHold("in-1", True)) < d.actions.index(PlaceCall("out-2", "102"))
    s = d.state
    assert s.mode == "calling" and s.call is not None and s.call.consult_for == "in-1"
    assert [(c.id, c.state) for c in s.others] == [("in-1", "held")]


def test_a_completes_the_transfer_with_replaces_and_both_legs_end():
    d = consulting()
    d.connect_outgoing()
    assert d.state.mode == "in_call"
    acts = d.keys("A")
    assert Transfer("in-1", "102", replaces="out-2") in acts
    assert d.state.others[0].state == "transferring"
    acts = d.feed(TransferSucceeded("in-1"))
    assert Hangup("out-2") in acts
    assert d.state.call is None and d.state.others == () and d.state.mode == "dialing"
    assert d.state.message == "Transferred to 102"
    logged = [(a.stage, a.record.number, a.record.transferred_to)  # type: ignore[attr-defined]
              for a in d.of(LogCall) if a.stage in ("transferred", "ended")]
    assert logged == [("transferred", "+32470123456", "102"), ("ended", "102", None)]


def test_a_failed_completion_keeps_both_calls_and_says_why():
    d = consulting()
    d.connect_outgoing()
    d.keys("A")
    d.feed(TransferFailed("in-1", "forbidden", "403 Forbidden"))
    s = d.state
    assert s.call is not None and s.call.id == "out-2" and s.call.state == "connected"
    assert [(c.id, c.state) for c in s.others] == [("in-1", "held")]
    assert s.message == "Transfer failed: Not allowed"


def test_c_ends_the_consultation_and_the_caller_comes_back():
    d = consulting()
    d.connect_outgoing()
    acts = d.keys("C")
    assert Hangup("out-2") in acts and SetHold("in-1", False) in acts
    s = d.state
    assert s.mode == "in_call" and s.call is not None and s.call.id == "in-1"
    assert s.call.state == "connected" and s.others == ()


def test_c_while_the_target_rings_cancels_and_the_caller_comes_back():
    d = consulting()
    acts = d.keys("C")
    assert Hangup("out-2") in acts and SetHold("in-1", False) in acts
    assert d.state.mode == "in_call" and d.state.call is not None
    assert d.state.call.id == "in-1"


def test_a_busy_target_brings_the_caller_back():
    d = consulting()
    acts = d.feed(CallEnded("out-2", "busy"))
    assert SetHold("in-1", False) in acts
    assert d.state.mode == "in_call" and d.state.message == "Busy"


def test_a_while_the_target_rings_sends_the_caller_there_blind():
    d = consulting()
    acts = d.keys("A")
    assert Hangup("out-2") in acts and Transfer("in-1", "102") in acts
    assert d.state.mode == "in_call" and d.state.others == ()
    d.feed(TransferSucceeded("in-1"))
    assert d.state.call is None and d.state.message == "Transferred to 102"


def test_the_caller_hanging_up_during_the_consultation_leaves_the_target():
    d = consulting()
    d.connect_outgoing()
    d.feed(CallEnded("in-1", "hangup"))
    s = d.state
    assert s.call is not None and s.call.id == "out-2" and s.others == ()
    assert s.recent[0].number == "+32470123456" and s.recent[0].outcome == "answered"
    d.keys("A")  # a single call again: A opens the transfer entry
    assert d.state.mode == "transfer"


def test_a_then_a_stays_the_blind_transfer():
    d = Driver().registered()
    d.ring("in-1")
    d.lift()
    acts = d.keys("A102A")
    assert Transfer("in-1", "102") in acts and not d.of(PlaceCall)


def test_an_invite_with_replaces_takes_the_place_of_the_call_at_once():
    d = Driver().registered()
    d.ring("in-1", "+32470123456", "Bob")
    d.lift()
    acts = d.feed(IncomingCall("in-2", "103", "Carol", replaces="in-1"))
    assert Answer("in-2") in acts and Hangup("in-1") in acts
    assert not [a for a in acts if isinstance(a, (Ring, PlayTone, Reject))]
    s = d.state
    assert s.call is not None and s.call.id == "in-2" and s.call.state == "connected"
    assert s.others == () and s.mode == "in_call"


def test_replaces_for_a_held_call_keeps_the_newcomer_on_hold():
    d = two_calls_one_held()  # in-2 active, in-1 held
    acts = d.feed(IncomingCall("in-3", "104", replaces="in-1"))
    assert acts.index(Answer("in-3")) < acts.index(SetHold("in-3", True))
    assert Hangup("in-1") in acts
    assert [(c.id, c.state) for c in d.state.others] == [("in-3", "held")]
    assert d.state.call is not None and d.state.call.id == "in-2"


# --------------------------------------------------------------------------- conference


def test_long_b_joins_the_held_and_the_active_call():
    d = two_calls_one_held()  # in-2 active, in-1 held
    acts = d.keys("B", long=True)
    assert SetHold("in-1", False) in acts and Conference(("in-2", "in-1")) in acts
    assert acts.index(SetHold("in-1", False)) < acts.index(Conference(("in-2", "in-1")))
    s = d.state
    assert s.call is not None and s.call.state == "conference"
    assert [c.state for c in s.others] == ["conference"]
    d.feed(HoldChanged("in-1", False))  # the resume comes through: still a conference
    assert [c.state for c in d.state.others] == ["conference"]


def test_hanging_up_ends_the_conference_for_both():
    d = two_calls_one_held()
    d.keys("B", long=True)
    acts = d.replace()
    assert Hangup("in-1") in acts and Hangup("in-2") in acts
    assert d.state.mode == "idle" and d.state.call is None and d.state.others == ()
    assert sorted(r.number for r in d.state.recent[:2]) == ["+3222222222", "+32470123456"]


def test_one_party_leaving_leaves_an_ordinary_call():
    d = two_calls_one_held()
    d.keys("B", long=True)
    d.feed(CallEnded("in-1", "hangup"))
    assert d.state.call is not None and d.state.call.state == "connected"
    d = two_calls_one_held()
    d.keys("B", long=True)
    d.feed(CallEnded("in-2", "hangup"))  # the active one
    s = d.state
    assert s.mode == "in_call" and s.call is not None and s.call.id == "in-1"
    assert s.call.state == "connected" and s.others == ()


def test_mute_in_a_conference_mutes_the_microphone_for_both_and_hold_is_refused():
    d = two_calls_one_held()
    d.keys("B", long=True)
    acts = d.keys("*", long=True)
    assert SetMute("in-2", True) in acts and SetMute("in-1", True) in acts
    acts = d.keys("#", long=True)
    assert not [a for a in acts if isinstance(a, SetHold)]
    assert d.state.message == "Not in a conference"


def test_a_in_a_conference_leaves_the_two_parties_talking():
    d = two_calls_one_held()
    d.keys("B", long=True)
    acts = d.keys("A")
    assert Transfer("in-1", "+3222222222", replaces="in-2") in acts


# --------------------------------------------------------------------------- the smaller rows


def test_c_with_the_handset_down_ends_a_conference():
    d = two_calls_one_held()
    d.keys("B", long=True)
    d.feed(HookReplaced())
    assert d.state.mode == "idle"
    d = Driver().registered()
    d.keys("102D")  # called with the handset down (pre-dial, then D)
    out = d.connect_outgoing()
    d.ring("in-2", "+3222222222")
    d.keys("D")  # answers the waiting call, holds ours
    d.keys("B", long=True)
    assert not d.state.off_hook and d.state.call is not None
    assert d.state.call.state == "conference"
    acts = d.keys("C")
    assert Hangup(out) in acts and Hangup("in-2") in acts and d.state.mode == "idle"


def test_a_promoted_waiting_call_rings_the_bell_once_the_handset_goes_down():
    d = in_call_with_waiting()
    d.feed(CallEnded("in-1", "hangup"))  # the waiting call rings; the handset is still up
    assert d.state.tone == "waiting" and not d.state.ringing
    acts = d.replace()
    assert Ring(True) in acts and PlayTone(None) in acts and d.state.mode == "ringing"
    assert Answer("in-2") in d.lift()


def test_facts_about_the_other_call_and_our_own_answer_are_taken_quietly():
    d = two_calls_one_held()
    before = d.state
    assert d.feed(DtmfReceived("in-1", "5")) == [] and d.state.call == before.call
    assert d.feed(CallAnswered("in-2")) == []  # the 200 we sent, confirmed


def test_the_web_page_s_register_again_asks_sip_to_register():
    d = Driver().registered()
    assert d.feed(ReregisterAsked()) == [Reregister()]


def test_a_late_200_to_the_hold_before_the_join_does_not_undo_the_conference():
    # What CI caught: long B came before the far end had answered D's hold; its 200 arrived
    # after the join, then the resume's.
    d = in_call_with_waiting()
    d.keys("D")
    d.keys("B", long=True)
    d.feed(HoldChanged("in-1", True))  # the hold asked before the join, confirmed late
    assert [c.state for c in d.state.others] == ["held"]  # for now: the resume is on its way
    d.feed(HoldChanged("in-1", False))
    s = d.state
    assert s.call is not None and s.call.state == "conference"
    assert [c.state for c in s.others] == ["conference"]
