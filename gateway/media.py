"""ffmpeg helpers: probe a clip and assemble clips into one cut.

The functions are ``async`` and run ffmpeg as an asyncio subprocess (killed if the
caller is cancelled), so the engine awaits them without a thread; sync code can use
``asyncio.run``. There is no ffprobe dependency: :func:`probe` reads the stream line
that ``ffmpeg -i`` prints, and remuxes the video into the ``framecrc`` muxer, which
lists every packet (an exact frame count) and a CRC of the decoder configuration.
Outputs are written to a hidden temp file and renamed, so a failure leaves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

__all__ = [
    "AssembleResult",
    "MediaError",
    "VideoInfo",
    "assemble",
    "ffmpeg_exe",
    "fps_fraction",
    "probe",
]

_STDERR_LINES = 15


class MediaError(Exception):
    """ffmpeg is missing, failed, or found no video; the message ends with its stderr."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    duration_s: float
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    pix_fmt: str | None
    has_audio: bool
    time_base: str | None = None  # e.g. "1/12288"
    codec_config: str | None = None  # size and CRC of the SPS/PPS: equal means same encoder setup
    audio_codec: str | None = None
    audio_sample_rate: int | None = None


@dataclass(frozen=True, slots=True)
class AssembleResult:
    mode: Literal["copy", "reencode"]
    info: VideoInfo
    reason: str | None = None  # why the clips could not be stream-copied


def ffmpeg_exe(path: str | Path | None = None) -> str:
    """The ffmpeg to run: ``path`` if given, else ``ffmpeg`` on PATH, else imageio-ffmpeg's."""
    if path is not None:
        found = shutil.which(str(path))
        if found is None:
            raise MediaError(f"ffmpeg not found at {str(path)!r}")
        return found
    return _default_ffmpeg()


@functools.cache
def _default_ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise MediaError(
            "ffmpeg not found: install it on PATH, set REELGATE_FFMPEG, "
            "or pip install 'reelgate[server]' (bundles imageio-ffmpeg)"
        ) from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise MediaError(f"ffmpeg not found: {exc}") from None


async def _run(args: list[str], *, what: str) -> tuple[str, str]:
    """Run ffmpeg; return (stdout, stderr); raise MediaError with stderr's tail on failure."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if proc.returncode != 0:
        raise MediaError(f"{what} failed (ffmpeg exit {proc.returncode}):\n{_tail(stderr)}")
    return stdout, stderr


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_STDERR_LINES:])


# --- probe ------------------------------------------------------------------------------


async def probe(path: Path, *, ffmpeg: str | Path | None = None) -> VideoInfo:
    """Describe the first video stream of ``path`` (and whether it has audio)."""
    exe = ffmpeg_exe(ffmpeg)
    if not Path(path).is_file():
        raise MediaError(f"cannot probe {str(path)!r}: no such file")
    # `ffmpeg -i FILE` alone exits 1 ("no output file"); remuxing the video stream into
    # framecrc validates the container and lists one line per packet.
    args = [exe, "-hide_banner", "-nostdin", "-nostats", "-i", str(Path(path).absolute())]
    args += ["-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    stdout, stderr = await _run(args, what=f"probing {Path(path).name}")
    return _parse_probe(stdout, stderr, str(path))


def _parse_probe(stdout: str, stderr: str, name: str) -> VideoInfo:
    header = stderr.split("Stream mapping:", 1)[0]
    video = re.search(r"^\s*Stream #0:\d+\S*: Video: (.+)$", header, re.M)
    if video is None:
        raise MediaError(f"no video stream in {name}:\n{_tail(stderr)}")
    fields = _split_top_level(video.group(1))
    size = next((m for f in fields if (m := re.match(r"(\d+)x(\d+)\b", f))), None)
    count = sum(1 for line in stdout.splitlines() if line and not line.startswith("#"))
    if size is None or not count:
        raise MediaError(f"cannot read the video stream of {name}:\n{_tail(stderr)}")
    fps = _stream_value(fields, "fps") or _stream_value(fields, "tbr") or 0.0
    time_base = re.search(r"^#tb 0: (\d+/\d+)", stdout, re.M)
    config = re.search(r"^#extradata 0:\s*(\d+),\s*(0x[0-9a-f]+)", stdout, re.M)
    duration = re.search(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", header)
    if duration:
        hours, minutes, secs = duration.groups()
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    else:
        seconds = count / fps if fps else 0.0
    has_audio = re.search(r"^\s*Stream #0:\d+\S*: Audio: ", header, re.M) is not None
    audio = re.search(r"^\s*Stream #0:\d+\S*: Audio: (\w+)[^,]*,\s*(\d+) Hz", header, re.M)
    return VideoInfo(
        duration_s=round(seconds, 3),
        frames=count,
        width=int(size.group(1)),
        height=int(size.group(2)),
        fps=fps,
        codec=fields[0].split()[0],
        pix_fmt=_pix_fmt(fields),
        has_audio=has_audio,
        time_base=time_base.group(1) if time_base else None,
        codec_config=f"{config.group(1)}:{config.group(2)}" if config else None,
        audio_codec=audio.group(1) if audio else None,
        audio_sample_rate=int(audio.group(2)) if audio else None,
    )


def _split_top_level(text: str) -> list[str]:
    """Split ffmpeg's stream description on commas outside parentheses and brackets."""
    fields, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            fields.append(text[start:index].strip())
            start = index + 1
    fields.append(text[start:].strip())
    return fields


def _pix_fmt(fields: list[str]) -> str | None:
    """The field after the codec, unless the codec has none and it is already the size."""
    if len(fields) < 2 or re.match(r"\d+x\d+", fields[1]):
        return None
    return fields[1].split("(")[0].strip() or None


def _stream_value(fields: list[str], unit: str) -> float | None:
    """``"29.97 fps"`` → 29.97; ffmpeg writes values of 1000 and more as ``"1k"``."""
    for field in fields:
        match = re.match(rf"(\d+(?:\.\d+)?)(k?) {unit}\b", field)
        if match:
            return float(match.group(1)) * (1000 if match.group(2) else 1)
    return None


def fps_fraction(fps: float) -> Fraction:
    """The exact rate behind ffmpeg's rounded one: 29.97 → 30000/1001, 24 → 24."""
    for base in (24, 30, 48, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.006:
            return Fraction(base * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


# --- assemble ---------------------------------------------------------------------------


async def assemble(
    inputs: list[Path], out: Path, *, ffmpeg: str | Path | None = None
) -> AssembleResult:
    """Join ``inputs`` in order into ``out`` (MP4): stream copy when they match, else re-encode."""
    if not inputs:
        raise ValueError("assemble needs at least one input clip")
    exe = ffmpeg_exe(ffmpeg)
    infos = await asyncio.gather(*(probe(p, ffmpeg=exe) for p in inputs))
    reason = _copy_blocker(list(infos))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(6)}.tmp")
    try:
        with tempfile.TemporaryDirectory(prefix="reelgate-assemble-") as workdir:
            if reason is None:
                args = _copy_args(exe, inputs, infos[0], Path(workdir))
            else:
                args = _reencode_args(exe, inputs, list(infos))
            await _run([*args, "-movflags", "+faststart", "-f", "mp4", str(tmp)], what="assemble")
        info = await probe(tmp, ffmpeg=exe)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return AssembleResult("copy" if reason is None else "reencode", info, reason)


#: What must match for a stream copy, most telling first. Equal ``codec_config`` means
#: the same encoder setup (profile, level, B-frame delay); without it, concat by copy
#: can produce clips that play with broken timestamps or not at all.
_COPY_KEYS = (
    "codec", "width", "height", "pix_fmt", "fps",
    "has_audio", "audio_codec", "audio_sample_rate", "codec_config",
)  # fmt: skip


def _copy_blocker(infos: list[VideoInfo]) -> str | None:
    """Why the clips cannot be concatenated by stream copy, or None if they can."""
    first = infos[0]
    for index, info in enumerate(infos[1:], start=1):
        for key in _COPY_KEYS:
            if getattr(info, key) != getattr(first, key):
                a, b = getattr(first, key), getattr(info, key)
                return f"clip {index} has {key}={b!r}, clip 0 has {a!r}"
    return None


def _copy_args(exe: str, inputs: list[Path], first: VideoInfo, workdir: Path) -> list[str]:
    listing = workdir / "inputs.txt"
    lines = ["file '" + str(Path(p).absolute()).replace("'", "'\\''") + "'" for p in inputs]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = [exe, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    args += ["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v:0"]
    if first.has_audio:
        args += ["-map", "0:a:0"]
    return [*args, "-c", "copy"]


def _reencode_args(exe: str, inputs: list[Path], infos: list[VideoInfo]) -> list[str]:
    """Scale and pad every clip to the first one's size and rate, then concat-filter them."""
    width, height = infos[0].width - infos[0].width % 2, infos[0].height - infos[0].height % 2
    rate = fps_fraction(infos[0].fps) if infos[0].fps > 0 else Fraction(24)
    audio = all(info.has_audio for info in infos)
    args = [exe, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"]
    graph, pads = [], []
    for index, (path, info) in enumerate(zip(inputs, infos, strict=True)):
        args += ["-i", str(Path(path).absolute())]
        graph.append(
            f"[{index}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={rate},format=yuv420p[v{index}]"
        )
        pads.append(f"[v{index}]")
        if audio:
            # pad or cut each clip's audio to its video, so later clips stay in sync
            graph.append(
                f"[{index}:a:0]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo,"
                f"apad=whole_dur={info.duration_s},atrim=end={info.duration_s}[a{index}]"
            )
            pads.append(f"[a{index}]")
    outputs = "[v][a]" if audio else "[v]"
    graph.append(f"{''.join(pads)}concat=n={len(inputs)}:v=1:a={int(audio)}{outputs}")
    args += ["-filter_complex", ";".join(graph), "-map", "[v]"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-crf", "18"]
    args += ["-r", str(rate)]
    if audio:
        args += ["-map", "[a]", "-c:a", "aac", "-b:a", "192k"]
    return args
