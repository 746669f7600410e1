"""Typed configuration: ``REELGATE_*`` environment variables, nested with ``__``.

Nothing reads the environment at import time; the CLI or the app factory builds a
:class:`Settings` once and passes it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConfigError", "Settings"]


class ConfigError(ValueError):
    """A setting that points at something unusable (a missing or invalid file)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REELGATE_", env_nested_delimiter="__")

    data_dir: Path = Path("./reelgate-data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite in the data dir."
    )
    storage_url: str | None = Field(default=None, description="file://... (default) or s3://...")
    executor: Literal["embedded", "none"] = Field(
        default="embedded",
        description="embedded: run shots in this process; none: only accept jobs.",
    )
    catalog: Path | None = None
    routing: Path | None = None
    local_backend_urls: list[str] = Field(
        default_factory=list,
        description="Running local-backend services; empty: run one in-process.",
    )
    local_models: Path | None = Field(
        default=None,
        description="Models config (TOML) for the in-process local backend: the diffusers "
        "models it serves next to the preview model (`reelgate local-backend make-tiny DIR` "
        "writes one for the tiny test models).",
    )
    admin_key: SecretStr | None = None
    secret: SecretStr | None = Field(
        default=None, description="Server secret for key hashing; default: a file in data_dir."
    )
    public_base_url: str | None = None
    ffmpeg: str | None = None
    max_concurrent_shots: int = Field(default=4, ge=1)
    poll_interval_s: float = Field(default=1.0, gt=0, description="Retry-After on job GETs.")
    attempt_timeout_s: float = Field(default=3600.0, gt=0)
    max_retries: int = Field(default=5, ge=0)

    @field_validator("local_models", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # `REELGATE_LOCAL_MODELS= cmd` turns it off

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'reelgate.db').resolve()}"

    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "objects").resolve().as_uri()
