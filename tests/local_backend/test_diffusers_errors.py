"""Bad requests and broken model folders: clear answers, and the service stays up."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from diffusers_harness import backend, finish, png_uri, render, submit, tiny_config, tiny_shot

from local_backend.config import BackendConfig, ModelEntry, load_config

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            tiny_shot(num_frames=10),
            "num_frames 10 not supported by tiny-wan; allowed 4k+1 in 1..33 (nearest: 9)",
        ),
        (
            tiny_shot("tiny-ltx", num_frames=13),
            "num_frames 13 not supported by tiny-ltx; allowed 8k+1",
        ),
        (tiny_shot(width=40), "width 40 not supported by tiny-wan; it must be a multiple of 16"),
        (tiny_shot("tiny-ltx", height=48), "height 48 not supported by tiny-ltx; it must be a mul"),
        (tiny_shot(width=512), "size 512x32 not supported by tiny-wan; the long side must be"),
        (
            {**tiny_shot(duration_s=4, fps=16), "num_frames": None},
            "duration_s 4 at 16 fps is 64 frames; tiny-wan renders 1..33 frames (2.06 s at 16 fps)",
        ),
        (
            tiny_shot("tiny-wan-i2v", image=None),
            "tiny-wan-i2v animates an image: image is required",
        ),
        (
            tiny_shot("tiny-ltx-i2v", image="data:text/plain;base64,aGVsbG8="),
            "image is not a readable image",
        ),
        (tiny_shot(image=png_uri()), "tiny-wan does not take an input image"),
        (tiny_shot(steps=0), "steps: Input should be greater than or equal to 1"),
    ],
    ids=[
        "wan-frames",
        "ltx-frames",
        "wan-width",
        "ltx-height",
        "too-large",
        "too-long",
        "i2v-no-image",
        "not-an-image",
        "t2v-with-image",
        "zero-steps",
    ],
)
async def test_requests_a_family_cannot_do_are_refused_naming_the_field(
    tiny_root: Path, work_dir: Path, body: dict[str, Any], detail: str
) -> None:
    async with backend(tiny_config(tiny_root, work_dir)) as client:
        response = await client.post("/v1/generations", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert detail in response.json()["detail"]
        assert (await client.get("/healthz")).json()["pipelines"]["loads"] == {}


async def test_an_unknown_model_is_a_404_naming_what_is_served(
    tiny_root: Path, work_dir: Path
) -> None:
    async with backend(tiny_config(tiny_root, work_dir)) as client:
        response = await client.post("/v1/generations", json=tiny_shot("wan-14b"))
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_model"
    assert "serving: preview, tiny-wan, tiny-wan-i2v, tiny-ltx, tiny-ltx-i2v" in response.text


def _broken(tiny_root: Path, tmp: Path) -> list[ModelEntry]:
    bad_index = tmp / "bad-index"
    shutil.copytree(tiny_root / "tiny-wan", bad_index)
    (bad_index / "model_index.json").write_text("{not json")
    bad_weights = tmp / "bad-weights"
    shutil.copytree(tiny_root / "tiny-ltx", bad_weights)
    (bad_weights / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0" * 64)
    paths = {
        "missing": str(tmp / "nowhere"),
        "hub": "Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        "bad-index": str(bad_index),
        "bad-weights": str(bad_weights),
    }
    family = {"bad-weights": "ltx"}
    return [
        ModelEntry(id=k, family=family.get(k, "wan"), path=v)  # type: ignore[arg-type]
        for k, v in paths.items()
    ]


@pytest.mark.parametrize(
    ("model", "code", "message"),
    [
        ("missing", "model_unavailable", "model missing: no diffusers folder at "),
        ("hub", "model_unavailable", "'Wan-AI/Wan2.1-T2V-1.3B-Diffusers' looks like a hub id"),
        ("bad-index", "model_load_failed", "model bad-index: could not load a WanPipeline from"),
        ("bad-weights", "model_load_failed", "model bad-weights: could not load a LTXPipeline"),
    ],
    ids=["missing", "hub-id", "bad-index", "bad-weights"],
)
async def test_a_missing_or_corrupt_model_fails_its_job_and_the_service_stays_up(
    tiny_root: Path, tmp_path: Path, model: str, code: str, message: str
) -> None:
    config = tiny_config(tiny_root, tmp_path / "work")
    config = config.model_copy(update={"models": config.models + _broken(tiny_root, tmp_path)})
    async with backend(config) as client:
        failed = await finish(client, await submit(client, tiny_shot(model)))
        assert failed["status"] == "failed" and failed["error"]["code"] == code
        assert message in failed["error"]["message"]
        await render(client, tiny_shot())  # the next job, on a good model, runs
        health = (await client.get("/healthz")).json()
    assert health["status"] == "ok" and health["pipelines"]["warm"] == ["tiny-wan"]


def test_a_preview_only_backend_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from local_backend.app import create_app\n"
        "create_app().state.close()\n"
        "heavy = {'torch', 'diffusers', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_models_file_resolves_paths_next_to_it(tmp_path: Path) -> None:
    (tmp_path / "tiny-wan").mkdir()
    models = tmp_path / "models.toml"
    models.write_text(
        "memory_budget_gb = 2.5\n"
        '[[models]]\nid = "tiny-wan"\nfamily = "wan"\npath = "tiny-wan"\nsteps = 4\n'
        '[[models]]\nid = "wan-1.3b"\nfamily = "wan"\npath = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"\n'
        "sizes = [[832, 480], [480, 832]]\nfps = [16, 16]\n"
    )
    config = load_config(models, device="cuda:1")
    assert config.device == "cuda:1" and config.memory_budget_gb == 2.5
    local, hub = config.models
    assert local.path == str(tmp_path / "tiny-wan") and local.steps == 4
    assert hub.path == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" and hub.sizes == [(832, 480), (480, 832)]


@pytest.mark.parametrize(
    ("models", "error"),
    [
        ([{"id": "a", "family": "wan", "path": "x"}] * 2, "model ids must be unique"),
        ([{"id": "preview", "family": "ltx", "path": "x"}], "not 'preview'"),
        ([{"id": "a", "family": "sora", "path": "x"}], "family"),
        ([{"id": "a", "family": "wan", "path": "x", "min_frames": 9, "max_frames": 5}], "min_fr"),
    ],
)
def test_a_bad_models_config_is_refused_at_start(models: list[dict[str, Any]], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        BackendConfig.model_validate({"models": models})
