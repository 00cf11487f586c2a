"""The display font: a BDF bitmap font that ships with the firmware, drawn pixel-exact.

Owns: reading `fonts/*.bdf` and drawing text with it onto 1-bit PIL images. Never touches: the
layout (screens.py decides what goes where) or any device.

The font is X11's misc-fixed 6x10 (public domain), so every screen is the same pixels on every
machine and every Pillow version, and golden images stay golden.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

from PIL import Image


@dataclass(frozen=True)
class Glyph:
    width: int  # advance
    image: Image.Image  # 1-bit, the full cell (width x font height)


@dataclass(frozen=True)
class BitmapFont:
    """A fixed-cell bitmap font: every glyph drawn into a cell of `width` x `height` pixels."""

    width: int
    height: int
    glyphs: dict[int, Glyph]

    def glyph(self, char: str) -> Glyph:
        code = ord(char)
        if code in self.glyphs:
            return self.glyphs[code]
        # Letters the font lacks fall back to their base letter ("ǹ" -> "n"), then to "?".
        base = unicodedata.normalize("NFKD", char)[:1]
        if base and ord(base) in self.glyphs:
            return self.glyphs[ord(base)]
        return self.glyphs[ord("?")]

    def draw(self, image: Image.Image, x: int, y: int, text: str, fill: int = 1) -> int:
        """Draw `text` at (x, y) (top of the cell); return the x after it. Clipped at the edge."""
        for char in text:
            if x >= image.width:
                break
            glyph = self.glyph(char)
            if fill:
                image.paste(1, (x, y), glyph.image)
            else:
                image.paste(0, (x, y), glyph.image)
            x += glyph.width
        return x


def parse_bdf(text: str) -> BitmapFont:
    """Read a BDF font (only what a fixed-cell font needs: FONTBOUNDINGBOX, BBX, BITMAP)."""
    lines = iter(text.splitlines())
    cell_w = cell_h = base_x = base_y = 0
    glyphs: dict[int, Glyph] = {}
    for line in lines:
        if line.startswith("FONTBOUNDINGBOX"):
            cell_w, cell_h, base_x, base_y = (int(v) for v in line.split()[1:5])
        elif line.startswith("STARTCHAR"):
            code, glyph = _read_char(lines, cell_w, cell_h, base_x, base_y)
            if code >= 0:
                glyphs[code] = glyph
    if not cell_w or ord("?") not in glyphs:
        raise ValueError("not a usable BDF font (no FONTBOUNDINGBOX or no '?')")
    return BitmapFont(width=cell_w, height=cell_h, glyphs=glyphs)


def _read_char(lines: object, cell_w: int, cell_h: int, base_x: int,
               base_y: int) -> tuple[int, Glyph]:
    code = -1
    advance = cell_w
    bbx = (cell_w, cell_h, base_x, base_y)
    rows: list[int] = []
    it = iter(lines)  # type: ignore[call-overload]
    for line in it:
        if line.startswith("ENCODING"):
            code = int(line.split()[1])
        elif line.startswith("DWIDTH"):
            advance = int(line.split()[1])
        elif line.startswith("BBX"):
            w, h, x, y = (int(v) for v in line.split()[1:5])
            bbx = (w, h, x, y)
        elif line.startswith("BITMAP"):
            for row in it:
                if row.startswith("ENDCHAR"):
                    break
                rows.append(int(row, 16))
            break
    w, h, off_x, off_y = bbx
    image = Image.new("1", (advance, cell_h), 0)
    # BDF rows are left-aligned bit strings padded to whole bytes; place them by the glyph's
    # offset from the font's baseline.
    top = (cell_h + base_y) - (h + off_y)
    bits = ((w + 7) // 8) * 8
    for r, value in enumerate(rows):
        y = top + r
        if not 0 <= y < cell_h:
            continue
        for c in range(w):
            if value & (1 << (bits - 1 - c)):
                x = off_x - base_x + c
                if 0 <= x < advance:
                    image.putpixel((x, y), 1)
    return code, Glyph(width=advance, image=image)


# Signs the font lacks, drawn here in its 6x10 cell ("#" = lit).
EXTRA = {
    0x1F512: (  # a padlock: the call's media is encrypted
        "......",
        "..##..",
        ".#..#.",
        ".#..#.",
        "######",
        "###.##",
        "###.##",
        "######",
        "......",
        "......",
    ),
}


@cache
def default_font() -> BitmapFont:
    """The 6x10 font of the display (parsed once), with the signs of EXTRA."""
    text = resources.files("firmware.ui").joinpath("fonts/6x10.bdf").read_text("ascii")
    font = parse_bdf(text)
    for code, rows in EXTRA.items():
        image = Image.new("1", (font.width, font.height), 0)
        for y, row in enumerate(rows):
            for x, pixel in enumerate(row):
                if pixel == "#":
                    image.putpixel((x, y), 1)
        font.glyphs[code] = Glyph(width=font.width, image=image)
    return font
