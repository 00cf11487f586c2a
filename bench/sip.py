"""SIP: CPU of an idle registered phone and of a call, off-hook to 200 OK, INVITE to ring.

Everything runs against the lab on loopback (Kamailio as the proxy, baresip as the far end), in
one run, each figure next to its baseline measured the same way:
- CPU seconds per minute (user + system, from /proc/PID/stat), idle and registered, then during
  a two-way G.711 call with baresip: our phone (its own process) next to stock pyVoIP 2.0.0a4
  (its own process, registered the same way; its call is placed to baresip as pyVoIP ships) and
  baresip itself on the same call.
- Off-hook to 200 OK: from the hook event to the caller's CALL_ESTABLISHED (measured at baresip),
  next to baresip answering (`accept`) and our phone seeing CallAnswered.
- INVITE to ring: from baresip's `dial` to our Ring(on) action, next to our PlaceCall to
  baresip's CALL_INCOMING.

    .venv/bin/python bench/sip.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.events import CallAnswered, HookLifted, HookReplaced, KeyPressed, Ring
from tests.lab.fixtures import LabPhone, free_udp, lab_port, peer_ports
from tests.lab.lab import Baresip, Kamailio, tone_wav

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def per_minute(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds * 60


OURS = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from tests.lab.fixtures import LabPhone
    from tests.lab.lab import Kamailio
    k = Kamailio.__new__(Kamailio); k.port = {port}; k.tls_port = None
    p = LabPhone(k)
    p.registered()
    if {call}:
        p.keys("102D")
        p.until(lambda s: s.call is not None and s.call.state == "connected", "up", 20)
    print("ready", flush=True)
    time.sleep(3600)
""")

STOCK = textwrap.dedent("""
    import sys, time
    from pyVoIP.credentials import CredentialsManager
    from pyVoIP.VoIP.phone import VoIPPhone, VoIPPhoneParameter
    creds = CredentialsManager(); creds.add("101", "pw101")
    phone = VoIPPhone(VoIPPhoneParameter("127.0.0.1", {port}, "101", creds,
                                         bind_ip="127.0.0.2", bind_port={bind},
                                         hostname="127.0.0.2", remote_hostname="127.0.0.1"))
    phone.start()
    deadline = time.time() + 15
    while str(phone.get_status()) != "PhoneStatus.REGISTERED" and time.time() < deadline:
        time.sleep(0.1)
    if {call}:
        try:
            phone.call("102")
        except Exception as exc:
            print("call failed:", exc, flush=True)
    print("ready", str(phone.get_status()), flush=True)
    time.sleep(3600)
""")


def child(code: str, workdir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=(workdir / f"child-{time.monotonic_ns()}.log").open("w"),
                            text=True, start_new_session=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        raise RuntimeError(f"child did not start: {line!r}")
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parents[1])
    work = Path(tempfile.mkdtemp(prefix="bench-sip-"))
    kam = Kamailio(work / "kamailio", port=lab_port()).start()
    wav = tone_wav(work / "tone.wav", 440, 600)
    sip, ctrl = peer_ports()
    bob = Baresip(work / "bob", "102", sip, ctrl, wav, "auto", proxy_port=kam.port).start()
    bob.registered()
    sip, ctrl = peer_ports()
    carol = Baresip(work / "carol", "103", sip, ctrl, wav, "manual", proxy_port=kam.port).start()
    carol.registered()
    rows = []
    try:
        assert bob.proc is not None
        for call in (False, True):
            what = "two-way call with baresip" if call else "idle, registered"
            ours = child(OURS.format(root=root, port=kam.port, call=call), work)
            ours_cpu = per_minute(ours.pid, args.seconds)
            bob_cpu = per_minute(bob.proc.pid, args.seconds) if call else None
            stop(ours)
            time.sleep(1)
            stock = child(STOCK.format(port=kam.port, bind=free_udp("127.0.0.2"), call=call),
                          work)
            stock_cpu = per_minute(stock.pid, args.seconds)
            stop(stock)
            bob.command("hangup")
            time.sleep(1)
            rows.append((what, ours_cpu, stock_cpu, bob_cpu))
        print(f"CPU seconds per minute over {args.seconds:.0f} s, {os.cpu_count()} cores\n")
        print("| state | ours | stock pyVoIP 2.0.0a4 | baresip (far end) |")
        print("|---|---|---|---|")
        for what, o, s, b in rows:
            print(f"| {what} | {o:.2f} | {s:.2f} | {'' if b is None else f'{b:.2f}'} |")
        latency(kam, bob, carol)
    finally:
        carol.stop()
        bob.stop()
        kam.stop()


def latency(kam: Kamailio, bob: Baresip, carol: Baresip, runs: int = 10) -> None:
    """bob (auto-answer) calls us and answers us; carol (manual) is the baseline callee."""
    phone = LabPhone(kam)
    phone.registered()
    ring_at: list[float] = []
    real_execute = phone.daemon._execute

    def execute(action: object) -> None:
        if isinstance(action, Ring) and action.on:
            ring_at.append(time.perf_counter())
        real_execute(action)  # type: ignore[arg-type]

    phone.daemon._execute = execute  # type: ignore[method-assign]
    rings, answer, theirs_ring, theirs_answer = [], [], [], []
    for _ in range(runs):
        n = len(ring_at)
        start = time.perf_counter()
        bob.command("dial", f"sip:101@127.0.0.1:{kam.port}")
        while len(ring_at) == n:
            time.sleep(0.0005)
        rings.append(ring_at[-1] - start)
        phone.until(lambda s: s.mode == "ringing", "ringing")
        after = len(bob.events)
        t0 = time.perf_counter()
        phone.post(HookLifted())
        bob.wait_event("CALL_ESTABLISHED", after=after)
        answer.append(time.perf_counter() - t0)
        phone.post(HookReplaced())
        bob.wait_event("CALL_CLOSED", after=after)
        phone.until(lambda s: s.mode == "idle" and s.call is None, "idle")
        time.sleep(0.2)
    for _ in range(runs):
        after = len(carol.events)
        before = len(phone.saw(CallAnswered))
        t0 = time.perf_counter()
        phone.post(KeyPressed("1"), KeyPressed("0"), KeyPressed("3"), KeyPressed("D"))
        carol.wait_event("CALL_INCOMING", after=after)
        theirs_ring.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        carol.command("accept")
        while len(phone.saw(CallAnswered)) == before:
            time.sleep(0.0005)
        theirs_answer.append(time.perf_counter() - t1)
        phone.post(HookLifted(), HookReplaced())
        carol.wait_event("CALL_CLOSED", after=after)
        phone.until(lambda s: s.mode == "idle" and s.call is None, "idle")
        time.sleep(0.2)
    phone.stop()

    def ms(values: list[float]) -> str:
        v = sorted(x * 1000 for x in values)
        return f"{statistics.median(v):.1f} / {v[-1]:.1f}"

    print(f"\nlatency through Kamailio on loopback, {runs} runs each, ms (median / max)\n")
    print("| what | ours | baseline |")
    print("|---|---|---|")
    print(f"| dial -> the callee rings (ours: baresip dials, our Ring action; baseline: we "
          f"dial, baresip's CALL_INCOMING) | {ms(rings)} | {ms(theirs_ring)} |")
    print(f"| answer -> the caller has the call (ours: off hook -> baresip's CALL_ESTABLISHED;"
          f" baseline: baresip `accept` -> our CallAnswered) | {ms(answer)} | "
          f"{ms(theirs_answer)} |")


if __name__ == "__main__":
    main()
