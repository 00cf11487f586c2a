"""Phone numbers: what a person typed -> what the phone dials, how numbers look, how they match.

Owns: every use of `phonenumbers` in the firmware, and the T9 letters of the keypad.
Never touches: state, I/O or configuration files (the region and extension length come in as
arguments).

Rules, as a desk phone in an office applies them:
- `+` and a country code: an international number, dialled as E.164.
- Short digit strings (up to `max_extension_digits`) and anything with `*` or `#` (feature codes
  such as `*97`): an internal extension, dialled as typed.
- Longer digit strings: a national number of the configured region (`0470 12 34 56` in BE, or the
  international prefix `0032...`), dialled as E.164.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import phonenumbers

DEFAULT_MAX_EXTENSION_DIGITS = 5


class NumberError(ValueError):
    """A typed number that cannot be dialled; the message is for the person at the desk."""


@dataclass(frozen=True)
class Dialled:
    """What the phone will dial: `kind` is "extension" or "e164"; `value` goes into the URI."""

    kind: str
    value: str


def dial_target(
    typed: str,
    region: str | None,
    max_extension_digits: int = DEFAULT_MAX_EXTENSION_DIGITS,
) -> Dialled:
    """Turn keypad input into a dial target, or raise NumberError saying what is wrong."""
    typed = typed.strip()
    if not typed:
        raise NumberError("Enter a number")
    if typed.startswith("+"):
        return Dialled("e164", _e164(typed, None))
    if not all(c in "0123456789*#" for c in typed):
        raise NumberError("Not a number")
    if "*" in typed or "#" in typed or len(typed) <= max_extension_digits:
        return Dialled("extension", typed)
    if not region:
        raise NumberError("Dial + and country code")
    return Dialled("e164", _e164(typed, region))


def _e164(text: str, region: str | None) -> str:
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise NumberError(_parse_problem(exc)) from None
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason == phonenumbers.ValidationResult.TOO_SHORT:
        raise NumberError("Number too short")
    if reason == phonenumbers.ValidationResult.TOO_LONG:
        raise NumberError("Number too long")
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE:
        raise NumberError("Unknown country code")
    if reason not in (
        phonenumbers.ValidationResult.IS_POSSIBLE,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ) or not phonenumbers.is_valid_number(parsed):
        # Said before dialling, rather than a provider's "not found" after ringing nowhere.
        raise NumberError("Not a valid number")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _parse_problem(exc: phonenumbers.NumberParseException) -> str:
    kind = exc.error_type
    if kind == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        return "Unknown country code"
    if kind in (
        phonenumbers.NumberParseException.TOO_SHORT_NSN,
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD,
    ):
        return "Number too short"
    if kind == phonenumbers.NumberParseException.TOO_LONG:
        return "Number too long"
    return "Not a valid number"


def normalize(number: str, region: str | None) -> str | None:
    """A number as stored anywhere ("0470 12 34 56", "+32 (0)470...", "101") -> a match key.

    E.164 for numbers phonenumbers can place, the bare digits for extensions, None for text
    that holds no number. Two numbers are the same line when their keys are equal.
    """
    raw = number.strip()
    digits = "".join(c for c in raw if c.isdigit())
    if not digits:
        return None
    if not raw.startswith("+") and len(digits) <= DEFAULT_MAX_EXTENSION_DIGITS:
        return digits
    try:
        parsed = phonenumbers.parse(raw, region if not raw.startswith("+") else None)
    except phonenumbers.NumberParseException:
        return digits
    if not phonenumbers.is_possible_number(parsed):
        return digits
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def display(number: str, region: str | None,
            max_extension_digits: int = DEFAULT_MAX_EXTENSION_DIGITS) -> str:
    """How a number reads on every screen (pre-dial, calling, in call, Recent, the queue): a
    valid number in national format inside the phone's own region and international format
    elsewhere; extensions, service codes and anything not (yet) a valid number as typed."""
    raw = number.strip()
    digits = "".join(c for c in raw if c.isdigit())
    if not digits or "*" in raw or "#" in raw or \
            (not raw.startswith("+") and len(digits) <= max_extension_digits):
        return raw
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_valid_number(parsed):
        return raw
    own = region and phonenumbers.region_code_for_number(parsed) == region.upper()
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL if own
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return str(phonenumbers.format_number(parsed, fmt))


def in_country(number: str, country: str | None) -> str:
    """A number stored without `+` read as a number of `country` (its partner's, e.g. "NL"):
    E.164 when that makes a valid number there, else the number unchanged (it is then read
    as a number of the phone's own region, as before)."""
    raw = number.strip()
    if raw.startswith("+") or not country or not is_region(country):
        return number
    try:
        parsed = phonenumbers.parse(raw, country.upper())
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_valid_number(parsed):
        return number
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def is_region(code: str) -> bool:
    """True for an ISO country code phonenumbers knows (e.g. "BE")."""
    return code.upper() in phonenumbers.SUPPORTED_REGIONS


# --------------------------------------------------------------------------- T9

_T9 = {
    **dict.fromkeys("abc", "2"), **dict.fromkeys("def", "3"), **dict.fromkeys("ghi", "4"),
    **dict.fromkeys("jkl", "5"), **dict.fromkeys("mno", "6"), **dict.fromkeys("pqrs", "7"),
    **dict.fromkeys("tuv", "8"), **dict.fromkeys("wxyz", "9"),
}

# Letters that NFKD does not split into a base letter and a mark.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ß": "s", "æ": "a", "œ": "o", "ı": "i"})


def fold(text: str) -> str:
    """Lower case without accents: "Zoë Łukasz" -> "zoe lukasz"."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_FOLD))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def t9_words(name: str) -> list[str]:
    """Each word of a name as the digits a person types for it ("Zoë Dupont" -> 963, 387668)."""
    words = []
    for word in fold(name).split():
        digits = "".join(_T9.get(c, "") for c in word)
        if digits:
            words.append(digits)
    return words


def digit_forms(number: str, region: str | None) -> tuple[str, ...]:
    """The digit strings a person may type to find a number: as stored, national, E.164."""
    e164 = normalize(number, region) or ""
    forms = []
    for form in (number, e164, display(e164, region)):
        digits = "".join(c for c in form if c.isdigit())
        if digits and digits not in forms:
            forms.append(digits)
    return tuple(forms)
