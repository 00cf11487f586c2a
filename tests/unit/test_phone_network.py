"""The network comes and goes: the screen says so, and the phone registers again at once."""

from __future__ import annotations

from firmware.events import NetworkChanged, Reregister
from tests.phonekit import Driver


def test_network_back_or_a_new_address_registers_again_at_once() -> None:
    d = Driver().registered()
    assert d.feed(NetworkChanged("192.168.1.20")) == []  # the first word at start-up: nothing
    assert d.feed(NetworkChanged(None)) == []
    assert d.phone.snapshot().state.address is None
    assert d.feed(NetworkChanged("192.168.1.20")) == [Reregister()]  # the cable is back
    assert d.feed(NetworkChanged("192.168.1.20")) == []
    assert d.feed(NetworkChanged("10.0.0.7")) == [Reregister()]  # roamed to another network

