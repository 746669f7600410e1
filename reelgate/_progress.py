"""What ``jobs.wait(progress=...)`` shows while it polls.

``progress=True`` draws a live per-shot table with rich when it is installed (it is an
optional dependency, imported here lazily) and prints one plain line per change
otherwise; a callable receives every polled :class:`~reelgate.types.Job` instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from .types import Job, Shot

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

ProgressArg = bool | Callable[[Job], Any]

_STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "succeeded": "green",
    "partially_succeeded": "yellow",
    "failed": "red",
    "canceled": "magenta",
}


def shot_fraction(shot: Shot) -> float:
    """The shot's progress in [0, 1]; a finished shot is full whatever the backend said."""
    if shot.status == "succeeded":
        return 1.0
    return min(1.0, max(0.0, shot.progress or 0.0))


def step_text(shot: Shot) -> str:
    """``step 3/8`` while a backend reports denoising steps, else nothing."""
    if shot.step is None or not shot.total_steps:
        return ""
    return f"step {shot.step}/{shot.total_steps}"


@contextmanager
def open_progress(
    progress: ProgressArg, *, file: IO[str] | None = None, use_rich: bool | None = None
) -> Iterator[Callable[[Job], Any]]:
    """Yield the function ``wait`` calls with each polled job; clean the display up after.

    ``use_rich=None`` picks the live table on a terminal when rich is installed and plain
    lines otherwise (a live table in a log file would only appear at the very end).
    """
    if callable(progress):
        yield progress
        return
    if not progress:
        yield lambda job: None
        return
    rich = None if use_rich is False else _rich_display(file, terminal_only=use_rich is None)
    if rich is None and use_rich:
        raise RuntimeError("progress with use_rich=True needs rich: pip install rich")
    display: RichDisplay | PlainDisplay = rich or PlainDisplay(file)
    try:
        yield display.update
    finally:
        display.close()


class PlainDisplay:
    """One line per job or shot change, so logs stay readable without a terminal."""

    def __init__(self, file: IO[str] | None = None) -> None:
        self._file = file
        self._seen: dict[str, tuple[str, int]] = {}

    def update(self, job: Job) -> None:
        out = self._file or sys.stderr
        if self._changed(job.id, job.status, 0):
            print(f"job {job.id}: {job.status}", file=out)
        for shot in job.shots:
            pct = int(shot_fraction(shot) * 100)
            if self._changed(shot.id, shot.status, pct // 10):
                error = f" ({shot.error_message})" if shot.error_message else ""
                step = f" {text}" if (text := step_text(shot)) else ""
                print(
                    f"  shot {shot.index} {shot.kind} {shot.model}: {shot.status} {pct}%"
                    f"{step}{error}",
                    file=out,
                )
        out.flush()

    def _changed(self, key: str, status: str, bucket: int) -> bool:
        state = (status, bucket)
        if self._seen.get(key) == state:
            return False
        self._seen[key] = state
        return True

    def close(self) -> None:
        pass


class RichDisplay:
    """A live table: shot index, kind, model, status and a bar from ``shot.progress``."""

    def __init__(self, console: Console) -> None:
        from rich.live import Live

        self._live = Live(console=console, auto_refresh=False)
        self._started = False

    def update(self, job: Job) -> None:
        if not self._started:
            self._live.start()
            self._started = True
        self._live.update(job_table(job), refresh=True)

    def close(self) -> None:
        if self._started:
            self._live.stop()


def job_table(job: Job) -> Table:
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    style = _STATUS_STYLE.get(job.status, "")
    table = Table(title=Text(f"job {job.id}: {job.status}", style=style), title_justify="left")
    for name in ("#", "kind", "model", "status", "progress", "%"):
        table.add_column(name, justify="right" if name == "#" else "left")
    for shot in job.shots:
        fraction = shot_fraction(shot)
        table.add_row(
            str(shot.index),
            shot.kind,
            shot.model,
            Text(shot.status, style=_STATUS_STYLE.get(shot.status, "")),
            ProgressBar(total=1.0, completed=fraction, width=24),
            " ".join(
                part
                for part in (f"{fraction:4.0%}", step_text(shot), shot.error_message or "")
                if part
            ),
        )
    return table


def _rich_display(file: IO[str] | None, *, terminal_only: bool) -> RichDisplay | None:
    try:
        from rich.console import Console
    except ImportError:
        return None
    console = Console(file=file) if file is not None else Console(stderr=True)
    if terminal_only and not console.is_terminal:
        return None
    return RichDisplay(console)
