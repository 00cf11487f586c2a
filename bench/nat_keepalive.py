"""Behind a NAT router, idle: what each SIP client sends to keep itself callable, counted by the
router, and whether a call still reaches it afterwards.

The office of tests/lab/netns.py (a masquerading router that forgets idle UDP mappings after
30 s, 60 s for a stream), with Kamailio in the WAN answering STUN on its SIP port. In the LAN,
side by side in the same run: our phone (`deskphone simulate --headless`, defaults:
keep-alives every 25 s, 300 s registration) and baresip with RFC 5626 outbound asked for
(`sipnat=outbound` with an outbound proxy, 300 s registration). The router's nftables count
every packet each one sends or receives on its SIP port over `--seconds`; then a colleague in
the WAN calls each of them. Needs root (network namespaces).

    sudo .venv/bin/python bench/nat_keepalive.py [--seconds 300]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.desk import start
from tests.lab.lab import Baresip, Kamailio, tone_wav
from tests.lab.netns import LAN_PHONE, WAN_SERVER, inside, office_or_fail

OURS, THEIRS = 5060, 5080  # SIP ports in the LAN: our phone, baresip


def counters(router: str) -> dict[str, tuple[int, int]]:
    """Packets and bytes per rule comment in the router's `tally` table."""
    out = subprocess.run(["ip", "netns", "exec", router, "nft", "list", "table", "inet", "tally"],
                         capture_output=True, text=True, check=True).stdout
    found: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        words = line.replace('"', " ").split()
        if "packets" in words and "comment" in words:
            found[words[words.index("comment") + 1]] = (
                int(words[words.index("packets") + 1]), int(words[words.index("bytes") + 1]))
    return found


def count_at_the_router(router: str) -> None:
    rules = "table inet tally {\n chain through {\n  type filter hook forward priority 0;\n"
    for who, port in (("ours", OURS), ("baresip", THEIRS)):
        # By the LAN end of the flow only: the server's port is 5060 too.
        rules += (f'  ip saddr {LAN_PHONE} udp sport {port} counter comment "{who}_out"\n'
                  f'  ip daddr {LAN_PHONE} udp dport {port} counter comment "{who}_in"\n')
    rules += " }\n}\n"
    subprocess.run(["ip", "netns", "exec", router, "nft", "-f", "-"], input=rules, text=True,
                   check=True)


def rings(caller: Baresip, uri: str, check: object, timeout: float = 10.0) -> bool:
    seen = len(caller.events)
    caller.command("dial", uri)
    deadline = time.monotonic() + timeout
    ok = False
    while time.monotonic() < deadline:
        if callable(check) and check():
            ok = True
            break
        time.sleep(0.1)
    caller.command("hangup")
    caller.wait_event("CALL_CLOSED", after=seen, timeout=40)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--keep", help="a folder to keep the logs in")
    args = parser.parse_args()
    office = office_or_fail()
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        work = Path(tmp)
        wav = tone_wav(work / "tone.wav", 440, 30)
        kam = desk = bob = theirs = None
        try:
            with inside(office.wan):
                kam = Kamailio(work / "kamailio", port=5060, ip=WAN_SERVER, stun=True).start()
                bob = Baresip(work / "bob", "102", 5070, 5199, wav, ip=WAN_SERVER,
                              proxy_ip=WAN_SERVER).start()
            bob.registered()
            with inside(office.lan):
                desk = start(work, sip={"server": WAN_SERVER, "port": OURS, "bind": None,
                                        "domain": f"{WAN_SERVER}:5060", "username": "101"})
                # RFC 5626 outbound needs an instance id (baresip's uuid module reads it from
                # the file, which must end without a newline) and an outbound proxy.
                (work / "theirs").mkdir()
                (work / "theirs" / "uuid").write_text("6d4e3f1a-5b2c-4d8e-9f0a-1b2c3d4e5f60")
                theirs = Baresip(work / "theirs", "103", THEIRS, THEIRS + 2, wav,
                                 ip=LAN_PHONE, proxy_ip=WAN_SERVER, apps=("uuid.so",),
                                 params=f';sipnat=outbound;outbound="sip:{WAN_SERVER}:5060;'
                                        f'transport=udp"').start()
                theirs.registered()
                desk.until(lambda s: s["registration"] == "registered", "registered", 30)
                time.sleep(30)  # past registration and the first probes: steady state
                count_at_the_router(office.router)
                started = time.monotonic()
                time.sleep(args.seconds)
                elapsed = time.monotonic() - started
                found = counters(office.router)
                ours_rings = rings(bob, f"sip:101@{WAN_SERVER}:5060",
                                   lambda: desk.state()["phone"] == "ringing")
                theirs_rings = rings(bob, f"sip:103@{WAN_SERVER}:5060",
                                     lambda: theirs.saw("CALL_INCOMING"))
        finally:
            for thing in (desk, theirs, bob, kam):
                if thing is not None:
                    thing.stop()
            office.delete()
    scale = 3600 / elapsed
    print(f"\nIdle behind the NAT router for {elapsed:.0f} s (router counts, IP headers "
          f"included), then a call from the WAN\n")
    print("| client | packets per hour | KiB per hour | a call after the idle time |")
    print("|---|---|---|---|")
    for who, label, ok in (("ours", "ours: keep-alives every 25 s (STUN)", ours_rings),
                           ("baresip", "baresip 1.0, sipnat=outbound", theirs_rings)):
        packets = sum(found.get(f"{who}_{d}", (0, 0))[0] for d in ("out", "in"))
        size = sum(found.get(f"{who}_{d}", (0, 0))[1] for d in ("out", "in"))
        print(f"| {label} | {packets * scale:.0f} | {size * scale / 1024:.1f} | "
              f"{'rings' if ok else 'never arrives'} |")


if __name__ == "__main__":
    main()
