"""Who the phone is on SIP and where its requests go: the identity every message is built from.

Owns: the AOR, credentials, display name and User-Agent from the config; the address the phone
is bound to and, behind a NAT router, the public address the provider sees (learned from
`received`/`rport`, RFC 3581); the Via, Contact and From name built from them; the next hop of
a request (the proxy, or a dialog's own target when it is already an address). Never touches:
sockets, timers, registration or calls; the registration client and the user agent update the
addresses, calls read them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from firmware import __version__
from firmware.config import SipConfig
from firmware.sip.message import new_branch

Addr = tuple[str, int]


def host_port(host: str, port: int) -> str:
    """`host:port` as a SIP URI writes it: an IPv6 address goes in brackets (RFC 3261 25.1)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


@dataclass
class Identity:
    username: str
    domain: str
    auth_user: str
    password: str = field(repr=False)
    transport: str = "udp"  # udp | tcp | tls
    display_name: str = ""
    user_agent: str = f"deskphone/{__version__}"
    local: Addr = ("", 0)  # the address our SIP socket is bound to
    public: Addr | None = None  # what the provider sees, when a NAT router rewrites `local`
    proxy: Addr = ("", 0)  # the registrar / outbound proxy, resolved
    names: dict[str, str] = field(default_factory=dict)  # host -> address resolved elsewhere

    @classmethod
    def of(cls, config: SipConfig, display_name: str = "") -> Identity:
        return cls(username=config.username, domain=config.realm_domain,
                   auth_user=config.auth_username or config.username,
                   password=config.password.reveal(), transport=config.transport,
                   display_name=display_name)

    @property
    def aor(self) -> str:
        return f"sip:{self.username}@{self.domain}"

    @property
    def local_ip(self) -> str:
        return self.local[0]

    @property
    def reachable(self) -> Addr:
        """Where the provider can reach us: the public address behind a NAT, else the local."""
        return self.public or self.local

    @property
    def media_ip(self) -> str:
        """The address our SDP offers for RTP: the public one behind a NAT router (a provider
        without an RTP proxy sends there, and the router maps it back because our RTP leaves
        first from the same port; symmetric RTP does the rest), else the local one."""
        return (self.public or self.local)[0]

    def via(self) -> str:
        return (f"SIP/2.0/{self.transport.upper()} {host_port(*self.local)};"
                f"branch={new_branch()};rport")

    def contact(self) -> str:
        suffix = f";transport={self.transport}" if self.transport != "udp" else ""
        return f"<sip:{self.username}@{host_port(*self.reachable)}{suffix}>"

    def display(self) -> str:
        name = self.display_name.replace('"', "")
        return f'"{name}" ' if name else ""

    def target_uri(self, target: str) -> str:
        """`sip:<extension or E.164>@<domain>` (DESIGN.md: the domain may carry a port)."""
        return f"sip:{target}@{self.domain}"

    def next_hop(self, host: str, port: int) -> Addr:
        """Where an in-dialog request goes, without blocking the caller (it may be the phone's
        loop): an address or a name already resolved; any other name goes via the proxy,
        which every request reaches anyway behind a record-routing provider."""
        host = host.strip("[]")
        if is_address(host):
            return host, port
        if host in self.names:
            return self.names[host], port
        return self.proxy
