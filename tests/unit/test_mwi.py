"""Reading message-summary bodies (RFC 3842), well-formed and not."""

from __future__ import annotations

import pytest

from firmware.sip.mwi import summary


@pytest.mark.parametrize(("body", "counts"), [
    (b"Messages-Waiting: yes\r\nMessage-Account: sip:*97@pbx\r\nVoice-Message: 2/8 (0/2)\r\n",
     (2, 8)),
    (b"Messages-Waiting: no\r\nVoice-Message: 0/3\r\n", (0, 3)),
    (b"messages-waiting:yes\n", (1, 0)),  # no count: one new message, so the lamp lights
    (b"Messages-Waiting: no\r\n", (0, 0)),
    (b"Voice-Message:  12 / 4\r\n", (12, 4)),
])
def test_counts(body: bytes, counts: tuple[int, int]) -> None:
    assert summary(body) == counts


@pytest.mark.parametrize("body", [b"", b"garbage", b"Voice-Message: lots\r\n", b"\xff\xfe\x00",
                                  b"Voice-Message: 99999999/1\r\n"])
def test_a_body_without_a_count_is_not_believed(body: bytes) -> None:
    assert summary(body) is None
