"""What a model family gives the runner, and the envelope every model accepts.

Like cog, a model is set up once and then asked many times: ``prepare`` checks a
request against the model's capabilities (a bad request is refused before it is
queued) and returns a :class:`Task`; the runner later calls ``Task.run`` on a
device worker thread. Progress and cancellation flow through one ``on_step``
callback, as with diffusers' ``callback_on_step_end``: it raises
:class:`GenerationCanceled` when the job was cancelled, so a render loop only has
to call it once per frame or step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Capabilities",
    "GenerationCanceled",
    "GenerationParams",
    "InvalidParams",
    "Model",
    "ModelError",
    "ModelInfo",
    "OnStep",
    "Range",
    "Task",
    "check_capabilities",
]

OnStep = Callable[[int], None]


class GenerationParams(BaseModel):
    """The fixed envelope around every model's input."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(min_length=1, max_length=200)
    prompt: str = Field(max_length=20_000)
    negative_prompt: str | None = Field(default=None, max_length=20_000)
    duration_s: float = Field(gt=0)
    fps: int = Field(gt=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    seed: int | None = None
    num_frames: int | None = Field(
        default=None, ge=1, le=10_000, description="Exact frame count; else duration_s x fps."
    )
    steps: int | None = Field(default=None, ge=1, le=500, description="Denoising steps.")
    guidance_scale: float | None = Field(default=None, ge=0, le=50)
    image: str | None = Field(default=None, description="data: URI of the first frame.")
    last_frame: str | None = Field(default=None, description="data: URI of the last frame.")
    kind: str = Field(default="broll", max_length=64)
    title: str | None = Field(default=None, max_length=500)
    camera: str | None = Field(default=None, max_length=500)

    @property
    def frame_count(self) -> int:
        if self.num_frames is not None:
            return self.num_frames
        return max(1, round(self.duration_s * self.fps))


class Range(BaseModel):
    min: float
    max: float

    def __contains__(self, value: float) -> bool:
        return self.min <= value <= self.max

    def __str__(self) -> str:
        return f"{self.min:g}..{self.max:g}"


class Capabilities(BaseModel):
    """What a model accepts; published by ``GET /v1/models`` and enforced at submit."""

    modes: list[str] = Field(description="t2v, i2v, first_last")
    duration_s: Range
    fps: Range
    max_long_side: int
    min_side: int = 16
    size_multiple: int = 2
    sizes: list[tuple[int, int]] | None = Field(
        default=None, description="The only (width, height) pairs accepted, when set."
    )
    frame_step: int = Field(default=1, description="Frame counts are frame_step * k + 1.")
    max_frames: int | None = None
    steps: bool = Field(default=False, description="Takes steps and guidance_scale.")
    seed: bool = True
    negative_prompt: bool = False
    camera_control: bool = False
    audio: bool = False


class ModelInfo(BaseModel):
    id: str
    family: str
    description: str
    capabilities: Capabilities


class InvalidParams(ValueError):
    """A request the model cannot take; the API answers 422 with this message."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ModelError(RuntimeError):
    """A job that started and failed; becomes the generation's ``error``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class GenerationCanceled(Exception):
    """Raised by ``on_step`` inside a render loop when the job was cancelled."""


class Task(Protocol):
    """One prepared request, ready to run on a device."""

    @property
    def total_steps(self) -> int: ...

    def run(self, out: Path, on_step: OnStep, device: str) -> None:
        """Write the video to ``out``, calling ``on_step(k)`` after step k of total."""
        ...

    def idle(self, device: str) -> None:
        """Called after ``run`` when no other job waits: set up what the next one needs."""
        ...


class Model(Protocol):
    info: ModelInfo

    def prepare(self, params: GenerationParams) -> Task: ...


def check_capabilities(info: ModelInfo, params: GenerationParams) -> None:
    """Refuse what ``info.capabilities`` does not allow, naming the field and the range."""
    caps, name = info.capabilities, info.id
    if params.duration_s not in caps.duration_s:
        raise InvalidParams(
            "duration_s",
            f"duration_s {params.duration_s:g} not supported by {name}; allowed {caps.duration_s}",
        )
    if params.fps not in caps.fps:
        raise InvalidParams("fps", f"fps {params.fps} not supported by {name}; allowed {caps.fps}")
    for field in ("width", "height"):
        value = getattr(params, field)
        if value < caps.min_side or value % caps.size_multiple:
            raise InvalidParams(
                field,
                f"{field} {value} not supported by {name}; it must be a multiple of "
                f"{caps.size_multiple} and at least {caps.min_side}",
            )
    if max(params.width, params.height) > caps.max_long_side:
        raise InvalidParams(
            "width" if params.width >= params.height else "height",
            f"size {params.width}x{params.height} not supported by {name}; "
            f"the long side must be at most {caps.max_long_side}",
        )
    if caps.sizes is not None and (params.width, params.height) not in caps.sizes:
        allowed = ", ".join(f"{w}x{h}" for w, h in caps.sizes)
        raise InvalidParams(
            "width",
            f"size {params.width}x{params.height} not supported by {name}; allowed {allowed}",
        )
    if params.image is not None and "i2v" not in caps.modes:
        raise InvalidParams("image", f"{name} does not take an input image")
    if params.last_frame is not None and "first_last" not in caps.modes:
        raise InvalidParams("last_frame", f"{name} does not take a last frame")
