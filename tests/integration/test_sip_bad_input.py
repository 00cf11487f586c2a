"""What the phone says and does when SIP cannot work: it names the cause, retries, never spins."""

from __future__ import annotations

import socket
import time

import pytest

from firmware.config import Secret, SipConfig
from firmware.events import Event, RegistrationChanged
from firmware.sip.ua import UserAgent
from tests.helpers import wait_for
from tests.lab.fixtures import free_udp


def account(server: str, port: int, bind: str) -> tuple[UserAgent, list[Event]]:
    config = SipConfig(server=server, port=port, username="101", password=Secret("pw101"),
                       bind=bind)
    acc = UserAgent(config, lambda: bytes(320), lambda pcm: None)
    events: list[Event] = []
    acc.start(events.append)
    return acc, events


def reasons(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, RegistrationChanged)]


def test_a_silent_registrar_is_named_and_retried_without_a_busy_loop() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    silent.settimeout(0.2)
    port = silent.getsockname()[1]
    acc, events = account("127.0.0.1", port, f"127.0.0.2:{free_udp('127.0.0.2')}")
    try:
        wait_for(lambda: f"No answer from 127.0.0.1:{port}" in reasons(events), timeout=10,
                 what="the cause on screen")
        received, start = 0, time.monotonic()
        while time.monotonic() - start < 6:
            try:
                silent.recv(65535)
                received += 1
            except TimeoutError:
                pass
        assert 1 <= received <= 6  # retransmissions back off: 0.5, 1, 2, 4 s ...
        assert acc.status[0] == "registering"
    finally:
        acc.stop()
        silent.close()


def test_a_name_that_does_not_resolve(caplog: pytest.LogCaptureFixture) -> None:
    acc, events = account("pbx.example.invalid", 5060, "127.0.0.2:0")
    try:
        wait_for(lambda: "Cannot resolve pbx.example.invalid" in reasons(events), timeout=20,
                 what="the DNS failure named")
        assert "cannot resolve pbx.example.invalid" in caplog.text
    finally:
        acc.stop()


def test_the_sip_port_in_use_is_named_and_taken_once_free() -> None:
    port = free_udp("127.0.0.2")
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.2", port))
    registrar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    registrar.bind(("127.0.0.1", 0))
    registrar.settimeout(10)
    acc, events = account("127.0.0.1", registrar.getsockname()[1], f"127.0.0.2:{port}")
    try:
        wait_for(lambda: f"SIP port 127.0.0.2:{port} in use" in reasons(events), timeout=10,
                 what="the port named")
        squatter.close()
        data, addr = registrar.recvfrom(65535)  # once free, the phone binds and registers
        assert data.startswith(b"REGISTER ") and addr == ("127.0.0.2", port)
    finally:
        acc.stop()
        registrar.close()
