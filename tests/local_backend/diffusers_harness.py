"""Tiny diffusers pipelines built once per session, and an app serving them."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from local_backend.app import create_app
from local_backend.config import BackendConfig

TERMINAL = {"succeeded", "failed", "canceled"}


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four tiny pipelines, saved in diffusers format (built offline, ~1 s)."""
    from local_backend.tiny import build_all

    root = tmp_path_factory.mktemp("tiny")
    build_all(root)
    return root


def tiny_config(root: Path, work_dir: Path, **overrides: Any) -> BackendConfig:
    from local_backend.tiny import tiny_entries

    return BackendConfig(work_dir=work_dir, models=tiny_entries(root), **overrides)


@asynccontextmanager
async def backend(config: BackendConfig) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a fresh app (its own warm pool) built from ``config``."""
    app = create_app(config)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://backend") as client:
            yield client
    finally:
        app.state.close()


def png_uri(size: tuple[int, int] = (48, 40), colour: tuple[int, int, int] = (200, 60, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def tiny_shot(model: str = "tiny-wan", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": "a red light house on a cliff at night",
        "duration_s": 1,
        "fps": 8,
        "num_frames": 9,
        "width": 32,
        "height": 32,
        "seed": 7,
        "steps": 2,
    }
    if model.endswith("-i2v"):
        body["image"] = png_uri()
    return {**body, **overrides}


async def submit(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/v1/generations", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def finish(client: httpx.AsyncClient, gen_id: str, timeout: float = 20) -> dict[str, Any]:
    """Long-poll until terminal."""
    deadline = time.monotonic() + timeout
    while True:
        view = (await client.get(f"/v1/generations/{gen_id}", params={"wait": 5})).json()
        if view["status"] in TERMINAL:
            return dict(view)
        assert time.monotonic() < deadline, f"gave up waiting; last answer {view}"


async def render(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Submit, wait, download: (final view, MP4 bytes)."""
    view = await finish(client, await submit(client, body))
    assert view["status"] == "succeeded", view
    content = await client.get(f"/v1/generations/{view['id']}/content")
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"
    return view, content.content


async def pipelines(client: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await client.get("/healthz")).json()["pipelines"])
