"""Voice messages waiting (RFC 3842): the phone subscribes to its mailbox at a SIPp provider,
takes an unsolicited NOTIFY through Kamailio, and refuses a body without a count."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.fixtures import LabPhone
from tests.lab.lab import need, sipp, sipp_provider, sipp_verdicts

pytestmark = pytest.mark.lab
SIPP_IP = "127.0.0.3"


def test_the_phone_subscribes_to_its_mailbox_and_shows_the_count(lab_phone,
                                                                  lab_dir: Path) -> None:
    need("sipp")
    run, provider = sipp_provider("mailbox.xml", lab_dir, calls=2)
    try:
        phone: LabPhone = lab_phone(provider, keepalive_seconds=0).registered()
        phone.until(lambda s: s.mwi == (2, 5), "2 new and 5 old voice messages")
    finally:
        sipp_verdicts(run)  # SUBSCRIBE with Event, 200 to NOTIFY
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
