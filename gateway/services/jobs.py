"""Jobs: accept a storyboard (planned, priced, persisted in one transaction), read, cancel."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import bindparam, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway import ledger, limits
from gateway.catalog import micros, usd
from gateway.db import Database
from gateway.engine.ending import TERMINAL_JOB, TERMINAL_SHOT
from gateway.engine.shots import FirstAttempts
from gateway.ids import new_id
from gateway.planning import hold_micros
from gateway.services.auth import Principal
from gateway.services.errors import ServiceError
from gateway.services.views import job_view, new_job_view
from gateway.tables import Attempt, Event, Job, Shot, utcnow
from reelgate import types as t

__all__ = ["JobNotifier", "JobService", "load_job_view"]


# Built once: constructing a statement costs more than SQLAlchemy's compiled-cache lookup.
# ``inline``: nothing needs the event's generated id, so it is inserted without RETURNING.
_INSERT_JOB = insert(Job)
_INSERT_SHOT = insert(Shot)
_INSERT_ATTEMPT = insert(Attempt)
_INSERT_EVENT = insert(Event).inline()


class JobNotifier(Protocol):
    """The executor, as the job service sees it."""

    def first_attempts(
        self,
        request: t.JobCreate,
        job: dict[str, Any],
        shots: list[dict[str, Any]],
        plans: Sequence[t.ShotPlan],
    ) -> FirstAttempts: ...

    def job_created(
        self, job_id: str, shot_ids: Sequence[str], first: FirstAttempts | None = None
    ) -> None: ...

    async def cancel_job(self, job_id: str) -> None: ...


def request_digest(body: t.JobCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def load_job_view(session: Session, job: Job) -> t.Job:
    shots = list(session.exec(select(Shot).where(Shot.job_id == job.id)))
    attempts: dict[str, list[Attempt]] = {}
    if shots:
        rows = session.exec(select(Attempt).where(col(Attempt.shot_id).in_([s.id for s in shots])))
        for a in rows:
            attempts.setdefault(a.shot_id, []).append(a)
    return job_view(job, shots, attempts)


#: The lookup of a key already taken reads two columns with a statement built once, and
#: loads the job only when it exists (see :meth:`JobService._create`).
_KEYED_JOB = select(col(Job.id), col(Job.request_sha256)).where(
    col(Job.tenant_id) == bindparam("tenant"), col(Job.idempotency_key) == bindparam("key")
)


def _replay(s: Session, tenant_id: str, key: str, digest: str) -> t.Job | None:
    found = s.connection().execute(_KEYED_JOB, {"tenant": tenant_id, "key": key}).first()
    if found is None:
        return None
    if found.request_sha256 != digest:
        raise ServiceError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key {key!r} was used for a different request body; "
            "use a new key for a new job.",
        )
    job = s.get(Job, found.id)
    assert job is not None
    return load_job_view(s, job)


def _new_rows(
    principal: Principal,
    body: t.JobCreate,
    quote: t.Quote,
    digest: str,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The new job's and shots' column values; the rest are the columns' defaults.

    Columns that start empty are left out rather than set to None: a None bound to a JSON
    column would store JSON ``null`` where the ORM stores SQL NULL.
    """
    now = utcnow()
    job_id = new_id("job")
    tenant_id = principal.tenant_id
    job = {
        "id": job_id,
        "tenant_id": tenant_id,
        "request": body.model_dump(mode="json", exclude_none=True),
        "request_sha256": digest,
        "idempotency_key": idempotency_key,
        "assemble": body.assemble,
        "estimate_micros": micros(quote.total_usd),
        "key_id": principal.key_id,
        "markup_bps": principal.markup_bps or None,
        "counted": principal.metered or None,
        "created_at": now,
        "updated_at": now,
    }
    shots = [
        {
            "id": new_id("shot"),
            "job_id": job_id,
            "tenant_id": tenant_id,
            "index": plan.index,
            "name": spec.name,
            "kind": plan.kind,
            "model": plan.model,
            "spec": spec.model_dump(mode="json", exclude_none=True),
            "plan": plan.model_dump(mode="json"),
            "estimate_micros": micros(plan.estimate_usd),
            "created_at": now,
            "updated_at": now,
        }
        for spec, plan in zip(body.shots, quote.shots, strict=True)
    ]
    return job, shots


def _insert(
    s: Session,
    job: dict[str, Any],
    shots: list[dict[str, Any]],
    holds: list[tuple[str, str, int]] | None,
    principal: Principal,
    first: FirstAttempts | None,
) -> limits.Refusal | None:
    """Job, shots, the ``job.created`` event and, for a metered tenant, the shots' holds
    and its limits' counters, in one transaction, as Core INSERTs; None: committed.

    The ORM unit of work (state tracking, flush ordering, RETURNING) cost more than the
    statements themselves on this hot path, and nothing is read back. The holds come
    last: they lock the tenant's row, which is then held only until the commit.
    """
    conn = s.connection()
    conn.execute(_INSERT_JOB, [job])
    conn.execute(_INSERT_SHOT, shots)
    created = {"job_id": job["id"], "shot_id": None, "type": "job.created"}
    events = [{**created, "data": {"shots": len(shots)}, "created_at": job["created_at"]}]
    if first is not None:
        conn.execute(_INSERT_ATTEMPT, first.rows)
        events += first.events
    conn.execute(_INSERT_EVENT, events)
    if holds is not None:
        refused = ledger.take_holds(
            conn,
            job["tenant_id"],
            job["id"],
            principal.key_id,
            holds,
            job["created_at"],
            key_counted=principal.key_counted,
        )
        if refused is not None:
            s.rollback()
            return refused
    s.commit()  # after the holds, a no-op: they committed with the tenant's UPDATE
    return None


#: What a 429 ``too_many_jobs`` asks a client to wait: jobs run for seconds to minutes.
JOBS_RETRY_AFTER_S = 5


def _refused(why: limits.Refusal) -> ServiceError:
    needed = usd(why.needed)
    whose = "this tenant's" if why.scope == "tenant" else "this API key's"
    if why.kind == "credits":
        shortfall, balance = usd(why.needed - why.limit), usd(why.limit)
        return ServiceError(
            402,
            "insufficient_credits",
            f"This job reserves {needed} USD (per shot, the dearest model on its route) "
            f"and the balance is {balance} USD: add {shortfall} USD of credits, shorten "
            "the job, or pin each shot's `model` to hold only its estimate.",
            extra={"shortfall_usd": shortfall, "balance_usd": balance},
        )
    if why.kind == "budget":
        budget, spent = usd(why.limit), usd(why.used)
        return ServiceError(
            402,
            "monthly_budget_exceeded",
            f"This job reserves {needed} USD and {whose} monthly budget of {budget} USD "
            f"has {spent} USD spent or held this month ({usd(why.limit - why.used)} USD "
            "left): raise the budget, shorten the job, or wait for next month.",
            extra={
                "limit_scope": why.scope,
                "monthly_budget_usd": budget,
                "month_spent_usd": spent,
                "needed_usd": needed,
            },
        )
    return ServiceError(
        429,
        "too_many_jobs",
        f"{why.used} jobs are running and {whose} limit is {why.limit} at once: "
        "retry when one has finished.",
        headers={"Retry-After": str(JOBS_RETRY_AFTER_S)},
        extra={"limit_scope": why.scope, "max_concurrent_jobs": why.limit},
    )


class JobService:
    def __init__(
        self,
        db: Database,
        plan: Callable[[t.JobCreate, int], t.Quote],
        notifier: JobNotifier | None,
    ) -> None:
        self._db = db
        self._plan = plan
        self._notifier = notifier

    # --- create ------------------------------------------------------------------

    async def create(
        self, principal: Principal, body: t.JobCreate, idempotency_key: str | None = None
    ) -> tuple[t.Job, bool]:
        """Return the job and whether it was replayed from an earlier identical request.

        A prepaid tenant's job holds its cost in the transaction that creates it (402
        ``insufficient_credits`` with the shortfall when the balance is short).
        """
        job, first, replayed = await self._db.run(self._create, principal, body, idempotency_key)
        if not replayed and self._notifier is not None:
            # On the event loop: it starts tasks. They take the rows just written (the
            # first attempts' too), so no read stands between the commit and the submit.
            self._notifier.job_created(job.id, [shot.id for shot in job.shots], first)
        return job, replayed

    def _create(
        self, principal: Principal, body: t.JobCreate, idempotency_key: str | None
    ) -> tuple[t.Job, FirstAttempts | None, bool]:
        """Plan and persist; blocking (``create`` runs it through ``Database.run``).

        One session serves the insert and, where needed, the idempotency lookup (one
        pooled connection, one pre-ping); the answer is built from the rows just written,
        not read back. Almost every key is new, so the key is not looked up first: the
        job's INSERT, the transaction's first statement, meets the UNIQUE key of an
        earlier job, and only then is that job read and replayed. A plan that is now
        refused also looks first, so a retry of an accepted request is answered even
        after the catalog changed.
        """
        digest = request_digest(body)
        tenant_id = principal.tenant_id
        with self._db.session() as s:

            def replayed() -> t.Job | None:
                if idempotency_key is None:
                    return None
                return _replay(s, tenant_id, idempotency_key, digest)

            try:
                quote = self._plan(body, principal.markup_bps)
            except ServiceError:
                if (replay := replayed()) is not None:
                    return replay, None, True
                raise
            job, shots = _new_rows(principal, body, quote, digest, idempotency_key)
            holds = (
                [
                    (row["id"], row["model"], hold_micros(plan))
                    for row, plan in zip(shots, quote.shots, strict=True)
                ]
                if principal.metered
                else None
            )
            first = (
                self._notifier.first_attempts(body, job, shots, quote.shots)
                if self._notifier is not None
                else None
            )
            try:
                refused = _insert(s, job, shots, holds, principal, first)
            except IntegrityError:
                # The key's earlier job (or a concurrent request's, which won the race).
                s.rollback()
                if (replay := replayed()) is None:
                    raise
                return replay, None, True
        if refused is not None:
            raise _refused(refused)
        attempts = [ctx.attempt for ctx in first.ctxs] if first is not None else None
        return new_job_view(job, shots, body.shots, quote.shots, attempts), first, False

    # --- read ---------------------------------------------------------------------

    def _owned_job(self, s: Session, tenant_id: str, job_id: str) -> Job:
        job = s.get(Job, job_id)
        if job is None or job.tenant_id != tenant_id:
            raise ServiceError(404, "job_not_found", f"No job {job_id!r}.")
        return job

    def get(self, tenant_id: str, job_id: str) -> t.Job:
        with self._db.session() as s:
            return load_job_view(s, self._owned_job(s, tenant_id, job_id))

    def list(
        self, tenant_id: str, *, limit: int, cursor: str | None, status: str | None
    ) -> t.Page[t.Job]:
        with self._db.session() as s:
            q = select(Job).where(Job.tenant_id == tenant_id)
            if cursor:
                q = q.where(Job.id < cursor)
            if status:
                q = q.where(Job.status == status)
            rows = list(s.exec(q.order_by(col(Job.id).desc()).limit(limit + 1)))
            more = len(rows) > limit
            rows = rows[:limit]
            data = [load_job_view(s, j) for j in rows]
        return t.Page[t.Job](data=data, next_cursor=rows[-1].id if more and rows else None)

    # --- cancel -------------------------------------------------------------------

    async def cancel(self, tenant_id: str, job_id: str) -> t.Job:
        with self._db.session() as s:
            job = self._owned_job(s, tenant_id, job_id)
            if job.status not in TERMINAL_JOB and not job.cancel_requested:
                job.cancel_requested = True
                job.updated_at = utcnow()
                s.add(Event(job_id=job.id, type="job.cancel_requested", data={}))
                s.add(job)
                s.commit()
        if self._notifier is not None:
            await self._notifier.cancel_job(job_id)
        else:  # no executor here (API-only process): nothing runs, so end the job now
            self._cancel_unstarted(job_id)
        return self.get(tenant_id, job_id)

    def _cancel_unstarted(self, job_id: str) -> None:
        now = utcnow()
        with self._db.session() as s:
            job = s.get(Job, job_id)
            if job is None or job.status in TERMINAL_JOB:
                return
            shots = s.exec(select(Shot).where(Shot.job_id == job_id)).all()
            if any(sh.status not in ("queued", *TERMINAL_SHOT) for sh in shots):
                return  # a worker elsewhere has started it; it will see cancel_requested
            for sh in shots:
                if sh.status == "queued":
                    sh.status, sh.updated_at = "canceled", now
                    s.add(sh)
            job.status, job.updated_at = "canceled", now
            s.add(job)
            s.add(Event(job_id=job_id, type="job.canceled", data={"final": False}))
            s.flush()
            ledger.release_open_holds(s.connection(), job_id, now)
            limits.job_ended(s.connection(), job_id, job.tenant_id, job.key_id)
            s.commit()
