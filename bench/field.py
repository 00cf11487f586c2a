"""The registration flow in the field: keep-alive traffic, and how fast a dead registrar is
noticed and a returning one used again.

Against the lab's Kamailio on loopback, in one run:
- Keep-alive traffic per hour: a registered phone counted at its transport (every datagram or
  stream write out, every message or pong in) over `--seconds` with `keepalive_seconds = 5`,
  scaled to the default 25 s (STUN Binding where Kamailio's stun module answers it, OPTIONS
  where not, CRLF on TCP); next to the REGISTER refreshes (all there was before) and Yealink's
  documented default (a ping every 30 s).
- DNS queries per hour at steady state, cached by TTL and uncached.
- Registrar stopped for `--outage` seconds (it forgets every registration): seconds until
  `registration` says "registering" (keep-alives at 10 s, 300 s registration), and from its
  return until the phone is registered, so callable, again; next to keep-alives off (before:
  nothing noticed until the refresh at half the expiry).

    .venv/bin/python bench/field.py [--seconds 60] [--outage 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.sip.message import Message
from tests.lab.fixtures import LabPhone, lab_port
from tests.lab.lab import Kamailio

IP_UDP = 28  # IPv4 + UDP headers per datagram
IP_TCP = 40  # IPv4 + TCP headers per segment (ACKs not counted)


class Counted:
    """Bytes and packets through one phone's SIP transport, both ways."""

    def __init__(self, phone: LabPhone) -> None:
        self.out_bytes = self.out_packets = self.in_bytes = self.in_packets = 0
        transport = phone.account.transport
        send, datagram = transport.send, transport._datagram
        header = IP_TCP if transport.reliable else IP_UDP

        def counted_send(msg: Message | bytes, dest: tuple[str, int]) -> None:
            data = msg if isinstance(msg, bytes) else msg.encode()
            self.out_bytes += len(data) + header
            self.out_packets += 1
            send(msg, dest)

        def counted_datagram(data: bytes, addr: tuple[str, int]) -> None:
            self.in_bytes += len(data) + header
            self.in_packets += 1
            datagram(data, addr)

        transport.send = counted_send  # type: ignore[method-assign]
        # (A TCP pong, CRLF, never reaches _datagram: traffic() adds one per ping.)
        transport._datagram = counted_datagram  # type: ignore[method-assign]

    def per_hour(self, seconds: float) -> tuple[float, float]:
        scale = 3600 / seconds
        return ((self.out_packets + self.in_packets) * scale,
                (self.out_bytes + self.in_bytes) * scale)


def traffic(kam: Kamailio, transport: str, seconds: float) -> tuple[float, float, float, float]:
    """Per hour at the defaults: (keep-alive packets, bytes, refresh packets, bytes).

    Keep-alives are counted over `seconds` at a 5 s period (no refresh falls in the window with
    a 300 s registration) and scaled to 25 s; one refresh (REGISTER, challenge, REGISTER, 200)
    is forced, counted, and scaled to one every 150 s (half the expiry)."""
    phone = LabPhone(kam, transport=transport, keepalive_seconds=5,
                     register_expires=300).registered()
    settled = time.monotonic()
    while phone.account.registration._ping in ("probe", "probing") and not \
            phone.account.transport.reliable and time.monotonic() - settled < 15:
        time.sleep(0.05)  # past the first ping (STUN and OPTIONS together): steady state
    counted = Counted(phone)
    start = time.monotonic()
    time.sleep(seconds)
    packets, size = counted.per_hour(time.monotonic() - start)
    if transport == "tcp":
        pongs = 3600 / 5
        packets, size = packets + pongs, size + pongs * (2 + IP_TCP)  # CRLF, never parsed
    phone.stop()
    phone = LabPhone(kam, transport=transport, keepalive_seconds=0,
                     register_expires=300).registered()
    counted = Counted(phone)
    refreshes = len(phone.events)
    phone.account.registration.now()
    wait = time.monotonic()
    while len(phone.events) == refreshes and time.monotonic() - wait < 5:
        time.sleep(0.05)  # the refresh's 200 changes nothing the Phone sees: give it 1 s
    time.sleep(1.0)
    refresh_packets = (counted.out_packets + counted.in_packets) * 3600 / 150
    refresh_size = (counted.out_bytes + counted.in_bytes) * 3600 / 150
    phone.stop()
    return packets / 5, size / 5, refresh_packets, refresh_size


def notice(work: Path, keepalive: int, outage: float) -> tuple[float | None, float]:
    """Kamailio stopped for `outage` seconds, then started again (it forgets every
    registration: it keeps them in memory). Returns (seconds until the phone said
    "registering", or None when it never did during the outage; seconds from the return until
    the phone registered again, so that it can be called)."""
    kam = Kamailio(work / f"k{keepalive}", port=lab_port()).start()
    try:
        phone = LabPhone(kam, keepalive_seconds=keepalive, register_expires=300,
                         backoff_max=30.0).registered()
        kam.stop()
        down = time.monotonic()
        noticed: float | None = None
        while time.monotonic() - down < outage:
            if noticed is None and phone.state.registration == "registering":
                noticed = time.monotonic() - down
            time.sleep(0.05)
        before = phone.account.registration.registered_until
        kam.start()
        back = time.monotonic()
        while phone.account.registration.registered_until == before or \
                phone.state.registration != "registered":
            if time.monotonic() - back > 400:
                raise TimeoutError("not registered again")
            time.sleep(0.05)
        again = time.monotonic() - back
        phone.stop()
        return noticed, again
    finally:
        kam.stop()


def dns_per_hour(work: Path) -> tuple[int, int]:
    """DNS queries sent in an hour of refreshes (one REGISTER every 150 s, each asking where the
    server is), with the cache (records with a 300 s TTL, dnsmasq's log counts the queries) and
    without it (every lookup asked again: what a phone that resolves per REGISTER sends)."""
    import dns.resolver

    from firmware.sip.dns import Resolver
    from tests.lab.lab import Dnsmasq

    port = lab_port()
    records = ["--local-ttl=300", "--local=/office.test/",
               "--srv-host=_sip._udp.office.test,pbx.office.test,5060,1,10",
               "--host-record=pbx.office.test,127.0.0.1"]
    counts = []
    for cached in (True, False):
        d = Dnsmasq(work / f"dns{cached}", "127.0.0.60", port, records).start()
        try:
            now = [0.0]
            r = dns.resolver.Resolver(configure=False)
            r.nameservers, r.nameserver_ports = ["127.0.0.60"], {"127.0.0.60": port}
            res = Resolver(r, clock=lambda now=now: now[0])
            for _ in range(24):
                res.targets("office.test", None, "udp")
                now[0] += 150.0 if cached else 1e6  # without the cache every answer is stale
            counts.append(res.lookups)
        finally:
            d.stop()
    return counts[0], counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kam = Kamailio(work / "kamailio", port=lab_port()).start()
        try:
            stun = Kamailio(work / "kamailio-stun", port=lab_port(), stun=True).start()
            try:
                rows = [("udp (server answers STUN)", *traffic(stun, "udp", args.seconds)),
                        ("udp (server answers no STUN)", *traffic(kam, "udp", args.seconds)),
                        ("tcp", *traffic(kam, "tcp", args.seconds))]
            finally:
                stun.stop()
        finally:
            kam.stop()
        print(f"\nSIP traffic per hour, registered and idle (keep-alives counted over "
              f"{args.seconds:.0f} s, IPv4 headers included)\n")
        print("| transport | keep-alives every 25 s (ours) | REGISTER refreshes every 150 s "
              "(before: all there was) |")
        print("|---|---|---|")
        for transport, packets, size, r_packets, r_size in rows:
            print(f"| {transport} | {packets:.0f} packets, {size / 1024:.1f} KiB | "
                  f"{r_packets:.0f} packets, {r_size / 1024:.1f} KiB |")
        print("\nYealink's default: a keep-alive every 30 s, 120 an hour.")
        cached, uncached = dns_per_hour(work)
        print(f"\nDNS queries per hour at steady state (SRV name, 300 s TTL): "
              f"{cached} cached, {uncached} uncached (a lookup per REGISTER)")
        ka, ka_again = notice(work, 10, args.outage)
        off, off_again = notice(work, 0, args.outage)
        print(f"\nregistrar stopped for {args.outage:.0f} s, just after a 300 s registration\n")
        print("| | said \"registering\" after | registered (callable) again after it "
              "returned |")
        print("|---|---|---|")
        for name, seen, again in (("ours, keep-alives every 10 s", ka, ka_again),
                                  ("keep-alives off (before)", off, off_again)):
            said = "never during the outage" if seen is None else f"{seen:.1f} s"
            print(f"| {name} | {said} | {again:.1f} s |")


if __name__ == "__main__":
    main()
