"""Read an MP4's video facts from its boxes, without starting ffmpeg.

Storing every shot probes its output; an ffmpeg process costs tens of milliseconds,
reading ``moov`` costs well under one. Only what provenance needs is read: duration,
frame count, size, frame rate, codec, audio presence. Anything unexpected returns
None and the caller falls back to :func:`gateway.media.probe`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Mp4Info", "read_mp4_info"]

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_MAX_MOOV = 64 << 20


@dataclass(frozen=True)
class Mp4Info:
    duration_s: float
    frames: int
    width: int
    height: int
    fps: float
    codec: str
    has_audio: bool


@dataclass
class _Track:
    handler: bytes = b""
    timescale: int = 0
    duration: int = 0
    width: int = 0
    height: int = 0
    codec: str = ""
    samples: int = 0
    #: The samples' summed durations: what plays. ``mdhd``'s duration can run a frame
    #: longer when B-frames shift the decode times (libavformat counts from dts < 0).
    sample_time: int = 0


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """``(type, payload_start, box_end)`` for each box in ``data[start:end]``."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"box {kind!r} overruns its parent")
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def _find_moov(f: BinaryIO) -> bytes | None:
    """The ``moov`` box's bytes, wherever it sits in the file (front or back)."""
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        size, kind = struct.unpack(">I4s", header)
        offset = 8
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0]
            offset = 16
        if kind == b"moov":
            if size > _MAX_MOOV:
                return None
            return header + f.read(size - 8) if offset == 8 else f.read(size - offset)
        if size == 0:
            return None
        f.seek(size - offset, 1)


def _full_box_version(data: bytes, pos: int) -> int:
    return data[pos]


def _read_track(data: bytes, start: int, end: int) -> _Track:
    track = _Track()

    def walk(s: int, e: int) -> None:
        for kind, p, box_end in _boxes(data, s, e):
            if kind in _CONTAINERS:
                walk(p, box_end)
            elif kind == b"tkhd":
                track.width = struct.unpack_from(">I", data, box_end - 8)[0] >> 16
                track.height = struct.unpack_from(">I", data, box_end - 4)[0] >> 16
            elif kind == b"mdhd":
                if _full_box_version(data, p) == 1:
                    track.timescale, track.duration = struct.unpack_from(">IQ", data, p + 20)
                else:
                    track.timescale, track.duration = struct.unpack_from(">II", data, p + 12)
            elif kind == b"hdlr":
                track.handler = data[p + 8 : p + 12]
            elif kind == b"stsd":
                codec = data[p + 12 : p + 16]
                track.codec = codec.decode("ascii", "replace")
            elif kind == b"stts":
                count = struct.unpack_from(">I", data, p + 4)[0]
                runs = [struct.unpack_from(">II", data, p + 8 + 8 * i) for i in range(count)]
                track.samples = sum(n for n, _ in runs)
                track.sample_time = sum(n * delta for n, delta in runs)

    walk(start, end)
    return track


_CODECS = {
    "avc1": "h264",
    "avc3": "h264",
    "hvc1": "hevc",
    "hev1": "hevc",
    "av01": "av1",
    "vp09": "vp9",
}


def read_mp4_info(path: Path) -> Mp4Info | None:
    try:
        with path.open("rb") as f:
            moov = _find_moov(f)
        if moov is None:
            return None
        start = 8 if moov[4:8] == b"moov" else 0
        tracks = [
            _read_track(moov, p, e)
            for kind, p, e in _boxes(moov, start, len(moov))
            if kind == b"trak"
        ]
    except Exception:  # any malformed file: the caller falls back to ffmpeg
        return None
    video = next((t for t in tracks if t.handler == b"vide"), None)
    if video is None or not video.timescale or not video.duration or not video.samples:
        return None
    duration = (video.sample_time or video.duration) / video.timescale
    return Mp4Info(
        duration_s=duration,
        frames=video.samples,
        width=video.width,
        height=video.height,
        fps=round(video.samples / duration, 3),
        codec=_CODECS.get(video.codec, video.codec),
        has_audio=any(t.handler == b"soun" for t in tracks),
    )
