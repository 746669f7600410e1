"""Tiny Wan and LTX through the whole gateway, with the local backend in-process.

The pipelines are built offline, saved, and loaded back by the backend through the
real ``from_pretrained`` path; the gateway plans, submits, long-polls, fetches and
stores them like any vendor's output. Their frames are noise (random weights).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import Gateway, open_gateway
from PIL import Image

from gateway import media
from reelgate import Job

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from local_backend.tiny import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny"))


def png_uri(size: tuple[int, int] = (96, 64)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def shot(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "stylized",
        "model": model,
        "prompt": {"subject": "a red light house", "action": "the beam sweeps the sea"},
        "duration_s": 0.5,
        "aspect_ratio": "1:1",
        "seed": 11,
        **extra,
    }


@pytest.fixture
async def gw(tmp_path: Path, tiny_models: Path) -> AsyncIterator[Gateway]:
    async with open_gateway(
        tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}", local_models=tiny_models
    ) as gateway:
        yield gateway


def decoded_frames(path: Path) -> bytes:
    """Every frame as raw RGB: what "identical frames" compares."""
    return subprocess.run(
        [media.ffmpeg_exe(), "-loglevel", "error", "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip


async def render(gw: Gateway, tmp_path: Path, *shots: dict[str, Any]) -> tuple[Job, list[Path]]:
    job = await gw.client.jobs.create({"shots": list(shots), "assemble": False})
    job = await gw.client.jobs.wait(job, timeout=120)
    assert job.status == "succeeded", [(s.error_code, s.error_message) for s in job.shots]
    paths = [
        await gw.client.jobs.download(job, tmp_path / f"{job.id}-{i}.mp4", shot=i)
        for i in range(len(job.shots))
    ]
    return job, paths


async def test_t2v_and_i2v_on_wan_and_ltx(gw: Gateway, tmp_path: Path) -> None:
    job, paths = await render(
        gw,
        tmp_path,
        shot("local/tiny-wan"),
        shot("local/tiny-wan-i2v", image=png_uri()),
        shot("local/tiny-ltx"),
        shot("local/tiny-ltx-i2v", image=png_uri()),
    )
    prov = await gw.client.jobs.provenance(job)
    sizes = [(144, 144), (144, 144), (128, 128), (128, 128)]
    for s, path, size, record in zip(job.shots, paths, sizes, prov["shots"], strict=True):
        assert s.output is not None and (s.output.width, s.output.height) == size
        assert s.output.fps == 16 and s.output.codec == "h264"
        assert s.output.duration_s == pytest.approx(9 / 16)  # 0.5 s → 8 frames → 4k+1 / 8k+1
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["output"]["sha256"]
        assert record["model"]["id"] == s.model
    # i2v got the image, resized to the shot's size, recorded by hash in the manifest
    assert prov["shots"][1]["inputs"][0]["sha256"]


async def test_same_seed_same_frames_other_seed_other_frames(gw: Gateway, tmp_path: Path) -> None:
    job, paths = await render(
        gw,
        tmp_path,
        shot("local/tiny-wan"),
        shot("local/tiny-wan"),
        shot("local/tiny-wan", seed=12),
    )
    first, again, other = (decoded_frames(p) for p in paths)
    assert len(first) == 144 * 144 * 3 * 9
    assert first == again  # bit for bit, decoded
    assert job.shots[0].output and job.shots[1].output
    assert job.shots[0].output.sha256 == job.shots[1].output.sha256
    assert first != other


async def test_bad_input_is_a_clear_4xx(gw: Gateway) -> None:
    bad = [
        (shot("local/tiny-wan-i2v"), "image"),  # an i2v model with no image
        (shot("local/tiny-wan", duration_s=9, normalize="strict"), "duration_s"),
        (shot("local/tiny-wan-i2v", image="data:image/png;base64,bm90IGFuIGltYWdl"), "image"),
    ]
    for body, field in bad:
        response = await gw.http.post("/v1/jobs", json={"shots": [body]}, headers=gw.auth())
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert field in response.text


def slow_config(tiny_models: Path, tmp_path: Path, steps: int) -> Path:
    """tiny-wan with more denoising steps: long enough to watch and to cancel."""
    config = tmp_path / "slow.toml"
    root = tiny_models.parent
    config.write_text(
        f'[[models]]\nid = "tiny-wan"\nfamily = "wan"\npath = "{root / "tiny-wan"}"\n'
        f"steps = {steps}\n\n"
        f'[[models]]\nid = "tiny-ltx"\nfamily = "ltx"\npath = "{root / "tiny-ltx"}"\nsteps = 2\n'
    )
    return config


async def test_wait_shows_step_k_of_n(tmp_path: Path, tiny_models: Path) -> None:
    # Enough steps to outlast the backend's 0.5 s between step wakes (a shorter job
    # reports only its end), on a fast machine too.
    config = slow_config(tiny_models, tmp_path, steps=64)
    seen: list[tuple[int | None, int | None]] = []
    async with open_gateway(
        tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}", local_models=config
    ) as gw:
        job = await gw.client.jobs.create({"shots": [shot("local/tiny-wan", duration_s=2)]})

        def watch(current: Job) -> None:
            seen.append((current.shots[0].step, current.shots[0].total_steps))

        job = await gw.client.jobs.wait(job, timeout=120, progress=watch)
    assert job.status == "succeeded"
    steps = [k for k, n in seen if k is not None and n == 64]
    assert any(0 < k < 64 for k in steps), seen  # a step part-way, as "step k/64"
    assert steps == sorted(steps)


async def test_cancel_mid_denoise_stops_within_a_step_and_the_next_job_runs(
    tmp_path: Path, tiny_models: Path
) -> None:
    config = slow_config(tiny_models, tmp_path, steps=400)
    async with open_gateway(
        tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}", local_models=config
    ) as gw:
        job = await gw.client.jobs.create({"shots": [shot("local/tiny-wan")]})
        while not ((current := await gw.client.jobs.get(job.id)).shots[0].step or 0) >= 2:
            assert current.shots[0].status in ("queued", "running")
            await asyncio.sleep(0.02)
        started = time.monotonic()
        canceled = await gw.client.jobs.cancel(job.id)
        canceled = await gw.client.jobs.wait(canceled, timeout=30)
        assert canceled.status == "canceled"
        assert time.monotonic() - started < 5  # 400 steps would take far longer
        attempt = canceled.shots[0].attempts[-1]
        record = await gw.runtime.registry.get("local").generation(attempt.backend_job_id)
        assert record["status"] == "canceled"
        assert record["step"] < 400  # stopped in the denoising loop, not after it
        # the device is free and sound: the next job runs to the end
        after = await gw.client.jobs.create({"shots": [shot("local/tiny-ltx")]})
        assert (await gw.client.jobs.wait(after, timeout=120)).status == "succeeded"
