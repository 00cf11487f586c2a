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
