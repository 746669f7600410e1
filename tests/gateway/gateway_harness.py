"""A gateway in this process: the real app (lifespan, executor, embedded local backend)
driven through the SDK over an in-memory ASGI transport."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.base import Adapter
from gateway import media
from gateway.app import create_app
from gateway.engine.policy import Clock
from gateway.runtime import Runtime
from gateway.settings import Settings
from reelgate import AsyncClient

BASE = "http://gateway.test"


@dataclass
class Gateway:
    app: FastAPI
    runtime: Runtime
    client: AsyncClient
    http: httpx.AsyncClient
    key: str
    data_dir: Path

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


@asynccontextmanager
async def open_gateway(
    data_dir: Path,
    database_url: str,
    *,
    adapters: Mapping[str, Adapter] | None = None,
    clock: Clock | None = None,
    **settings: Any,
) -> AsyncIterator[Gateway]:
    cfg = Settings(data_dir=data_dir, database_url=database_url, poll_interval_s=0.05, **settings)
    app = create_app(cfg, adapters=adapters, clock=clock, announce_key=False)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        key = runtime.bootstrap_key or (data_dir / "api-key").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE) as http,
            AsyncClient(base_url=BASE, api_key=key, http_client=http, max_retries=0) as client,
        ):
            yield Gateway(app, runtime, client, http, key, data_dir)


@pytest.fixture
async def gateway(tmp_path: Path, database_url: str) -> AsyncIterator[Gateway]:
    async with open_gateway(tmp_path / "data", database_url) as gw:
        yield gw


class InstantClock(Clock):
    """Real time, but sleeps only yield: retries, backoffs and polls run at once."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def h264_clip(directory: Path) -> bytes:
    """A one-second 128x72 H.264 clip, what scripted vendors hand back."""
    out = directory / "clip.mp4"
    subprocess.run(
        [media.ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi",
         "-i", "testsrc2=size=128x72:rate=24:duration=1",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )  # fmt: skip
    return out.read_bytes()
