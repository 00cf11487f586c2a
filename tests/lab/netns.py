"""An office network in Linux network namespaces, made and deleted by the test that uses it.

    LAN 10.77.1.0/24        router (masquerade)         WAN 192.0.2.0/24
    [phone 10.77.1.2] -- [10.77.1.1 | 192.0.2.1] -- [192.0.2.10: Kamailio, baresip]

The router forgets idle UDP mappings as cheap routers do (conntrack: 30 s unreplied, 60 s for a
stream), and the WAN has no route back to the LAN: only what the NAT maps gets in. Addresses
exist only inside these namespaces (192.0.2.0/24 is TEST-NET-1). `inside(name)` runs a block in
a namespace: sockets made and processes started there stay there.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CLONE_NEWNET = 0x40000000
LAN_PHONE, LAN_ROUTER = "10.77.1.2", "10.77.1.1"
WAN_ROUTER, WAN_SERVER = "192.0.2.1", "192.0.2.10"
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """This thread in namespace `name` for the block (setns(2) moves only the calling thread;
    children it forks and sockets it opens belong to the namespace for good)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(own)
        os.close(own)
        os.close(target)


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip()}")


@dataclass
class Office:
    lan: str
    router: str
    wan: str

    def delete(self) -> None:
        for name in (self.lan, self.router, self.wan):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        shutil.rmtree(f"/etc/netns/{self.lan}", ignore_errors=True)

    @property
    def tag(self) -> str:
        return self.lan.rsplit("-", 1)[-1][-6:]

    def wan_link(self, end: str) -> str:
        """The WAN cable's ends: "a" in the WAN, "b" the router's."""
        return f"dpw{self.tag}{end}"

    def renumber(self, old: str, new: str) -> None:
        """The router's public address changes (a new DHCP lease, a reboot): masquerade
        forgets every mapping made from the old one."""
        # Old first: deleting a primary address deletes the secondaries of its subnet too.
        _ip("addr", "del", f"{old}/24", "dev", self.wan_link("b"), ns=self.router)
        _ip("addr", "add", f"{new}/24", "dev", self.wan_link("b"), ns=self.router)

    def resolver(self, nameserver: str) -> list[str]:
        """The LAN's /etc/resolv.conf names `nameserver` (as DHCP would); returns the command
        prefix that runs a program in the LAN with it (`ip netns exec` mounts
        /etc/netns/<lan>/resolv.conf over /etc/resolv.conf for that program only)."""
        folder = Path(f"/etc/netns/{self.lan}")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {nameserver}\n")
        return ["ip", "netns", "exec", self.lan]

    def build(self) -> Office:
        for name in (self.lan, self.router, self.wan):
            _ip("netns", "add", name)
            _ip("link", "set", "lo", "up", ns=name)
        lan_a, lan_b, wan_a, wan_b = (f"dpl{self.tag}a", f"dpl{self.tag}b", self.wan_link("a"),
                                      self.wan_link("b"))
        _ip("link", "add", lan_a, "netns", self.lan, "type", "veth", "peer", lan_b, "netns",
            self.router)
        _ip("link", "add", wan_a, "netns", self.wan, "type", "veth", "peer", wan_b, "netns",
            self.router)
        for ns, dev, addr in ((self.lan, lan_a, LAN_PHONE), (self.router, lan_b, LAN_ROUTER),
                              (self.router, wan_b, WAN_ROUTER), (self.wan, wan_a, WAN_SERVER)):
            _ip("addr", "add", f"{addr}/24", "dev", dev, ns=ns)
            _ip("link", "set", dev, "up", ns=ns)
        _ip("route", "add", "default", "via", LAN_ROUTER, ns=self.lan)
        router = ["netns", "exec", self.router]
        for sysctl in ("net.ipv4.ip_forward=1", "net.netfilter.nf_conntrack_udp_timeout=30",
                       "net.netfilter.nf_conntrack_udp_timeout_stream=60"):
            subprocess.run(["ip", *router, "sysctl", "-qw", sysctl], check=True)
        rules = ("table ip nat {\n chain post { type nat hook postrouting priority 100;\n"
                 f'  oifname "{wan_b}" masquerade\n }}\n}}\n')
        subprocess.run(["ip", *router, "nft", "-f", "-"], input=rules, text=True, check=True)
        return self


def can_build() -> str | None:
    """Why this machine cannot build the office, or None."""
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"needs {tool} (apt-get install iproute2 nftables)"
    probe = f"dp-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace ({made.stderr.strip()}): needs root"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def office_or_fail() -> Office:
    """The office, or a skip naming why not; in CI a failure (never a silent pass)."""
    why = can_build()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the NAT office cannot be built: {why}")
        pytest.skip(why)
    pid = os.getpid()
    office = Office(f"dp-lan-{pid}", f"dp-rtr-{pid}", f"dp-wan-{pid}")
    try:
        return office.build()
    except Exception:
        office.delete()
        raise
