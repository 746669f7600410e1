"""Tiny Wan and LTX pipelines, saved and reloaded, rendering through the backend's API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from backend_harness import decode, probe
from diffusers_harness import backend, pipelines, render, submit, tiny_config, tiny_shot

from local_backend.families.base import GenerationCanceled, GenerationParams
from local_backend.families.diffusers_common import DiffusersModel
from local_backend.families.wan import FAMILY as WAN
from local_backend.tiny import TINY_MODELS, build, tiny_entries
from local_backend.warm import WarmPool


@pytest.fixture
async def client(tiny_root: Path, work_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with backend(tiny_config(tiny_root, work_dir)) as client:
        yield client


@pytest.mark.parametrize("model", list(TINY_MODELS))
async def test_each_tiny_model_renders_an_h264_mp4(
    client: httpx.AsyncClient, work_dir: Path, model: str
) -> None:
    view, video = await render(client, tiny_shot(model, fps=12, width=64, height=32))
    assert (view["step"], view["total_steps"], view["progress"]) == (2, 2, 1.0)
    (work_dir / "out.mp4").write_bytes(video)
    got = probe(work_dir / "out.mp4")
    assert (got.frames, got.width, got.height, got.fps) == (9, 64, 32, 12)
    assert (got.codec, got.pix_fmt) == ("h264", "yuv420p")


@pytest.mark.parametrize("model", ["tiny-wan", "tiny-ltx-i2v"])
async def test_same_seed_same_bytes_other_seed_other_frames(
    client: httpx.AsyncClient, work_dir: Path, model: str
) -> None:
    _, first = await render(client, tiny_shot(model, seed=11))
    _, again = await render(client, tiny_shot(model, seed=11))
    _, other = await render(client, tiny_shot(model, seed=12))
    assert first == again
    paths = [work_dir / f"{name}.mp4" for name in ("first", "other")]
    for path, video in zip(paths, (first, other), strict=True):
        path.write_bytes(video)
    assert decode(paths[0], (32, 32)) != decode(paths[1], (32, 32))


async def test_a_duration_snaps_to_the_familys_frame_rule(
    client: httpx.AsyncClient, work_dir: Path
) -> None:
    for model, fps, frames in [("tiny-wan", 10, 9), ("tiny-ltx", 16, 17)]:
        body = {k: v for k, v in tiny_shot(model, fps=fps).items() if k != "num_frames"}
        _, video = await render(client, body)  # 1 s: 10 → 4k+1 = 9, 16 → 8k+1 = 17
        (work_dir / "snap.mp4").write_bytes(video)
        assert probe(work_dir / "snap.mp4").frames == frames


async def test_progress_is_reported_and_a_cancel_stops_the_denoise(
    client: httpx.AsyncClient,
) -> None:
    gen_id = await submit(client, tiny_shot(steps=400, num_frames=5))
    deadline = time.monotonic() + 20
    while (view := (await client.get(f"/v1/generations/{gen_id}")).json())["step"] == 0:
        assert view["status"] in {"queued", "running"} and time.monotonic() < deadline, view
        await asyncio.sleep(0.005)
    assert view["status"] == "running" and view["total_steps"] == 400
    assert view["progress"] == pytest.approx(view["step"] / 400)
    canceled = (await client.post(f"/v1/generations/{gen_id}/cancel")).json()
    assert canceled["status"] == "canceled" and canceled["step"] < 400
    assert (await client.get(f"/v1/generations/{gen_id}/content")).status_code == 409
    await render(client, tiny_shot())  # the service runs the next job
    stats = await pipelines(client)
    assert stats["loads"] == {"tiny-wan": 1} and stats["active_requests"] == 0


def test_raising_from_on_step_stops_at_that_step_and_frees_the_request(
    tiny_root: Path, tmp_path: Path
) -> None:
    pool = WarmPool()
    model = DiffusersModel(tiny_entries(tiny_root)[0], WAN, pool)
    params = GenerationParams.model_validate(tiny_shot(steps=10))
    seen: list[int] = []

    def on_step(k: int) -> None:
        seen.append(k)
        if k == 3:
            raise GenerationCanceled()

    with pytest.raises(GenerationCanceled) as caught:
        model.prepare(params).run(tmp_path / "out.mp4", on_step, "cpu")
    assert seen == [1, 2, 3] and not (tmp_path / "out.mp4").exists()
    assert caught.tb is not None  # the error is still held, yet not the request pipeline:
    assert pool.stats()["active_requests"] == 0
    model.prepare(params).run(tmp_path / "out.mp4", seen.append, "cpu")
    assert seen[3:] == list(range(1, 11)) and (tmp_path / "out.mp4").exists()


async def test_two_shots_reuse_the_warm_pipeline(client: httpx.AsyncClient) -> None:
    await render(client, tiny_shot())
    await render(client, tiny_shot(seed=99, prompt="the sea"))
    stats = await pipelines(client)
    assert stats["loads"] == {"tiny-wan": 1} and stats["warm"] == ["tiny-wan"]
    assert stats["warm_bytes"] > 0 and stats["active_requests"] == 0


@pytest.mark.parametrize(
    ("budget_gb", "loads", "warm"),
    [
        (1e-9, {"tiny-wan": 2, "tiny-ltx": 1}, ["tiny-wan"]),  # one model at a time
        (1e-2, {"tiny-wan": 1, "tiny-ltx": 1}, ["tiny-ltx", "tiny-wan"]),  # both fit
    ],
)
async def test_least_recently_used_pipelines_are_evicted_past_the_budget(
    tiny_root: Path, work_dir: Path, budget_gb: float, loads: dict[str, int], warm: list[str]
) -> None:
    async with backend(tiny_config(tiny_root, work_dir, memory_budget_gb=budget_gb)) as client:
        for model in ("tiny-wan", "tiny-ltx", "tiny-wan"):
            await render(client, tiny_shot(model))
        stats = await pipelines(client)
    assert (stats["loads"], stats["warm"]) == (loads, warm)
    assert stats["warm_bytes"] <= stats["budget_bytes"] or len(warm) == 1


@pytest.mark.parametrize("name", list(TINY_MODELS))
def test_the_builder_is_deterministic_and_reloads_to_the_same_output(
    tiny_root: Path, name: str
) -> None:
    import diffusers

    built = build(name)
    again = build(name)
    for key, value in built.transformer.state_dict().items():
        assert torch.equal(value, again.transformer.state_dict()[key]), key
    loaded = getattr(diffusers, type(built).__name__).from_pretrained(tiny_root / name)
    kwargs = {
        "prompt": "a red sky",
        "height": 32,
        "width": 32,
        "num_frames": 9,
        "num_inference_steps": 2,
        "output_type": "np",
    }
    if name.endswith("-i2v"):
        from PIL import Image

        kwargs["image"] = Image.new("RGB", (32, 32), (10, 200, 90))
    frames = [
        pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(5)).frames[0]
        for pipe in (built, loaded)
    ]
    np.testing.assert_allclose(frames[0], frames[1], atol=1e-5)


def test_an_idle_device_forks_the_next_requests_pipeline_ahead(tiny_root: Path) -> None:
    pool = WarmPool()
    model = DiffusersModel(tiny_entries(tiny_root)[0], WAN, pool)
    model.make_spare()  # not loaded yet: an idle device never loads a model
    assert not pool.has_spare(model.entry.id) and pool.stats()["loads"] == {}
    first = model.request_pipeline("cpu")
    model.make_spare()
    spare = pool.take_spare(model.entry.id)
    assert spare is not None and spare is not first
    assert spare.scheduler is not first.scheduler and spare.transformer is first.transformer
    pool.put_spare(model.entry.id, spare)
    assert model.request_pipeline("cpu") is spare and not pool.has_spare(model.entry.id)
    assert model.request_pipeline("cpu") not in (first, spare)


def test_a_render_runs_in_inference_mode_with_a_plain_diffusers_calls_frames(
    tiny_root: Path,
) -> None:
    """``torch.inference_mode`` is only a speed-up: the frames are a plain call's, exactly."""
    import diffusers

    model = DiffusersModel(tiny_entries(tiny_root)[0], WAN, WarmPool())
    task = model.prepare(GenerationParams.model_validate(tiny_shot(seed=3, prompt="a red sky")))
    modes: list[bool] = []
    frames = task.denoise(lambda _: modes.append(torch.is_inference_mode_enabled()), "cpu")
    assert modes == [True] * task.steps
    plain = diffusers.WanPipeline.from_pretrained(model.entry.path)
    plain.set_progress_bar_config(disable=True)
    expected = plain(
        prompt="a red sky",
        width=task.size[0],
        height=task.size[1],
        num_frames=task.frames,
        num_inference_steps=task.steps,
        guidance_scale=task.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(3),
        output_type="np",
    ).frames[0]
    assert not torch.is_inference_mode_enabled()
    np.testing.assert_array_equal(np.asarray(frames), expected)
