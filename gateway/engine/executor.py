"""The embedded executor: one asyncio task per running shot, in the gateway's own process.

On start it resumes every non-terminal shot and finishes every job whose shots are
all done, straight from the database: a restart loses nothing. Stopping cancels the
tasks without touching their state, so the next start picks them up again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlmodel import col, select

from gateway.db import Database
from gateway.engine.jobs import JobFinisher
from gateway.engine.shots import FirstAttempts, ShotEngine
from gateway.tables import Job, Shot

__all__ = ["EmbeddedExecutor"]

log = logging.getLogger(__name__)

_ACTIVE_JOB = ("queued", "running")
_MAX_ENGINE_FAILURES = 6
_ACTIVE_SHOT = ("queued", "running")


class EmbeddedExecutor:
    def __init__(
        self, db: Database, shots: ShotEngine, jobs: JobFinisher, *, max_concurrent_shots: int
    ) -> None:
        self._db = db
        self._shots = shots
        self._jobs = jobs
        self._limit = asyncio.Semaphore(max_concurrent_shots)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._job_of: dict[str, str] = {}
        self._finishing: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        #: JobNotifier: a new job's first attempts are the engine's to make.
        self.first_attempts = shots.first_attempts

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every unfinished shot and job found in the database."""
        self._jobs.recover()
        with self._db.session() as s:
            jobs = list(s.exec(select(Job.id).where(col(Job.status).in_(_ACTIVE_JOB))))
            shots = list(
                s.exec(
                    select(Shot.id, Shot.job_id).where(
                        col(Shot.job_id).in_(jobs), col(Shot.status).in_(_ACTIVE_SHOT)
                    )
                )
            )
        busy = {job_id for _, job_id in shots}
        for shot_id, job_id in shots:
            self._spawn(shot_id, job_id)
        for job_id in set(jobs) - busy:
            self._finish_later(job_id)
        if jobs:
            log.info("resumed %d jobs (%d shots)", len(jobs), len(shots))

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._tasks.values(), *self._finishing.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Creates already sent finish and record their job ids, so the next start
        # polls them instead of treating them as lost.
        await self._shots.settle_submits(timeout=10)

    async def drain(self) -> None:
        """Wait until every task has finished (tests and the CLI use this)."""
        while self._tasks or self._finishing:
            await asyncio.gather(
                *self._tasks.values(), *self._finishing.values(), return_exceptions=True
            )

    # --- JobNotifier -------------------------------------------------------------------

    def job_created(
        self, job_id: str, shot_ids: Sequence[str], first: FirstAttempts | None = None
    ) -> None:
        if first is not None and not self._stopping:
            self._shots.adopt(first)
        for shot_id in shot_ids:
            self._spawn(shot_id, job_id)

    def nudge_shot(self, shot_id: str) -> bool:
        """A vendor says the shot's job moved: poll it now instead of at the next hint."""
        return self._shots.wake(shot_id)

    async def cancel_job(self, job_id: str) -> None:
        """Stop the job's shot tasks, cancel their backend jobs, then finish the job."""
        tasks = [task for sid, task in self._tasks.items() if self._job_of.get(sid) == job_id]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with self._db.session() as s:
            shot_ids = list(
                s.exec(
                    select(Shot.id).where(Shot.job_id == job_id, col(Shot.status).in_(_ACTIVE_SHOT))
                )
            )
        for shot_id in shot_ids:
            await self._shots.cancel(shot_id)
        await self._jobs.finish(job_id)

    # --- internals ---------------------------------------------------------------------

    def _spawn(self, shot_id: str, job_id: str) -> None:
        if shot_id in self._tasks or self._stopping:
            return
        self._job_of[shot_id] = job_id
        task = asyncio.get_running_loop().create_task(self._run_shot(shot_id, job_id))
        self._tasks[shot_id] = task
        # Not in _run_shot's finally: a task canceled before it first ran never runs
        # its body, and its entry would stay (drain would spin, the job never finish).
        task.add_done_callback(lambda done: self._forget(shot_id, done))

    def _forget_finish(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._finishing.get(job_id) is task:
            del self._finishing[job_id]

    def _forget(self, shot_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(shot_id) is task:
            del self._tasks[shot_id]
            self._job_of.pop(shot_id, None)

    async def _run_shot(self, shot_id: str, job_id: str) -> None:
        try:
            for failures in range(_MAX_ENGINE_FAILURES):
                try:
                    async with self._limit:
                        await self._shots.run(shot_id)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # the engine turns backend errors into data; this is
                    # the database or a bug. Try again shortly; the state is all persisted.
                    log.exception("shot %s: engine error (%d)", shot_id, failures + 1)
                    await asyncio.sleep(min(30.0, 0.5 * 2**failures))
            else:
                log.error(
                    "shot %s gave up after repeated engine errors; resumes on restart", shot_id
                )
                return
        finally:
            self._tasks.pop(shot_id, None)
            self._job_of.pop(shot_id, None)
        self._finish_later(job_id)

    def _finish_later(self, job_id: str) -> None:
        if job_id in self._finishing or self._stopping:
            return
        if any(self._job_of.get(sid) == job_id for sid in self._tasks):
            return  # another shot of this job is still running; it finishes the job
        task = asyncio.get_running_loop().create_task(self._finish(job_id))
        self._finishing[job_id] = task
        task.add_done_callback(lambda done: self._forget_finish(job_id, done))

    async def _finish(self, job_id: str) -> None:
        try:
            await self._jobs.finish(job_id)
        except Exception:
            log.exception("finishing job %s failed; it is retried on the next start", job_id)
        finally:
            self._finishing.pop(job_id, None)
