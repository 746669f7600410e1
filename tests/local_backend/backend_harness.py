"""The local backend under test: an app per test, its ASGI client, ffmpeg probes."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from local_backend.app import create_app
from local_backend.config import BackendConfig
from local_backend.families.encode import find_ffmpeg

TERMINAL = {"succeeded", "failed", "canceled"}
#: A shot long enough (3600 frames, many seconds) to still be running when a test looks.
LONG = {"duration_s": 60, "fps": 60, "width": 640, "height": 360}


def shot(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "preview",
        "prompt": "A lighthouse on a cliff at dusk",
        "duration_s": 1,
        "fps": 8,
        "width": 160,
        "height": 90,
    }
    return {**body, **overrides}


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def app(work_dir: Path) -> Iterator[FastAPI]:
    app = create_app(BackendConfig(work_dir=work_dir))
    yield app
    app.state.close()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://backend") as c:
        yield c


Poll = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def poll_until(client: httpx.AsyncClient) -> Poll:
    """Poll a generation until ``done(body)`` holds; fails after ``timeout`` seconds."""

    async def poll(
        gen_id: str,
        done: Callable[[dict[str, Any]], bool] = lambda b: b["status"] in TERMINAL,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = (await client.get(f"/v1/generations/{gen_id}")).json()
            if done(body):
                return body
            assert time.monotonic() < deadline, f"gave up waiting; last answer {body}"
            await asyncio.sleep(0.01)

    return poll


@dataclass(frozen=True)
class Probe:
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str


def probe(path: Path) -> Probe:
    """Count frames (a stream copy to the null muxer) and read the stream line."""
    cmd = [find_ffmpeg(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c", "copy"]
    log = subprocess.run([*cmd, "-f", "null", "-"], capture_output=True, text=True).stderr
    frames = re.findall(r"frame=\s*(\d+)", log)
    stream = re.search(r"Video: (\w+).*?, (\w+)\(.*?(\d+)x(\d+).*?, ([\d.]+) fps", log)
    assert frames and stream, log
    codec, pix_fmt, width, height, fps = stream.groups()
    return Probe(int(frames[-1]), int(width), int(height), float(fps), codec, pix_fmt)


def decode(path: Path, size: tuple[int, int]) -> list[bytes]:
    """Every frame of ``path`` as raw rgb24 bytes."""
    cmd = [find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24"]
    raw = subprocess.run([*cmd, "-"], capture_output=True, check=True).stdout
    n = size[0] * size[1] * 3
    assert len(raw) % n == 0
    return [raw[i : i + n] for i in range(0, len(raw), n)]


def mean_abs_diff(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
