"""Each speed feature on tiny Wan: it loads through the backend, takes effect, and changes
nothing it should not (shape, frame count, steps, same seed → same frames).

The tiny models' weights are random, so the tolerances are loose next to what a trained
model shows; what is exact stays exact (group offload, a shot smaller than a tile).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from backend_harness import probe
from diffusers_harness import backend, render, tiny_shot
from pydantic import ValidationError

from local_backend.config import BackendConfig, ModelEntry, SpeedOptions, load_config
from local_backend.families.base import GenerationCanceled, GenerationParams, ModelError
from local_backend.families.diffusers_common import DiffusersModel
from local_backend.families.ltx import FAMILY as LTX
from local_backend.families.wan import FAMILY as WAN
from local_backend.tiny import tiny_entries
from local_backend.warm import WarmPool

STEPS = 4
CACHE_STEPS = 8  # enough steps for a cache to skip some
PASSES = 2 * CACHE_STEPS  # Wan runs the transformer twice a step (CFG)


def entry(root: Path, name: str = "tiny-wan", **fields: Any) -> ModelEntry:
    base = next(e for e in tiny_entries(root) if e.id == name)
    return ModelEntry.model_validate({**base.model_dump(), **fields})


def model(root: Path, name: str = "tiny-wan", **fields: Any) -> DiffusersModel:
    e = entry(root, name, **fields)
    return DiffusersModel(e, WAN if e.family == "wan" else LTX, WarmPool())


def frames(m: DiffusersModel, **shot: Any) -> np.ndarray:
    """The shot's float frames through the backend's own path; checks every step ran."""
    params = GenerationParams.model_validate(tiny_shot(m.entry.id, **shot))
    task = m.prepare(params)
    steps: list[int] = []
    video = task.denoise(steps.append, "cpu")
    assert steps == list(range(1, task.steps + 1))
    return np.asarray(video)


def same_shape_and_seed(m: DiffusersModel, plain: np.ndarray, **shot: Any) -> np.ndarray:
    """Frames of ``m`` shaped like ``plain``, equal for a repeated seed."""
    video = frames(m, **shot)
    assert video.shape == plain.shape and np.isfinite(video).all()
    np.testing.assert_array_equal(frames(m, **shot), video)
    return video


def close(video: np.ndarray, plain: np.ndarray, mean: float, top: float) -> None:
    diff = np.abs(video.astype(np.float64) - plain)
    assert diff.mean() < mean and diff.max() < top, (diff.mean(), diff.max())


@contextmanager
def passes(module: torch.nn.Module) -> Iterator[list[int]]:
    """How many times ``module`` ran (a plain torch forward hook)."""
    count = [0]
    handle = module.register_forward_hook(lambda *_: count.__setitem__(0, count[0] + 1))
    try:
        yield count
    finally:
        handle.remove()


def test_speed_options_are_off_by_default_and_read_from_the_models_speed_table(
    tmp_path: Path,
) -> None:
    assert ModelEntry(id="m", family="wan", path="p").speed == SpeedOptions()
    toml = """
[[models]]
id = "wan"
family = "wan"
path = "wan"
dtype = "bfloat16"

[models.speed]
compile = true
vae_tiling = true
vae_tile = [256, 192]
step_cache = "taylorseer"
cache_interval = 4
"""
    (tmp_path / "models.toml").write_text(toml)
    got = load_config(tmp_path / "models.toml").models[0]
    assert got.dtype == "bfloat16"
    assert got.speed == SpeedOptions(
        compile=True,
        vae_tiling=True,
        vae_tile=(256, 192),
        step_cache="taylorseer",
        cache_interval=4,
    )
    (tmp_path / "models.toml").write_text(toml + 'step_cach = "none"\n')
    with pytest.raises(ValidationError, match="step_cach"):
        load_config(tmp_path / "models.toml")
    with pytest.raises(ValidationError, match="need 0 < stride ≤ tile"):
        SpeedOptions(vae_tiling=True, vae_tile=(64, 96))
    with pytest.raises(ValidationError, match="vae_tiling is off"):
        SpeedOptions(vae_tile=(64, 48))


def test_bf16_loads_bfloat16_weights_and_stays_close(tiny_root: Path) -> None:
    plain = frames(model(tiny_root), steps=STEPS)
    bf16 = model(tiny_root, dtype="bfloat16")
    video = same_shape_and_seed(bf16, plain, steps=STEPS)
    assert bf16.speed_features == ["bfloat16"]
    assert bf16.base_pipeline("cpu").transformer.blocks[0].ffn.net[2].weight.dtype == torch.bfloat16
    close(video, plain, mean=5e-3, top=0.15)


def test_vae_tiling_tiles_a_large_frame_and_leaves_a_small_one_exact(tiny_root: Path) -> None:
    plain = frames(model(tiny_root), steps=STEPS)
    default = model(tiny_root, speed={"vae_tiling": True})
    np.testing.assert_array_equal(same_shape_and_seed(default, plain, steps=STEPS), plain)
    assert default.base_pipeline("cpu").vae.use_tiling

    big = {"steps": STEPS, "width": 64, "height": 64}
    plain = frames(model(tiny_root), **big)
    tiled = model(tiny_root, speed={"vae_tiling": True, "vae_tile": (32, 16)})
    video = same_shape_and_seed(tiled, plain, **big)
    assert tiled.speed_features == ["vae_tiling:32/16"]
    assert not np.array_equal(video, plain)  # the decode did tile: seams are blended
    close(video, plain, mean=0.02, top=0.3)


def test_group_offload_hooks_every_module_and_changes_no_pixel(tiny_root: Path) -> None:
    plain = frames(model(tiny_root), steps=STEPS)
    offloaded = model(tiny_root, speed={"group_offload": True})
    np.testing.assert_array_equal(same_shape_and_seed(offloaded, plain, steps=STEPS), plain)
    assert offloaded.speed_features == ["group_offload"]
    pipe = offloaded.base_pipeline("cpu")
    for name in ("transformer", "text_encoder", "vae"):
        assert _hooked(getattr(pipe, name), "group_offloading"), name


def _hooked(module: torch.nn.Module, hook: str) -> bool:
    """Whether a diffusers hook named ``hook`` sits on ``module`` or a submodule."""
    registries = (getattr(m, "_diffusers_hook", None) for m in module.modules())
    return any(r is not None and r.get_hook(hook) is not None for r in registries)


def test_layerwise_casting_stores_float8_and_stays_close(tiny_root: Path) -> None:
    plain = frames(model(tiny_root), steps=STEPS)
    cast = model(tiny_root, speed={"layerwise_casting": "float8_e4m3fn"})
    video = same_shape_and_seed(cast, plain, steps=STEPS)
    assert cast.base_pipeline("cpu").transformer.blocks[0].ffn.net[2].weight.dtype == (
        torch.float8_e4m3fn
    )
    close(video, plain, mean=1e-3, top=0.05)


@pytest.mark.parametrize(
    "speed",
    [{"step_cache": "first_block", "cache_threshold": 0.1}, {"step_cache": "taylorseer"}],
    ids=["first_block", "taylorseer"],
)
def test_a_step_cache_skips_transformer_work_and_resets_between_shots(
    tiny_root: Path, speed: dict[str, Any]
) -> None:
    shot = {"steps": CACHE_STEPS}
    plain = frames(model(tiny_root), **shot)
    cached = model(tiny_root, speed=speed)
    last_block = cached.base_pipeline("cpu").transformer.blocks[-1]
    with passes(last_block.attn1.to_q) as count:
        video = frames(cached, **shot)
    assert 0 < count[0] < PASSES, count  # some passes skipped or extrapolated, not all
    close(video, plain, mean=1e-3, top=0.1)

    def cancel_at_3(k: int) -> None:
        if k == 3:
            raise GenerationCanceled()

    params = GenerationParams.model_validate(tiny_shot(**shot))
    with pytest.raises(GenerationCanceled):  # leaves the cache half-filled...
        cached.prepare(params).run(tiny_root / "canceled.mp4", cancel_at_3, "cpu")
    np.testing.assert_array_equal(same_shape_and_seed(cached, plain, **shot), video)  # ...reset

    with pytest.raises(GenerationCanceled):  # again, and the next shot takes a spare
        cached.prepare(params).run(tiny_root / "canceled.mp4", cancel_at_3, "cpu")
    cached.make_spare()  # made while the device idles: reset there
    assert cached.pool.has_spare(cached.entry.id)
    np.testing.assert_array_equal(same_shape_and_seed(cached, plain, **shot), video)
    assert not cached.pool.has_spare(cached.entry.id)


def test_a_first_block_cache_on_a_one_block_transformer_fails_the_load(tiny_root: Path) -> None:
    ltx = model(tiny_root, "tiny-ltx", speed={"step_cache": "first_block"})
    with pytest.raises(ModelError) as caught:
        frames(ltx)
    assert caught.value.code == "model_load_failed"
    assert "speed.step_cache" in caught.value.message and "this one has 1" in caught.value.message


def test_compile_without_a_compiler_fails_the_load_naming_the_field(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no c++ on it
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ModelError) as caught:
        frames(model(tiny_root, speed={"compile": True}))
    assert caught.value.code == "model_load_failed"
    assert "speed.compile" in caught.value.message and "C++ compiler" in caught.value.message


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compile_compiles_the_repeated_blocks_and_matches_eager(tiny_root: Path) -> None:
    """The slowest test here: a cold inductor cache compiles for ~25 s on 2 CPU cores."""
    plain = frames(model(tiny_root), steps=STEPS)
    compiled = model(tiny_root, speed={"compile": True})
    video = same_shape_and_seed(compiled, plain, steps=STEPS)
    assert compiled.speed_features == ["compile"]
    blocks = compiled.base_pipeline("cpu").transformer.blocks
    assert all(block._compiled_call_impl is not None for block in blocks)
    close(video, plain, mean=1e-6, top=1e-5)


async def test_the_app_renders_with_the_cpu_features_together(
    tiny_root: Path, work_dir: Path
) -> None:
    speed = {
        "vae_tiling": True,
        "vae_tile": (32, 16),
        "group_offload": True,
        "layerwise_casting": "float8_e5m2",
        "step_cache": "taylorseer",
    }
    config = BackendConfig(work_dir=work_dir, models=[entry(tiny_root, speed=speed)])
    async with backend(config) as client:
        view, video = await render(client, tiny_shot(steps=6, width=64, height=48))
    assert (view["step"], view["total_steps"]) == (6, 6)
    (work_dir / "out.mp4").write_bytes(video)
    got = probe(work_dir / "out.mp4")
    assert (got.frames, got.width, got.height) == (9, 64, 48)
