"""Fit a shot's parameters to one model's limits: snap (and say so) or refuse.

Unset values take the gateway defaults (4 s, 16:9, 720p, 24 fps) or the model's nearest,
silently: nobody asked for them. A value the user *did* set is kept when the model
allows it; otherwise ``snap`` picks the nearest allowed value and records an
:class:`Adjustment`, and ``strict`` records a :class:`ProblemField` with what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.catalog import CatalogEntry, Limits, resolution_px
from reelgate.types import Adjustment, ProblemField, ShotParams

from .request import ShotRequest

__all__ = ["DEFAULTS", "Normalized", "dimensions", "normalize"]

DEFAULTS: dict[str, Any] = {
    "duration_s": 4.0,
    "aspect_ratio": "16:9",
    "resolution": "720p",
    "fps": 24,
}
#: The shot field to change when a model lacks the shot's input mode.
_MODE_FIELD = {"t2v": "image", "i2v": "image", "flf2v": "last_frame"}
_MODE_NAME = {"t2v": "text-to-video", "i2v": "image-to-video", "flf2v": "first and last frame"}


@dataclass(frozen=True)
class Normalized:
    params: ShotParams
    adjustments: list[Adjustment] = field(default_factory=list)
    #: Values the model cannot take: always for an input mode, in ``strict`` for the rest.
    problems: list[ProblemField] = field(default_factory=list)


def dimensions(aspect_ratio: str, resolution: str) -> tuple[int, int]:
    """Width and height, even numbers, with the resolution as the short side."""
    w, h = (int(x) for x in aspect_ratio.split(":"))
    short = resolution_px(resolution)
    long = 2 * round(short * max(w, h) / min(w, h) / 2)
    return (long, short) if w >= h else (short, long)


def _ratio(aspect_ratio: str) -> float:
    w, h = (int(x) for x in aspect_ratio.split(":"))
    return math.log(w / h)


def _nearest_num(value: float, options: Sequence[float]) -> float:
    """The closest option; on a tie the larger (a longer clip, a sharper picture)."""
    return min(options, key=lambda o: (abs(o - value), -o))


def _snap_duration(value: float, lim: Limits) -> float:
    if lim.durations is not None:
        return _nearest_num(value, lim.durations)
    assert lim.duration_range is not None
    lo, hi = lim.duration_range
    value = min(max(value, lo), hi)
    if lim.duration_step:
        steps = math.floor((value - lo) / lim.duration_step + 0.5 + 1e-9)
        value = min(lo + steps * lim.duration_step, hi)
    return round(value, 6)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def _duration_allowed(lim: Limits) -> tuple[str, Any]:
    at = f" at {lim.durations_at}" if lim.durations_at else ""
    if lim.durations is not None:
        return ", ".join(_fmt(d) for d in lim.durations) + at, list(lim.durations)
    assert lim.duration_range is not None
    lo, hi = lim.duration_range
    step = lim.duration_step
    text = f"{_fmt(lo)}..{_fmt(hi)}" + (f" in {_fmt(step)} s steps" if step and step != 1 else "")
    return text + at, {"min": lo, "max": hi, "step": step}


class _Fitter:
    """Collects adjustments or problems while values are fitted, one field at a time."""

    def __init__(self, req: ShotRequest, entry: CatalogEntry) -> None:
        self.req, self.entry = req, entry
        self.adjustments: list[Adjustment] = []
        self.problems: list[ProblemField] = []

    def fit(self, name: str, requested: Any, applied: Any, allowed: tuple[str, Any]) -> Any:
        if requested is None or requested == applied:
            return applied
        (text, values), model = allowed, self.entry.id
        if self.req.normalize == "strict":
            tail = f"allowed {text}" if text else f"it has no {name}"
            msg = f"{name} {_fmt(requested)} not supported by {model}; {tail}"
            self.problems.append(
                ProblemField(field=self.req.path(name), message=msg, allowed=values)
            )
        else:
            why = f"allows {text}" if text else f"has no {name}"
            msg = f"{name} {_fmt(requested)} -> {_fmt(applied)} ({model} {why})"
            self.adjustments.append(
                Adjustment(field=name, requested=requested, applied=applied, message=msg)
            )
        return applied


def _pick(req_value: Any, default: Any, options: Sequence[Any], key: Any) -> Any:
    wanted = default if req_value is None else req_value
    if wanted in options:
        return wanted
    return min(options, key=lambda o: (abs(key(o) - key(wanted)), -key(o)))


def normalize(req: ShotRequest, entry: CatalogEntry) -> Normalized:
    """``req``'s parameters fitted to ``entry``."""
    caps, f = entry.capabilities, _Fitter(req, entry)
    problems = []
    if req.mode not in caps.modes:
        modes = ", ".join(_MODE_NAME[m] for m in caps.modes)
        msg = f"{entry.id} does not take {_MODE_NAME[req.mode]} input; it does {modes}"
        problems.append(
            ProblemField(
                field=req.path(_MODE_FIELD[req.mode]), message=msg, allowed=list(caps.modes)
            )
        )
    base = caps.limits(req.mode)
    res = _pick(req.resolution, DEFAULTS["resolution"], base.resolutions, resolution_px)
    res = f.fit(
        "resolution", req.resolution, res, (", ".join(base.resolutions), list(base.resolutions))
    )
    lim = caps.limits(req.mode, res)
    ratio = _pick(req.aspect_ratio, DEFAULTS["aspect_ratio"], lim.aspect_ratios, _ratio)
    ratio = f.fit(
        "aspect_ratio",
        req.aspect_ratio,
        ratio,
        (", ".join(lim.aspect_ratios), list(lim.aspect_ratios)),
    )
    fps = _pick(req.fps, DEFAULTS["fps"], lim.fps, float)
    fps = f.fit("fps", req.fps, fps, (", ".join(map(str, lim.fps)), list(lim.fps)))
    wanted = DEFAULTS["duration_s"] if req.duration_s is None else req.duration_s
    duration = f.fit(
        "duration_s", req.duration_s, _snap_duration(wanted, lim), _duration_allowed(lim)
    )
    seed = f.fit("seed", req.seed, req.seed if caps.seed else None, ("", None))
    audio = f.fit("audio", req.audio or None, bool(req.audio and caps.audio), ("", False))
    width, height = dimensions(ratio, res)
    params = ShotParams(
        duration_s=duration,
        aspect_ratio=ratio,
        resolution=res,
        fps=fps,
        seed=seed,
        audio=audio,
        width=width,
        height=height,
    )
    return Normalized(params, f.adjustments, problems + f.problems)
