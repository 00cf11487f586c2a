"""Wideband calls (G.722) against baresip's g722 module, through Kamailio: both ways the call
speaks G.722 (payload type 9 on the wire), the phone's screen says "HD", and each side hears
the other's test signal with its part above 4 kHz, which only a wideband path carries. Beside
them, a narrowband peer: G.711 on the same 16 kHz handset, the 6 kHz tone filtered out on the
way down rather than folded back into the voice band.

The phone's handset here runs at 16 kHz (TestAudio: 1 kHz + 6 kHz); the wideband peer's
"sound card" too (its WAV: 440 Hz + 5 kHz; its recording of what it heard is 16 kHz)."""

from __future__ import annotations

import wave

import pytest

from tests.helpers import wait_for
from tests.lab import fixtures
from tests.lab.lab import goertzel, need, wav_pcm
from tests.lab.sniff import Wire

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _baresip() -> None:
    need("baresip")


def wide_audio() -> fixtures.TestAudio:
    return fixtures.TestAudio(freq=1000.0, also=6000.0, level=0.2, rate=16000)


def phone_heard(phone, rate: int = 16000) -> bytes:
    wait_for(lambda: len(phone.audio.heard) > 60, what="audio in the earpiece")
    return b"".join(phone.audio.heard[-25:])


def peer_recording(peer) -> tuple[int, bytes]:
    wait_for(lambda: peer.heard(), what="baresip's recording")
    path = peer.heard()[-1]
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
    return rate, wav_pcm(path)[rate * 2:]  # after the first second


def test_a_call_in_and_one_out_with_a_wideband_peer_speak_g722_and_carry_above_4_khz(
        kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio, audio=wide_audio()).registered()
    bob = peers(kamailio, "102", wideband=True)
    with Wire() as wire:
        bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
        phone.until(lambda s: s.mode == "ringing", "ringing")
        phone.lift()
        bob.wait_event("CALL_ESTABLISHED")
        phone.until(lambda s: s.call is not None and s.call.wideband, '"HD" on screen')
        [call] = phone.account.calls.values()
        assert call.rtp.codec == 9
        pcm = phone_heard(phone)
        # The peer's 440 Hz and its 5 kHz: the phone's earpiece gets the whole band.
        assert goertzel(pcm, 440, 16000) > 0.1, "the phone does not hear the peer's voice band"
        assert goertzel(pcm, 5000, 16000) > 0.1, "the phone does not hear above 4 kHz"
        bob.command("hangup")
        phone.until(lambda s: s.call is None, "the call gone")
        phone.replace()
    rate, heard = peer_recording(bob)
    assert rate == 16000
    assert goertzel(heard, 1000, rate) > 0.1, "the peer does not hear our voice band"
    assert goertzel(heard, 6000, rate) > 0.1, "the peer does not hear our 6 kHz"
    if wire.sniffer is not None:
        assert 9 in wire.payload_types() and not wire.payload_types() & {0, 8}

    # Out, to a wideband peer that answers with SRTP (best effort): G.722 inside SRTP.
    carol = peers(kamailio, "103", answermode="auto", wideband=True, params=";mediaenc=srtp")
    phone.audio.heard.clear()
    phone.keys("103")
    phone.lift()
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected",
                timeout=20)
    phone.until(lambda s: s.call is not None and s.call.wideband, '"HD" on screen')
    pcm = phone_heard(phone)
    assert goertzel(pcm, 5000, 16000) > 0.1
    phone.replace()
    phone.until(lambda s: s.call is None, "the call gone")
    rate, heard = peer_recording(carol)
    assert goertzel(heard, 6000, rate) > 0.1


def test_a_narrowband_peer_gets_g711_and_the_wideband_handset_is_resampled(
        kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio, audio=wide_audio()).registered()
    bob = peers(kamailio, "102", answermode="auto")  # g711 only, 8 kHz
    phone.keys("102")
    phone.lift()
    phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
    phone.until(lambda s: s.call is not None and s.call.codec == "PCMU", "PCMU agreed")
    assert phone.state.call is not None and not phone.state.call.wideband  # no "HD"
    pcm = phone_heard(phone)
    assert len(phone.audio.heard[-1]) == 640  # 20 ms at the handset's 16 kHz
    assert goertzel(pcm, 440, 16000) > 0.2, "the peer's tone, resampled up, is not heard"
    phone.replace()
    phone.until(lambda s: s.call is None, "the call gone")
    rate, heard = peer_recording(bob)
    assert rate == 8000
    assert goertzel(heard, 1000, rate) > 0.1
    # 6 kHz cannot pass at 8 kHz: filtered out, not folded back to 2 kHz (8000 - 6000).
    assert goertzel(heard, 2000, rate) < 0.01
