"""The speed and memory features a model's ``speed`` table turns on (diffusers 0.42 names).

=====================  =======================================================
``compile``            ``transformer.compile_repeated_blocks()`` (regional)
``vae_tiling``         ``vae.enable_tiling(...)``
``group_offload``      ``pipe.enable_group_offload(...)``, one block a group
``layerwise_casting``  ``transformer.enable_layerwise_casting(float8, dtype)``
``step_cache``         ``transformer.enable_cache(FirstBlockCacheConfig(...))``
                       or ``TaylorSeerCacheConfig(...)``
=====================  =======================================================

bf16 is not here: it is the model's ``dtype``, given to ``from_pretrained``. What is
done to ``transformer`` is done to Wan 2.2's second expert, ``transformer_2``, too.

A feature this machine cannot run (compile with no compiler, a first-block cache
on a one-block transformer) fails the load as ``model_load_failed`` naming the
field to turn off: an operator who turned a feature on sized hardware and
latency on it, so a silent skip would mislead more than an error. All of them
run on CPU, where most cost more than they save (they target GPUs and big
models); ``benchmarks/local_diffusers.py`` measures each.

Everything is applied once, to the base pipeline's modules (hooks, compiled
blocks, tiling flags), which the pipeline copy each shot runs on shares.
The step caches keep per-shot state on those shared modules: :func:`reset`
clears it before every shot (a cancelled shot leaves it half-filled), and shots
of one model must run one at a time, as the runner's single device thread does.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
from typing import Any

import torch

from local_backend.config import ModelEntry, SpeedOptions
from local_backend.families.base import ModelError

__all__ = ["apply_speed", "reset"]

log = logging.getLogger(__name__)

#: TaylorSeer's default patterns (``^blocks.*attn``, matched whole) hook no module of
#: Wan or LTX, whose attentions are ``attn1``/``attn2``: name them and the FFNs.
TAYLORSEER_MODULES = [r"(transformer_)?blocks\.\d+\.(attn\d|ffn?)"]


def apply_speed(pipe: Any, entry: ModelEntry, device: str) -> list[str]:
    """Turn on ``entry.speed`` for a freshly loaded ``pipe``; returns what is on.

    ``pipe`` is on ``device`` already, unless ``group_offload`` is on: then its
    weights stay in CPU memory and each block is brought to ``device`` for its forward.
    """
    speed = entry.speed
    _precheck(pipe, entry, device)
    applied: list[str] = []
    if entry.dtype != "float32":
        applied.append(entry.dtype)
    steps = [
        ("layerwise_casting", speed.layerwise_casting != "none", _layerwise_casting),
        ("vae_tiling", speed.vae_tiling, _vae_tiling),
        ("step_cache", speed.step_cache != "none", _step_cache),
        ("group_offload", speed.group_offload, _group_offload),
        ("compile", speed.compile, _compile),  # last: it traces the hooks set above
    ]
    for name, wanted, turn_on in steps:
        if not wanted:
            continue
        try:
            label = turn_on(pipe, entry, torch.device(device))
        except Exception as exc:
            raise _failed(entry, name, f"{type(exc).__name__}: {exc}") from exc
        applied.append(label)
    if applied:
        log.info("model %s: speed features %s", entry.id, ", ".join(applied))
    return applied


def reset(pipe: Any) -> None:
    """Clear the step caches' per-shot state (no-op without one) before a shot.

    Diffusers does this at the end of a call, which a cancelled shot never reaches.
    """
    # Public, and only resets hooks here: it also re-arms enable_model_cpu_offload's
    # hooks, which this backend never installs.
    pipe.maybe_free_model_hooks()


def _precheck(pipe: Any, entry: ModelEntry, device: str) -> None:
    speed = entry.speed
    if speed.compile and (problem := _compiler_problem(torch.device(device))):
        raise _failed(entry, "compile", problem)
    if speed.step_cache == "first_block" and (n := _fewest_blocks(pipe)) < 2:
        raise _failed(
            entry,
            "step_cache",
            f"'first_block' needs a transformer with at least 2 blocks; this one has {n} "
            "(use 'taylorseer')",
        )
    if speed.group_offload and torch.device(device).type == "cpu":
        log.info("model %s: group_offload on cpu saves no memory (weights stay in RAM)", entry.id)


def _compiler_problem(device: torch.device) -> str | None:
    """What torch.compile's default backend (inductor) lacks here, if anything."""
    if device.type == "cpu":
        names = [os.environ.get("CXX"), "c++", "g++", "clang++"]
        if not any(shutil.which(n) for n in names if n):
            return "torch.compile on CPU needs a C++ compiler: none on PATH (install g++, set CXX)"
    elif device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "torch.compile on CUDA needs triton (pip install triton)"
    return None


def _layerwise_casting(pipe: Any, entry: ModelEntry, device: torch.device) -> str:
    storage = getattr(torch, entry.speed.layerwise_casting)
    for transformer in _transformers(pipe):
        transformer.enable_layerwise_casting(
            storage_dtype=storage, compute_dtype=getattr(torch, entry.dtype)
        )
    return f"layerwise_casting:{entry.speed.layerwise_casting}"


def _vae_tiling(pipe: Any, entry: ModelEntry, device: torch.device) -> str:
    if entry.speed.vae_tile is None:
        pipe.vae.enable_tiling()
        return "vae_tiling"
    tile, stride = entry.speed.vae_tile
    pipe.vae.enable_tiling(
        tile_sample_min_height=tile,
        tile_sample_min_width=tile,
        tile_sample_stride_height=stride,
        tile_sample_stride_width=stride,
    )
    return f"vae_tiling:{tile}/{stride}"


def _step_cache(pipe: Any, entry: ModelEntry, device: torch.device) -> str:
    hooks = importlib.import_module("diffusers.hooks")
    speed: SpeedOptions = entry.speed
    if speed.step_cache == "first_block":
        config = hooks.FirstBlockCacheConfig(threshold=speed.cache_threshold)
    else:
        config = hooks.TaylorSeerCacheConfig(
            cache_interval=speed.cache_interval,
            disable_cache_before_step=speed.cache_warmup_steps,
            taylor_factors_dtype=getattr(torch, entry.dtype),
            cache_identifiers=TAYLORSEER_MODULES,
        )
    for transformer in _transformers(pipe):
        transformer.enable_cache(config)
    return f"step_cache:{speed.step_cache}"


def _group_offload(pipe: Any, entry: ModelEntry, device: torch.device) -> str:
    pipe.enable_group_offload(
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
        use_stream=device.type == "cuda",  # overlap the next block's copy with compute
    )
    return "group_offload"


def _compile(pipe: Any, entry: ModelEntry, device: torch.device) -> str:
    for transformer in _transformers(pipe):
        transformer.compile_repeated_blocks()
    return "compile"


def _transformers(pipe: Any) -> list[Any]:
    """The denoisers: Wan 2.2's two experts (``transformer_2`` for low noise), or one."""
    second = getattr(pipe, "transformer_2", None)
    return [pipe.transformer] if second is None else [pipe.transformer, second]


def _fewest_blocks(pipe: Any) -> int:
    """The fewest transformer blocks any denoiser of ``pipe`` has (Wan: ``blocks``)."""
    names = ("blocks", "transformer_blocks")
    return min(sum(len(getattr(t, name, ())) for name in names) for t in _transformers(pipe))


def _failed(entry: ModelEntry, field: str, why: str) -> ModelError:
    return ModelError(
        "model_load_failed",
        f"model {entry.id}: speed.{field} could not be turned on: {why} "
        f"(set speed.{field} off in the models config)",
    )
