"""Configuration of one local-backend process (one per GPU, or one in the gateway)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

__all__ = ["BackendConfig"]


class BackendConfig(BaseModel):
    work_dir: Path | None = Field(
        default=None, description="Where finished videos wait to be fetched; default a temp dir."
    )
    device: str = "cpu"
    keep_finished: int = Field(
        default=256, ge=1, description="Finished generations kept (with their files) for fetching."
    )
