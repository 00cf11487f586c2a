"""SIP dialects: answer-to-media with a delayed offer next to a normal one, and the CPU of a long
call with session-timer refreshes next to the same call without.

Everything runs against the lab on loopback, Kamailio as the proxy and SIPp as the caller, in
one run:
- Answer to media: SIPp calls the phone with its offer in the INVITE (normal) or with none
  (delayed offer: the phone offers in its 200 OK, SIPp answers in its ACK). From the phone's
  off-hook to the first RTP packet of ours at the far end's media address (a socket of this
  bench): N runs each, median and max.
- CPU: two phones in processes of their own, each answering one SIPp call at the same time, both
  calls with audio both ways (SIPp loops a u-law tone, the phone's microphone a 1 kHz tone): one
  with `Session-Expires: 180;refresher=uas` (the phone refreshes, an UPDATE every 90 s), one
  without timers. CPU seconds per minute of each phone over the same window; SIPp's verdict
  proves every refresh came and was answered.

    .venv/bin/python bench/dialects.py [--runs 10] [--minutes 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.events import HookLifted, HookReplaced
from tests.lab.fixtures import LabPhone, lab_port
from tests.lab.lab import Kamailio, free_udp, sipp_start, ulaw_wav

SIPP_IP = "127.0.0.3"
TICKS = os.sysconf("SC_CLK_TCK")

SDP = """\
      v=0
      o=bob 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 @MEDIA_IP@
      t=0 0
      m=audio @MEDIA_PORT@ RTP/AVP 0
      a=rtpmap:0 PCMU/8000
"""

INVITE = """\
  <send retrans="500">
    <![CDATA[
      INVITE sip:@USER@@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Bob" <sip:102@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:@USER@@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: @CSEQ@ INVITE
      Contact: <sip:102@[local_ip]:[local_port]>
      Max-Forwards: 70
      Allow: INVITE, ACK, BYE, CANCEL, UPDATE
@TIMER@@AUTH@      @TYPE@Content-Length: [len]

@BODY@
    ]]>
  </send>
"""

IN_DIALOG = """\
  <send@RETRANS@>
    <![CDATA[
      @METHOD@ [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: "Bob" <sip:102@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:@USER@@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: @CSEQ@ @METHOD@
      Max-Forwards: 70
      @TYPE@Content-Length: [len]

@BODY@
    ]]>
  </send>
"""

# The phone's refresh answered; in this UPDATE the phone is the UAC, and stays the refresher.
REFRESH = """\
  <recv request="UPDATE" timeout="120000"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Session-Expires: 180;refresher=uac
      Require: timer
      Content-Length: 0

    ]]>
  </send>
"""


def caller(user: str, offer: bool, timer: bool, talk_ms: int, refreshes: int = 0,
           stream: bool = False) -> str:
    """A SIPp scenario: Bob calls `user` through the proxy (answering its 407), talks
    `talk_ms`, answering `refreshes` UPDATEs, then hangs up. The SDP points at
    [sink_ip]:[sink_port] when given, else at SIPp's own media port."""
    media_ip, media_port = ("[media_ip]", "[media_port]") if stream else \
        ("[sink_ip]", "[sink_port]")
    body = SDP.replace("@MEDIA_IP@", media_ip).replace("@MEDIA_PORT@", media_port)
    sdp_type = "Content-Type: application/sdp\n      "
    timer_lines = "      Supported: timer\n      Session-Expires: 180;refresher=uas\n" \
        if timer else ""

    def invite(cseq: int, auth: bool) -> str:
        return (INVITE.replace("@CSEQ@", str(cseq)).replace("@TIMER@", timer_lines)
                .replace("@AUTH@", "      [authentication username=102 password=pw102]\n"
                         if auth else "")
                .replace("@TYPE@", sdp_type if offer else "")
                .replace("@BODY@", body if offer else ""))

    def in_dialog(method: str, cseq: int, sdp: bool = False) -> str:
        return (IN_DIALOG.replace("@METHOD@", method).replace("@CSEQ@", str(cseq))
                .replace("@RETRANS@", "" if method == "ACK" else ' retrans="500"')
                .replace("@TYPE@", sdp_type if sdp else "")
                .replace("@BODY@", body if sdp else ""))

    first_ack = in_dialog("ACK", 1).replace("[next_url]", "sip:@USER@@[remote_ip]:"
                                            "[remote_port]").replace("      [routes]\n", "")
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="bench caller">\n',
        invite(1, False),
        '  <recv response="100" optional="true"/>\n  <recv response="407" auth="true"/>\n',
        first_ack,
        invite(2, True),
        '  <recv response="100" optional="true"/>\n'
        '  <recv response="180" timeout="30000"/>\n'
        '  <recv response="200" rrs="true" timeout="60000"/>\n',
        in_dialog("ACK", 2, sdp=not offer),
    ]
    if stream:
        parts.append('  <nop><action><exec rtp_stream="tone.wav,-1,0"/></action></nop>\n')
    parts += [REFRESH] * refreshes
    parts.append(f'  <pause milliseconds="{talk_ms}"/>\n')
    parts.append(in_dialog("BYE", 3))
    parts.append('  <recv response="200"/>\n</scenario>\n')
    return "".join(parts).replace("@USER@", user)


def answer_to_media(kam: Kamailio, work: Path, runs: int) -> dict[str, list[float]]:
    phone = LabPhone(kam, no_rtp_seconds=600)
    phone.registered()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind((SIPP_IP, 0))
    sink.settimeout(10)
    results: dict[str, list[float]] = {"normal offer": [], "delayed offer": []}
    try:
        for _ in range(runs):
            for kind, offer in (("normal offer", True), ("delayed offer", False)):
                name = f"{kind.split()[0]}.xml"
                (work / name).write_text(caller("101", offer, False, 500))
                run = sipp_start(str(work / name), f"127.0.0.1:{kam.port}", SIPP_IP, work,
                                 timeout=30, keys={"sink_ip": SIPP_IP,
                                                   "sink_port": str(sink.getsockname()[1])})
                phone.until(lambda s: s.mode == "ringing", "ringing", 20)
                t0 = time.perf_counter()
                phone.post(HookLifted())
                sink.recvfrom(2048)
                results[kind].append(time.perf_counter() - t0)
                out, err = run.communicate(timeout=30)
                if run.returncode:
                    raise RuntimeError(f"SIPp: {out[-1500:]}{err[-1500:]}")
                phone.until(lambda s: s.call is None, "the caller's BYE", 10)
                phone.post(HookReplaced())
                phone.until(lambda s: s.mode == "idle", "idle", 10)
                while True:  # what arrived after the first packet
                    sink.settimeout(0.2)
                    try:
                        sink.recvfrom(2048)
                    except TimeoutError:
                        break
                sink.settimeout(10)
    finally:
        sink.close()
        phone.stop()
    return results


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.lab.fixtures import LabPhone
    from tests.lab.lab import Kamailio
    k = Kamailio.__new__(Kamailio); k.port = {port}; k.tls_port = None; k.ip = "127.0.0.1"
    p = LabPhone(k, user={user!r}, ip={ip!r}, no_rtp_seconds=3600)
    p.registered()
    print("registered", flush=True)
    p.until(lambda s: s.mode == "ringing", "ringing", 60)
    p.lift()
    p.until(lambda s: s.call is not None and s.call.state == "connected", "up", 20)
    print("ready", flush=True)
    p.until(lambda s: s.call is None, "the caller's BYE", 7200)
    print("ended", flush=True)
    time.sleep(3600)
""")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def long_calls(kam: Kamailio, work: Path, minutes: float) -> list[tuple[str, float, int]]:
    root = str(Path(__file__).resolve().parents[1])
    ulaw_wav(work / "tone.wav", 440, 60)
    total_ms = int(minutes * 60_000)
    refreshes = max(0, (total_ms - 1000) // 90_000)
    calls = [("with session timer (UPDATE every 90 s)", "101", "127.0.0.2", True, refreshes),
             ("without session timer", "104", "127.0.0.4", False, 0)]
    children, runs = [], []
    try:
        for _, user, ip, _timer, _n in calls:
            child = subprocess.Popen(
                [sys.executable, "-c", CHILD.format(root=root, port=kam.port, user=user, ip=ip)],
                stdout=subprocess.PIPE, stderr=(work / f"phone-{user}.log").open("w"), text=True,
                start_new_session=True)
            assert child.stdout is not None
            if child.stdout.readline().strip() != "registered":
                raise RuntimeError(f"phone {user} did not register")
            children.append(child)
        for _, user, _ip, timer, n in calls:
            name = f"long-{user}.xml"
            # The refreshes take 90 s each; the rest of the call after the last one.
            talk = total_ms - n * 90_000
            (work / name).write_text(caller(user, True, timer, talk, n, stream=True))
            runs.append(sipp_start(str(work / name), f"127.0.0.1:{kam.port}", SIPP_IP, work,
                                   timeout=total_ms / 1000 + 120,
                                   media_port=free_udp(SIPP_IP)))
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("a phone did not answer")
        before = [cpu_seconds(c.pid) for c in children]
        start = time.monotonic()
        window = total_ms / 1000 - 5  # both calls up all along
        time.sleep(window)
        used = [cpu_seconds(c.pid) - b for c, b in zip(children, before, strict=True)]
        elapsed = time.monotonic() - start
        for run in runs:
            out, err = run.communicate(timeout=300)
            if run.returncode:
                raise RuntimeError(f"SIPp: {out[-1500:]}{err[-1500:]}")
    finally:
        for child in children:
            child.kill()
            child.wait()
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.communicate()
    return [(what, u / elapsed * 60, n) for (what, *_rest, n), u in zip(calls, used, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dialects-"))
    kam = Kamailio(work / "kamailio", port=lab_port()).start()
    try:
        media = answer_to_media(kam, work, args.runs)
        print(f"answer to media through Kamailio on loopback, {args.runs} runs each, ms "
              f"(median / max): off hook -> our first RTP packet at the caller\n")
        print("| offer | answer to media | baseline (normal offer) |")
        print("|---|---|---|")

        def ms(values: list[float]) -> str:
            v = sorted(x * 1000 for x in values)
            return f"{statistics.median(v):.1f} / {v[-1]:.1f}"

        normal = ms(media["normal offer"])
        print(f"| delayed (our offer in the 200, the answer in the ACK) | "
              f"{ms(media['delayed offer'])} | {normal} |")
        print(f"| normal (in the INVITE) | {normal} | {normal} |")
        rows = long_calls(kam, work, args.minutes)
        print(f"\nCPU seconds per minute of a {args.minutes:g}-minute two-way G.711 call, both "
              f"calls at once, {os.cpu_count()} cores\n")
        print("| call | ours | refreshes answered |")
        print("|---|---|---|")
        for what, cpu, n in rows:
            print(f"| {what} | {cpu:.3f} | {n} |")
    finally:
        kam.stop()


if __name__ == "__main__":
    main()
