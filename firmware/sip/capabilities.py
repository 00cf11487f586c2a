"""What the phone's SIP can do, as it tells others: methods, option tags, body types.

Owns: the `Allow`, `Supported` and `Accept` values every response and OPTIONS answer carries,
and reading the option tags a request requires (RFC 3261 8.2.2.3: any we lack -> 420 Bad
Extension with `Unsupported:`). Never touches: messages beyond reading one header, sockets or
calls. Extend these lists only together with the code that does what they promise.
"""

from __future__ import annotations

from firmware.sip.message import Message

ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "NOTIFY", "REFER", "INFO", "UPDATE",
         "PRACK")
# The option tags we implement: reliable provisional responses (RFC 3262), session timers
# (RFC 4028), taking another UA's place in a call (RFC 3891 Replaces).
SUPPORTED: tuple[str, ...] = ("100rel", "timer", "replaces")
ACCEPT = ("application/sdp",)


def option_tags(value: str) -> list[str]:
    """The option tags of a Require/Supported/Proxy-Require value, lower case."""
    return [tag.strip().lower() for tag in value.split(",") if tag.strip()]


def unsupported(request: Message) -> list[str]:
    """The tags of `Require:` this phone does not implement (empty: it may go on)."""
    return [tag for header in request.all("Require") for tag in option_tags(header)
            if tag not in SUPPORTED]


def advertise(response: Message) -> None:
    """Add Allow, Accept and (when there is any) Supported to a response."""
    response.add("Allow", ", ".join(ALLOW))
    response.add("Accept", ", ".join(ACCEPT))
    if SUPPORTED:
        response.add("Supported", ", ".join(SUPPORTED))
