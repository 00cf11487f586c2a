"""Voice messages waiting (RFC 3842): the phone subscribes to its mailbox at a SIPp provider,
takes an unsolicited NOTIFY through Kamailio, and refuses a body without a count."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.lab.fixtures import LabPhone, free_udp
from tests.lab.lab import need, sipp, sipp_start

pytestmark = pytest.mark.lab
SIPP_IP = "127.0.0.3"


def test_the_phone_subscribes_to_its_mailbox_and_shows_the_count(lab_phone,
                                                                  lab_dir: Path) -> None:
    need("sipp")
    port = free_udp(SIPP_IP)
    run = sipp_start("mailbox.xml", None, SIPP_IP, lab_dir, port=port, calls=2, timeout=30)
    try:
        time.sleep(0.3)  # SIPp binds its port (a UAS says nothing until asked)
        provider = SimpleNamespace(ip=SIPP_IP, port=port, tls_port=None)
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0).registered()
        phone.until(lambda s: s.mwi == (2, 5), "2 new and 5 old voice messages")
        out, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 0, out[-2000:] + err[-2000:]  # SUBSCRIBE with Event, 200 to NOTIFY
    assert "2 voice messages" in phone.daemon.published.lines


def test_an_unsolicited_notify_counts_and_a_broken_one_changes_nothing(
        kamailio, lab_phone, lab_dir: Path) -> None:
    need("sipp")
    phone = lab_phone(kamailio).registered()
    done = sipp("notify_unsolicited.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    phone.until(lambda s: s.mwi == (3, 1), "3 new and 1 old voice message")
    done = sipp("notify_broken.xml", f"127.0.0.1:{kamailio.port}", SIPP_IP, lab_dir)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]  # answered 400
    assert phone.state.mwi == (3, 1)
