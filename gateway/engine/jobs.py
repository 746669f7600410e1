"""Finishing a job: once every shot is terminal, assemble the final cut if asked and
set the job's status and cost. Idempotent, so a restart can simply run it again."""

from __future__ import annotations

import logging

from sqlmodel import Session, col, select

from gateway import ledger, limits
from gateway.db import Database
from gateway.engine.outputs import OutputWriter, StoredOutput
from gateway.engine.shots import TERMINAL_ATTEMPT
from gateway.media import MediaError
from gateway.storage import StorageError
from gateway.tables import Attempt, Event, Job, Shot, utcnow

__all__ = ["JobFinisher", "job_status"]

log = logging.getLogger(__name__)

TERMINAL_JOB = frozenset({"succeeded", "partially_succeeded", "failed", "canceled"})


def job_status(shot_states: list[str], cancel_requested: bool) -> str:
    """A cancel that arrived after every shot had finished changes nothing."""
    succeeded = shot_states.count("succeeded")
    if cancel_requested and "canceled" in shot_states:
        return "canceled"
    if succeeded == len(shot_states):
        return "succeeded"
    return "partially_succeeded" if succeeded else "failed"


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
        job.status = status
        job.cost_micros = sum(sh.cost_micros or 0 for sh in done)
        if final is not None:
            job.final_key, job.final_output = final.key, final.info
        job.final_error = final_error
        job.updated_at = utcnow()
        s.add(job)
        s.add(Event(job_id=job.id, type=f"job.{status}", data={"final": final is not None}))
        # Backstop: whatever path ended a shot without settling it, no hold outlives its job.
        ledger.release_open_holds(s.connection(), job.id, job.updated_at)
        limits.job_ended(s.connection(), job.id, job.tenant_id, job.key_id)
        s.commit()
