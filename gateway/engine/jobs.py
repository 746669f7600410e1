"""Finishing a job: once every shot is terminal, assemble the final cut if asked and
set the job's status and cost. Idempotent, so a restart can simply run it again.

A job without a final cut usually ends in its last shot's own commit
(:func:`gateway.engine.ending.end_if_done`); this ends the rest, and is the backstop."""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from gateway.db import Database
from gateway.engine.ending import TERMINAL_ATTEMPT, TERMINAL_JOB, job_status, record_job_end
from gateway.engine.outputs import OutputWriter, StoredOutput
from gateway.media import MediaError
from gateway.storage import StorageError
from gateway.tables import Attempt, Job, Shot, utcnow

__all__ = ["JobFinisher", "job_status"]

log = logging.getLogger(__name__)


class JobFinisher:
    def __init__(self, db: Database, outputs: OutputWriter) -> None:
        self._db = db
        self._outputs = outputs

    def recover(self) -> None:
        """Keep the spooled outputs of live attempts (they wait for the store), drop the rest."""
        with self._db.session() as s:
            live = s.exec(select(Attempt.id).where(col(Attempt.status).not_in(TERMINAL_ATTEMPT)))
            self._outputs.recover(keep=set(live))

    async def finish(self, job_id: str) -> None:
        with self._db.session() as s:
            job = s.get(Job, job_id)
            if job is None or job.status in TERMINAL_JOB:
                return
            shots = sorted(s.exec(select(Shot).where(Shot.job_id == job_id)), key=lambda x: x.index)
            if any(sh.status not in ("succeeded", "failed", "canceled") for sh in shots):
                return
            status = job_status([sh.status for sh in shots], job.cancel_requested)
            done = [sh for sh in shots if sh.status == "succeeded"]
            if not (job.assemble and status in ("succeeded", "partially_succeeded")):
                self._record(s, job, status, done, None, None)  # one transaction
                return
        final, final_error = None, None
        try:
            final = await self._outputs.store_final(job, done)
        except (MediaError, StorageError, OSError) as exc:
            log.warning("final cut of %s failed: %s", job_id, exc)
            final_error = f"assembling the final cut failed: {exc}"
        except Exception as exc:  # never leave the job unfinished over its final cut
            log.exception("final cut of %s failed", job_id)
            final_error = f"assembling the final cut failed: {type(exc).__name__}: {exc}"
        with self._db.session() as s:
            row = s.get(Job, job_id)
            assert row is not None
            if row.status not in TERMINAL_JOB:
                self._record(s, row, status, done, final, final_error)

    @staticmethod
    def _record(
        s: Session,
        job: Job,
        status: str,
        done: list[Shot],
        final: StoredOutput | None,
        final_error: str | None,
    ) -> None:
        cost = sum(sh.cost_micros or 0 for sh in done)
        cut = (final.key, final.info) if final is not None else None
        record_job_end(
            s.connection(), job, status, cost, utcnow(), final=cut, final_error=final_error
        )
        s.commit()
