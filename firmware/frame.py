"""The published frame: what the screen shows and /state reports, and where frames go.

Owns: `Published` (a snapshot with its text lines, image and the rows drawn, immutable so
readers on other threads never see half an update) and the `ScreenSink` contract a display
implements. Never touches: the Phone, the daemon or any device; the Phone's types are named for
typing only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from PIL import Image

    from firmware.phone import Snapshot


class ScreenSink(Protocol):
    """Something that shows frames: the OLED, the terminal, a PNG file."""

    def show(self, image: Image.Image, lines: list[str], dim: bool = False) -> None:
        """Show a new frame (`dim`: the screen saver is on). Must return at once: a slow
        panel takes frames on its own thread, the latest one winning."""


@dataclass(frozen=True)
class Published:
    """The last frame: what the screen shows and /state reports."""

    snapshot: Snapshot
    lines: tuple[str, ...]
    image: Image.Image
    # What the image was drawn from: every row with its highlight, not only its text (a menu
    # whose highlight moved has the same lines and another image).
    drawn: tuple[object, ...] = ()
