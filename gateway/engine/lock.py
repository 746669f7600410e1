"""One executor per data dir: a second process would run the same shots twice.

An advisory ``flock`` on ``DATA_DIR/executor.lock``; the OS drops it when the holder
dies, even by SIGKILL, so a restart never waits for a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["ExecutorLock", "ExecutorLocked"]


class ExecutorLocked(RuntimeError):
    """Another live process runs the jobs of this data dir."""


class ExecutorLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "executor.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ExecutorLocked(
                f"another reelgate process (pid {holder}) runs the jobs of {self.path.parent}; "
                "talk to it with --server URL, or use another data dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
