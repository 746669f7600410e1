from __future__ import annotations

import asyncio
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest

from gateway.media import (
    MediaError,
    _parse_probe,
    _run,
    assemble,
    ffmpeg_exe,
    fps_fraction,
    probe,
)


def make_clip(
    path: Path, size: str, rate: str, *, audio: bool = False, x264: str = "bframes=3"
) -> Path:
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration=1"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-shortest"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-x264-params", x264, str(path)]
    subprocess.run(args, check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    paths = {
        "a": make_clip(root / "a.mp4", "64x64", "24"),
        "b": make_clip(root / "b.mp4", "64x64", "24"),
        "wide": make_clip(root / "wide.mp4", "96x48", "30000/1001"),
        "sound": make_clip(root / "sound.mp4", "64x64", "24", audio=True),
        "other_encoder": make_clip(root / "other.mp4", "64x64", "24", x264="bframes=0:ref=1"),
    }
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(paths["a"].read_bytes()[:2000])  # truncated: no moov atom
    paths["corrupt"] = corrupt
    return paths


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


async def test_probe(clips: dict[str, Path]) -> None:
    info = await probe(clips["a"])
    assert (info.width, info.height, info.frames, info.fps) == (64, 64, 24, 24.0)
    assert (info.codec, info.pix_fmt, info.has_audio) == ("h264", "yuv420p", False)
    assert info.duration_s == pytest.approx(1.0, abs=0.05)


async def test_probe_ntsc_rate_and_audio(clips: dict[str, Path]) -> None:
    wide = await probe(clips["wide"])
    assert (wide.width, wide.height, wide.fps, wide.frames) == (96, 48, 29.97, 30)
    sound = await probe(clips["sound"])
    assert sound.has_audio and sound.audio_codec == "aac" and sound.audio_sample_rate == 44100


async def test_probe_corrupt_file(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="Invalid data"):
        await probe(clips["corrupt"])


async def test_probe_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no such file"):
        await probe(tmp_path / "nope.mp4")


async def test_assemble_matching_clips_by_stream_copy(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "final.mp4"
    result = await assemble([clips["a"], clips["b"], clips["a"]], out)

    assert result.mode == "copy" and result.reason is None
    assert result.info.frames == 72
    assert result.info.duration_s == pytest.approx(3.0, abs=0.1)
    assert result.info == await probe(out)
    assert leftovers(tmp_path) == []


async def test_assemble_with_audio_keeps_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    result = await assemble([clips["sound"], clips["sound"]], tmp_path / "final.mp4")
    assert result.mode == "copy"
    assert result.info.has_audio and result.info.frames == 48


async def test_assemble_different_sizes_reencodes(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "final.mp4"
    result = await assemble([clips["a"], clips["wide"]], out)

    assert result.mode == "reencode"
    assert result.reason is not None and "width" in result.reason
    info = await probe(out)
    assert (info.width, info.height, info.fps) == (64, 64, 24.0)  # the first clip's
    assert (info.codec, info.pix_fmt) == ("h264", "yuv420p")
    assert info.frames == 48  # 1 s at 24 fps + 1 s of 29.97 fps resampled to 24 fps
    assert leftovers(tmp_path) == []


async def test_assemble_other_encoder_settings_reencodes(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    """Same size, rate and codec, but other SPS/PPS: stream copy would break timestamps."""
    result = await assemble([clips["a"], clips["other_encoder"]], tmp_path / "final.mp4")
    assert result.mode == "reencode"
    assert result.reason is not None and "codec_config" in result.reason
    assert result.info.frames == 48
    assert result.info.duration_s == pytest.approx(2.0, abs=0.05)


async def test_assemble_audio_with_other_sizes_keeps_audio(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    wide_sound = make_clip(tmp_path / "wide_sound.mp4", "96x48", "24", audio=True)
    result = await assemble([clips["sound"], wide_sound], tmp_path / "final.mp4")
    assert result.mode == "reencode"
    assert result.info.has_audio and result.info.frames == 48
    assert result.info.duration_s == pytest.approx(2.0, abs=0.1)


async def test_cancel_kills_ffmpeg() -> None:
    endless = [ffmpeg_exe(), "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=64x64", "-f", "null"]
    task = asyncio.create_task(_run([*endless, "-"], what="endless"))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5


async def test_assemble_mixed_audio_reencodes_without_audio(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    result = await assemble([clips["sound"], clips["a"]], tmp_path / "final.mp4")
    assert result.mode == "reencode"
    assert not result.info.has_audio and result.info.frames == 48


async def test_assemble_corrupt_input_leaves_no_output(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "final.mp4"
    with pytest.raises(MediaError):
        await assemble([clips["a"], clips["corrupt"]], out)
    assert not out.exists()
    assert leftovers(tmp_path) == []


async def test_assemble_needs_inputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        await assemble([], tmp_path / "final.mp4")


def test_explicit_ffmpeg_must_exist(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not found"):
        ffmpeg_exe(tmp_path / "no-ffmpeg")
    assert ffmpeg_exe(ffmpeg_exe()) == ffmpeg_exe()


def test_fps_fraction() -> None:
    assert fps_fraction(24.0) == 24
    assert fps_fraction(29.97) == Fraction(30000, 1001)
    assert fps_fraction(23.98) == Fraction(24000, 1001)
    assert fps_fraction(12.5) == Fraction(25, 2)


def test_parse_probe_handles_commas_inside_parentheses() -> None:
    stderr = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 1205 kb/s
  Stream #0:0[0x1](und): Video: h264 (Main) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), \
1920x1080 [SAR 1:1 DAR 16:9], 1000 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp (default)
Stream mapping:
  Stream #0:0 -> #0:0 (copy)
"""
    framecrc = "#extradata 0:       45, 0x272a0f42\n#tb 0: 1/30000\n#codec_id 0: h264\n"
    framecrc += "".join(f"0, {i * 1001}, {i * 1001}, 1001, 900, 0x1234\n" for i in range(1873))
    info = _parse_probe(framecrc, stderr, "x")
    assert (info.width, info.height, info.fps, info.frames) == (1920, 1080, 29.97, 1873)
    assert (info.codec, info.pix_fmt, info.time_base) == ("h264", "yuv420p", "1/30000")
    assert info.codec_config == "45:0x272a0f42"
    assert info.duration_s == 62.5
    assert (info.has_audio, info.audio_codec, info.audio_sample_rate) == (True, "aac", 48000)
