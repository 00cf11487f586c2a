"""The whole phone: start to registered, and its memory during a call.

`deskphone simulate --headless` as a process against the lab (Kamailio on loopback), next to
baresip measured the same way in the same run:
- start to registered: from spawning the process to `/state.registration == "registered"`
  (baresip: to its `reginfo` saying OK);
- resident memory (VmRSS) of the process idle, then after N seconds of a two-way call with a
  baresip peer (baresip: the callee's own RSS on that call).

    .venv/bin/python bench/desk.py [--runs 5] [--call-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import free_port, http
from tests.lab.fixtures import free_udp, lab_port, peer_ports
from tests.lab.lab import Baresip, Kamailio, tone_wav

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_phone(work: Path, kam: Kamailio) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    cfg = work / f"phone-{port}.toml"
    cfg.write_text(f"""
[sip]
server = "127.0.0.1"
port = {kam.port}
domain = "127.0.0.1:{kam.port}"
username = "101"
password = "pw101"
bind = "127.0.0.2:{free_udp('127.0.0.2')}"
[phone]
region = "BE"
state_dir = "{work}"
[control]
listen = "127.0.0.1:{port}"
""")
    base = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "firmware", "simulate", "--headless",
                             "--config", str(cfg)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while True:
        try:
            code, doc = http("GET", f"{base}/state")
            if code == 200 and doc["registration"] == "registered":
                return proc, base, time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.005)


def start_baresip(work: Path, kam: Kamailio, user: str, wav: Path) -> tuple[Baresip, float]:
    sip, ctrl = peer_ports()
    t0 = time.perf_counter()
    b = Baresip(work / f"b{user}-{sip}", user, sip, ctrl, wav, "auto",
                proxy_port=kam.port).start()
    while "OK" not in b.command("reginfo").get("data", ""):
        time.sleep(0.005)
    return b, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--call-seconds", type=float, default=60)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    kam = Kamailio(work / "k", port=lab_port()).start()
    wav = tone_wav(work / "t.wav", 440, args.call_seconds + 60)
    ours, theirs = [], []
    try:
        for _ in range(args.runs):
            proc, _, took = start_phone(work, kam)
            ours.append(took)
            proc.terminate()
            proc.wait()
            b, took = start_baresip(work, kam, "102", wav)
            theirs.append(took)
            b.stop()
        proc, base, _ = start_phone(work, kam)
        bob, _ = start_baresip(work, kam, "102", wav)
        idle = rss_mib(proc.pid)
        http("POST", f"{base}/keys", {"keys": "102D"})
        while (http("GET", f"{base}/state")[1].get("call") or {}).get("state") != "connected":
            time.sleep(0.05)
        time.sleep(args.call_seconds)
        in_call = rss_mib(proc.pid)
        assert bob.proc is not None
        bob_rss = rss_mib(bob.proc.pid)
        proc.terminate()
        proc.wait()
        bob.stop()
    finally:
        kam.stop()

    def ms(v: list[float]) -> str:
        v = sorted(x * 1000 for x in v)
        return f"{statistics.median(v):.0f} / {v[-1]:.0f}"

    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {args.runs} starts\n")
    print("| what | ours | baseline: baresip 1.0 |\n|---|---|---|")
    print(f"| process start -> registered, ms (median / max) | {ms(ours)} | {ms(theirs)} |")
    print(f"| resident memory idle, MiB | {idle:.1f} | |")
    print(f"| resident memory after {args.call_seconds:.0f} s of a call, MiB | {in_call:.1f} | "
          f"{bob_rss:.1f} |")


if __name__ == "__main__":
    main()
