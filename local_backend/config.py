"""Configuration of one local-backend process (one per GPU, or one in the gateway).

Diffusers models are listed as :class:`ModelEntry` items, in code or in a TOML
models file (``[[models]]`` tables, read by :func:`load_config`). Nothing is
loaded here: a pipeline is read from disk on its first generation.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BackendConfig", "ModelEntry", "load_config"]


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
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
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
