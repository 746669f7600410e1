"""Which running jobs have a cancel requested: one read a second, not one per poll."""

from __future__ import annotations

from sqlmodel import col, select

from gateway.db import Database
from gateway.engine.policy import Clock
from gateway.tables import Job

__all__ = ["CancelWatch"]

_RUNNING_JOB = ("queued", "running")


class CancelWatch:
    """The ids of running jobs flagged ``cancel_requested``, re-read at most once every
    ``period_s`` however many shots ask.

    A cancel made in this process reaches its shots at once (the executor cancels their
    tasks). One made by another process (an API-only worker) only sets the flag, which
    every poll of a running shot used to read: one query per poll, about a third of a
    poll's CPU at thousands of jobs in flight. Now such a cancel is seen by the shot's
    first poll after the next read, at most ``period_s`` later.
    """

    def __init__(self, db: Database, clock: Clock, period_s: float = 1.0) -> None:
        self._db = db
        self._clock = clock
        self._period_s = period_s
        self._read_at: float | None = None
        self._flagged: frozenset[str] = frozenset()

    def requested(self, job_id: str) -> bool:
        now = self._clock.now()
        if self._read_at is None or not 0 <= now - self._read_at < self._period_s:
            self._flagged = self._read()
            self._read_at = now
        return job_id in self._flagged

    def _read(self) -> frozenset[str]:
        with self._db.session() as s:
            return frozenset(s.connection().execute(_FLAGGED).scalars())


_FLAGGED = select(col(Job.id)).where(  # built once: building costs more than running it
    col(Job.cancel_requested).is_(True), col(Job.status).in_(_RUNNING_JOB)
)
