"""The local diffusers backend: the gateway against bare diffusers, cold against warm, and
each speed feature.

Everything runs on the tiny random-weight Wan (``local_backend.tiny``), built offline in
a temp folder, at 64x64, 17 frames, 8 steps, CFG on.

0. Gateway vs bare diffusers: one shot through the whole embedded gateway (SDK in a
   client process → API → planning → engine → local backend, called in-process as the
   embedded gateway calls it: warm pool, per-shot pipeline, progress callback, H.264
   encode → fetch → store → provenance), from the client's POST to the job recorded
   done, against a bare ``WanPipeline(...)`` call in the same process on the same
   weights. The backend renders under ``torch.inference_mode`` (diffusers' own call
   uses ``no_grad``), so the bare call is timed both ways: the target's ratio is
   against the plain call, and the ratio against the inference-mode call leaves the
   gateway's own share alone. Beside them it prints the gateway's own time before the
   backend starts the shot and after it ends (the backend's clock, medians), and the
   backend's time over the bare call's. They run in ``--pairs`` sets of three, in
   random order, each timed run right after an untimed bare call (the device busy,
   as under load); each ratio is the median of the sets' ratios. Why so: this machine's speed
   flips between two levels (≈135 and ≈215 ms a bare call) every few seconds, so
   medians taken apart can catch different levels (two identical bare runs gave
   medians 1.34x apart); and a call after 0.3 s idle ran 3-6% slower than one right
   after another, so the order and the gaps must be the same for both.
1. Warm vs cold: the first shot on a fresh warm pool (``from_pretrained`` + render +
   MP4) against a warm shot taken right after it, ``--repeats`` pairs. "Cold process" is
   the first shot this process renders (torch's kernels are cold too), once, against
   the warm shot after it; "cold pool" is a fresh pool in a warm process.
2. Speed features: each feature that runs on CPU, on its own model, timed round-robin
   against the plain model in the same run (so both see the same machine), median of
   ``--repeats`` warm shots each (pipeline call: text encoder, denoise, VAE decode; no
   MP4). The speed-up is plain / feature; |Δ| is the pixel difference from the plain
   frames (0..1 scale).

    python benchmarks/local_backend.py [--pairs 81] [--repeats 7] [--steps 8]
        [--features bf16,compile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

# Run as a script, this file's folder leads sys.path and its name would shadow the
# local_backend package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np
import torch
import uvicorn

from gateway.app import create_app, embedded_local_adapter
from gateway.settings import Settings
from local_backend.config import ModelEntry
from local_backend.families.base import GenerationParams
from local_backend.families.diffusers_common import DiffusersModel
from local_backend.families.wan import FAMILY as WAN
from local_backend.tiny import build_all, write_models_config
from local_backend.warm import WarmPool

SHOT: dict[str, Any] = {
    "model": "tiny-wan",
    "prompt": "a red light house on a cliff at night",
    "fps": 16,
    "duration_s": 1,
    "num_frames": 17,
    "width": 64,
    "height": 64,
    "seed": 7,
}

#: Feature → the model-entry fields that turn it on (bf16 is the entry's dtype).
FEATURES: dict[str, dict[str, Any]] = {
    "bf16": {"dtype": "bfloat16"},
    "fp8_storage": {"speed": {"layerwise_casting": "float8_e4m3fn"}},
    "vae_tiling": {"speed": {"vae_tiling": True, "vae_tile": (32, 16)}},  # tiles a 64px frame
    "group_offload": {"speed": {"group_offload": True}},
    "compile": {"speed": {"compile": True}},
    "first_block_cache": {"speed": {"step_cache": "first_block"}},
    "taylorseer_cache": {"speed": {"step_cache": "taylorseer"}},
}


def tiny_wan(root: Path) -> ModelEntry:
    """Build the tiny pipelines under ``root``; the tiny Wan's model entry."""
    return next(e for e in build_all(root) if e.id == "tiny-wan")


def diffusers_model(entry: ModelEntry, **fields: Any) -> DiffusersModel:
    """A fresh model (its own warm pool) for ``entry`` with ``fields`` changed."""
    return DiffusersModel(
        ModelEntry.model_validate({**entry.model_dump(), **fields}), WAN, WarmPool()
    )


def params(steps: int, **overrides: Any) -> GenerationParams:
    return GenerationParams.model_validate({**SHOT, "steps": steps, **overrides})


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def render(model: DiffusersModel, steps: int, out: Path) -> None:
    """One shot through the whole backend path, MP4 included."""
    model.prepare(params(steps)).run(out, lambda _: None, "cpu")


def frames(model: DiffusersModel, steps: int) -> np.ndarray:
    """One shot's float frames (pipeline call only: no MP4)."""
    return np.asarray(model.prepare(params(steps)).denoise(lambda _: None, "cpu"))


GATEWAY_SHOT: dict[str, Any] = {
    "kind": "stylized",
    "model": "local/tiny-wan",
    "prompt": SHOT["prompt"],
    "duration_s": 1,  # 16 frames at 16 fps: the backend renders Wan's 4k+1, 17
    "fps": 16,
    "resolution": "64p",
    "aspect_ratio": "1:1",
}


def bare_pipeline(entry: ModelEntry) -> Any:
    from diffusers import WanPipeline

    pipe = WanPipeline.from_pretrained(entry.path)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def bare_call(pipe: Any, steps: int, seed: int, prompt: str) -> None:
    """What a user of diffusers alone writes: one pipeline call, frames as numpy."""
    pipe(
        prompt=prompt,
        width=64,
        height=64,
        num_frames=17,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
    )


def bare_inference_call(pipe: Any, steps: int, seed: int, prompt: str) -> None:
    """The bare call under ``torch.inference_mode``, as the backend runs its renders: the
    baseline that leaves the gateway's own time alone in the ratio."""
    with torch.inference_mode():
        bare_call(pipe, steps, seed, prompt)


async def gateway_vs_bare(entry: ModelEntry, steps: int, pairs: int, work: Path) -> None:
    """The bare call runs on the backend's device thread too (``Runner.run_on_device``):
    torch work on two threads slows both, and the gateway only ever uses one."""
    from local_backend.app import create_app as create_backend
    from local_backend.config import load_config

    config = write_models_config(
        Path(entry.path).parent, [entry.model_copy(update={"steps": steps})]
    )
    backend = create_backend(load_config(config))
    runner = backend.state.runner
    local = embedded_local_adapter(backend)  # as the embedded gateway builds it
    await local.refresh()
    # The client polls as a remote one would (the server's 0.5 s hint), over a loopback
    # socket to the gateway served by uvicorn in this process, as ``reelgate serve`` runs
    # it, from its own process (benchmarks/_sdk_client.py): a client sharing this
    # interpreter would parse its answers on the gateway's GIL, mid-render.
    settings = Settings(data_dir=work / "gateway", poll_interval_s=0.5)
    app = create_app(settings, adapters={"local": local}, announce_key=False)
    pipe = await asyncio.to_thread(runner.run_on_device, partial(bare_pipeline, entry))
    gateway_s: list[float] = []
    backend_s: list[float] = []
    before_s: list[float] = []  # the client's POST → the backend starts the shot
    after_s: list[float] = []  # the backend done → the job recorded done
    bare_s: list[float] = []
    strict_s: list[float] = []  # the bare call in inference mode
    order = random.Random(pairs)  # which of a set goes first: reproducible, unbiased
    prompt_sent: str | None = None
    async with serving(app) as url, sdk_client(url, app.state.runtime.bootstrap_key) as shoot:
        for i in range(pairs + 2):  # two warm-ups: pipeline load, first kernels
            parts = ["gateway", "bare", "strict"]
            if prompt_sent is not None:  # the first run learns the prompt the gateway sends
                order.shuffle(parts)
            took: dict[str, float] = {}
            for part in parts:
                if prompt_sent is not None:  # each timed run right after an untimed call
                    warm_up = partial(bare_call, pipe, steps, i, prompt_sent)
                    await asyncio.to_thread(runner.run_on_device, warm_up)
                if part == "gateway":
                    t0, job = await shoot({"shots": [{**GATEWAY_SHOT, "seed": i}]})
                    shot = job["shots"][0]
                    assert job["status"] == "succeeded", shot["error_message"]
                    took[part] = datetime.fromisoformat(job["updated_at"]).timestamp() - t0
                    prompt_sent = prompt_sent or shot["plan"]["prompt_sent"]
                    assert shot["plan"]["prompt_sent"] == prompt_sent
                    gen = await local.generation(shot["attempts"][-1]["backend_job_id"])
                else:
                    assert prompt_sent is not None
                    fn = bare_call if part == "bare" else bare_inference_call
                    call = partial(timed, partial(fn, pipe, steps, i, prompt_sent))
                    took[part], _ = await asyncio.to_thread(runner.run_on_device, call)
            if i >= 2:
                gateway_s.append(took["gateway"])
                bare_s.append(took["bare"])
                strict_s.append(took["strict"])
                backend_s.append(_seconds(gen["started_at"], gen["finished_at"]))
                before_s.append(datetime.fromisoformat(gen["started_at"]).timestamp() - t0)
                after_s.append(_seconds(gen["finished_at"], job["updated_at"]))
    backend.state.close()
    g, b, st, r = (statistics.median(x) * 1000 for x in (gateway_s, bare_s, strict_s, backend_s))

    def paired(xs: list[float], ys: list[float]) -> float:
        return statistics.median(x / y for x, y in zip(xs, ys, strict=True))

    print(f"gateway vs bare diffusers: tiny Wan 64x64, 17 frames, {steps} steps, CFG on")
    print(f"  bare WanPipeline call   {b:8.1f} ms   (median of {pairs}, same process and thread)")
    print(f"    in inference_mode     {st:8.1f} ms   (as the backend calls it)")
    print(f"  through the gateway     {g:8.1f} ms   (POST → job recorded done, incl. MP4)")
    print(f"    of which the backend  {r:8.1f} ms   (pipeline call + H.264 encode)")
    before, after = (statistics.median(x) * 1000 for x in (before_s, after_s))
    print(f"    before it starts      {before:8.1f} ms   (POST, job recorded, submitted)")
    print(f"    after it ends         {after:8.1f} ms   (fetch, store, provenance, recorded)")
    ratio = paired(gateway_s, bare_s)
    print(f"  ratio gateway / bare    {ratio:8.2f}x   target <= 1.10 (median of {pairs} sets)")
    print(f"  ratio of the medians    {g / b:8.2f}x   (for comparison: drifts with the machine)")
    strict = paired(gateway_s, strict_s)
    print(f"  ratio gateway / bare in inference_mode {strict:5.2f}x   (the gateway's own share)")
    share = paired(backend_s, bare_s)
    print(f"  ratio backend / bare    {share:8.2f}x   (the render's share, median of sets)\n")


@contextlib.asynccontextmanager
async def sdk_client(
    url: str, api_key: str
) -> AsyncIterator[Callable[[dict[str, Any]], Awaitable[tuple[float, dict[str, Any]]]]]:
    """A client process (benchmarks/_sdk_client.py); yields ``shoot(body)``: create the job,
    wait for it, and return when the create started and the finished job."""
    script = Path(__file__).with_name("_sdk_client.py")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), url, api_key, stdin=PIPE, stdout=PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def shoot(body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        stdin.write(json.dumps(body).encode() + b"\n")
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise RuntimeError(f"the client process exited ({await proc.wait()})")
        answer = json.loads(line)
        return answer["t0"], answer["job"]

    try:
        yield shoot
    finally:
        stdin.close()
        await proc.wait()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan included) on a free loopback port of this event loop."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it did not start
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def warm_vs_cold(entry: ModelEntry, steps: int, repeats: int, work: Path) -> None:
    """Each cold shot is compared with a warm one taken right after it (paired: this
    machine's speed shifts within seconds, see section 0)."""
    out = work / "shot.mp4"
    cold_process, _ = timed(lambda: render(diffusers_model(entry), steps, out))
    warm_model = diffusers_model(entry)
    first_warm = [timed(lambda: render(warm_model, steps, out))[0] for _ in range(2)][-1]
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(repeats):  # a fresh pool each time: from_pretrained, then the shot
        cold.append(timed(lambda: render(diffusers_model(entry), steps, out))[0])
        warm.append(timed(lambda: render(warm_model, steps, out))[0])
    pool_ratio = statistics.median(c / w for c, w in zip(cold, warm, strict=True))
    cold_ms, warm_ms = (statistics.median(x) * 1000 for x in (cold, warm))
    print(f"warm vs cold: tiny Wan 64x64, 17 frames, {steps} steps, whole shot (MP4 included)")
    print(f"  cold process  {cold_process * 1000:8.1f} ms   (first shot this process renders)")
    print(f"  cold pool     {cold_ms:8.1f} ms   (from_pretrained + shot, torch warm)")
    print(f"  warm          {warm_ms:8.1f} ms   (each after a cold pool; medians of {repeats})")
    print(
        f"  cold pool / warm {pool_ratio:.2f}x (median of the pairs), cold process / the "
        f"warm shot after it {cold_process / first_warm:.2f}x"
    )


def speed_features(entry: ModelEntry, steps: int, repeats: int, names: Sequence[str]) -> None:
    variants = {"plain": diffusers_model(entry)} | {
        name: diffusers_model(entry, **FEATURES[name]) for name in names
    }
    first: dict[str, float] = {}
    reference: dict[str, np.ndarray] = {}
    for name, model in variants.items():  # loads, compiles, first-call kernels
        first[name], reference[name] = timed(partial(frames, model, steps))
        frames(model, steps)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # round-robin: a busy moment hits every variant alike
        for name, model in variants.items():
            times[name].append(timed(partial(frames, model, steps))[0])
    plain = statistics.median(times["plain"])
    print(
        f"\nspeed features: tiny Wan 64x64, 17 frames, {steps} steps, CPU, "
        f"{torch.get_num_threads()} threads; median of {repeats} warm pipeline calls"
    )
    header = ("feature", "first", "median", "speed-up", "max|Δ|", "mean|Δ|")
    print("  {:<18} {:>8} {:>8} {:>8} {:>7} {:>8}  on".format(*header))
    for name, model in variants.items():
        median = statistics.median(times[name])
        diff = np.abs(reference[name] - reference["plain"])
        print(
            f"  {name:<18} {first[name] * 1000:6.0f}ms {median * 1000:6.1f}ms "
            f"{plain / median:7.2f}x {diff.max():7.4f} {diff.mean():8.5f}  "
            f"{', '.join(model.speed_features) or '-'}"
        )
    print(
        "  first: the first call after the load (a compile included; inductor caches it on\n"
        "  disk, so a cold cache takes longer). |Δ|: pixel difference from plain on a 0..1\n"
        "  scale; random weights amplify it. These features target GPUs and big models: on\n"
        "  tiny random models on CPU a speed-up below 1 is expected for some (tiles add\n"
        "  decode work; offload hooks cost per block with nothing to move)."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="warm shots timed per variant")
    parser.add_argument("--pairs", type=int, default=81, help="sets of three timed in section 0")
    parser.add_argument("--steps", type=int, default=8, help="denoising steps per shot")
    parser.add_argument(
        "--features",
        default=",".join(FEATURES),
        help=f"comma-separated, from: {', '.join(FEATURES)}",
    )
    parser.add_argument("--skip-gateway", action="store_true", help="only sections 1 and 2")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.features.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FEATURES))
    if unknown:
        parser.error(f"unknown features {unknown}; choose from {list(FEATURES)}")
    with tempfile.TemporaryDirectory(prefix="rg-bench-local-") as tmp:
        work = Path(tmp)
        entry = tiny_wan(work / "models")
        if not args.skip_gateway:
            asyncio.run(gateway_vs_bare(entry, args.steps, args.pairs, work))
        warm_vs_cold(entry, args.steps, args.repeats, work)
        speed_features(entry, args.steps, args.repeats, names)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
