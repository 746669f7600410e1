"""Raw RGB frames in, a reproducible H.264 MP4 out, through an ffmpeg pipe.

Reproducibility is deliberate: one encoder thread, bitexact muxing and no
metadata make the same frames give the same bytes, so a preview's sha256 in the
provenance manifest means something.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from PIL import Image

from local_backend.families.base import ModelError

__all__ = ["Mp4Writer", "encoder_args", "find_ffmpeg"]


@functools.cache
def find_ffmpeg() -> str:
    """ffmpeg on PATH, else the binary bundled with imageio-ffmpeg."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("ffmpeg not found: install it or `pip install reelgate[local]`") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def encoder_args(out: Path, size: tuple[int, int], fps: int) -> list[str]:
    width, height = size
    return [
        *("-hide_banner", "-loglevel", "error"),
        *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}"),
        *("-framerate", str(fps), "-i", "pipe:0", "-an"),
        *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"),
        *("-g", str(2 * fps), "-sc_threshold", "0", "-threads", "1"),
        *("-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1"),
        *("-movflags", "+faststart", "-f", "mp4", "-y", str(out)),
    ]


class Mp4Writer:
    """Context manager: ``write`` frames; leaving with an error kills the encoder."""

    def __init__(self, out: Path, size: tuple[int, int], fps: int) -> None:
        self.out, self.size, self.fps = out, size, fps
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)

    def __enter__(self) -> Mp4Writer:
        cmd = [find_ffmpeg(), *encoder_args(self.out, self.size, self.fps)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log)
        return self

    def write(self, frame: Image.Image) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            self._proc.wait()
            raise ModelError("encoder_failed", f"ffmpeg stopped early: {self._tail()}") from None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        try:
            if exc_type is not None:
                proc.kill()
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
            if exc_type is None and code != 0:
                raise ModelError("encoder_failed", f"ffmpeg exited with {code}: {self._tail()}")
        finally:
            self._log.close()

    def _tail(self) -> str:
        self._log.seek(0)
        return self._log.read()[-2000:].decode(errors="replace").strip()
