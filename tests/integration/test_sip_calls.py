"""The phone's SIP against real Kamailio and baresip on loopback: what the far end saw."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from tests.lab.lab import goertzel, wav_pcm

pytestmark = pytest.mark.lab


def test_registers_with_401_and_407_challenges(kamailio, kamailio_401, lab_phone) -> None:
    lab_phone(kamailio).registered()
    lab_phone(kamailio_401).registered()
    assert "REQ REGISTER" in kamailio.text


def test_wrong_password_is_named_and_retried_slowly(kamailio, lab_phone) -> None:
    phone = lab_phone(kamailio, password="wrong")
    phone.until(lambda s: s.registration == "failed", "failed")
    assert phone.state.registration_reason == "Wrong password (401)"
    registers = kamailio.text.count("REQ REGISTER")
    assert registers <= 4  # one challenge answered once, then a pause: no busy loop


def test_inbound_call_answered_by_lifting_audio_both_ways_bye_from_far_end(
        kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    assert phone.state.call is not None and phone.state.call.remote == "102"
    phone.lift()
    bob.wait_event("CALL_ESTABLISHED")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
    # baresip plays 440 Hz: the earpiece gets it, loud and clear.
    wait_for(lambda: len(phone.audio.heard) > 50, what="audio in the earpiece")
    pcm = b"".join(phone.audio.heard[-25:])
    assert goertzel(pcm, 440) > 0.2 and goertzel(pcm, 1000) < 0.02  # 0.3 of full scale sent
    bob.command("hangup")
    phone.until(lambda s: s.call is None, "the call gone")
    bob.wait_event("CALL_CLOSED")
    phone.replace()
    phone.until(lambda s: s.mode == "idle", "idle")
    # What baresip heard from us: our 1 kHz microphone tone, at the level we sent it.
    wait_for(lambda: bob.heard(), what="baresip's recording")
    heard = wav_pcm(bob.heard()[-1])[8000:]  # skip the first half second
    assert goertzel(heard, 1000) > 0.2 and goertzel(heard, 440) < 0.02
    assert "RPL 481" not in kamailio.text


def test_inbound_call_hung_up_by_the_phone(kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    phone.lift()
    bob.wait_event("CALL_ESTABLISHED")
    phone.replace()
    closed = bob.wait_event("CALL_CLOSED")
    assert closed["param"] == "Connection reset by peer"  # how baresip reports a BYE it got
    phone.until(lambda s: s.call is None and s.mode == "idle", "idle")
    assert "RPL 481" not in kamailio.text


def s_recent(phone) -> str:
    return phone.state.recent[0].outcome if phone.state.recent else ""


def test_reject_busy_and_decline(kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    phone.keys("C")  # C rejects: 486 Busy Here by default
    closed = bob.wait_event("CALL_CLOSED")
    assert "486" in closed["param"]
    phone.until(lambda s: s.mode == "idle" and s.call is None and not s.ringing, "idle")
    assert s_recent(phone) == "rejected"
    assert "RPL 486" in kamailio.text


def test_cancel_before_answer_is_a_missed_call(kamailio, peers, lab_phone) -> None:
    from firmware.events import CallEnded

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    bob.command("hangup")  # baresip CANCELs the INVITE
    phone.until(lambda s: s.mode == "idle" and s.missed_unseen == 1 and not s.ringing,
                "ringing stopped, one missed call")
    assert [e.reason for e in phone.saw(CallEnded)] == ["cancelled"]
    wait_for(lambda: "RPL 487 Request Terminated for INVITE" in kamailio.text,
             what="487 to the INVITE")
    assert "RPL 200 OK for CANCEL" in kamailio.text


def test_outbound_call_through_the_proxy_hung_up_by_the_phone(kamailio, peers,
                                                               lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    phone.keys("102")
    phone.lift()
    bob.wait_event("CALL_INCOMING")
    phone.until(lambda s: s.call is not None and s.call.progress, "ringback")
    bob.command("accept")
    bob.wait_event("CALL_ESTABLISHED")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
    wait_for(lambda: len(phone.audio.heard) > 25, what="audio")
    phone.replace()
    closed = bob.wait_event("CALL_CLOSED")
    assert closed["param"] == "Connection reset by peer"  # our BYE reached it
    assert "RPL 481" not in kamailio.text  # the ACK and BYE followed the route set


def test_outbound_call_hung_up_by_the_far_end(kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102", answermode="auto")
    phone.keys("102D")
    bob.wait_event("CALL_ESTABLISHED")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
    bob.command("hangup")
    phone.until(lambda s: s.call is None, "the call ended")
    assert "RPL 481" not in kamailio.text


def test_outbound_call_to_a_busy_and_an_unknown_number(kamailio, peers, lab_phone) -> None:
    from firmware.events import CallEnded

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    phone.keys("102D")
    bob.wait_event("CALL_INCOMING")
    bob.command("hangup")  # baresip refuses the ringing call
    phone.until(lambda s: s.call is None, "refused")
    phone.keys("109D")  # nobody registered as 109
    wait_for(lambda: len(phone.saw(CallEnded)) == 2, what="two ended calls")
    assert phone.saw(CallEnded)[1].reason == "not_found"


def test_caller_gives_up_after_we_cancel_an_outbound_call(kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    phone.keys("102D")
    bob.wait_event("CALL_INCOMING")
    phone.until(lambda s: s.call is not None and s.call.progress, "ringback")
    phone.keys("C")  # hang up before the answer: CANCEL
    bob.wait_event("CALL_CLOSED")
    wait_for(lambda: "RPL 487 Request Terminated for INVITE" in kamailio.text,
             what="487 after our CANCEL")
    assert "REQ CANCEL sip:102@" in kamailio.text
    assert kamailio.text.index("REQ CANCEL") < kamailio.text.index("RPL 487")


def test_dtmf_both_ways(kamailio, peers, lab_phone) -> None:
    from firmware.events import DtmfReceived

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102", answermode="auto")
    phone.keys("102D")
    bob.wait_event("CALL_ESTABLISHED")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
    phone.keys("159#")
    wait_for(lambda: [e["param"] for e in bob.events if e.get("type") == "CALL_DTMF_START"]
             == ["1", "5", "9", "#"], what="baresip got 1 5 9 #")
    bob.command("sndcode", "7")
    wait_for(lambda: [e.digit for e in phone.saw(DtmfReceived)] == ["7"], what="we got 7")
