"""Encrypted media (SRTP with SDES keys) against baresip's srtp module, through Kamailio: calls
both ways where both sides hear the other's tone and the wire (read off the loopback interface)
carries no clear audio, and the refusals a person must understand: a peer that requires SRTP
calling or called by a phone with SRTP off, a phone that requires it and a peer without.

The lab signals over UDP, so the phone runs with `srtp_over_udp = true` (the keys travel in
clear there; over TLS they do not: test_sip_calls.py proves TLS itself)."""

from __future__ import annotations

import math
import statistics

import pytest

from firmware.events import CallEnded
from firmware.pcm import rms
from firmware.sip import g711
from tests.helpers import wait_for
from tests.lab.lab import goertzel, need, wav_pcm
from tests.lab.sniff import Sniffer

pytestmark = pytest.mark.lab


@pytest.fixture(autouse=True)
def _root() -> None:
    need("baresip")
    import os

    if os.geteuid() != 0:
        pytest.skip("reading the wire needs root (AF_PACKET)")


def clear_audio(packets: list[bytes]) -> float:
    """How much of what the payloads hold, read as G.711, is the 440 Hz or 1 kHz test tone:
    about 1 for the tone in clear, near 0 for noise (encrypted bytes decode to loud noise)."""
    shares = []
    for p in packets[-50:]:
        pcm = g711.decode(p[12:172], 0)
        level = rms(pcm) / 32768 * math.sqrt(2)  # a pure tone's amplitude, from its power
        if level:
            shares.append(max(goertzel(pcm, 440), goertzel(pcm, 1000)) / level)
    return statistics.median(shares) if shares else 0.0


def heard_both_ways(phone, peer) -> None:
    wait_for(lambda: len(phone.audio.heard) > 50, what="audio in the earpiece")
    pcm = b"".join(phone.audio.heard[-25:])
    assert goertzel(pcm, 440) > 0.2, "the phone does not hear the peer's tone"


def peer_heard_us(peer) -> None:
    wait_for(lambda: peer.heard(), what="baresip's recording")
    heard = wav_pcm(peer.heard()[-1])[8000:]
    assert goertzel(heard, 1000) > 0.2, "the peer does not hear our tone"


def test_an_srtp_call_in_and_one_out_both_hear_and_the_wire_carries_no_clear_audio(
        kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio, srtp="optional", srtp_over_udp=True).registered()
    bob = peers(kamailio, "102", params=";mediaenc=srtp-mand")
    with Sniffer() as wire:
        bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")  # RTP/SAVP, keys only
        phone.until(lambda s: s.mode == "ringing", "ringing")
        phone.lift()
        bob.wait_event("CALL_ESTABLISHED")
        heard_both_ways(phone, bob)
        [call] = phone.account.calls.values()
        assert call.rtp.srtp is not None and call.srtp.profile == "RTP/SAVP"
        phone.until(lambda s: s.call is not None and s.call.encrypted, "the lock on screen")
        # SRTCP both ways: baresip's reports pass our authentication, and it reports on ours
        # (its report block names our SSRC: it decrypted our SRTCP).
        wait_for(lambda: call.rtp.far is not None, timeout=15, what="baresip's SRTCP report")
        assert call.rtp.rtcp_received > 0 and call.rtp.rtcp_sent > 0
        rtcp_port = call.rtp.port + 1
        bob.command("hangup")
        phone.until(lambda s: s.call is None, "the call gone")
        phone.replace()
    peer_heard_us(bob)
    assert "failed to decrypt RTCP" not in (bob.workdir / "baresip.log").read_text()
    ours = [d for src, _, d in wire.datagrams if src == rtcp_port and len(d) > 8]
    assert ours and all(d[1] in (200, 201) for d in ours)  # SR or RR, first 8 bytes in clear
    # The rest is encrypted: the E flag of the SRTCP index (RFC 3711 3.4) before the 80-bit tag,
    # and no CNAME readable.
    assert all(d[-14] & 0x80 for d in ours) and not any(b"deskphone-" in d for d in ours)
    packets = wire.rtp(0)
    assert len(packets) > 100
    assert {len(p) for p in packets} == {12 + 160 + 10}  # an 80-bit tag on every packet
    assert clear_audio(packets) < 0.3  # noise, not 440 Hz or 1 kHz

    carol = peers(kamailio, "103", answermode="auto", params=";mediaenc=srtp")
    phone.audio.heard.clear()
    with Sniffer() as wire:
        phone.keys("103")
        phone.lift()
        phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected",
                    timeout=20)
        heard_both_ways(phone, carol)
        [call] = phone.account.calls.values()
        assert call.rtp.srtp is not None and call.srtp.profile == "RTP/AVP"  # best effort
        assert phone.state.call is not None and phone.state.call.encrypted
        phone.replace()
        phone.until(lambda s: s.call is None, "the call gone")
    peer_heard_us(carol)
    assert clear_audio(wire.rtp(0)) < 0.3
    assert "inline:" not in "".join(str(e) for e in phone.events)


def test_the_control_call_in_clear_is_what_the_wire_check_would_catch(
        kamailio, peers, lab_phone) -> None:
    """The same capture of a call without SRTP: the tone is there for anyone to hear."""
    phone = lab_phone(kamailio).registered()
    bob = peers(kamailio, "102", answermode="auto")
    with Sniffer() as wire:
        phone.keys("102")
        phone.lift()
        phone.until(lambda s: s.call is not None and s.call.state == "connected", "connected")
        heard_both_ways(phone, bob)
        assert phone.state.call is not None and not phone.state.call.encrypted
        phone.replace()
        phone.until(lambda s: s.call is None, "the call gone")
    assert clear_audio(wire.rtp(0)) > 0.7


def test_srtp_off_and_a_peer_that_requires_it_fail_with_a_reason_both_ways(
        kamailio, peers, lab_phone) -> None:
    phone = lab_phone(kamailio).registered()  # srtp = "off"
    bob = peers(kamailio, "102", params=";mediaenc=srtp-mand")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    closed = bob.wait_event("CALL_CLOSED", timeout=10)
    assert "488" in str(closed), closed
    assert phone.state.mode == "idle"  # it never rang
    peers(kamailio, "103", answermode="auto", params=";mediaenc=srtp-mand")
    phone.keys("103")
    phone.lift()
    ended = wait_for(lambda: phone.saw(CallEnded), what="the call refused")
    assert "encrypted media" in ended[-1].detail, ended[-1]
    phone.replace()


def test_a_phone_that_requires_srtp_refuses_a_peer_in_clear(kamailio, peers,
                                                              lab_phone) -> None:
    phone = lab_phone(kamailio, srtp="required", srtp_over_udp=True).registered()
    bob = peers(kamailio, "102")
    bob.command("dial", f"sip:101@127.0.0.1:{kamailio.port}")
    closed = bob.wait_event("CALL_CLOSED", timeout=10)
    assert "488" in str(closed), closed
    assert phone.state.mode == "idle"  # it never rang
