"""What the Wan and LTX families share: a warm diffusers pipeline, one shot per request.

A model's base pipeline is loaded once (``from_pretrained`` on a local folder) and
kept in the :class:`~local_backend.warm.WarmPool`, with the speed features its
entry turns on (:mod:`local_backend.speed`). Each shot runs on its own copy sharing
the weights, with a fresh scheduler, so no scheduler or interrupt state leaks
between requests; progress and cancel go through ``callback_on_step_end``, and a
fixed CPU generator makes a seed reproduce the same frames bit for bit.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from local_backend import speed
from local_backend.config import ModelEntry
from local_backend.families.base import (
    Capabilities,
    GenerationParams,
    InvalidParams,
    ModelError,
    ModelInfo,
    OnStep,
    Range,
    check_capabilities,
)
from local_backend.families.encode import Mp4Writer, prepare_spare
from local_backend.families.images import decode_data_uri
from local_backend.warm import WarmPool, free_memory

__all__ = ["DiffusersModel", "DiffusersTask", "Family", "pipeline_bytes"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHTS = {".safetensors", ".bin", ".pt", ".pth", ".gguf"}


@dataclass(frozen=True)
class Family:
    """How one family differs: its pipelines, its size and frame rules, its defaults."""

    name: str
    pipelines: Mapping[str, str]  # mode → diffusers pipeline class name
    frame_step: int  # frame counts are frame_step * k + 1 (the VAE's temporal stride)
    size_multiple: int  # what the pipeline's check_inputs demands of width and height
    steps: int
    guidance_scale: float
    call_kwargs: Callable[[DiffusersTask], dict[str, Any]] = field(default=lambda task: {})


def pipeline_bytes(pipe: Any) -> int:
    """Weight bytes a pipeline holds (parameters and buffers of its torch modules)."""
    total = 0
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            tensors = [*component.parameters(), *component.buffers()]
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def _capabilities(entry: ModelEntry, family: Family) -> Capabilities:
    fps_min, fps_max = entry.fps
    return Capabilities(
        modes=[entry.mode],
        duration_s=Range(min=entry.min_frames / fps_max, max=entry.max_frames / fps_min),
        fps=Range(min=fps_min, max=fps_max),
        max_long_side=entry.max_long_side,
        min_side=family.size_multiple,
        size_multiple=family.size_multiple,
        sizes=entry.sizes,
        frame_step=family.frame_step,
        max_frames=entry.max_frames,
        steps=True,
        negative_prompt=True,
    )


class DiffusersModel:
    """One configured model: validation at submit, a warm pipeline at run."""

    def __init__(
        self, entry: ModelEntry, family: Family, pool: WarmPool, allow_downloads: bool = False
    ) -> None:
        self.entry, self.family, self.pool = entry, family, pool
        self.allow_downloads = allow_downloads
        self.speed_features: list[str] = []  # what local_backend.speed turned on at load
        self.info = ModelInfo(
            id=entry.id,
            family=family.name,
            description=entry.description or f"{family.name} {entry.mode} from {entry.path}",
            capabilities=_capabilities(entry, family),
        )

    def prepare(self, params: GenerationParams) -> DiffusersTask:
        check_capabilities(self.info, params)
        image = None
        if self.entry.mode == "i2v":
            if params.image is None:
                raise InvalidParams(
                    "image", f"{self.entry.id} animates an image: image is required"
                )
            image = decode_data_uri(params.image, "image")
            image = ImageOps.fit(image, (params.width, params.height), Image.Resampling.LANCZOS)
        return DiffusersTask(
            model=self,
            prompt=params.prompt,
            negative_prompt=params.negative_prompt,
            size=(params.width, params.height),
            frames=self._frames(params),
            fps=params.fps,
            steps=params.steps or self.entry.steps or self.family.steps,
            guidance_scale=_first(
                params.guidance_scale, self.entry.guidance_scale, self.family.guidance_scale
            ),
            seed=params.seed if params.seed is not None else secrets.randbelow(2**32),
            image=image,
        )

    def _frames(self, params: GenerationParams) -> int:
        """An explicit ``num_frames`` must fit the rule; a duration snaps to the nearest count."""
        step, name = self.family.frame_step, self.entry.id
        lo, hi = self.entry.min_frames, self.entry.max_frames
        if params.num_frames is not None:
            n = params.num_frames
            valid = [c for c in range(lo, hi + 1) if (c - 1) % step == 0]
            if n not in valid:
                near = f" (nearest: {min(valid, key=lambda c: abs(c - n))})" if valid else ""
                raise InvalidParams(
                    "num_frames",
                    f"num_frames {n} not supported by {name}; allowed {step}k+1 in {lo}..{hi}"
                    + near,
                )
            return n
        wanted = params.frame_count
        n = step * round((wanted - 1) / step) + 1
        if not lo <= n <= hi:
            raise InvalidParams(
                "duration_s",
                f"duration_s {params.duration_s:g} at {params.fps} fps is {wanted} frames; "
                f"{name} renders {lo}..{hi} frames ({hi / params.fps:.2f} s at {params.fps} fps)",
            )
        return n

    def base_pipeline(self, device: str) -> Any:
        """The warm pipeline, loaded on first use (the pool may evict others first)."""
        return self.pool.get(
            self.entry.id, lambda: self._load(device), pipeline_bytes, self._disk_bytes
        )

    def _disk_bytes(self) -> int:
        path = Path(self.entry.path).expanduser()
        return sum(f.stat().st_size for f in path.rglob("*") if f.suffix in _WEIGHTS)

    def _load(self, device: str) -> Any:
        entry = self.entry
        source = Path(entry.path).expanduser()
        if not source.is_dir() and not self.allow_downloads:
            raise ModelError("model_unavailable", _not_local(entry))
        cls = getattr(importlib.import_module("diffusers"), self.family.pipelines[entry.mode])
        try:
            pipe = cls.from_pretrained(
                str(source) if source.is_dir() else entry.path,
                dtype=DTYPES[entry.dtype],
                local_files_only=not self.allow_downloads,
            )
            if not entry.speed.group_offload:  # offloaded weights stay in CPU memory
                pipe.to(entry.device or device)
        except Exception as exc:
            raise ModelError(
                "model_load_failed",
                f"model {entry.id}: could not load a {cls.__name__} from {entry.path}: "
                f"{type(exc).__name__}: {exc}",
            ) from None
        self.speed_features = speed.apply_speed(pipe, entry, entry.device or device)
        return pipe

    def request_pipeline(self, device: str) -> Any:
        """A per-request pipeline: the warm weights, its own scheduler and state."""
        pipe = self.pool.take_spare(self.entry.id)
        if pipe is None:
            pipe = self._new_request_pipeline(device)
            speed.reset(pipe)  # step caches live on the shared modules
        self.pool.track(pipe)
        return pipe

    def make_spare(self) -> None:
        """Fork the next request's pipeline now, while the device is idle (≈3 ms that
        would otherwise stand between a shot's start and its first step), its step
        caches reset too: only a shot of this model dirties them, and that shot took the
        spare, so a spare made after it is the only one. Only for a model still warm: an
        idle device never loads one."""
        base = self.pool.peek(self.entry.id)
        if base is not None and not self.pool.has_spare(self.entry.id):
            spare = _request_fork(base)
            speed.reset(spare)
            self.pool.put_spare(self.entry.id, spare)

    def _new_request_pipeline(self, device: str) -> Any:
        return _request_fork(self.base_pipeline(device))


def _request_fork(base: Any) -> Any:
    pipe = _fork(base, scheduler=type(base.scheduler).from_config(base.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _fork(base: Any, scheduler: Any) -> Any:
    """``base``'s modules and settings with another scheduler. Not ``from_pipe``: it ends
    with ``.to(dtype=float32)``, casting the shared modules in place, so a bfloat16
    model ran in float32 from its first shot on."""
    settings = {
        k: v for k, v in base.config.items() if not k.startswith("_") and k not in base.components
    }
    pipe = type(base)(**{**base.components, **settings, "scheduler": scheduler})
    pipe.register_to_config(_name_or_path=base.name_or_path)
    return pipe


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)


def _not_local(entry: ModelEntry) -> str:
    if _HUB_ID.match(entry.path) and not entry.path.startswith("."):
        return (
            f"model {entry.id}: {entry.path!r} looks like a hub id, and this backend does not "
            "download models; download it into a folder and point path at it, or set "
            "allow_downloads = true"
        )
    return (
        f"model {entry.id}: no diffusers folder at {entry.path} (check path in the models config)"
    )


@dataclass(frozen=True)
class DiffusersTask:
    model: DiffusersModel
    prompt: str
    negative_prompt: str | None
    size: tuple[int, int]
    frames: int
    fps: int
    steps: int
    guidance_scale: float
    seed: int
    image: Image.Image | None = None

    @property
    def total_steps(self) -> int:
        return self.steps

    def run(self, out: Path, on_step: OnStep, device: str) -> None:
        """Denoise, decode and encode to ``out``; ``on_step`` raises to cancel.

        The encoder opens first, so x264's set-up is done before the frames exist.
        """
        with Mp4Writer.open(out, self.size, self.fps) as writer:
            try:
                video = self.denoise(on_step, device)
            except BaseException as exc:
                _drop_frames(exc)  # their locals hold the request pipeline and its tensors
                free_memory()
                raise
            for frame in to_uint8(video):
                writer.write(frame)

    def idle(self, device: str) -> None:
        self.model.make_spare()
        prepare_spare()

    def denoise(self, on_step: OnStep, device: str) -> Any:
        """The shot's frames, floats in [0, 1] shaped (frames, height, width, 3): what
        ``run`` encodes.

        Under ``torch.inference_mode``, not the ``no_grad`` diffusers sets: no tensor of a
        render is ever differentiated, so torch can skip version counters and view
        tracking on every op (tiny Wan on CPU: 3% faster, bytes unchanged).
        """
        pipe = self.model.request_pipeline(device)
        width, height = self.size

        def on_step_end(_: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(i + 1)
            return kwargs

        kwargs: dict[str, Any] = {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "width": width,
            "height": height,
            "num_frames": self.frames,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance_scale,
            "generator": torch.Generator("cpu").manual_seed(self.seed),
            "output_type": "np",
            "callback_on_step_end": on_step_end,
            **self.model.family.call_kwargs(self),
        }
        if self.image is not None:
            kwargs["image"] = self.image
        with torch.inference_mode():
            return pipe(**kwargs).frames[0]


def to_uint8(video: Any) -> np.ndarray[Any, Any]:
    """Float frames in [0, 1] as 8-bit pixels, rounded half to even: ``(clip(v, 0, 1) *
    255).round()``, done in place (a writable float32 array, as diffusers returns it).
    One pass per operation and no temporaries: a 720p, 81-frame shot is 224 M floats."""
    frames = np.asarray(video)
    if frames.dtype != np.float32 or not frames.flags.writeable:
        frames = frames.astype(np.float32)
    np.multiply(frames, 255.0, out=frames)
    np.clip(frames, 0.0, 255.0, out=frames)
    np.rint(frames, out=frames)
    return frames.astype(np.uint8)


def _drop_frames(exc: BaseException | None) -> None:
    """Clear the locals of every finished frame an error (and its causes) holds."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            with contextlib.suppress(RuntimeError):  # a frame still executing keeps its own
                tb.tb_frame.clear()
                # Python < 3.13: clear() leaves the dict that a locals() call (diffusers'
                # callback loop makes one) snapshotted; reading f_locals resyncs it.
                tb.tb_frame.f_locals  # noqa: B018
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
