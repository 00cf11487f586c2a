"""Provisioning's names and words: which files a phone asks for, and what the status page says
of the last attempt (the fetching itself is tested against an HTTPS server in
tests/integration/test_provisioning.py)."""

from __future__ import annotations

import time

from firmware import provisioning


def test_the_default_file_then_the_phones_own_by_its_mac_or_in_the_mac_form() -> None:
    assert provisioning.urls("https://prov.example.com/desk", "b827eb12ab34") == (
        "https://prov.example.com/desk/default.toml",
        "https://prov.example.com/desk/b827eb12ab34.toml")
    assert provisioning.urls("https://prov.example.com/p/$MAC.toml", "b827eb12ab34") == (
        "https://prov.example.com/p/default.toml", "https://prov.example.com/p/b827eb12ab34.toml")


def test_the_mac_is_twelve_hex_digits_and_the_simulators_own_when_set(monkeypatch) -> None:
    monkeypatch.setenv("DESKPHONE_MAC", "B8:27:EB:12:AB:34")
    assert provisioning.phone_mac() == "b827eb12ab34"
    monkeypatch.delenv("DESKPHONE_MAC")
    mac = provisioning.phone_mac()
    assert len(mac) == 12 and all(c in "0123456789abcdef" for c in mac)


def test_the_status_line_names_the_source_or_the_reason_and_the_last_good() -> None:
    assert provisioning.summary({}) == "not fetched yet"
    at = time.mktime((2026, 12, 5, 10, 31, 0, 0, 0, -1))
    ok = {"result": "applied", "at": at, "sources": ["https://p/default.toml"]}
    assert provisioning.summary(ok) == "applied from https://p/default.toml at 2026-12-05 10:31"
    bad = {"result": "refused", "at": at, "detail": "not applied: phone.name: must be a string",
           "good_at": at, "good_sources": ["https://p/a.toml"]}
    assert provisioning.summary(bad) == (
        "refused at 2026-12-05 10:31: not applied: phone.name: must be a string; running on the "
        "last good settings, from https://p/a.toml at 2026-12-05 10:31")
