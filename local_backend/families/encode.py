"""RGB frames in, a reproducible H.264 MP4 out, encoded in-process with PyAV (libav*).

In-process, not through an ffmpeg pipe: a pipe pays a process spawn, x264's set-up
after the first frame arrives and a process exit after the last, ≈10 ms per shot
that a tiny shot (or an animatic) feels. Here the encoder is opened before the first
frame and the frames go straight from numpy to x264.

Reproducibility is deliberate: one encoder thread, bitexact muxing and no metadata
make the same frames give the same bytes, so a shot's sha256 in the provenance
manifest means something.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import shutil
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
from PIL import Image

from local_backend.families.base import ModelError

__all__ = ["Mp4Writer", "discard_spare", "encoder_options", "find_ffmpeg", "prepare_spare"]


@functools.cache
def find_ffmpeg() -> str:
    """ffmpeg on PATH, else the binary bundled with imageio-ffmpeg (tests read MP4s back
    with it; the encoder itself needs no binary)."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("ffmpeg not found: install it or `pip install reelgate[local]`") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def encoder_options(fps: int) -> dict[str, str]:
    """x264 at CRF 23, a keyframe every two seconds, no scene-cut keyframes, one thread."""
    return {
        "preset": "veryfast",
        "crf": "23",
        "g": str(2 * fps),
        "sc_threshold": "0",
        "threads": "1",
        "flags": "+bitexact",
        # In a long-lived process x264's assembly (mbtree's propagation) gave different
        # bytes for the same frames from one shot to the next; this pins the C-equal paths.
        "x264-params": "cpu-independent=1",
    }


class Mp4Writer:
    """Context manager: ``write`` frames; leaving with an error deletes the partial file.

    ``Mp4Writer.open`` hands out the encoder :func:`prepare_spare` opened ahead when it
    fits, so x264's set-up (≈1 ms for a tiny shot, more for a large one) is not paid
    between a shot's start and its first step.
    """

    def __init__(self, out: Path, size: tuple[int, int], fps: int) -> None:
        self.out, self.size, self.fps = out, size, fps
        self._path = out  # where the muxer writes; a spare's file moves to ``out`` at the end
        self._container: Any = None
        self._stream: Any = None
        self._frames = 0

    @classmethod
    def open(cls, out: Path, size: tuple[int, int], fps: int) -> Mp4Writer:
        """A writer for ``out``, already entered: the spare if it fits, else a new one."""
        spare = _SPARE.take(out.parent, size, fps)
        if spare is not None:
            spare.out = out
            return spare
        return cls(out, size, fps).__enter__()

    def __enter__(self) -> Mp4Writer:
        if self._container is not None:  # a spare, opened ahead
            return self
        width, height = self.size
        try:
            container = av.open(
                str(self._path),
                "w",
                format="mp4",
                options={"movflags": "+faststart", "fflags": "+bitexact"},
            )
        except (av.FFmpegError, OSError) as exc:
            raise ModelError("encoder_failed", f"cannot write {self._path}: {exc}") from None
        try:
            options = encoder_options(self.fps)
            stream = container.add_stream("libx264", rate=self.fps, options=options)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.open()  # x264's set-up now, before the frames exist
        except av.FFmpegError as exc:
            container.close()
            self._path.unlink(missing_ok=True)
            raise ModelError("encoder_failed", f"cannot open the H.264 encoder: {exc}") from None
        self._container, self._stream = container, stream
        return self

    def write(self, frame: Image.Image | np.ndarray[Any, Any]) -> None:
        """One frame: a PIL image or a uint8 array shaped (height, width, 3)."""
        array = np.asarray(frame.convert("RGB")) if isinstance(frame, Image.Image) else frame
        video_frame = av.VideoFrame.from_ndarray(array, format="rgb24")
        video_frame.pts, self._frames = self._frames, self._frames + 1
        try:
            self._mux(self._stream.encode(video_frame))
        except (av.FFmpegError, ValueError) as exc:
            raise ModelError("encoder_failed", f"encoding a frame failed: {exc}") from None

    def _mux(self, packets: list[Any]) -> None:
        for packet in packets:
            # One frame each (time base 1/fps). Left at 0, the muxer guesses the last
            # packet's from a B-frame-reordered dts step and the track runs a frame long.
            packet.duration = packet.duration or 1
            self._container.mux(packet)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        container = self._container
        if exc_type is not None:
            self.discard()
            return
        try:
            self._mux(self._stream.encode(None))  # flush x264's lookahead
            container.close()  # writes the index, moved to the front (faststart, by name)
            if self._path != self.out:
                self._path.replace(self.out)
        except (av.FFmpegError, OSError) as exc:
            self.discard()
            raise ModelError("encoder_failed", f"finishing the MP4 failed: {exc}") from None
        _SPARE.remember(self.out.parent, self.size, self.fps)

    def discard(self) -> None:
        """Close without finishing, and delete the partial file."""
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._container.close()
        self._path.unlink(missing_ok=True)


class _Spare:
    """At most one encoder opened ahead, like the last one that finished (same folder,
    size and fps): a device renders shot after shot of one kind."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[Path, tuple[int, int], int] | None = None
        self._writer: Mp4Writer | None = None

    def remember(self, folder: Path, size: tuple[int, int], fps: int) -> None:
        with self._lock:
            self._last = (folder, size, fps)

    def prepare(self) -> None:
        with self._lock:
            if self._last is None or self._writer is not None:
                return
            folder, size, fps = self._last
        path = folder / f".spare-{secrets.token_hex(6)}.mp4"
        writer = Mp4Writer(path, size, fps).__enter__()
        with self._lock:
            kept = self._writer is None
            if kept:
                self._writer = writer
        if not kept:
            writer.discard()

    def take(self, folder: Path, size: tuple[int, int], fps: int) -> Mp4Writer | None:
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is None:
            return None
        if (writer._path.parent, writer.size, writer.fps) == (folder, size, fps):
            return writer
        writer.discard()
        return None

    def discard(self) -> None:
        with self._lock:
            writer, self._writer, self._last = self._writer, None, None
        if writer is not None:
            writer.discard()


_SPARE = _Spare()


def prepare_spare() -> None:
    """Open an encoder like the last one that finished, for the next shot (device idle)."""
    _SPARE.prepare()


def discard_spare() -> None:
    """Close the encoder opened ahead and delete its file (the backend is closing)."""
    _SPARE.discard()
