"""Dialects of SIP that PBXes speak every day, scripted with SIPp through the lab's Kamailio
(or SIPp as the provider itself): what the far end received is SIPp's verdict, what the
person saw is the phone's."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from firmware.events import CallAnswered, CallEnded, IncomingCall
from tests.helpers import wait_for
from tests.lab.fixtures import LabPhone, free_udp
from tests.lab.lab import (
    need,
    sipp,
    sipp_provider,
    sipp_start,
    sipp_verdicts,
    ulaw_wav,
)

pytestmark = pytest.mark.lab
SIPP_IP = "127.0.0.3"


def _verdict(done) -> str:
    return (done.stdout or "")[-2000:] + (done.stderr or "")[-2000:]


def test_an_invite_requiring_an_unknown_extension_gets_420_and_never_rings(
        kamailio, lab_phone, lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    done = sipp("require_unknown.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, _verdict(done)  # 420 with Unsupported: x-fictional-ext
    assert phone.saw(IncomingCall) == [] and phone.state.mode == "idle"


def test_an_invite_replacing_no_call_of_ours_gets_481_and_never_rings(
        kamailio, lab_phone, lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    done = sipp("replaces_unknown.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, _verdict(done)  # 481, not 420: Require: replaces is ours
    assert phone.saw(IncomingCall) == [] and phone.state.mode == "idle"


def test_an_offer_of_codecs_the_phone_lacks_gets_488_at_once_and_never_rings(
        kamailio, lab_phone, lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    done = sipp("g729_only.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, _verdict(done)  # 488 with a 305 Warning, and no 180 first
    assert phone.saw(IncomingCall) == [] and phone.state.mode == "idle"


def _bob_calls_and_the_phone_answers(kamailio, lab_phone, lab_dir: Path, scenario: str,
                                     ringing: str, media_ok, what: str) -> None:
    """SIPp (`scenario`) calls the phone through the proxy; the phone rings, is lifted and
    sends RTP that `media_ok(rtp, SIPp's media address)` approves; SIPp's verdict, then Bob's
    BYE."""
    need("sipp")
    phone = lab_phone(kamailio).registered()
    media = (SIPP_IP, free_udp(SIPP_IP))
    run = sipp_start(scenario, f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir,
                     timeout=40, media_port=media[1])
    try:
        phone.until(lambda s: s.mode == "ringing", ringing)
        phone.lift()
        wait_for(lambda: phone.saw(CallAnswered), what="answered")
        wait_for(lambda: any(media_ok(c.rtp, media) for c in phone.account.calls.values()),
                 what=what)
    finally:
        sipp_verdicts(run)
    phone.until(lambda s: s.call is None, "the call ended by Bob's BYE")


def test_a_delayed_offer_is_answered_with_our_offer_and_the_ack_s_answer_is_used(
        kamailio, lab_phone, lab_dir: Path) -> None:
    # SIPp checks that our 200 offered PCMU and PCMA; the ACK's answer tells where to send.
    _bob_calls_and_the_phone_answers(
        kamailio, lab_phone, lab_dir, "delayed_offer.xml", "ringing for an INVITE without SDP",
        lambda rtp, media: rtp.remote == media, "RTP aimed at the address the ACK's SDP gave")


def test_an_offer_in_a_multipart_body_is_answered_from_its_sdp_part(
        kamailio, lab_phone, lab_dir: Path) -> None:
    # SIPp checks that our 200 answered PCMA, as application/sdp.
    _bob_calls_and_the_phone_answers(
        kamailio, lab_phone, lab_dir, "multipart_offer.xml", "ringing for an SDP beside ISUP",
        lambda rtp, media: rtp.remote == media and rtp.codec == 8,
        "PCMA to the address the SDP part gave")


def test_a_503_with_retry_after_is_waited_out(lab_phone, lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("register_retry_after.xml", lab_dir, timeout=40)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False)
        phone.until(lambda s: s.registration_reason == "Registrar said 503 Service Unavailable",
                    "the 503 on screen")
        refused = time.monotonic()
        phone.registered(timeout=20)
        waited = time.monotonic() - refused
    finally:
        sipp_verdicts(run)
    assert waited >= 5.5  # Retry-After: 6 (the backoff alone would have tried after 1-2 s)


def test_a_423_is_answered_with_min_expires_and_the_contact_s_grant_is_kept(
        lab_phone, lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("register_423.xml", lab_dir)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False)
        phone.registered(timeout=20)
        left = phone.account.registration.registered_until - time.monotonic()
    finally:
        sipp_verdicts(run)  # the second REGISTER asked for 600 s, in Expires and in the Contact
    assert 100 < left <= 120  # the Contact's expires=120, not the 200's Expires: 3600


def test_options_are_answered_with_what_the_phone_can_do(kamailio, lab_phone,
                                                          lab_dir: Path) -> None:
    need("sipp")
    lab_phone(kamailio).registered()
    done = sipp("options.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, _verdict(done)  # Allow (INVITE ... BYE ... REFER), Accept


def test_a_registrar_that_sends_the_phone_to_another_one(lab_phone, lab_dir: Path) -> None:
    need("sipp")
    second, other = sipp_provider("register_ok.xml", lab_dir)
    first, provider = sipp_provider("register_redirect.xml", lab_dir,
                                other=f"{other.ip}:{other.port}")
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False)
        phone.registered(timeout=20)
        assert phone.account.me.proxy == (other.ip, other.port)
    finally:
        sipp_verdicts(first, second)


def test_a_200_that_does_not_list_our_contact_is_not_registered(lab_phone,
                                                                lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("register_forgets_contact.xml", lab_dir)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False)
        phone.until(lambda s: s.registration_reason == "Registrar did not keep our Contact",
                    "the lost binding on screen")
        assert phone.state.registration == "registering"
        phone.registered(timeout=20)  # the next REGISTER's 200 lists it
    finally:
        sipp_verdicts(run)


def test_a_caller_requiring_100rel_gets_a_reliable_180_and_its_prack_answered(
        kamailio, lab_phone, lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    run = sipp_start("prack_uas.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir,
                     timeout=40)
    try:
        phone.until(lambda s: s.mode == "ringing", "ringing")
        wait_for(lambda: all(c.unacked is None for c in phone.account.calls.values()),
                 what="the reliable 180 PRACKed")
        phone.lift()
        phone.until(lambda s: s.call is None, "the call ended by Bob's BYE", timeout=20)
    finally:
        sipp_verdicts(run)  # the 180 carried Require: 100rel and an RSeq; 200 to the PRACK


def test_the_phone_pracks_a_reliable_180(lab_phone, lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("prack_uac.xml", lab_dir, calls=2)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False).registered()
        phone.lift()
        phone.keys("103D")
        phone.until(lambda s: s.call is not None and s.call.state == "connected",
                    "answered after the PRACK")
        phone.replace()
    finally:
        sipp_verdicts(run)  # INVITE with Supported: 100rel; PRACK with RAck: 1 1 INVITE


def test_a_session_interval_below_90_s_gets_422_naming_min_se(kamailio, lab_phone,
                                                              lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    done = sipp("session_422.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, _verdict(done)
    assert phone.saw(IncomingCall) == []


@pytest.mark.timeout(120)
def test_the_phone_refreshes_a_session_it_was_made_refresher_of(kamailio, lab_phone,
                                                                 lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    run = sipp_start("session_refreshed_by_phone.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP,
                     lab_dir, timeout=100)
    try:
        phone.until(lambda s: s.mode == "ringing", "ringing")
        phone.lift()
        # By 45 s the phone sends its UPDATE (Bob allows UPDATE); then Bob hangs up.
        phone.until(lambda s: s.call is None, "the call ended by Bob after the refresh",
                    timeout=80)
    finally:
        sipp_verdicts(run)


@pytest.mark.timeout(120)
def test_a_session_the_far_end_never_refreshes_is_ended_by_the_phone(kamailio, lab_phone,
                                                                     lab_dir: Path) -> None:
    need("sipp")
    # SIPp sends no RTP: the silence watchdog must not be what ends this call.
    phone = lab_phone(kamailio, no_rtp_seconds=300).registered()
    run = sipp_start("session_expires.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir,
                     timeout=100)
    try:
        phone.until(lambda s: s.mode == "ringing", "ringing")
        phone.lift()
        started = time.monotonic()
        phone.until(lambda s: s.call is None, "the call ended for want of a refresh",
                    timeout=80)
        assert time.monotonic() - started >= 55  # 90 s - min(32, 30) = 60 s, not before
        [ended] = phone.saw(CallEnded)
        assert ended.detail == "the far end stopped refreshing the call"
    finally:
        sipp_verdicts(run)  # and Bob received the phone's BYE


@pytest.mark.timeout(120)
def test_our_call_retries_a_422_and_refreshes_when_made_refresher(lab_phone,
                                                                  lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("session_uac.xml", lab_dir, calls=2, timeout=90)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False,
                                    no_rtp_seconds=300).registered()
        phone.lift()
        phone.keys("103D")
        phone.until(lambda s: s.call is not None and s.call.state == "connected",
                    "answered after the 422 and a second INVITE")
        # The UPDATE comes by 45 s; SIPp's verdict says it did (with refresher=uac).
        wait_for(lambda: any(c.timer.interval is not None and c.local_cseq > 2
                             for c in phone.account.calls.values()),
                 timeout=60, what="our session refresh")
        phone.replace()
    finally:
        sipp_verdicts(run)


def test_early_media_is_played_instead_of_our_ringback(lab_phone, lab_dir: Path) -> None:
    need("sipp")
    from tests.lab.lab import goertzel

    ulaw_wav(lab_dir / "announcement.wav", 600, 10)  # what the scenario streams
    run, provider = sipp_provider("early_media.xml", lab_dir, calls=2)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False).registered()
        phone.lift()
        phone.keys("103D")
        phone.until(lambda s: s.call is not None and s.call.progress, "the far end's 183")
        assert phone.state.tone is None  # no ringback of ours over the far end's sound
        heard = len(phone.audio.heard)
        wait_for(lambda: len(phone.audio.heard) > heard + 50 and
                 goertzel(b"".join(phone.audio.heard[-25:]), 600) > 0.1,
                 what="the far end's announcement in the earpiece before the answer")
        assert phone.state.call is not None and phone.state.call.state == "calling"
        phone.until(lambda s: s.call is not None and s.call.state == "connected", "answered")
        phone.replace()
    finally:
        sipp_verdicts(run)


def test_crossing_re_invites_get_491_and_our_hold_is_tried_again(kamailio, lab_phone,
                                                                  lab_dir: Path) -> None:
    from firmware.events import HoldChanged, KeyPressed

    need("sipp")
    phone = lab_phone(kamailio, no_rtp_seconds=300).registered()
    run = sipp_start("reinvite_glare.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir,
                     timeout=40)
    try:
        phone.until(lambda s: s.mode == "ringing", "ringing")
        phone.lift()
        phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
        phone.post(KeyPressed("#", long=True))  # hold: the re-INVITE Bob's will cross
        # Bob hangs up right after accepting the second try, so the held state may last
        # less than a poll: wait for the recorded event, not the state.
        wait_for(lambda: phone.saw(HoldChanged), what="held at the second try", timeout=15)
        phone.until(lambda s: s.call is None, "the call ended by Bob's BYE", timeout=15)
        assert [(e.held, e.by_remote) for e in phone.saw(HoldChanged)] == [(True, False)]
    finally:
        sipp_verdicts(run)  # Bob's re-INVITE got 491, and the phone's second one came


def test_an_early_update_gets_491_with_an_offer_and_200_without(lab_phone,
                                                                 lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("update_early.xml", lab_dir, calls=2)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0, mwi=False,
                                    no_rtp_seconds=300)
        phone.registered(timeout=20)
        phone.keys("103D")
        wait_for(lambda: phone.saw(CallAnswered), what="the call answered after the UPDATEs")
        phone.until(lambda s: s.call is None, "the call ended by the provider's BYE")
        assert [e.reason for e in phone.saw(CallEnded)] == ["hangup"]
    finally:
        sipp_verdicts(run)  # 491 to the UPDATE with an offer, 200 to the one without
