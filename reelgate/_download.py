"""The pure half of ``jobs.download``: which output to fetch, and where it lands.

Bytes go to a hidden ``.part`` file beside the target and are renamed over it only
when the stream completed, so a crash or a dropped connection never leaves a
truncated video under the name a user (or a make rule) trusts.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

from ._exceptions import APIConnectionError, ReelgateError
from .types import Job, Output, Shot

StrPath = str | os.PathLike[str]


def pick_output(job: Job, shot: int | str | None) -> tuple[Output, str]:
    """The output to download and a default file name for it.

    ``shot=None`` means the final cut, or the only shot of a one-shot job.
    """
    if shot is None:
        if job.final is not None:
            return job.final, f"{job.id}.mp4"
        if len(job.shots) != 1:
            why = f": {job.final_error}" if job.final_error else ""
            raise ReelgateError(
                f"job {job.id} ({job.status}) has no final cut{why}; pass shot=<index or id>"
            )
        shot = 0
    found = _find_shot(job, shot)
    if found.output is None:
        why = f": {found.error_message}" if found.error_message else ""
        raise ReelgateError(
            f"shot {found.index} ({found.id}) of job {job.id} has no output: {found.status}{why}"
        )
    return found.output, f"{job.id}-shot{found.index:02d}.mp4"


def _find_shot(job: Job, shot: int | str) -> Shot:
    for candidate in job.shots:
        key = candidate.id if isinstance(shot, str) else candidate.index
        if key == shot:
            return candidate
    raise ReelgateError(f"job {job.id} has no shot {shot!r} ({len(job.shots)} shots)")


def target_path(path: StrPath, default_name: str) -> Path:
    """``path`` itself, or ``path/default_name`` when it names an existing folder."""
    target = Path(path)
    return target / default_name if target.is_dir() else target


class PartFile:
    """A temp file next to ``target``, renamed onto it on success and removed on failure."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        self._file: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.part.open("wb")
        return self._file

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        self._file.close()
        if exc_type is None:
            os.replace(self.part, self.target)
        else:
            self.part.unlink(missing_ok=True)


def check_size(output: Output, written: int) -> None:
    """A short body is a broken download, even when the connection closed cleanly."""
    if output.bytes and written != output.bytes:
        raise APIConnectionError(
            f"download of {output.content_url} incomplete: got {written} of {output.bytes} bytes"
        )
