"""The runner: a FIFO queue and one worker thread per device.

A generation is prepared (validated) on submit, queued, then run on the device
thread; ``on_step`` records progress and raises :class:`GenerationCanceled` once a
cancel arrives, so a running job stops within one step. Submits carry the client's
``request_id``: a second submit with the same id returns the first generation.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple, TypeVar

from local_backend.config import BackendConfig
from local_backend.families.base import (
    GenerationCanceled,
    GenerationParams,
    Model,
    ModelError,
    Task,
)
from local_backend.families.encode import discard_spare

__all__ = ["Generation", "Load", "Runner", "RunnerClosed", "UnknownModel"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Long polls wake on a new step at most this often, counted from the job's start: a
#: diffusion step takes seconds and each one shows, a preview "step" is one frame of a
#: few milliseconds, and a job done within this time wakes its watchers once, at the end.
#: Each wake costs the gateway a poll and a commit; its clients are told to look every
#: 0.5 s (``poll_interval_s``), so a finer step would be written but never seen.
STEP_NOTIFY_S = 0.5
#: A device that just finished stays idle this long before it prepares the next
#: request's pipeline: in those milliseconds the gateway fetches and stores the output,
#: and the preparation's Python work would hold the GIL against it (up to the 5 ms
#: switch interval at a time). A job that arrives meanwhile prepares its own.
IDLE_PREP_DELAY_S = 0.05


def tighten_switch_interval(ms: float | None) -> None:
    """Lower Python's GIL switch interval to ``ms`` (never raise it; None: leave it).

    Process-wide, on purpose: in the gateway's process the device thread, whose every
    torch op releases and retakes the GIL, otherwise waits up to 5 ms behind request
    and database work each time (measured on the tiny Wan, shots randomly at 1 or 5 ms
    in one process: 3-5 ms less gateway overhead a shot at 1 ms; 0.5 ms was worse).
    """
    if ms is not None and sys.getswitchinterval() > ms / 1000:
        sys.setswitchinterval(ms / 1000)


class UnknownModel(LookupError):
    pass


class RunnerClosed(RuntimeError):
    """The backend is shutting down and takes no more work."""


class Load(NamedTuple):
    """The work on this device now: waiting in the queue, and running."""

    queued: int
    running: int


@dataclass
class Generation:
    id: str
    request_id: str | None
    model: str
    task: Task
    status: str = "queued"  # queued | running | succeeded | failed | canceled
    step: int = 0
    error_code: str | None = None
    error_message: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    path: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def total_steps(self) -> int:
        return self.task.total_steps

    @property
    def terminal(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled")


class Runner:
    def __init__(self, models: list[Model], config: BackendConfig) -> None:
        self.models = {m.info.id: m for m in models}
        self.config = config
        self._own_dir = config.work_dir is None
        self.work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="reelgate-local-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Condition()
        self._queue: deque[Generation] = deque()
        self._all: OrderedDict[str, Generation] = OrderedDict()
        self._by_request: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._watchers: dict[str, list[Callable[[], None]]] = {}
        self._calls: deque[tuple[Callable[[], object], Future[object]]] = deque()
        self._running = 0
        self._closed = False

    # --- API used by the HTTP layer ---------------------------------------------------

    def submit(self, params: GenerationParams, request_id: str | None) -> tuple[Generation, bool]:
        """Queue a generation; returns it and whether it is new (False: deduped)."""
        existing = self._existing(request_id)
        if existing is not None:
            return existing, False
        model = self.models.get(params.model)
        if model is None:
            raise UnknownModel(params.model)
        task = model.prepare(params)  # raises InvalidParams before anything is queued
        gen = Generation(
            id=f"gen_{uuid.uuid4().hex}", request_id=request_id, model=params.model, task=task
        )
        with self._lock:
            if self._closed:
                raise RunnerClosed("the local backend is shutting down")
            existing = self._existing(request_id)  # a concurrent twin may have won
            if existing is not None:
                return existing, False
            self._all[gen.id] = gen
            if request_id:
                self._by_request[request_id] = gen.id
            self._queue.append(gen)
            self._ensure_thread()
            self._lock.notify_all()
        return gen, True

    def _existing(self, request_id: str | None) -> Generation | None:
        with self._lock:
            gen_id = self._by_request.get(request_id) if request_id else None
            return self._all.get(gen_id) if gen_id else None

    def get(self, gen_id: str) -> Generation | None:
        return self._all.get(gen_id)

    def output(self, gen_id: str) -> Path | None:
        """A succeeded generation's file, for a gateway in this process to read directly
        (None otherwise: the file may still be pruned later, so callers handle its absence)."""
        gen = self._all.get(gen_id)
        return gen.path if gen is not None and gen.status == "succeeded" else None

    def snapshot(self, gen: Generation) -> tuple[Generation, int | None]:
        """A consistent copy of ``gen`` and its queue position, taken under the lock."""
        with self._lock:
            return replace(gen), self.queue_position(gen)

    def queue_position(self, gen: Generation) -> int | None:
        """0 while running; 1 for the next to run; None once finished."""
        with self._lock:
            if gen.status == "running":
                return 0
            try:
                return self._queue.index(gen) + 1
            except ValueError:
                return None

    def load(self) -> Load:
        """How much work waits and runs, counted under the lock (cheap: no scan)."""
        with self._lock:
            return Load(queued=len(self._queue), running=self._running)

    def cancel(self, gen: Generation) -> None:
        with self._lock:
            if gen.terminal:
                return
            gen.cancel.set()
            if gen.status == "queued":
                self._queue.remove(gen)
                self._finish(gen, "canceled")
            self._lock.notify_all()

    def watch(self, gen: Generation, notify: Callable[[], None]) -> Callable[[], None]:
        """Call ``notify`` (from any thread) when ``gen``'s status changes; returns an unwatch."""
        with self._lock:
            self._watchers.setdefault(gen.id, []).append(notify)

        def unwatch() -> None:
            with self._lock:
                watchers = self._watchers.get(gen.id, [])
                if notify in watchers:
                    watchers.remove(notify)
                if not watchers:
                    self._watchers.pop(gen.id, None)

        return unwatch

    def close(self) -> None:
        with self._lock:
            self._closed = True
            while self._queue:
                gen = self._queue.popleft()
                gen.cancel.set()
                self._finish(gen, "canceled")
            while self._calls:
                self._calls.popleft()[1].set_exception(RunnerClosed("the backend closed"))
            running = [g for g in self._all.values() if g.status == "running"]
            for gen in running:
                gen.cancel.set()
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        discard_spare()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # --- the device thread --------------------------------------------------------------

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            tighten_switch_interval(self.config.gil_switch_interval_ms)
            self._thread = threading.Thread(
                target=self._work, name=f"reelgate-{self.config.device}", daemon=True
            )
            self._thread.start()

    def run_on_device(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the device thread, before the next queued generation.

        Torch keeps a pool of worker threads per calling thread; two threads running
        torch work on one machine slow each other (2x on 2 cores). Work that must be
        timed or warmed like a generation (benchmarks, preloading) goes through here.
        """
        done: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RunnerClosed("the local backend is shutting down")
            self._calls.append((fn, done))  # type: ignore[arg-type]
            self._ensure_thread()
            self._lock.notify_all()
        return done.result()

    def _next(self) -> Generation | None:
        with self._lock:
            while True:
                if self._calls:
                    self._call(*self._calls.popleft())
                elif self._closed:
                    return None
                elif self._queue:
                    break
                else:
                    self._lock.wait()
            gen = self._queue.popleft()
            gen.status, gen.started_at = "running", time.time()
            self._running += 1
            self._notify(gen)
            return gen

    def _call(self, fn: Callable[[], object], done: Future[object]) -> None:
        """Run one :meth:`run_on_device` call; the caller holds the lock, ``fn`` does not."""
        self._lock.release()
        try:
            if done.set_running_or_notify_cancel():
                try:
                    done.set_result(fn())
                except BaseException as exc:
                    done.set_exception(exc)
        finally:
            self._lock.acquire()

    def _work(self) -> None:
        while (gen := self._next()) is not None:
            self._run(gen)
            if self._stays_idle(IDLE_PREP_DELAY_S):
                try:
                    gen.task.idle(self.config.device)
                except Exception:  # a head start only: the next job does it itself
                    log.exception("preparing after generation %s failed", gen.id)

    def _stays_idle(self, seconds: float) -> bool:
        """Whether no job, call or shutdown arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        with self._lock:
            while not (self._queue or self._calls or self._closed):
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                self._lock.wait(left)
            return False

    def _run(self, gen: Generation) -> None:
        out = self.work_dir / f"{gen.id}.mp4"

        last_told = time.monotonic()  # the start was told: the status changed to running

        def on_step(k: int) -> None:
            nonlocal last_told
            if gen.cancel.is_set():
                raise GenerationCanceled()
            now = time.monotonic()
            with self._lock:
                gen.step = k
                if now - last_told >= STEP_NOTIFY_S:  # wake long polls: progress shows
                    last_told = now
                    self._notify(gen)
                else:
                    self._lock.notify_all()

        try:
            gen.task.run(out, on_step, self.config.device)
        except GenerationCanceled:
            out.unlink(missing_ok=True)
            self._finish(gen, "canceled")
        except ModelError as exc:
            out.unlink(missing_ok=True)
            self._finish(gen, "failed", exc.code, exc.message)
        except Exception as exc:  # a bug or a device error: the job fails, the service lives
            log.exception("generation %s failed", gen.id)
            out.unlink(missing_ok=True)
            self._finish(gen, "failed", "internal_error", f"{type(exc).__name__}: {exc}")
        else:
            gen.path = out
            self._finish(gen, "succeeded")

    def _finish(
        self, gen: Generation, status: str, code: str | None = None, message: str | None = None
    ) -> None:
        with self._lock:
            if gen.status == "running":
                self._running -= 1
            gen.status, gen.error_code, gen.error_message = status, code, message
            gen.finished_at = time.time()
            self._notify(gen)
            self._prune()

    def _notify(self, gen: Generation) -> None:
        self._lock.notify_all()
        for notify in self._watchers.get(gen.id, []):
            notify()

    def _prune(self) -> None:
        done = [g for g in self._all.values() if g.terminal]
        for gen in done[: max(0, len(done) - self.config.keep_finished)]:
            del self._all[gen.id]
            if gen.request_id:
                self._by_request.pop(gen.request_id, None)
            if gen.path is not None:
                gen.path.unlink(missing_ok=True)
