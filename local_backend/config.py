"""Configuration of one local-backend process (one per GPU, or one in the gateway).

Diffusers models are listed as :class:`ModelEntry` items, in code or in a TOML
models file (``[[models]]`` tables, read by :func:`load_config`). Nothing is
loaded here: a pipeline is read from disk on its first generation.

Speed features sit in each model's ``speed`` table (:class:`SpeedOptions`, applied
by :mod:`local_backend.speed`); bf16 is the model's ``dtype``::

    [[models]]
    id = "wan-1.3b"
    family = "wan"
    path = "models/Wan2.1-T2V-1.3B-Diffusers"
    dtype = "bfloat16"

    [models.speed]
    compile = true
    vae_tiling = true
    step_cache = "first_block"
    cache_threshold = 0.05
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BackendConfig", "ModelEntry", "SpeedOptions", "load_config"]


class SpeedOptions(BaseModel):
    """Speed and memory features for one model, all off by default.

    Each runs on CPU too (so CI covers it) but pays off on a GPU with a big model; a
    feature this machine cannot run fails the model's load rather than being skipped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    compile: bool = Field(
        default=False,
        description="torch.compile the transformer's repeated blocks (regional compile); "
        "the first shot pays the compile.",
    )
    vae_tiling: bool = Field(
        default=False, description="Decode (and encode) in overlapping tiles: less peak memory."
    )
    vae_tile: tuple[int, int] | None = Field(
        default=None,
        description="(tile, stride) in pixels, multiples of the VAE's downscale (Wan 8, "
        "LTX 32); None: the VAE's own (Wan 256/192, LTX 512/448).",
    )
    group_offload: bool = Field(
        default=False,
        description="Keep weights in CPU memory and move one block at a time to the device.",
    )
    layerwise_casting: Literal["none", "float8_e4m3fn", "float8_e5m2"] = Field(
        default="none",
        description="Store the transformer's weights in this float8 type, computing in dtype.",
    )
    step_cache: Literal["none", "first_block", "taylorseer"] = Field(
        default="none",
        description="Reuse or extrapolate transformer work between denoising steps.",
    )
    cache_threshold: float = Field(
        default=0.05,
        gt=0,
        description="first_block: skip the other blocks while the first block's output "
        "changes by less than this (relative); higher is faster and less exact.",
    )
    cache_interval: int = Field(
        default=5, ge=1, description="taylorseer: a full transformer pass every this many steps."
    )
    cache_warmup_steps: int = Field(
        default=3, ge=1, description="taylorseer: steps always computed in full at the start."
    )

    @model_validator(mode="after")
    def _tile(self) -> SpeedOptions:
        if self.vae_tile is not None:
            tile, stride = self.vae_tile
            if not self.vae_tiling:
                raise ValueError("vae_tile is set but vae_tiling is off: set vae_tiling = true")
            if not 0 < stride <= tile:
                raise ValueError(f"vae_tile (tile, stride) {self.vae_tile}: need 0 < stride ≤ tile")
        return self


class ModelEntry(BaseModel):
    """One diffusers model this backend serves."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", max_length=200)
    family: Literal["wan", "ltx"]
    mode: Literal["t2v", "i2v"] = Field(
        default="t2v", description="i2v: the pipeline animates a required input image."
    )
    path: str = Field(
        description="A local diffusers folder; a hub id only with allow_downloads on the backend."
    )
    description: str = ""
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32",
        description="Weights and compute; bfloat16 halves memory and is fast on GPUs "
        "(float16 needs a GPU).",
    )
    device: str | None = Field(default=None, description="Default: the backend's device.")
    steps: int | None = Field(
        default=None, ge=1, le=500, description="Default denoising steps; None: the family's."
    )
    guidance_scale: float | None = Field(
        default=None, ge=0, le=50, description="Default CFG scale; None: the family's."
    )
    max_long_side: int = Field(default=1280, ge=16)
    sizes: list[tuple[int, int]] | None = Field(
        default=None, description="Allowed (width, height) pairs; None: any the family can do."
    )
    min_frames: int = Field(default=1, ge=1)
    max_frames: int = Field(default=81, ge=1)
    fps: tuple[int, int] = Field(default=(8, 30), description="Allowed fps range, inclusive.")
    speed: SpeedOptions = SpeedOptions()

    @model_validator(mode="after")
    def _ranges(self) -> ModelEntry:
        if self.min_frames > self.max_frames:
            raise ValueError(f"min_frames {self.min_frames} > max_frames {self.max_frames}")
        if not 0 < self.fps[0] <= self.fps[1]:
            raise ValueError(f"fps range {self.fps} is empty")
        return self


class BackendConfig(BaseModel):
    work_dir: Path | None = Field(
        default=None, description="Where finished videos wait to be fetched; default a temp dir."
    )
    device: str = "cpu"
    keep_finished: int = Field(
        default=256, ge=1, description="Finished generations kept (with their files) for fetching."
    )
    models: list[ModelEntry] = Field(
        default_factory=list, description="Diffusers models served next to the preview model."
    )
    memory_budget_gb: float | None = Field(
        default=None,
        gt=0,
        description="Warm pipelines kept within this many GB of weights (LRU); None: no limit.",
    )
    allow_downloads: bool = Field(
        default=False, description="Let a model path that is a hub id download its weights."
    )
    gil_switch_interval_ms: float | None = Field(
        default=1.0,
        gt=0,
        description=(
            "Python's GIL switch interval once the device thread runs (None: leave Python's "
            "5 ms). Each torch op gives up the GIL; getting it back behind HTTP or database "
            "work waits up to this long, and a denoise takes it back thousands of times."
        ),
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> BackendConfig:
        ids = [m.id for m in self.models]
        dupes = sorted({i for i in ids if ids.count(i) > 1} | ({"preview"} & set(ids)))
        if dupes:
            raise ValueError(f"model ids must be unique (and not 'preview'): {', '.join(dupes)}")
        return self


def load_config(path: Path, **overrides: object) -> BackendConfig:
    """A :class:`BackendConfig` from a TOML file; relative model paths are resolved
    against the file's folder (hub ids such as ``org/name`` stay as they are)."""
    data = tomllib.loads(path.read_text())
    for model in data.get("models", []):
        local = path.parent / str(model.get("path", ""))
        if "path" in model and not Path(model["path"]).is_absolute() and local.exists():
            model["path"] = str(local.resolve())
    return BackendConfig.model_validate({**data, **overrides})
