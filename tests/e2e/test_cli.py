"""The README's main job: `reelgate render` on the example storyboard, in a fresh process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway import media

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "launch-teaser.yaml"

pytestmark = pytest.mark.slow


def reelgate(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `make demo` runs first: the CLI builds the tiny pipelines and their config."""
    root = tmp_path_factory.mktemp("cli") / "tiny-models"
    done = reelgate("local-backend", "make-tiny", str(root), cwd=root.parent)
    assert done.returncode == 0, done.stderr
    assert "models.toml" in done.stderr
    return root / "models.toml"


def test_render_example_storyboard(tmp_path: Path, tiny_models: Path) -> None:
    """The README's main job, as `make demo` runs it."""
    out = tmp_path / "teaser.mp4"
    env = {"REELGATE_LOCAL_MODELS": str(tiny_models)}
    done = reelgate("render", str(EXAMPLE), "-o", str(out), cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "local/tiny-wan" in done.stdout  # the real diffusers path ran for one shot
    story = yaml.safe_load(EXAMPLE.read_text())
    fps = story["defaults"]["fps"]
    expected = sum(shot["duration_s"] for shot in story["shots"])
    info = asyncio.run(media.probe(out))
    assert info.duration_s == pytest.approx(expected, abs=len(story["shots"]) / fps)
    assert info.frames == pytest.approx(expected * fps, abs=len(story["shots"]))
    assert info.codec == "h264"
    for shot in story["shots"]:  # the summary names every shot and the final cut
        assert shot["name"][:10] in done.stdout
    assert "final cut" in done.stdout
    assert (tmp_path / "reelgate-data" / "api-key").stat().st_mode & 0o777 == 0o600


def test_without_the_tiny_models_the_pinned_shot_says_what_to_do(tmp_path: Path) -> None:
    done = reelgate("quote", str(EXAMPLE), cwd=tmp_path, env={"REELGATE_LOCAL_MODELS": ""})
    assert done.returncode == 1
    assert "shots[5]" in done.stderr and "make-tiny" in done.stderr


def test_a_bad_models_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text('[[models]]\nid = "x"\nfamily = "sdxl"\npath = "x"\n')
    done = reelgate("models", cwd=tmp_path, env={"REELGATE_LOCAL_MODELS": str(bad)})
    assert done.returncode == 2
    assert "REELGATE_LOCAL_MODELS" in done.stderr and "family" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_setting_that_does_not_parse_is_a_clear_error(tmp_path: Path) -> None:
    env = {"REELGATE_SEEDANCE_TOKEN_PRICES_USD": '{"seedance-1-0-pro-250528": "-1"}'}
    done = reelgate("models", cwd=tmp_path, env=env)
    assert done.returncode == 2
    assert "REELGATE_SEEDANCE_TOKEN_PRICES_USD (seedance-1-0-pro-250528)" in done.stderr
    assert "greater than or equal to 0" in done.stderr
    assert "Traceback" not in done.stderr


def test_quote_and_models_need_no_keys(tmp_path: Path, tiny_models: Path) -> None:
    env = {"REELGATE_LOCAL_MODELS": str(tiny_models)}
    quote = reelgate("quote", str(EXAMPLE), cwd=tmp_path, env=env)
    assert quote.returncode == 0, quote.stderr
    assert "local/preview" in quote.stdout and "not configured" in quote.stdout
    models = reelgate("models", cwd=tmp_path)
    assert models.returncode == 0 and "runway/gen4.5" in models.stdout


def test_bad_storyboard_names_the_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("shots:\n  - prompt: a kite\n    duration_s: -1\n")
    done = reelgate("render", str(bad), "-o", str(tmp_path / "x.mp4"), cwd=tmp_path)
    assert done.returncode == 2
    assert "bad.yaml:3: shots[0].duration_s" in done.stderr
    assert "Traceback" not in done.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("shots: [\n")
    done = reelgate("quote", str(broken), cwd=tmp_path)
    assert done.returncode == 2 and "broken.yaml:2" in done.stderr and "invalid YAML" in done.stderr
    missing = reelgate("render", str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "no such file" in missing.stderr
