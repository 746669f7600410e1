"""The README's main job: `reelgate render` on the example storyboard, in a fresh process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway import media

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "launch-teaser.yaml"

pytestmark = pytest.mark.slow


def reelgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_render_example_storyboard(tmp_path: Path) -> None:
    out = tmp_path / "teaser.mp4"
    done = reelgate("render", str(EXAMPLE), "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
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


def test_quote_and_models_need_no_keys(tmp_path: Path) -> None:
    quote = reelgate("quote", str(EXAMPLE), cwd=tmp_path)
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
