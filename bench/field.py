"""The registration flow in the field: keep-alive traffic, and how fast a dead registrar is
noticed and a returning one used again.

Against the lab's Kamailio on loopback, in one run:
- Keep-alive traffic per hour: a registered phone counted at its transport (every datagram or
  stream write out, every message or pong in) over `--seconds` with `keepalive_seconds = 5`,
  scaled to the default 25 s; next to the same phone with keep-alives off (REGISTER refreshes
  only, the baseline of before) and Yealink's documented default (a ping every 30 s).
- Registrar stopped: seconds until `registration` says "registering" (keep-alives at 10 s,
  300 s registration) next to keep-alives off (the registration's refresh is the first to
  notice); then, with the registrar back after `--outage` seconds, seconds to registered.

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


def traffic(kam: Kamailio, transport: str, keepalive: int, seconds: float) -> tuple[float, float]:
    phone = LabPhone(kam, transport=transport, keepalive_seconds=keepalive,
                     register_expires=300).registered()
    counted = Counted(phone)
    start = time.monotonic()
    time.sleep(seconds)
    packets, size = counted.per_hour(time.monotonic() - start)
    if transport == "tcp" and keepalive:
        pings = 3600 / keepalive
        packets += pings  # the pongs
        size += pings * (2 + IP_TCP)
    phone.stop()
    return packets, size


def notice(work: Path, keepalive: int, outage: float) -> tuple[float, float]:
    kam = Kamailio(work / f"k{keepalive}", port=lab_port()).start()
    try:
        phone = LabPhone(kam, keepalive_seconds=keepalive, register_expires=300,
                         backoff_max=30.0).registered()
        kam.stop()
        down = time.monotonic()
        phone.until(lambda s: s.registration == "registering", "registering", timeout=400)
        noticed = time.monotonic() - down
        time.sleep(max(0.0, outage - noticed))
        kam.start()
        back = time.monotonic()
        phone.registered(timeout=120)
        again = time.monotonic() - back
        phone.stop()
        return noticed, again
    finally:
        kam.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kam = Kamailio(work / "kamailio", port=lab_port()).start()
        try:
            rows = []
            for transport in ("udp", "tcp"):
                packets, size = traffic(kam, transport, 5, args.seconds)
                off_packets, off_size = traffic(kam, transport, 0, args.seconds)
                # Scale the keep-alive part from a 5 s period to the default 25 s.
                ka_packets = (packets - off_packets) / 5
                ka_size = (size - off_size) / 5
                rows.append((transport, off_packets + ka_packets, off_size + ka_size,
                             off_packets, off_size))
        finally:
            kam.stop()
        print(f"\nSIP traffic per hour, registered and idle ({args.seconds:.0f} s each, "
              f"IPv4 headers included)\n")
        print("| transport | ours: keep-alives every 25 s | keep-alives off (before) | "
              "Yealink default |")
        print("|---|---|---|---|")
        for transport, packets, size, off_packets, off_size in rows:
            print(f"| {transport} | {packets:.0f} packets, {size / 1024:.1f} KiB | "
                  f"{off_packets:.0f} packets, {off_size / 1024:.1f} KiB | "
                  f"a ping every 30 s: 120 pings |")
        ka, ka_again = notice(work, 10, args.outage)
        off, off_again = notice(work, 0, args.outage)
        print(f"\nregistrar stopped for {args.outage:.0f} s (300 s registration)\n")
        print("| | noticed after | registered again after it returned |")
        print("|---|---|---|")
        print(f"| ours, keep-alives every 10 s | {ka:.1f} s | {ka_again:.1f} s |")
        print(f"| keep-alives off (before) | {off:.1f} s | {off_again:.1f} s |")


if __name__ == "__main__":
    main()
