"""The box reader agrees with ffmpeg on the facts provenance records."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gateway import media
from gateway.mp4info import read_mp4_info

CLIPS = [
    ("testsrc2=size=128x72:rate=24:duration=1", ["-c:v", "libx264"], False),
    (
        "testsrc2=size=64x64:rate=12:duration=0.5",
        ["-c:v", "libx264", "-movflags", "+faststart"],
        False,
    ),
    ("testsrc2=size=96x54:rate=30000/1001:duration=2", ["-c:v", "libx264"], False),
    (
        "testsrc2=size=80x48:rate=25:duration=1",
        ["-c:v", "libx264", "-c:a", "aac", "-shortest"],
        True,
    ),
]


@pytest.mark.parametrize(("source", "args", "audio"), CLIPS)
async def test_matches_ffmpeg(tmp_path: Path, source: str, args: list[str], audio: bool) -> None:
    out = tmp_path / "clip.mp4"
    inputs = ["-f", "lavfi", "-i", source]
    if audio:
        inputs += ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]
    subprocess.run(
        [media.ffmpeg_exe(), "-loglevel", "error", *inputs, *args, "-pix_fmt", "yuv420p", str(out)],
        check=True,
    )
    fast = read_mp4_info(out)
    slow = await media.probe(out)
    assert fast is not None
    assert (fast.width, fast.height, fast.frames, fast.codec) == (
        slow.width,
        slow.height,
        slow.frames,
        slow.codec,
    )
    assert fast.duration_s == pytest.approx(slow.duration_s, abs=0.05)
    assert fast.fps == pytest.approx(slow.fps, rel=1e-3)
    assert fast.has_audio is slow.has_audio is audio


def test_not_an_mp4_is_none(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x10notanmp4" + b"\xff" * 100)
    assert read_mp4_info(junk) is None
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(b"\x00\x00\x01\x00moov" + b"\x00" * 20)
    assert read_mp4_info(truncated) is None


def test_duration_is_what_the_samples_play_not_the_b_frame_shifted_media_time(
    tmp_path: Path,
) -> None:
    """libavformat may write an ``mdhd`` a frame long when B-frames push the first
    decode time below zero (9 frames at 16 fps read as 0.625 s, 14.4 fps): the
    samples' own durations give 0.5625 s and 16 fps."""
    out = tmp_path / "clip.mp4"
    subprocess.run(
        [
            media.ffmpeg_exe(),
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=64x64:rate=16:duration=0.5625",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(out),
        ],
        check=True,
    )
    data = bytearray(out.read_bytes())
    at = data.index(b"mdhd") + 4  # version 0: flags, created, modified, timescale, duration
    timescale, duration = (
        int.from_bytes(data[at + 12 : at + 16]),
        int.from_bytes(data[at + 16 : at + 20]),
    )
    data[at + 16 : at + 20] = (duration + timescale // 16).to_bytes(4, "big")  # one frame long
    out.write_bytes(bytes(data))
    info = read_mp4_info(out)
    assert info is not None and (info.frames, info.fps) == (9, 16.0)
    assert info.duration_s == pytest.approx(0.5625)
