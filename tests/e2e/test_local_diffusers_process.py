"""Tiny Wan and LTX through a gateway process and a separately started local backend.

`reelgate local-backend --models models.toml` runs on a loopback port; `reelgate
serve` reaches it through REELGATE_LOCAL_BACKEND_URLS. The same shot and seed
rendered by the gateway's in-process backend gives the same bytes.
"""

from __future__ import annotations

import asyncio
import base64
import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import free_port
from PIL import Image

from reelgate import Client

pytest.importorskip("diffusers")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from local_backend.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def backend_url(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("backend") / "backend.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "local-backend", "--port", str(port),
             "--models", str(tiny_models)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # importing torch and diffusers takes seconds
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def png_uri() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (240, 200, 40)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def shot(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "stylized",
        "model": model,
        "prompt": {"subject": "a paper lantern", "action": "floats up into the dark"},
        "duration_s": 0.5,
        "aspect_ratio": "1:1",
        "seed": 21,
        **extra,
    }


def embedded_sha(tiny_models: Path, data_dir: Path, body: dict[str, Any]) -> str:
    """The same job on a gateway with its backend in-process (what `reelgate render` runs)."""
    from gateway.cli.session import open_session

    async def run() -> str:
        async with open_session(None, None, data_dir) as client:
            job = await client.jobs.wait(await client.jobs.create(body), timeout=120)
        assert job.status == "succeeded" and job.shots[0].output is not None
        return job.shots[0].output.sha256

    return asyncio.run(run())


def test_t2v_i2v_through_a_backend_process_warm_and_deterministic(
    server_factory, backend_url: str, tiny_models: Path, tmp_path: Path, monkeypatch
) -> None:
    server = server_factory(REELGATE_LOCAL_BACKEND_URLS=f'["{backend_url}"]')
    server.start()
    shots = [
        shot("local/tiny-wan"),
        shot("local/tiny-wan-i2v", image=png_uri()),
        shot("local/tiny-ltx"),
        shot("local/tiny-wan"),  # the same model again: its pipeline is already warm
    ]
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.wait(client.jobs.create({"shots": shots}), timeout=180)
        assert job.status == "succeeded", [(s.model, s.error_message) for s in job.shots]
        paths = [client.jobs.download(job, tmp_path / f"{i}.mp4", shot=i) for i in range(4)]
    outputs = [s.output for s in job.shots]
    facts = [(o.codec, o.fps, o.duration_s) for o in outputs if o is not None]
    assert facts == [("h264", 16.0, 0.5625)] * 4
    assert [(o.width, o.height) for o in outputs if o] == [(144, 144)] * 2 + [(128, 128)] + [
        (144, 144)
    ]
    assert paths[0].read_bytes() == paths[3].read_bytes()  # same seed, same bytes

    health = httpx.get(f"{backend_url}/healthz").json()
    assert health["pipelines"]["loads"] == {"tiny-wan": 1, "tiny-wan-i2v": 1, "tiny-ltx": 1}

    monkeypatch.setenv("REELGATE_LOCAL_MODELS", str(tiny_models))
    monkeypatch.delenv("REELGATE_LOCAL_BACKEND_URLS", raising=False)
    in_process = embedded_sha(tiny_models, tmp_path / "embedded", {"shots": [shots[0]]})
    assert outputs[0] is not None and in_process == outputs[0].sha256


def test_the_backend_process_stays_up_after_bad_requests(backend_url: str) -> None:
    ok = {"prompt": "x", "duration_s": 1, "fps": 8, "width": 32, "height": 32, "steps": 1}
    bad = [
        ({**ok, "model": "no-such-model"}, 404, "unknown_model"),
        ({**ok, "model": "tiny-wan", "width": 40}, 422, "width"),
        ({**ok, "model": "tiny-wan", "num_frames": 10}, 422, "num_frames"),
        ({**ok, "model": "tiny-wan-i2v", "image": "data:image/png;base64,bm9wZQ=="}, 422, "image"),
    ]
    for body, status, word in bad:
        response = httpx.post(f"{backend_url}/v1/generations", json=body)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert word in response.text
    assert httpx.get(f"{backend_url}/healthz").status_code == 200
