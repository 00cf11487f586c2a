"""Voice messages waiting (message-summary): the count on /state and the idle screen, the lamp."""

from __future__ import annotations

from tests.phonekit import Driver


def test_voice_messages_waiting_light_the_lamp_and_show_on_idle():
    from firmware.events import MessageWaiting, SetLed
    from firmware.ui import screens

    d = Driver().registered()
    assert d.feed(MessageWaiting(2, 5)) == [SetLed(True)]
    assert d.state.mwi == (2, 5)
    assert "2 voice messages" in screens.lines(d.phone.snapshot())
    assert d.feed(MessageWaiting(2, 6)) == []  # same lamp, no action
    assert d.feed(MessageWaiting(0, 8)) == [SetLed(False)]  # heard: the lamp goes out
    assert not any("voice message" in line for line in screens.lines(d.phone.snapshot()))
