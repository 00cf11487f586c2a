"""Finding the provider's servers by DNS, as RFC 3263 says: NAPTR, then SRV, then A/AAAA.

Owns: turning `[sip] server` (+ optional port, the transport) into an ordered list of targets
to try: an address as is; a name with a port by its A/AAAA records; a name without one by its
NAPTR records (the service for our transport), else its SRV records (`_sip._udp`,
`_sip._tcp`, `_sips._tcp`), ordered by priority and, within one, by weight (RFC 2782), else
its A/AAAA records on the default port; answers cached for their TTL. Never touches: sockets
other than the resolver's, registration, the phone's loop (lookups block: only the
registration client's thread calls `targets`).

Why dnspython: the standard library resolves only addresses (getaddrinfo); SRV and NAPTR need
a DNS client, and dnspython is the maintained pure-Python one (no compiled parts for the Pi).
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.resolver
from dns.rdtypes.ANY.SOA import SOA
from dns.rdtypes.IN.NAPTR import NAPTR
from dns.rdtypes.IN.SRV import SRV

from firmware.sip.identity import is_address

log = logging.getLogger("sip")

SERVICES = {"udp": ("SIP+D2U", "_sip._udp"), "tcp": ("SIP+D2T", "_sip._tcp"),
            "tls": ("SIPS+D2T", "_sips._tcp")}
DEFAULT_PORT = {"udp": 5060, "tcp": 5060, "tls": 5061}
MIN_TTL, MAX_TTL = 30.0, 3600.0  # a zero TTL must not make every REGISTER a lookup
NEGATIVE_TTL = 300.0  # "no such record" without an SOA to say for how long (RFC 2308)


def _negative_ttl(response: dns.message.Message | None) -> float:
    """How long "no such record" holds: the SOA's minimum in the authority section."""
    for rrset in response.authority if response is not None else []:
        for rr in rrset:
            if isinstance(rr, SOA):
                return float(min(rrset.ttl, rr.minimum))
    return NEGATIVE_TTL


class DnsError(OSError):
    """The server's name leads to no address (the message says what was tried)."""


@dataclass(frozen=True)
class Target:
    host: str  # the name the records gave (for the screen), or the address
    address: str
    port: int
    label: str = ""  # "SRV 1/2" when it came from SRV records

    @property
    def where(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"{self.host}{label}"


def weighted(records: list[tuple[int, int, str, int]],
             rng: Callable[[], float] = random.random) -> list[tuple[int, int, str, int]]:
    """SRV records (priority, weight, target, port) in the order to try them: by priority, and
    within one priority by weighted random choice (RFC 2782)."""
    ordered: list[tuple[int, int, str, int]] = []
    for priority in sorted({r[0] for r in records}):
        group = [r for r in records if r[0] == priority]
        while group:
            total = sum(r[1] for r in group)
            if total == 0:
                pick = group[0]
            else:
                point = rng() * total
                pick = group[-1]
                for r in group:
                    point -= r[1]
                    if point < 0:
                        pick = r
                        break
            ordered.append(pick)
            group.remove(pick)
    return ordered


class Resolver:
    def __init__(self, resolver: dns.resolver.Resolver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.resolver = resolver
        self.clock = clock
        self.lookups = 0  # queries actually sent (cache misses), for bench/field.py
        self._cache: dict[tuple[str, str], tuple[float, list[object]]] = {}

    def _query(self, name: str, rdtype: str) -> list[object]:
        key = (name.lower().rstrip("."), rdtype)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self.clock():
            return cached[1]
        if self.resolver is None:
            self.resolver = dns.resolver.Resolver()
            self.resolver.lifetime = 5.0
        self.lookups += 1
        try:
            answer = self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
            if answer.rrset is not None:
                records, ttl = list(answer), float(answer.rrset.ttl)
            else:
                records, ttl = [], _negative_ttl(answer.response)
        except dns.resolver.NXDOMAIN as exc:
            responses = list(exc.responses().values())
            records, ttl = [], _negative_ttl(responses[0] if responses else None)
        except dns.resolver.NoNameservers:
            records, ttl = [], MIN_TTL
        except dns.exception.Timeout as exc:
            raise DnsError(f"the resolver did not answer for {name} ({rdtype})") from exc
        except dns.exception.DNSException as exc:
            raise DnsError(f"{name} ({rdtype}): {exc}") from exc
        self._cache[key] = (self.clock() + min(MAX_TTL, max(MIN_TTL, ttl)), records)
        return records

    def addresses(self, name: str) -> list[str]:
        """A, then AAAA (an IPv4 office network is still the common case); a name DNS does
        not know goes to the system's resolver (/etc/hosts, mDNS), cached for MIN_TTL."""
        found = [str(r) for r in self._query(name, "A")]
        found += [str(r) for r in self._query(name, "AAAA")]
        if found:
            return found
        key = (name.lower(), "system")
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self.clock():
            return [str(a) for a in cached[1]]
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_DGRAM)
        except OSError:
            infos = []
        system = sorted({str(info[4][0]) for info in infos}, key=lambda a: ":" in a)
        self._cache[key] = (self.clock() + MIN_TTL, list(system))
        return system

    def targets(self, server: str, port: int | None, transport: str) -> list[Target]:
        """Where to send, in order (RFC 3263 section 4). Raises DnsError when nothing is found."""
        host = server.strip("[]")
        default = DEFAULT_PORT[transport]
        if is_address(host):
            return [Target(host, host, port or default)]
        if port is not None:
            return self._by_address(host, port, "")
        service, prefix = SERVICES[transport]
        srv_name = f"{prefix}.{host}"
        naptrs = [r for r in self._query(host, "NAPTR") if isinstance(r, NAPTR)]
        for naptr in sorted(naptrs, key=lambda r: (r.order, r.preference)):
            if naptr.service.decode().upper() == service and naptr.flags.decode().lower() == "s":
                srv_name = str(naptr.replacement).rstrip(".")
                break
        records = [(r.priority, r.weight, str(r.target).rstrip("."), r.port)
                   for r in self._query(srv_name, "SRV") if isinstance(r, SRV)]
        records = [r for r in records if r[2] not in ("", ".")]
        if not records:
            return self._by_address(host, default, "")
        out: list[Target] = []
        ordered = weighted(records)
        for n, (_prio, _weight, target, srv_port) in enumerate(ordered, 1):
            try:
                out += self._by_address(target, srv_port, f"SRV {n}/{len(ordered)}")
            except DnsError as exc:
                log.warning("SIP: %s", exc)  # a record pointing nowhere: try the next
        if not out:
            raise DnsError(f"no address for any of {srv_name}'s SRV targets")
        return out

    def _by_address(self, host: str, port: int, label: str) -> list[Target]:
        found = self.addresses(host)
        if not found:
            raise DnsError(f"{host} has no address")
        return [Target(host, address, port, label) for address in found]
