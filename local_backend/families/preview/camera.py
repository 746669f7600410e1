"""Camera moves for the animatic: camera words in, a moving crop window out.

The card is drawn larger than the frame (:data:`MARGIN`); each frame shows a
window of it. A move is a start and an end view, eased with smoothstep so the
animatic reads like a slow, deliberate camera.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["MARGIN", "MOVES", "Move", "View", "parse_move", "window"]

#: How much larger than the frame the card is drawn, so moves have room.
MARGIN = 1.25


@dataclass(frozen=True)
class View:
    """Zoom (1 = the whole card) and the window's centre as fractions of the card."""

    zoom: float = 1.0
    cx: float = 0.5
    cy: float = 0.5


@dataclass(frozen=True)
class Move:
    name: str
    start: View
    end: View


_PAN = 1.2  # zoom held during pans and tilts, so the window has room to travel
_LO, _HI = 1 / (2 * _PAN), 1 - 1 / (2 * _PAN)

MOVES = {
    "static": Move("static", View(), View()),
    "push_in": Move("push_in", View(), View(zoom=1.08)),
    "zoom_in": Move("zoom_in", View(), View(zoom=MARGIN)),
    "zoom_out": Move("zoom_out", View(zoom=MARGIN), View()),
    "pan_left": Move("pan_left", View(_PAN, cx=_HI), View(_PAN, cx=_LO)),
    "pan_right": Move("pan_right", View(_PAN, cx=_LO), View(_PAN, cx=_HI)),
    "tilt_up": Move("tilt_up", View(_PAN, cy=_HI), View(_PAN, cy=_LO)),
    "tilt_down": Move("tilt_down", View(_PAN, cy=_LO), View(_PAN, cy=_HI)),
}

_S = r"(?:s|es|ing)?"  # verb endings: pans, pushes, panning
_WORDS = [
    (rf"\b(?:pull{_S} (?:back|out)|zoom{_S} out|dolly{_S} (?:out|back)|track{_S} out)", "zoom_out"),
    (rf"\b(?:push{_S} in|dolly{_S} in|zoom{_S} in|track{_S} in|close{_S} in)", "zoom_in"),
    (rf"\b(?:pan{_S}|panning|truck{_S}) left", "pan_left"),
    (rf"\b(?:pan{_S}|panning|truck{_S}) right", "pan_right"),
    (rf"\b(?:tilt{_S} up|crane{_S} up|pedestal{_S} up)", "tilt_up"),
    (rf"\b(?:tilt{_S} down|crane{_S} down|pedestal{_S} down)", "tilt_down"),
    (r"\b(?:static|locked|lock off|tripod|fixed camera|still camera)", "static"),
]
_PATTERNS = [(re.compile(pattern), name) for pattern, name in _WORDS]


def parse_move(words: str | None) -> Move:
    """The move the words ask for; the earliest mention wins, default a gentle push-in."""
    text = (words or "").lower().replace("-", " ")
    found = [(m.start(), name) for pattern, name in _PATTERNS if (m := pattern.search(text))]
    return MOVES[min(found)[1]] if found else MOVES["push_in"]


def _ease(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * (3 - 2 * t)


def window(move: Move, t: float, card: tuple[int, int]) -> tuple[float, float, float, float]:
    """The crop box (left, top, right, bottom) in card pixels at time ``t`` in 0..1."""
    e = _ease(t)
    zoom = move.start.zoom + (move.end.zoom - move.start.zoom) * e
    cx = move.start.cx + (move.end.cx - move.start.cx) * e
    cy = move.start.cy + (move.end.cy - move.start.cy) * e
    w, h = card[0] / zoom, card[1] / zoom
    left = min(max(cx * card[0] - w / 2, 0.0), card[0] - w)
    top = min(max(cy * card[1] - h / 2, 0.0), card[1] - h)
    return (left, top, left + w, top + h)
