"""The phone against a second, independent SIP stack: linphone (liblinphone / belle-sip 5.1) with
its own defaults (GRUU, its codec list, RFC 4733 events at three clock rates), through Kamailio on
loopback. What linphone heard and saw is read on its side."""

from __future__ import annotations

import re

import pytest

from tests.helpers import wait_for
from tests.lab import fixtures
from tests.lab.lab import goertzel
from tests.lab.sniff import Wire

pytestmark = pytest.mark.lab


def _connected(phone) -> None:
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")


def _answered_call_from(phone, alice, kamailio) -> None:
    alice.ok(f"call sip:101@127.0.0.1:{kamailio.port}")
    phone.until(lambda s: s.mode == "ringing", "ringing")
    phone.lift()
    alice.wait_state("StreamsRunning")
    _connected(phone)


def _hears_each_other(phone, alice) -> None:
    """The earpiece gets linphone's 440 Hz; linphone's speaker gets our 1 kHz microphone."""
    wait_for(lambda: len(phone.audio.heard) > 75, what="audio in the earpiece")
    pcm = b"".join(phone.audio.heard[-25:])
    assert goertzel(pcm, 440) > 10 * goertzel(pcm, 1000)
    assert goertzel(pcm, 440) > 0.02
    wait_for(lambda: len(alice.heard()) > 16000 * 1.5, what="linphone to hear 1.5 s")
    heard = alice.heard()[-8000:]  # its last half second
    assert goertzel(heard, 1000) > 0.2 and goertzel(heard, 440) < 0.02


def _grruu_contact(alice) -> str:
    """linphone's Contact in its dialogs: a GRUU whose host is the proxy's, not linphone's."""
    log = alice.log.read_text(errors="replace")
    found = re.findall(r"Contact: <(sip:[^>]*gr=[^>]*)>", log)
    assert found, "linphone used no GRUU"
    return found[-1]


def test_inbound_call_from_linphone_with_audio_both_ways(kamailio, linphones,
                                                        lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    alice = linphones(kamailio, "105")
    _answered_call_from(phone, alice, kamailio)
    assert phone.state.call is not None and phone.state.call.remote == "105"
    _hears_each_other(phone, alice)
    phone.replace()
    alice.wait_state("End")
    phone.until(lambda s: s.mode == "idle" and s.call is None, "idle")
    # linphone's remote target is a GRUU at the proxy's own address: our ACK and BYE followed
    # the Record-Route set (Kamailio saw them and resolved the GRUU), nothing went astray.
    gruu = _grruu_contact(alice)
    assert "127.0.0.1" in gruu
    assert re.search(r"REQ BYE sip:105@127\.0\.0\.1[^ ]*gr=[^ ]* from 127\.0\.0\.2",
                     kamailio.text), kamailio.text[-2000:]
    assert "REQ ACK" in kamailio.text and "RPL 481" not in kamailio.text
    assert "RPL 404" not in kamailio.text


def test_outbound_call_to_linphone_with_audio_hung_up_by_linphone(kamailio, linphones,
                                                                  lab_phone) -> None:
    phone = lab_phone(kamailio).registered()
    alice = linphones(kamailio, "105")
    phone.keys("105D")
    alice.wait_state("IncomingReceived")
    phone.until(lambda s: s.call is not None and s.call.progress, "ringback")
    alice.ok("answer")
    alice.wait_state("StreamsRunning")
    _connected(phone)
    _hears_each_other(phone, alice)
    alice.ok("terminate")
    phone.until(lambda s: s.call is None, "the call ended")
    assert phone.state.recent[0].outcome == "answered"
    assert "RPL 481" not in kamailio.text


def test_dtmf_both_ways_with_linphone(kamailio, linphones, lab_phone) -> None:
    from firmware.events import DtmfReceived

    phone = lab_phone(kamailio).registered()
    alice = linphones(kamailio, "105")
    _answered_call_from(phone, alice, kamailio)
    phone.keys("159#")
    wait_for(lambda: alice.tones() == ["1", "5", "9", "#"], what="linphone got 1 5 9 #")
    # linphone offers telephone-event at 48000, 16000 and 8000 Hz on three payload types; our
    # answer keeps the offer's mapping and takes the 8000 Hz one (RFC 3264 6.1, RFC 4733).
    log = alice.log.read_text(errors="replace")
    offered = re.findall(r"a=rtpmap:(\d+) telephone-event/8000", log.split("o=deskphone")[0])
    answer = log.split("o=deskphone", 1)[1].split("\n\n", 1)[0]
    assert re.findall(r"a=rtpmap:(\d+) (telephone-event/\d+)", answer) == [
        (offered[-1], "telephone-event/8000")]
    alice.ok("dtmf 7")
    wait_for(lambda: [e.digit for e in phone.saw(DtmfReceived)] == ["7"], what="we got 7")


def test_hold_and_resume_both_ways_with_linphone(kamailio, linphones, lab_phone) -> None:
    from firmware.events import HoldChanged, KeyPressed

    phone = lab_phone(kamailio).registered()
    alice = linphones(kamailio, "105")
    _answered_call_from(phone, alice, kamailio)
    phone.post(KeyPressed("#", long=True))
    alice.wait_state("PausedByRemote")
    phone.until(lambda s: s.call is not None and s.call.state == "held", "held")
    after = len(alice.events)
    phone.post(KeyPressed("#", long=True))
    alice.wait_state("StreamsRunning", after=after)
    _connected(phone)
    call_id = alice.events[-1]["Id"]
    alice.ok(f"call-pause {call_id}")
    wait_for(lambda: any(e.by_remote and e.held for e in phone.saw(HoldChanged)),
             what="linphone's hold")
    alice.ok(f"call-resume {call_id}")
    wait_for(lambda: [e.held for e in phone.saw(HoldChanged) if e.by_remote] == [True, False],
             what="linphone's resume")
    _connected(phone)
    _hears_each_other(phone, alice)
    assert "RPL 481" not in kamailio.text and "RPL 488" not in kamailio.text


def test_linphone_follows_our_blind_transfer(kamailio, linphones, peers, lab_phone) -> None:
    from firmware.events import TransferSucceeded

    phone = lab_phone(kamailio).registered()
    alice = linphones(kamailio, "105")
    carol = peers(kamailio, "103", answermode="auto")
    _answered_call_from(phone, alice, kamailio)
    phone.keys("A103A")
    established = carol.wait_event("CALL_ESTABLISHED", timeout=20)
    assert "105" in established.get("peeruri", "")  # linphone now talks to carol
    phone.until(lambda s: s.call is None, "our leg gone")
    assert phone.saw(TransferSucceeded)
    assert "RPL 481" not in kamailio.text


def test_wideband_calls_both_ways_with_linphone_speak_g722_above_4_khz(
        kamailio, linphones, lab_phone) -> None:
    """linphone's own G.722 (mediastreamer2's) on a 16 kHz "sound card" saying 5 kHz; our
    16 kHz handset says 1 kHz + 6 kHz. In from linphone (its offer) and out to it (ours):
    payload 9 on the wire and nothing else, "HD", each side hears the other above 4 kHz."""
    phone = lab_phone(kamailio, audio=fixtures.TestAudio(
        freq=1000.0, also=6000.0, level=0.2, rate=16000)).registered()
    alice = linphones(kamailio, "105", tone=5000, rate=16000)
    alice.ok("audio-codec-enable G722/8000/1")  # liblinphone ships it off
    with Wire() as wire:
        _answered_call_from(phone, alice, kamailio)
        _hears_above_4_khz(phone, alice)
        phone.replace()
        alice.wait_state("End")
        phone.until(lambda s: s.call is None, "the call gone")

        phone.audio.heard.clear()
        after = len(alice.events)
        phone.keys("105D")
        alice.wait_state("IncomingReceived", after=after)
        alice.ok("answer")
        alice.wait_state("StreamsRunning", after=after)
        _connected(phone)
        _hears_above_4_khz(phone, alice)
        alice.ok("terminate")
        phone.until(lambda s: s.call is None, "the call gone")
    if wire.sniffer is not None:
        assert 9 in wire.payload_types() and not wire.payload_types() & {0, 8}


def _hears_above_4_khz(phone, alice) -> None:
    phone.until(lambda s: s.call is not None and s.call.wideband, '"HD" on screen')
    [call] = phone.account.calls.values()
    assert call.rtp.codec == 9
    wait_for(lambda: len(phone.audio.heard) > 75, what="audio in the earpiece")
    pcm = b"".join(phone.audio.heard[-25:])
    assert goertzel(pcm, 5000, 16000) > 0.05, "the phone does not hear linphone's 5 kHz"
    start = len(alice.heard())
    wait_for(lambda: len(alice.heard()) > start + 32000 * 1.5, what="linphone to hear 1.5 s")
    heard = alice.heard()[-16000:]  # its last half second
    assert goertzel(heard, 1000, 16000) > 0.05, "linphone does not hear our voice band"
    assert goertzel(heard, 6000, 16000) > 0.05, "linphone does not hear our 6 kHz"
