"""The phone's SIP against real Kamailio and baresip on loopback: what the far end saw."""

from __future__ import annotations

import pytest

from tests.helpers import wait_for
from tests.lab.lab import HERE, goertzel, wav_pcm

RFC4475 = HERE / "rfc4475"

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


def _answered_call_from(phone, bob, kamailio) -> None:
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    phone.lift()
    bob.wait_event("CALL_ESTABLISHED")
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")


@pytest.mark.parametrize(("target", "typed"), [("103", "103"),
                                               ("+32470123456", "+32470123456")])
def test_blind_transfer_and_forward(kamailio, peers, lab_phone, target, typed) -> None:
    from firmware.events import TransferSucceeded

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    carol = peers(kamailio, target, answermode="auto")
    _answered_call_from(phone, bob, kamailio)
    phone.keys("A")
    phone.until(lambda s: s.mode == "transfer", "transfer to")
    phone.keys(typed + "A")
    established = carol.wait_event("CALL_ESTABLISHED", timeout=20)
    assert "102" in established.get("peeruri", "")  # the far end now talks to the target
    phone.until(lambda s: s.call is None, "our leg gone")
    assert phone.saw(TransferSucceeded)
    wait_for(lambda: bob.saw("CALL_CLOSED"), what="bob's leg with us closed")
    assert f"Refer-To: <sip:{target}@127.0.0.1:{kamailio.port}>" in _refer(phone)
    assert "RPL 481" not in kamailio.text


def _refer(phone) -> str:
    """Our REFER as it left the phone (the transport keeps no copy; Kamailio logs the R-URI)."""
    return phone.account.last_refer


def test_transfer_to_nobody_stays_in_the_call_and_says_why(kamailio, peers,
                                                           lab_phone) -> None:
    from firmware.events import TransferFailed

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    _answered_call_from(phone, bob, kamailio)
    phone.keys("A109A")  # nobody is 109
    wait_for(lambda: phone.saw(TransferFailed), timeout=20, what="the transfer to fail")
    phone.until(lambda s: s.call is not None and s.call.state == "connected",
                "still in the call")
    assert phone.state.message  # the reason is on the screen


def test_hold_and_resume_both_ways(kamailio, peers, lab_phone) -> None:
    from firmware.events import HoldChanged

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    _answered_call_from(phone, bob, kamailio)
    phone.post(__import__("firmware.events", fromlist=["KeyPressed"]).KeyPressed("#", long=True))
    phone.until(lambda s: s.call is not None and s.call.state == "held", "held")
    assert [(e.held, e.by_remote) for e in phone.saw(HoldChanged)] == [(True, False)]
    phone.post(__import__("firmware.events", fromlist=["KeyPressed"]).KeyPressed("#", long=True))
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "resumed")
    bob.command("hold")
    wait_for(lambda: any(e.by_remote and e.held for e in phone.saw(HoldChanged)),
             what="the far end's hold")
    bob.command("resume")
    wait_for(lambda: [e.held for e in phone.saw(HoldChanged) if e.by_remote] == [True, False],
             what="the far end's resume")
    assert "RPL 481" not in kamailio.text


def test_ghost_invite_from_another_address_gets_403_and_never_rings(kamailio, lab_phone,
                                                                     lab_dir) -> None:
    from firmware.events import IncomingCall
    from tests.lab.lab import need, sipp

    need("sipp")
    phone = lab_phone(kamailio).registered()
    done = sipp("ghost_invite.xml", f"127.0.0.2:{phone.port}", "127.0.0.3", lab_dir)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert phone.saw(IncomingCall) == [] and phone.state.mode == "idle"
    assert phone.account.ghosts == 1


def test_a_flood_of_malformed_datagrams_then_a_normal_call(kamailio, peers, lab_phone) -> None:
    import os
    import random
    import socket

    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    good = (b"INVITE sip:101@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5099;branch=z9hG4bKx"
            b"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:101@127.0.0.2>\r\nCall-ID: flood\r\n"
            b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    samples = [
        b"", b"\r\n\r\n", b"\x00" * 100, os.urandom(1400), b"SIP/2.0\r\n\r\n",
        b"INVITE\r\n\r\n", b"INVITE sip:x SIP/2.0\r\n\r\n",  # no headers at all
        good.replace(b"To: <sip:101@127.0.0.2>\r\n", b""),  # no To (killed pyVoIP's thread)
        good.replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"),
        good.replace(b"Via:", b"Via"),  # a header line without a colon
        good[: len(good) // 2],  # truncated
        good.replace(b"Content-Length: 0", b"Content-Length: 99999"),
        b"\xff\xfe" + good,  # not UTF-8
        good + b"X-Pad: " + b"a" * 60000 + b"\r\n",  # huge
        good.replace(b"sip:a@b", b"sip:\xc3\xa9@b"),
        b"BYE sip:101@127.0.0.2 SIP/2.0\r\nVia: x\r\nFrom: y\r\nTo: z;tag=1\r\nCall-ID: q\r\n"
        b"CSeq: 2 BYE\r\n\r\n",
        # RFC 4475's torture messages, valid and invalid (tests/lab/rfc4475/).
        *(path.read_bytes() for path in sorted(RFC4475.glob("*.dat"))),
    ]
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    flood.bind(("127.0.0.3", 0))
    rng = random.Random(7)
    for n in range(2000):
        data = samples[n % len(samples)] if n < 1000 else \
            bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 600)))
        flood.sendto(data, ("127.0.0.2", phone.port))
    flood.close()
    assert all(t.is_alive() for t in phone.account.transport._threads)
    _answered_call_from(phone, bob, kamailio)  # and the phone still rings and answers
    phone.replace()
    bob.wait_event("CALL_CLOSED")


@pytest.mark.timeout(240)
def test_registrar_down_for_two_minutes_then_back(kamailio, lab_phone) -> None:
    import time

    # The product's own backoff (2 s doubling to 30 s, jittered) and a registration that
    # would stay valid for 5 minutes: only the keep-alives can tell that the registrar is gone.
    keepalive = 10
    phone = lab_phone(kamailio, register_expires=300, keepalive_seconds=keepalive,
                      backoff_max=30.0).registered()
    down_at = time.monotonic()
    kamailio.stop()
    # The screen stops claiming "registered" within two keep-alive periods ...
    phone.until(lambda s: s.registration == "registering", "registering",
                timeout=2 * keepalive + 2)
    assert phone.state.registration_reason.startswith("No answer from 127.0.0.1")  # ... says why
    print(f"noticed {time.monotonic() - down_at:.1f} s after the registrar stopped")
    wait_for(lambda: time.monotonic() - down_at >= 120, timeout=130, what="two minutes")
    kamailio.start()
    back_at = time.monotonic()
    phone.registered(timeout=30 + 5)  # within the capped backoff, no restart of the phone
    print(f"registered again {time.monotonic() - back_at:.1f} s after the registrar returned")


def test_a_call_whose_bye_never_comes_ends_after_the_silence(kamailio, peers,
                                                             lab_phone) -> None:
    from firmware.events import CallEnded

    phone = lab_phone(kamailio, no_rtp_seconds=5).registered()
    bob = peers(kamailio, "102")
    _answered_call_from(phone, bob, kamailio)
    bob.proc.kill()  # power cut at the far end: no BYE, no RTP
    bob.proc.wait()
    phone.until(lambda s: s.call is None, "the call ended", timeout=20)
    assert [e.reason for e in phone.saw(CallEnded)] == ["network"]


def test_tcp_registration_and_a_call_over_it(kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio, transport="tcp").registered()
    assert "transport=tcp" in phone.account.contact()
    bob = peers(kamailio, "102")
    _answered_call_from(phone, bob, kamailio)  # Kamailio brings the INVITE over our TCP link
    phone.replace()
    assert bob.wait_event("CALL_CLOSED")["param"] == "Connection reset by peer"


def test_tls_verifies_the_server_certificate(kamailio_tls, lab_phone) -> None:
    from tests.lab.lab import certificate

    cert, _ = certificate(kamailio_tls.workdir)
    untrusting = lab_phone(kamailio_tls, transport="tls")  # default: verify against system CAs
    untrusting.until(lambda s: "certificate is not trusted" in s.registration_reason,
                     "the untrusted certificate named")
    assert untrusting.state.registration != "registered"
    lab_phone(kamailio_tls, transport="tls", tls_ca_file=str(cert)).registered()


def test_a_second_call_during_a_call_rings_at_the_caller_and_c_makes_it_busy(
        kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102")
    carol = peers(kamailio, "103")
    _answered_call_from(phone, bob, kamailio)
    carol.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    carol.wait_event("CALL_RINGING")  # call waiting: 180, not busy
    phone.until(lambda s: [c.state for c in s.others] == ["ringing"], "carol waiting")
    phone.keys("C")
    closed = carol.wait_event("CALL_CLOSED")
    assert "486" in closed["param"]
    phone.until(lambda s: s.missed_unseen == 1, "a missed call")
    assert phone.state.call is not None and phone.state.call.remote == "102"  # undisturbed
