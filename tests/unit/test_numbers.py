"""Typed digits -> dial targets, display formats, matching keys and T9."""

from __future__ import annotations

import re

import pytest

from firmware import numbers
from firmware.numbers import Dialled, NumberError


@pytest.mark.parametrize(("typed", "region", "expected"), [
    ("101", "BE", Dialled("extension", "101")),
    ("*97", "BE", Dialled("extension", "*97")),
    ("12345", "BE", Dialled("extension", "12345")),
    ("0470123456", "BE", Dialled("e164", "+32470123456")),
    ("0032470123456", "BE", Dialled("e164", "+32470123456")),
    ("+32470123456", None, Dialled("e164", "+32470123456")),
    ("+16502530000", "BE", Dialled("e164", "+16502530000")),
    ("0142278186", "FR", Dialled("e164", "+33142278186")),
    ("02079460000", "GB", Dialled("e164", "+442079460000")),
])
def test_dial_targets(typed, region, expected):
    assert numbers.dial_target(typed, region) == expected


@pytest.mark.parametrize(("typed", "region", "message"), [
    ("", "BE", "Enter a number"),
    ("+3247", None, "Number too short"),
    ("+32470123456789012", None, "Number too long"),
    ("+999123456789", None, "Unknown country code"),
    ("0470123456", None, "Dial + and country code"),
    ("12a", "BE", "Not a number"),
])
def test_numbers_that_cannot_be_dialled(typed, region, message):
    with pytest.raises(NumberError, match=re.escape(message)):
        numbers.dial_target(typed, region)


def test_extension_length_is_configurable():
    assert numbers.dial_target("123456", "BE", max_extension_digits=6).kind == "extension"
    with pytest.raises(NumberError):
        numbers.dial_target("123456", "BE", max_extension_digits=3)


def test_stored_numbers_normalise_to_the_same_key():
    keys = {numbers.normalize(n, "BE") for n in
            ("0470 12 34 56", "+32 470 12 34 56", "0032-470-12.34.56", "+32470123456")}
    assert keys == {"+32470123456"}
    assert numbers.normalize("101", "BE") == "101"
    assert numbers.normalize("n/a", "BE") is None


def test_display_is_national_at_home_and_international_abroad():
    assert numbers.display("+32470123456", "BE") == "0470 12 34 56"
    assert numbers.display("+32470123456", "FR") == "+32 470 12 34 56"
    assert numbers.display("101", "BE") == "101"


def test_t9_folds_accents_and_special_letters():
    assert numbers.t9_words("Zoë Dupont") == ["963", "387668"]
    assert numbers.t9_words("Łukasz Ørsted") == ["585279", "677833"]
    assert numbers.fold("Ægir Straße") == "agir strase"


def test_digit_forms_cover_stored_national_and_e164():
    forms = numbers.digit_forms("+32 470 12 34 56", "BE")
    assert "0470123456" in forms and "32470123456" in forms


def test_a_stored_number_is_read_in_its_partner_s_country():
    assert numbers.in_country("020 123 4567", "NL") == "+31201234567"
    assert numbers.in_country("020 123 4567", "nl") == "+31201234567"
    assert numbers.in_country("+32 470 12 34 56", "NL") == "+32 470 12 34 56"  # has its own
    assert numbers.in_country("020 123 4567", None) == "020 123 4567"  # no country: as stored
    assert numbers.in_country("020 123 4567", "XX") == "020 123 4567"
    assert numbers.in_country("12", "NL") == "12"  # not a number there
    assert numbers.display("+31201234567", "BE") == "+31 20 123 4567"


def test_display_of_stored_and_typed_numbers():
    assert numbers.display("0470 12 34 56", "BE") == "0470 12 34 56"
    assert numbers.display("0470123456", "BE") == "0470 12 34 56"
    assert numbers.display("+32470123", "BE") == "+32470123"  # not a number yet: as typed
    assert numbers.display("*97", "BE") == "*97"
