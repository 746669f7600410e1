"""Recording a job's end: its status from its shots', its cost, and what it held let go.

Both run inside the caller's transaction. The last shot's success ends its job in the
commit that records the shot (a job without a final cut is then done the moment its
output is), and :class:`~gateway.engine.jobs.JobFinisher` ends the rest: final cuts,
failures, cancels and whatever a restart finds finished.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlmodel import col

from gateway import ledger, limits
from gateway.tables import Event, Job, Shot

__all__ = [
    "TERMINAL_ATTEMPT",
    "TERMINAL_JOB",
    "TERMINAL_SHOT",
    "end_if_done",
    "job_status",
    "record_job_end",
]

TERMINAL_JOB = frozenset({"succeeded", "partially_succeeded", "failed", "canceled"})
TERMINAL_SHOT = frozenset({"succeeded", "failed", "canceled"})
TERMINAL_ATTEMPT = frozenset({"succeeded", "failed", "canceled", "unknown"})

_INSERT_EVENT = insert(Event).inline()
# Built once: building a statement costs more than running it.
_END_JOB = update(Job).where(
    col(Job.id) == bindparam("row_id"), col(Job.status).not_in(TERMINAL_JOB)
)
_SHOTS = select(col(Shot.status), col(Shot.cost_micros)).where(col(Shot.job_id) == bindparam("job"))
_CANCEL_REQUESTED = select(col(Job.cancel_requested)).where(col(Job.id) == bindparam("job"))


def job_status(shot_states: list[str], cancel_requested: bool) -> str:
    """A cancel that arrived after every shot had finished changes nothing."""
    succeeded = shot_states.count("succeeded")
    if cancel_requested and "canceled" in shot_states:
        return "canceled"
    if succeeded == len(shot_states):
        return "succeeded"
    return "partially_succeeded" if succeeded else "failed"


def record_job_end(
    conn: Connection,
    job: Any,
    status: str,
    cost_micros: int,
    now: datetime,
    *,
    final: tuple[str, dict[str, Any]] | None = None,
    final_error: str | None = None,
) -> bool:
    """Set the job's end (only from a live state: False when it had already ended), with
    its event, the release of any hold still open and its place in the limits freed.

    ``job`` needs ``id``, ``tenant_id``, ``key_id`` and ``counted``; ``final`` is (key, info).
    """
    values: dict[str, Any] = {
        "status": status,
        "cost_micros": cost_micros,
        "final_error": final_error,
        "updated_at": now,
    }
    if final is not None:
        values["final_key"], values["final_output"] = final
    ended = conn.execute(_END_JOB, {**values, "row_id": job.id})
    if ended.rowcount != 1:
        return False
    data = {"final": final is not None}
    event = {"job_id": job.id, "shot_id": None, "type": f"job.{status}", "data": data}
    conn.execute(_INSERT_EVENT, [{**event, "created_at": now}])
    # Backstop: whatever path ended a shot without settling it, no hold outlives its job.
    ledger.release_open_holds(conn, job.id, now)
    if job.counted:  # only a counted job holds a place in its limits (saves a statement)
        limits.job_ended(conn, job.id, job.tenant_id, job.key_id)
    return True


def end_if_done(conn: Connection, job: Job, now: datetime, last: tuple[str, int | None]) -> bool:
    """End the job here when every shot is terminal and no final cut is asked for.

    ``job`` is the caller's row (its id, owner, ``assemble`` and ``counted`` do not change
    while it runs); ``last`` is the (status, cost) of the shot this transaction ended,
    so a one-shot job reads nothing. Two last shots committing at once may each see the
    other still live; then neither ends the job and the finisher, which runs after
    every shot task, does.
    """
    if len(job.request.get("shots") or ()) == 1:
        shots = [last]
    else:
        shots = [(row.status, row.cost_micros) for row in conn.execute(_SHOTS, {"job": job.id})]
    states = [state for state, _ in shots]
    if any(state not in TERMINAL_SHOT for state in states):
        return False
    # A cancel changes the status only where a shot was canceled: then read it fresh.
    cancel_requested = "canceled" in states and bool(
        conn.execute(_CANCEL_REQUESTED, {"job": job.id}).scalar()
    )
    status = job_status(states, cancel_requested)
    if job.assemble and status in ("succeeded", "partially_succeeded"):
        return False  # the final cut is the finisher's
    cost = sum(c or 0 for state, c in shots if state == "succeeded")
    return record_job_end(conn, job, status, cost, now)
