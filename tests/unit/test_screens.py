"""Golden images of every screen (docs/screens/*.png) and the text the same layout gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from firmware.ui import screens
from tests.phonekit import utc
from tests.screenshots import SCENARIOS

GOLDEN = Path(__file__).resolve().parents[2] / "docs" / "screens"


@pytest.fixture(autouse=True)
def _utc():
    utc()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_screen_matches_its_golden_image(name):
    snap = SCENARIOS[name]().phone.snapshot()
    image = screens.render(snap)
    path = GOLDEN / f"{name}.png"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    assert path.exists(), f"no golden image: run UPDATE_GOLDEN=1 pytest {__file__}"
    golden = Image.open(path).convert("1")
    assert image.size == (128, 64)
    diff = ImageChops.difference(image.convert("L"), golden.convert("L")).getbbox()
    assert diff is None, f"{name} differs from {path} in {diff}"


def text(name: str) -> list[str]:
    return screens.lines(SCENARIOS[name]().phone.snapshot())


def test_every_screen_has_six_rows_that_fit():
    for name in SCENARIOS:
        rows = text(name)
        assert len(rows) == 6, name
        assert all(len(r) <= screens.COLUMNS for r in rows), (name, rows)


def test_idle_shows_registration_time_and_the_day_s_calls():
    rows = text("idle")
    assert rows[0] == "Alice Martin    12:00"  # the whole name, never cut with room to spare
    assert rows[1] == "Sat 28 Nov    Ext 101"
    assert "3 calls to make" in rows


def test_idle_tells_what_is_wrong():
    rows = text("idle_no_service")
    assert rows[0].startswith("No service")
    assert "Wrong password (401)" in rows
    assert "Odoo down, 2 to send" in rows  # one row, so neither is pushed off the screen
    assert text("idle_registering")[0].startswith("Registering")


@pytest.mark.parametrize(("reason", "row"), [
    ("Odoo: database 'prod' not found on https://odoo.example.com (no such database)",
     "No such Odoo database"),
    ("Odoo refused login 'alice@example.com': wrong login or API key, or the key was revoked",
     "Odoo: key refused"),
    ("Odoo: missing rights: You are not allowed to access 'Activity' (mail.activity)",
     "Odoo: missing rights"),
])
def test_odoo_refusals_are_said_whole_in_one_row(reason, row):
    from firmware.events import OdooStatusChanged
    from tests.phonekit import Driver

    d = Driver().registered()
    d.feed(OdooStatusChanged("denied", reason))
    rows = screens.lines(d.phone.snapshot())
    assert row in rows and not any(r.endswith("…") for r in rows)


def test_ringing_shows_the_caller():
    assert text("ringing")[1:3] == ["Zoë Dupont", "0470 12 34 56"]
    assert text("ringing_unknown")[1] == "+44 20 7946 0000"


def test_in_call_shows_duration_and_transfer_target():
    assert text("in_call")[0].endswith("01:23")
    assert "To: 102" in text("transfer")
    assert text("forward")[0].startswith("Forward")
    assert text("transfer_failed")[3:5] == ["Transfer failed:", "Number not found"]


def test_queue_entry_shows_name_number_summary():
    rows = text("queue")
    assert rows[0] == "Overdue call      1/3"
    assert rows[1:4] == ["Brasserie De Koning", "02 222 22 22", "Renewal"]
    assert rows[4] == "Printer jammed again"  # the ticket's own title


def test_the_queue_says_why_it_is_empty_and_a_queue_call_what_it_is_about():
    assert text("queue_empty")[1:3] == ["No calls to make", "today"]
    assert text("queue_unavailable")[1:3] == ["Queue unavailable:", "Odoo: key refused"]
    assert text("queue_call")[1:4] == ["Zoë Dupont", "0470 12 34 56", "Office fit-out"]


def test_prompt_and_contacts():
    assert text("done_prompt")[1:3] == ["Mark call done?", "Zoë Dupont"]
    assert text("contacts")[1] == "Marc Zöller" or text("contacts")[1] == "Zoë Dupont"


def test_pre_dial_shows_digits_as_the_number_and_a_contact_as_a_choice():
    rows = text("dialing_t9")  # "96" spells Zoë
    assert rows[1] == "96"
    assert rows[2].startswith("B: ")  # the contact is offered with the key that picks it
    assert rows[-1] == "D:call number C:del"  # and D says it calls the number typed


def test_on_hold_is_said_once():
    rows = text("on_hold")
    assert sum("On hold" in r for r in rows) == 1, rows


def test_the_transfer_screen_names_the_caller_and_an_empty_target():
    rows = text("transfer_empty")
    assert rows[1] == "Caller: Zoë Dupont"
    assert rows[2] == "To: _"  # nothing typed: no name that could read as the target
    assert text("transfer")[2] == "To: 102"


def test_a_recent_call_without_a_name_says_its_number_once():
    from tests.phonekit import Driver

    d = Driver()
    d.ring("in-9", "+32470999999")
    from firmware.events import CallEnded
    d.feed(CallEnded("in-9", "cancelled"))
    d.keys("B", long=True)
    rows = screens.lines(d.phone.snapshot())
    assert sum("0470 99 99 99" in r for r in rows) == 1, rows


def test_one_number_one_spelling_on_every_screen():
    from firmware.events import CallEnded, PlaceCall
    from tests.phonekit import Driver

    d = Driver().registered()
    d.keys("+3225551212")
    seen = {"pre-dial": screens.lines(d.phone.snapshot())[1]}
    d.keys("D")
    seen["calling"] = screens.lines(d.phone.snapshot())[1]
    call_id = d.connect_outgoing()
    seen["in call"] = screens.lines(d.phone.snapshot())[1]
    d.feed(CallEnded(call_id, "bye"))
    d.keys("B", long=True)
    seen["recent"] = screens.lines(d.phone.snapshot())[1].lstrip("> ")
    assert set(seen.values()) == {"02 555 12 12"}, seen  # national: a number of [phone] region
    assert d.of(PlaceCall)[-1].target == "+3225551212"  # E.164 on the wire, whatever is shown
    d2 = Driver().registered()
    d2.keys("+33142278186")
    assert screens.lines(d2.phone.snapshot())[1] == "+33 1 42 27 81 86"  # another country's


def test_a_number_not_valid_in_the_region_is_said_before_dialling():
    from firmware.events import PlaceCall
    from tests.phonekit import Driver

    d = Driver().registered()
    d.keys("0401234567D")  # the length of a Belgian mobile, but no such range
    assert d.of(PlaceCall) == []
    assert "Not a valid number" in screens.lines(d.phone.snapshot())


def test_two_calls_show_who_is_active_who_waits_and_who_is_held_for_how_long():
    assert text("call_waiting")[3:] == ["Waiting: Brasserie D…", "", "D:answer C:reject"]
    assert text("two_calls")[1] == "Brasserie De Koning"
    assert text("two_calls")[3] == "Held 02:05 Zoë Dupont"
    assert text("two_calls")[5] == "A:transfer B:swap"
    assert text("recall")[0].startswith("Call on hold")
    assert text("recall")[5] == "Lift:resume C:end"


def test_encrypted_media_shows_a_lock_beside_the_title():
    assert text("in_call_encrypted")[0].startswith("In call \U0001F512")
    assert not text("in_call")[0].startswith("In call \U0001F512")
    lock = screens.render(SCENARIOS["in_call_encrypted"]().phone.snapshot()).crop((48, 0, 54, 10))
    assert 12 <= sum(1 for p in lock.getdata() if not p) <= 30  # drawn dark on the lit header


def test_a_wideband_call_says_hd_in_its_title_and_a_narrowband_one_does_not():
    assert text("in_call_hd")[0].startswith("In call HD \U0001F512")
    assert "HD" not in text("in_call")[0] and "HD" not in text("in_call_encrypted")[0]


def test_a_conference_names_both_parties():
    assert text("conference")[0].startswith("Conference")
    assert text("conference")[1:3] == ["Brasserie De Koning", "+ Zoë Dupont"]


def test_a_consultation_shows_the_caller_held_and_how_to_complete_or_go_back():
    assert text("consulting")[1:3] == ["102", "Held 01:35 Zoë Dupont"]
    assert text("consulting")[5] == "A:transfer C:back"
