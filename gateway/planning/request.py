"""One shot with the storyboard's defaults merged in: the input to every planning step.

The engine keeps a :class:`ShotRequest` (it is plain, serializable data) so it can
re-plan a shot for a fallback model later with exactly what the user asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from gateway.prompts import CAMERA_MOVE_RE
from reelgate.types import JobCreate, ShotDefaults, StructuredPrompt

__all__ = ["Needs", "ShotRequest", "shot_request"]

_DEFAULTED = ("duration_s", "aspect_ratio", "resolution", "fps", "audio", "model", "prefer")


class ShotRequest(BaseModel):
    """What the user asked for one shot; ``None`` means "not asked", never a default."""

    model_config = ConfigDict(frozen=True)

    index: int
    kind: str = "broll"
    prompt: str | StructuredPrompt
    style: str | None = None
    negative: str | None = None
    duration_s: float | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    fps: int | None = None
    seed: int | None = None
    audio: bool | None = None
    image: str | None = None
    last_frame: str | None = None
    model: str | None = None
    prefer: Literal["quality", "cost", "speed"] | None = None
    max_cost_usd: Decimal | None = None
    normalize: Literal["snap", "strict"] = "snap"
    #: Fields whose value came from the storyboard's ``defaults``.
    inherited: frozenset[str] = frozenset()

    def path(self, field: str) -> str:
        """Where a user fixes ``field``: ``defaults.fps`` or ``shots[2].fps``."""
        return f"defaults.{field}" if field in self.inherited else f"shots[{self.index}].{field}"

    @property
    def mode(self) -> Literal["t2v", "i2v", "flf2v"]:
        if self.last_frame is not None:
            return "flf2v"
        return "i2v" if self.image is not None else "t2v"


@dataclass(frozen=True)
class Needs:
    """What a model must offer to run a shot.

    ``mode`` is hard (a text-to-video model cannot use an image). ``audio`` and ``uhd``
    (4k) are soft in ``snap`` mode: models lacking them rank last and the value is
    snapped. ``camera_motion`` is informational: every model takes camera words in its
    prompt, and adapters with camera control may use it.
    """

    mode: Literal["t2v", "i2v", "flf2v"]
    audio: bool
    uhd: bool
    camera_motion: bool

    @classmethod
    def of(cls, req: ShotRequest) -> Needs:
        p = req.prompt
        text = p if isinstance(p, str) else " ".join(filter(None, (p.camera, p.action)))
        return cls(
            mode=req.mode,
            audio=bool(req.audio),
            uhd=req.resolution == "4k",
            camera_motion=CAMERA_MOVE_RE.search(text) is not None,
        )


def _join(*texts: str | None) -> str | None:
    return ", ".join(t for t in texts if t) or None


def shot_request(job: JobCreate, index: int) -> ShotRequest:
    """Shot ``index`` of ``job`` with ``job.defaults``, ``style`` and ``negative`` merged."""
    shot, defaults = job.shots[index], job.defaults or ShotDefaults()
    values: dict[str, object] = {}
    inherited = set()
    for name in _DEFAULTED:
        value = getattr(shot, name)
        if value is None and getattr(defaults, name) is not None:
            value = getattr(defaults, name)
            inherited.add(name)
        values[name] = value
    if values["model"] == "auto":
        values["model"] = None
    normalize = shot.normalize or defaults.normalize
    if shot.normalize is None and defaults.normalize is not None:
        inherited.add("normalize")
    values |= {
        "index": index,
        "kind": shot.kind,
        "prompt": shot.prompt,
        "style": job.style,
        "negative": _join(shot.negative, job.negative),
        "seed": shot.seed,
        "image": shot.image,
        "last_frame": shot.last_frame,
        "max_cost_usd": shot.max_cost_usd,
        "normalize": normalize or "snap",
        "inherited": frozenset(inherited),
    }
    return ShotRequest.model_validate(values)
