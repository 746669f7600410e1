"""The animatic's card: one still per shot that the camera then moves over.

Everything is drawn with Pillow's bundled default font (no files, no network),
in fixed colours, so the same shot always gives the same pixels.
"""

from __future__ import annotations

import colorsys
import hashlib
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["KIND_COLOURS", "Card", "draw_card", "fit", "kind_colour"]

KIND_COLOURS: dict[str, tuple[int, int, int]] = {
    "establishing": (28, 58, 94),
    "character": (92, 45, 92),
    "dialogue": (20, 92, 90),
    "action": (150, 48, 32),
    "broll": (52, 62, 72),
    "product": (150, 112, 30),
    "stylized": (120, 40, 130),
    "draft": (60, 60, 60),
}
FOOTER = "reelgate preview"


@dataclass(frozen=True)
class Card:
    kind: str
    prompt: str
    title: str | None = None
    background: Image.Image | None = None


def kind_colour(kind: str) -> tuple[int, int, int]:
    """A fixed colour per known kind; an operator's own kinds get a stable hashed hue."""
    if kind in KIND_COLOURS:
        return KIND_COLOURS[kind]
    hue = hashlib.sha256(kind.encode()).digest()[0] / 255
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.45)
    return (round(r * 255), round(g * 255), round(b * 255))


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop ``image`` to cover ``size``."""
    return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)


def _background(card: Card, size: tuple[int, int]) -> Image.Image:
    if card.background is not None:
        shade = Image.new("RGB", size, (0, 0, 0))
        return Image.blend(fit(card.background, size), shade, 0.45)
    top = kind_colour(card.kind)
    bottom = tuple(c // 3 for c in top)
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float) -> list[str]:
    """Greedy word wrap to ``width`` pixels; a word wider than a line is split."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        while len(word) > 1 and font.getlength(word) > width:
            cut = max(1, int(len(word) * width / font.getlength(word)))
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
        else:
            lines.append(line)
            line = word
    return [*lines, line] if line else lines


def _clip(lines: list[str], limit: int) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[: limit - 1], lines[limit - 1].rstrip(".,;: ") + " ..."] if limit else []


def draw_card(card: Card, size: tuple[int, int]) -> Image.Image:
    """Kind label, title, word-wrapped prompt and footer over the kind's colour."""
    width, height = size
    image = _background(card, size)
    draw = ImageDraw.Draw(image)
    unit = min(width, height)
    left, top = 0.14 * width, 0.14 * height
    text_width, bottom = width - 2 * left, height - top
    label_px, title_px, body_px, footer_px = (
        max(8, round(unit * f)) for f in (0.045, 0.09, 0.05, 0.035)
    )

    draw.text((left, top), card.kind.upper(), font=_font(label_px), fill=(235, 235, 235))
    y = top + unit * 0.09
    if card.title:
        title = _font(title_px)
        for line in _clip(_wrap(card.title, title, text_width), 2):
            draw.text((left, y), line, font=title, fill=(255, 255, 255))
            y += title_px * 1.2
        y += unit * 0.03

    body = _font(body_px)
    room = int((bottom - footer_px * 1.8 - y) // (body_px * 1.3))
    for line in _clip(_wrap(card.prompt, body, text_width), max(room, 0)):
        draw.text((left, y), line, font=body, fill=(225, 225, 225))
        y += body_px * 1.3

    footer = _font(footer_px)
    footer_x = width - left - footer.getlength(FOOTER)
    draw.text((footer_x, bottom - footer_px), FOOTER, font=footer, fill=(170, 170, 170))
    return image
