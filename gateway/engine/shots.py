"""The attempt state machine for one shot.

``SUBMIT → POLL (until done, honouring the backend's hint) → FETCH+STORE → SETTLE``.
Each call to :meth:`ShotEngine.step` performs one step, persists its result and
returns how long to wait before the next (``None`` once the shot is terminal). So a
restarted process resumes every shot from the database: a submitted attempt is
polled, never submitted twice; a submit whose answer was lost is resubmitted only
when the backend dedupes on our request id, and otherwise marked ``unknown``. (Where
the backend dedupes, the submit's record rides on the attempt's next write: losing it
only means that resubmit.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from adapters.base import (
    Adapter,
    AdapterError,
    BackendFailure,
    BackendJobLost,
    FailureClass,
    GenerationRequest,
    JobStatus,
    RetryableError,
    Submission,
)
from gateway import ledger
from gateway.catalog import micros
from gateway.db import Database
from gateway.engine.cancels import CancelWatch
from gateway.engine.ending import TERMINAL_ATTEMPT, TERMINAL_SHOT, end_if_done
from gateway.engine.outputs import OutputWriter
from gateway.engine.policy import Backoff, Clock
from gateway.ids import new_id
from gateway.media import MediaError
from gateway.storage import StorageError
from gateway.tables import Attempt, Event, Job, Shot, utcnow
from reelgate import types as t

__all__ = ["EngineConfig", "FirstAttempts", "ShotEngine"]

log = logging.getLogger(__name__)


#: (job request, shot index, catalog model id) -> the shot planned for that model.
Replanner = Callable[[t.JobCreate, int, str], t.ShotPlan]
#: catalog model id -> (adapter name, backend model name)
ModelLookup = Callable[[str], tuple[str, str]]


@dataclass(frozen=True)
class EngineConfig:
    max_retries: int = 5
    attempts_per_candidate: int = 2
    attempt_timeout_s: float = 3600.0
    #: Public base URL of this gateway: vendors with webhooks are asked to call
    #: ``{callback_base}/v1/callbacks/{adapter}/{attempt}`` when a job moves.
    callback_base: str | None = None
    #: Multiplies every backend polling hint (<1: poll sooner; the emulator at a
    #: compressed time scale).
    poll_scale: float = 1.0
    #: How often running shots re-read which jobs another process asked to cancel.
    cancel_check_s: float = 1.0


class _Keep:
    """Leave the value as it is (None is a value: unknown progress)."""


KEEP = _Keep()


@dataclass
class _Ctx:
    job: Job
    shot: Shot
    attempt: Attempt
    adapter: Adapter | None  # None: the backend is no longer configured
    #: Attempt fields (and their event) already true in memory, written with the
    #: attempt's next write: see :meth:`ShotEngine._submit_and_record`.
    unsaved: dict[str, object] = field(default_factory=dict)
    unsaved_event: dict[str, object] | None = None
    #: The step that sent the create was cancelled: the create records its own answer.
    abandoned: bool = False
    #: Until when (the engine clock) the job counts as new: made with its job
    #: (:meth:`ShotEngine.first_attempts`) less than ``cancel_check_s`` ago, its steps
    #: skip the cancel flags' read. A cancel from another process then reaches the
    #: shot at most that much later, as between reads anyway; and the read (a query on
    #: the event loop) no longer lands on a local render's first milliseconds, where its
    #: submit and first long poll follow the job's commit at once.
    fresh_until: float = 0.0


class ShotEngine:
    def __init__(
        self,
        db: Database,
        adapters: Callable[[str], Adapter],
        models: ModelLookup,
        replan: Replanner,
        outputs: OutputWriter,
        clock: Clock,
        *,
        config: EngineConfig | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._db = db
        self._adapters = adapters
        self._models = models
        self._replan = replan
        self._outputs = outputs
        self._clock = clock
        self._config = config or EngineConfig()
        self._backoff = backoff or Backoff()
        #: Creates on their way to a backend, by attempt id (see :meth:`settle_submits`).
        self._submits: dict[str, asyncio.Future[Submission]] = {}
        #: Set to cut a running shot's wait short, by shot id (see :meth:`wake`).
        self._wakes: dict[str, asyncio.Event] = {}
        #: The rows of shots whose job is in flight at the backend, kept between polls
        #: by the task that owns them (see :meth:`step`).
        self._live: dict[str, _Ctx] = {}
        #: Shots whose attempt has fields not yet written (see :meth:`_submit_and_record`).
        self._unsaved: dict[str, _Ctx] = {}
        self._cancels = CancelWatch(db, clock, self._config.cancel_check_s)

    async def run(self, shot_id: str) -> None:
        """Advance the shot until it is terminal; :meth:`wake` cuts a wait short."""
        woken = self._wakes.setdefault(shot_id, asyncio.Event())
        try:
            while (delay := await self.step(shot_id)) is not None:
                if delay > 0 and not woken.is_set():
                    await self._clock.sleep_or_wake(woken, delay)
                woken.clear()
        finally:
            self._wakes.pop(shot_id, None)
            self._live.pop(shot_id, None)
            if (unsaved := self._unsaved.pop(shot_id, None)) is not None:
                self._save(unsaved)  # cancelled or stopped: the next owner reads the rows

    def wake(self, shot_id: str) -> bool:
        """Take the shot's next step now (a vendor's callback says its job moved).

        The callback itself is never trusted for state: the step polls the vendor.
        False when no task is running the shot here.
        """
        woken = self._wakes.get(shot_id)
        if woken is None:
            return False
        woken.set()
        return True

    async def step(self, shot_id: str) -> float | None:
        """One step of the shot; how long to wait before the next, None once terminal.

        While the backend runs the job, the task that owns the shot keeps its rows
        between polls (every change goes through this engine, which updates them in
        place), so a poll reads nothing: a cancel from another process still shows
        through ``cancel_requested``, read for all running jobs at once (``CancelWatch``).
        """
        live = self._live.pop(shot_id, None)
        if live is not None:
            if live.fresh_until > self._clock.now() or not self._cancels.requested(live.job.id):
                return await self._step(live)
            self._save(live)  # the cancel below reads the attempt from the database
        with self._db.session() as s:
            shot = s.get(Shot, shot_id)
            if shot is None or shot.status in TERMINAL_SHOT:
                return None
            job = s.get(Job, shot.job_id)
            assert job is not None
            # A queued shot's first attempt came with its job (none where the job was
            # accepted by a process without an engine: it is made here).
            attempt = _latest_attempt(s, shot.id)
            if attempt is None and not job.cancel_requested:
                attempt = self._new_attempt(s, job, shot, 0)
        if job.cancel_requested:
            await self.cancel(shot_id)
            return None
        if attempt is None:  # no candidate could be planned; the shot is already failed
            return None
        if attempt.status in TERMINAL_ATTEMPT:  # every transition is atomic: cannot happen
            raise AssertionError(f"shot {shot_id} is {shot.status} with a finished attempt")
        try:
            ctx = _Ctx(job, shot, attempt, self._adapters(attempt.adapter))
        except AdapterError as err:  # e.g. restarted without the backend this attempt used
            return self._finish_attempt(
                _Ctx(job, shot, attempt, None), "failed", "fallback", err.code, err.message
            )
        return await self._step(ctx)

    async def _step(self, ctx: _Ctx) -> float | None:
        delay = await self._guarded_advance(ctx)
        if delay is not None and ctx.attempt.status in ("submitted", "running"):
            self._live[ctx.shot.id] = ctx
        return delay

    async def _guarded_advance(self, ctx: _Ctx) -> float | None:
        attempt = ctx.attempt
        try:
            return await self._advance(ctx)
        except BackendJobLost as err:
            assert ctx.adapter is not None
            if not ctx.adapter.idempotent_submit:
                return await self._on_error(ctx, err)
            # The backend forgot the job (it restarted): resubmitting under the same
            # request id cannot start a second one.
            self._update(
                ctx,
                status="pending",
                backend_job_id=None,
                submit_started_at=None,
                event=("attempt.resubmitting", {"reason": err.message}),
            )
            return 0.0
        except AdapterError as err:
            return await self._on_error(ctx, err)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug or an unforeseen failure must not strand the job
            log.exception("attempt %s: unexpected error", attempt.id)
            wrapped = RetryableError(
                f"{type(exc).__name__}: {exc}",
                code="internal_error",
                outcome_unknown=attempt.status == "pending",
            )
            return await self._on_error(ctx, wrapped)

    async def _advance(self, ctx: _Ctx) -> float | None:
        status = ctx.attempt.status
        if status == "pending":
            return await self._submit(ctx)
        if status in ("submitted", "running"):
            return await self._poll(ctx)
        if status == "fetching":
            assert ctx.adapter is not None and ctx.attempt.backend_job_id is not None
            spooled = self._outputs.spooled(ctx.attempt.id)
            if spooled is not None:  # the output is here: the backend is not asked again
                status_now = JobStatus(
                    state="succeeded", cost_usd_micros=spooled.vendor_cost_micros
                )
                return await self._fetch(ctx, status_now)
            # Ask again for a fresh status (output URLs expire), then fetch.
            return await self._fetch(ctx, await ctx.adapter.poll(ctx.attempt.backend_job_id))
        raise AssertionError(f"attempt {ctx.attempt.id} in unexpected state {status}")

    # --- steps ----------------------------------------------------------------------

    async def _submit(self, ctx: _Ctx) -> float | None:
        a = ctx.attempt
        assert ctx.adapter is not None
        if a.submit_started_at is not None and not ctx.adapter.idempotent_submit:
            return self._finish_attempt(
                ctx,
                "unknown",
                "fallback",
                "submit_lost",
                "the answer to a submit was lost; not resubmitting blindly",
            )
        if not ctx.adapter.idempotent_submit:  # a resubmit is harmless where it dedupes
            self._update(ctx, submit_started_at=utcnow())
        # Shielded: once the create is on its way, a cancel or a shutdown waits for its
        # answer and records the backend's job id, so the job can be canceled, not orphaned.
        task = asyncio.ensure_future(self._submit_and_record(ctx))
        self._submits[a.id] = task
        task.add_done_callback(lambda _: self._submits.pop(a.id, None))
        try:
            submission = await asyncio.shield(task)
        except asyncio.CancelledError:
            ctx.abandoned = True
            raise
        return submission.poll_after_s * self._config.poll_scale

    async def _submit_and_record(self, ctx: _Ctx) -> Submission:
        """Submit and record the backend's job id.

        Where the backend dedupes on our request id, the record waits for the
        attempt's next write (its first progress, or its success: one commit fewer per
        shot, and none in the middle of a local render): a crash before it resubmits
        under the same id and gets the same job back. A cancel or a shutdown writes it
        at once (see :meth:`run`), so the backend job can be cancelled or polled.
        """
        assert ctx.adapter is not None
        a = ctx.attempt
        submission = await ctx.adapter.submit(GenerationRequest.model_validate(a.request))
        job_id = submission.backend_job_id
        ctx.unsaved.update(backend_job_id=job_id, status="submitted", retries=0)
        for name, value in ctx.unsaved.items():
            setattr(a, name, value)
        data: dict[str, object] = {"backend_job_id": job_id}
        ctx.unsaved_event = _event(ctx.job.id, a.shot_id, "attempt.submitted", data, utcnow())
        if ctx.adapter.idempotent_submit and not ctx.abandoned:
            self._unsaved[a.shot_id] = ctx
        else:
            self._update(ctx)  # writes what was just held unsaved
        return submission

    def _save(self, ctx: _Ctx) -> None:
        """Write what the attempt holds unsaved, unless the attempt was ended meanwhile
        (a cancel that raced the success): its end is not overwritten."""
        if not ctx.unsaved and ctx.unsaved_event is None:
            return
        now = utcnow()
        with self._db.session() as s:
            conn = s.connection()
            values = {**ctx.unsaved, "updated_at": now, "row_id": ctx.attempt.id}
            if conn.execute(_SAVE_SUBMIT, values).rowcount == 1:
                if ctx.shot.status == "queued":
                    _start(conn, ctx, now)
                if events := _unsaved_events(ctx):
                    conn.execute(_INSERT_EVENT, events)
            s.commit()
        self._saved(ctx)

    def _saved(self, ctx: _Ctx) -> None:
        """A write that carried the unsaved fields and event has committed."""
        ctx.unsaved, ctx.unsaved_event = {}, None
        self._unsaved.pop(ctx.shot.id, None)

    async def settle_submits(self, timeout: float = 30.0) -> None:
        """Wait for creates already sent, so their job ids are recorded (shutdown, cancel)."""
        pending = list(self._submits.values())
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def _poll(self, ctx: _Ctx) -> float | None:
        a = ctx.attempt
        assert ctx.adapter is not None and a.backend_job_id is not None
        status = await ctx.adapter.poll(a.backend_job_id)
        if status.state in ("queued", "running") and self._expired(a):
            await self._cancel_backend(ctx.attempt, ctx.adapter)
            return self._finish_attempt(
                ctx,
                "failed",
                "fallback",
                "timeout",
                f"no result within {self._config.attempt_timeout_s:g} s",
            )
        if status.state == "succeeded":
            return await self._fetch_now(ctx, status)
        return self._apply_status(ctx, status)

    async def _fetch_now(self, ctx: _Ctx, status: JobStatus) -> float | None:
        """Fetch in the step that saw success: no commit in between. Only a fetch that
        fails is recorded as ``fetching``, so its retries (and a restart) fetch again."""
        try:
            return await self._fetch(ctx, status)
        except AdapterError:
            self._update(
                ctx,
                status="fetching",
                progress=1.0,
                queue_position=None,
                shot_progress=1.0,
            )
            raise

    def _apply_status(self, ctx: _Ctx, status: JobStatus) -> float | None:
        a = ctx.attempt
        if status.state == "failed":
            failure = status.failure
            code = failure.code if failure else "generation_failed"
            message = failure.message if failure else "the backend reported a failure"
            klass: FailureClass = failure.failure_class if failure else "fallback"
            return self._finish_attempt(ctx, "failed", klass, code, message)
        if status.state == "canceled":
            return self._finish_attempt(
                ctx, "failed", "fallback", "canceled_by_backend", "the backend canceled the job"
            )
        new_state = "running" if status.state == "running" else "submitted"
        seen = (status.progress, status.step, status.total_steps, status.queue_position)
        if (a.status, a.progress, a.step, a.total_steps, a.queue_position, a.retries) != (
            new_state,
            *seen,
            0,
        ):
            self._update(
                ctx,
                status=new_state,
                progress=status.progress,
                step=status.step,
                total_steps=status.total_steps,
                queue_position=status.queue_position,
                retries=0,
                shot_progress=status.progress,
            )
        scale, hint = self._config.poll_scale, status.next_poll_s
        if hint == 0:  # a long poll: the backend itself waits for the next change
            return 0.0
        # The hint, stretched as a long job ages: every tenth of its age, a minute at most.
        made = a.created_at
        age = self._clock.now() - made.replace(tzinfo=made.tzinfo or utcnow().tzinfo).timestamp()
        return max(hint * scale, min(age / 10, 60.0 * scale))

    async def _fetch(self, ctx: _Ctx, status: JobStatus) -> float | None:
        a, job = ctx.attempt, ctx.job
        assert ctx.adapter is not None and a.backend_job_id is not None
        if status.state != "succeeded":
            return self._finish_attempt(
                ctx,
                "failed",
                "fallback",
                "output_vanished",
                f"backend reports {status.state!r} after success",
            )
        attempts = [a]  # numbers count up: the first attempt has no history
        if a.number > 1:
            with self._db.session() as s:
                attempts = list(s.exec(select(Attempt).where(Attempt.shot_id == ctx.shot.id)))
        cost = status.cost_usd_micros
        if cost is None:
            cost = micros(t.ShotPlan.model_validate(a.plan).estimate_usd)
        chunks = ctx.adapter.download(a.backend_job_id, status)

        def spooled(reason: str) -> None:  # the store is down: the output waits in the spool
            self._update(
                ctx,
                status="fetching",
                progress=1.0,
                queue_position=None,
                shot_progress=1.0,
                event=("attempt.spooled", {"reason": reason}),
            )

        try:  # waits out a store outage; only the upload is retried (vendor URLs expire)
            stored = await self._outputs.store_shot(
                job,
                ctx.shot,
                a,
                attempts,
                chunks,
                cost,
                vendor_cost_micros=status.cost_usd_micros,
                on_outage=spooled,
            )
        except MediaError as exc:  # the backend's file is not a readable video
            raise BackendFailure(f"unusable output: {exc}", code="bad_output") from exc
        except (StorageError, OSError) as exc:  # disk full, wrong bytes: fetch again, later
            raise RetryableError(f"storing the output failed: {exc}", code="storage") from exc
        now = utcnow()
        with self._db.session() as s:
            # Success and its capture commit together; the shot moves only from a live
            # state, and the ledger's UNIQUE (shot_id, kind) refuses a second capture.
            conn = s.connection()
            charge = ledger.shot_charge(
                ctx.shot.plan, a.model, status.cost_usd_micros, cost, job.markup_bps
            )
            won = conn.execute(
                _FINISH_SHOT,
                {
                    "row_id": ctx.shot.id,
                    "status": "succeeded",
                    "progress": 1.0,
                    "updated_at": now,
                    "output_key": stored.key,
                    "output": stored.info,
                    "cost_micros": charge,
                    "model": a.model,
                },
            )
            try:
                settled = won.rowcount == 1 and ledger.settle_shot(
                    conn,
                    ctx.shot,
                    charge=charge,
                    attempt_id=a.id,
                    model=a.model,
                    key_id=job.key_id,
                    now=now,
                )
            except IntegrityError:
                settled = False
            if not settled:  # canceled meanwhile, or already settled elsewhere
                log.warning("shot %s was already settled; not charging it again", ctx.shot.id)
                s.rollback()
                return None
            if settled.captured != charge:  # capped at the hold
                conn.execute(_UPDATE_SHOT, {"row_id": ctx.shot.id, "cost_micros": settled.captured})
            done = {"status": "succeeded", "cost_micros": cost, "updated_at": now}
            conn.execute(_UPDATE_ATTEMPT, {**ctx.unsaved, **done, "row_id": a.id})
            data = {"sha256": stored.info["sha256"], "model": a.model}
            if status.vendor_usage:  # what the vendor says it billed, in its units
                data["vendor_usage"] = dict(status.vendor_usage)
            succeeded = _event(job.id, ctx.shot.id, "shot.succeeded", data, now)
            conn.execute(_INSERT_EVENT, [*_unsaved_events(ctx), succeeded])
            end_if_done(conn, job, now, ("succeeded", settled.captured))  # the last ends its job
            s.commit()
        self._saved(ctx)
        return None

    # --- failures and fallbacks -----------------------------------------------------------

    async def _on_error(self, ctx: _Ctx, err: AdapterError) -> float | None:
        a = ctx.attempt
        if a.status == "pending":
            if err.outcome_unknown and not (ctx.adapter and ctx.adapter.idempotent_submit):
                # The create may have reached the vendor, and no vendor dedupes creates:
                # never resubmit blindly; the next candidate takes over.
                return self._finish_attempt(ctx, "unknown", "fallback", err.code, err.message)
            self._update(ctx, submit_started_at=None)  # the backend answered: no job exists
        in_flight = a.backend_job_id is not None
        # A job the backend is running is worth waiting for: transient poll and fetch
        # errors are retried until the attempt's deadline, not abandoned after a count.
        if err.retryable and (
            a.retries < self._config.max_retries or (in_flight and not self._expired(a))
        ):
            delay = self._backoff.delay(a.retries + 1, err.retry_after)
            self._update(
                ctx,
                retries=a.retries + 1,
                error_code=err.code,
                error_message=err.message,
                event=("attempt.retry", {"code": err.code, "delay_s": round(delay, 3)}),
            )
            return delay
        if in_flight:  # leaving a live backend job behind would keep it billing
            await self._cancel_backend(ctx.attempt, ctx.adapter)
        klass: FailureClass = "fallback" if err.retryable else err.failure_class
        return self._finish_attempt(ctx, "failed", klass, err.code, err.message)

    def _finish_attempt(
        self, ctx: _Ctx, state: str, klass: FailureClass, code: str, message: str
    ) -> float | None:
        """End this attempt and open the next one (same or next candidate), or fail the shot."""
        a = ctx.attempt
        a.status = state  # the in-memory row stays true: a finished attempt is never polled
        with self._db.session() as s:
            attempt = s.get(Attempt, a.id)
            shot = s.get(Shot, ctx.shot.id)
            job = s.get(Job, ctx.shot.job_id)
            assert attempt is not None and shot is not None and job is not None
            for name, value in ctx.unsaved.items():
                setattr(attempt, name, value)
            if ctx.unsaved_event is not None:
                s.connection().execute(_INSERT_EVENT, [ctx.unsaved_event])
            attempt.status, attempt.error_code, attempt.error_message = state, code, message
            attempt.updated_at = utcnow()
            s.add(attempt)
            s.add(
                Event(
                    job_id=shot.job_id,
                    shot_id=shot.id,
                    type=f"attempt.{state}",
                    data={"code": code, "message": message, "class": klass},
                )
            )
            next_candidate = self._next_candidate(s, shot, attempt, klass)
            if next_candidate is not None:
                # Committed together with the finished attempt: no crash window between them.
                made = self._new_attempt(s, job, shot, next_candidate)
                self._saved(ctx)
                return 0.0 if made else None
            live = shot.status not in TERMINAL_SHOT
            shot.status, shot.error_code, shot.error_message = "failed", code, message
            shot.updated_at = utcnow()
            s.add(shot)
            s.add(
                Event(
                    job_id=shot.job_id,
                    shot_id=shot.id,
                    type="shot.failed",
                    data={"code": code, "message": message},
                )
            )
            if live:  # the failure releases the shot's hold, in the same transaction
                ledger.settle_shot(
                    s.connection(),
                    shot,
                    charge=None,
                    attempt_id=attempt.id,
                    model=attempt.model,
                    key_id=job.key_id,
                    now=shot.updated_at,
                )
            s.flush()  # end_if_done reads the shot's failure
            end_if_done(s.connection(), job, shot.updated_at, ("failed", None))
            s.commit()
        self._saved(ctx)
        return None

    def _next_candidate(
        self, s: Session, shot: Shot, attempt: Attempt, klass: FailureClass
    ) -> int | None:
        if klass == "fatal":
            return None
        if klass == "retryable":
            same = s.exec(
                select(Attempt.id).where(
                    Attempt.shot_id == attempt.shot_id, Attempt.candidate == attempt.candidate
                )
            ).all()
            if len(same) < self._config.attempts_per_candidate:
                return attempt.candidate
        nxt = attempt.candidate + 1
        return nxt if nxt < len(_candidates(shot)) else None

    def _new_attempt(self, s: Session, job: Job, shot: Shot, candidate: int) -> Attempt | None:
        """Plan the shot for its ``candidate``-th model and persist a pending attempt."""
        base = t.ShotPlan.model_validate(shot.plan)
        models = _candidates(shot)
        model_id = models[candidate]
        request = t.JobCreate.model_validate(job.request)
        try:
            plan = base if candidate == 0 else self._replan(request, shot.index, model_id)
        except Exception as exc:  # a fallback model that cannot take this shot
            log.info("candidate %s cannot take shot %s: %s", model_id, shot.id, exc)
            if candidate + 1 < len(models):
                return self._new_attempt(s, job, shot, candidate + 1)
            shot.status, shot.error_code, shot.error_message = "failed", "no_route", str(exc)
            s.add(shot)
            s.commit()
            return None
        number = (
            1
            if shot.status == "queued"
            else len(s.exec(select(Attempt.id).where(Attempt.shot_id == shot.id)).all()) + 1
        )
        attempt = self._attempt(
            request, shot.id, shot.index, shot.kind, model_id, plan, candidate, number
        )
        shot.status, shot.model, shot.updated_at = "running", model_id, utcnow()
        s.add_all([attempt, shot])
        if job.status == "queued":
            job.status, job.updated_at = "running", utcnow()
            s.add(job)
        s.add(
            Event(
                job_id=job.id,
                shot_id=shot.id,
                type="attempt.created",
                data={"number": number, "model": model_id},
            )
        )
        s.commit()
        return attempt

    def _attempt(
        self,
        request: t.JobCreate,
        shot_id: str,
        index: int,
        kind: str,
        model_id: str,
        plan: t.ShotPlan,
        candidate: int,
        number: int,
        *,
        plan_json: dict[str, Any] | None = None,
    ) -> Attempt:
        """A pending attempt of the shot on ``model_id``, with the backend's request."""
        adapter, backend_model = self._models(model_id)
        attempt_id = new_id("att")
        spec = request.shots[index]
        camera = spec.prompt.camera if isinstance(spec.prompt, t.StructuredPrompt) else None
        gen = GenerationRequest(
            request_id=attempt_id,
            model=backend_model,
            prompt=plan.prompt_sent,
            negative_prompt=plan.negative_sent,
            duration_s=plan.params.duration_s,
            fps=plan.params.fps,
            width=plan.params.width,
            height=plan.params.height,
            aspect_ratio=plan.params.aspect_ratio,
            resolution=plan.params.resolution,
            seed=plan.params.seed,
            audio=plan.params.audio,
            image=spec.image,
            last_frame=spec.last_frame,
            kind=kind,
            title=spec.name,
            camera=camera,
            callback_url=self._callback_url(adapter, attempt_id),
        )
        now = utcnow()
        return Attempt(
            id=attempt_id,
            shot_id=shot_id,
            number=number,
            candidate=candidate,
            model=model_id,
            adapter=adapter,
            status="pending",
            request=gen.model_dump(mode="json"),
            plan=plan_json if plan_json is not None else plan.model_dump(mode="json"),
            retries=0,
            created_at=now,
            updated_at=now,
        )

    def first_attempts(
        self,
        request: t.JobCreate,
        job: dict[str, Any],
        shots: list[dict[str, Any]],
        plans: Sequence[t.ShotPlan],
    ) -> FirstAttempts:
        """A new job's first attempts, for the job's own transaction (``job`` and
        ``shots`` are its rows, ``plans`` the shots' plans they were made from): after the
        commit, :meth:`adopt` hands them to the steps, so a shot's first step submits
        without a read or a commit of its own."""
        attempts = []
        for shot, plan in zip(shots, plans, strict=True):
            model_id = _route(plan)[0]
            attempts.append(
                self._attempt(
                    request,
                    shot["id"],
                    shot["index"],
                    shot["kind"],
                    model_id,
                    plan,
                    0,
                    1,
                    plan_json=shot["plan"],  # the same plan, already dumped for the shot
                )
            )
        rows = [{c: getattr(a, c) for c in _ATTEMPT_COLUMNS} for a in attempts]
        events = [
            _event(
                job["id"],
                a.shot_id,
                "attempt.created",
                {"number": 1, "model": a.model},
                a.created_at,
            )
            for a in attempts
        ]
        job_row = Job(**job)
        fresh = self._clock.now() + self._config.cancel_check_s
        ctxs = [
            _Ctx(job_row, Shot(**shot), a, self._adapter_or_none(a.adapter), fresh_until=fresh)
            for shot, a in zip(shots, attempts, strict=True)
        ]
        return FirstAttempts(rows, events, ctxs)

    def adopt(self, first: FirstAttempts) -> None:
        """Take the rows of a committed :meth:`first_attempts` for the shots' first steps."""
        for ctx in first.ctxs:
            if ctx.adapter is not None:
                self._live[ctx.shot.id] = ctx

    def _callback_url(self, adapter: str, attempt_id: str) -> str | None:
        base = self._config.callback_base
        return f"{base.rstrip('/')}/v1/callbacks/{adapter}/{attempt_id}" if base else None

    # --- cancel ---------------------------------------------------------------------------

    async def cancel(self, shot_id: str) -> None:
        """Cancel a non-terminal shot, and its backend job when the backend can."""
        with self._db.session() as s:
            latest = _latest_attempt(s, shot_id)
        if latest is not None and latest.id in self._submits:
            # A create is on its way: wait for the backend's job id so it can be canceled.
            await asyncio.wait([self._submits[latest.id]], timeout=30)
        with self._db.session() as s:
            shot = s.get(Shot, shot_id)
            if shot is None or shot.status in TERMINAL_SHOT:
                return
            attempt = _latest_attempt(s, shot_id)
        if attempt is not None and attempt.status in TERMINAL_ATTEMPT:
            attempt = None
        if attempt is not None:
            await self._cancel_backend(attempt, self._adapter_or_none(attempt.adapter))
        with self._db.session() as s:
            shot = s.get(Shot, shot_id)
            assert shot is not None
            if shot.status in TERMINAL_SHOT:  # it finished while its backend was canceled
                return
            if attempt is not None:
                row = s.get(Attempt, attempt.id)
                assert row is not None
                row.status, row.updated_at = "canceled", utcnow()
                s.add(row)
            shot.status, shot.updated_at = "canceled", utcnow()
            s.add(shot)
            s.add(Event(job_id=shot.job_id, shot_id=shot.id, type="shot.canceled", data={}))
            ledger.settle_shot(  # the cancel releases the shot's hold, in the same transaction
                s.connection(),
                shot,
                charge=None,
                attempt_id=attempt.id if attempt else None,
                model=shot.model,
                key_id=None,
                now=shot.updated_at,
            )
            s.commit()

    def _adapter_or_none(self, name: str) -> Adapter | None:
        try:
            return self._adapters(name)
        except AdapterError:
            return None

    async def _cancel_backend(self, a: Attempt, adapter: Adapter | None) -> None:
        if adapter is None:
            log.warning("cannot cancel %s: backend %r not configured", a.backend_job_id, a.adapter)
            return
        if a.backend_job_id and a.status not in TERMINAL_ATTEMPT and adapter.supports_cancel:
            try:
                await adapter.cancel(a.backend_job_id)
            except AdapterError as err:
                log.warning("cancel of %s at %s failed: %s", a.backend_job_id, a.adapter, err)

    # --- persistence helpers --------------------------------------------------------------

    def _expired(self, a: Attempt) -> bool:
        created = (
            a.created_at.timestamp()
            if a.created_at.tzinfo
            else a.created_at.replace(tzinfo=utcnow().tzinfo).timestamp()
        )
        return self._clock.now() - created > self._config.attempt_timeout_s

    def _update(
        self,
        ctx: _Ctx,
        *,
        shot_progress: float | _Keep | None = KEEP,
        event: tuple[str, dict[str, object]] | None = None,
        **fields: object,
    ) -> None:
        """Persist attempt fields, and optionally the shot's progress and an event, at once."""
        a, now = ctx.attempt, utcnow()
        values = {**ctx.unsaved, **fields, "updated_at": now}
        events = _unsaved_events(ctx)
        if event is not None:
            events.append(_event(ctx.job.id, a.shot_id, event[0], event[1], now))
        with self._db.session() as s:
            conn = s.connection()
            conn.execute(_UPDATE_ATTEMPT, {**values, "row_id": a.id})
            if ctx.shot.status == "queued":  # the first write of its first step: it started
                _start(conn, ctx, now)
            if not isinstance(shot_progress, _Keep):
                progress = {"row_id": a.shot_id, "progress": shot_progress, "updated_at": now}
                conn.execute(_UPDATE_SHOT, progress)
            if events:
                conn.execute(_INSERT_EVENT, events)
            s.commit()
        self._saved(ctx)
        for name, value in values.items():
            setattr(a, name, value)


def _unsaved_events(ctx: _Ctx) -> list[dict[str, object]]:
    return [ctx.unsaved_event] if ctx.unsaved_event is not None else []


def _start(conn: Connection, ctx: _Ctx, now: datetime) -> None:
    """The shot, and its job if first, move from queued to running."""
    conn.execute(_START_SHOT, {"row_id": ctx.shot.id, "status": "running", "updated_at": now})
    conn.execute(_START_JOB, {"row_id": ctx.job.id, "status": "running", "updated_at": now})
    ctx.shot.status = "running"
    if ctx.job.status == "queued":
        ctx.job.status = "running"


#: Events are only ever appended: a Core INSERT skips the ORM's unit of work.
_INSERT_EVENT = insert(Event).inline()
#: The hot UPDATEs, built once: building a statement costs more than running it (≈300
#: µs against ≈40 µs on SQLite). ``row_id`` picks the row; the other parameters of an
#: execution are the columns it sets.
_UPDATE_ATTEMPT = update(Attempt).where(col(Attempt.id) == bindparam("row_id"))
_UPDATE_SHOT = update(Shot).where(col(Shot.id) == bindparam("row_id"))
_FINISH_SHOT = _UPDATE_SHOT.where(col(Shot.status).not_in(TERMINAL_SHOT))
_START_SHOT = _UPDATE_SHOT.where(col(Shot.status) == "queued")
_SAVE_SUBMIT = _UPDATE_ATTEMPT.where(col(Attempt.status) == "pending")
_START_JOB = update(Job).where(col(Job.id) == bindparam("row_id"), col(Job.status) == "queued")


def _event(
    job_id: str, shot_id: str | None, kind: str, data: dict[str, object], now: datetime
) -> dict[str, object]:
    return {"job_id": job_id, "shot_id": shot_id, "type": kind, "data": data, "created_at": now}


def _latest_attempt(s: Session, shot_id: str) -> Attempt | None:
    return s.exec(
        select(Attempt).where(Attempt.shot_id == shot_id).order_by(col(Attempt.number).desc())
    ).first()


def _candidates(shot: Shot) -> list[str]:
    """The shot's route, in order, without the models routing skipped."""
    return _route(t.ShotPlan.model_validate(shot.plan))


def _route(plan: t.ShotPlan) -> list[str]:
    return [c.model for c in plan.route if c.status != "skipped"]


_ATTEMPT_COLUMNS = [c.name for c in Attempt.__table__.columns]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FirstAttempts:
    """See :meth:`ShotEngine.first_attempts`: attempt and event rows to insert with the
    job, and the rows in memory for the shots' first steps."""

    rows: list[dict[str, Any]]
    events: list[dict[str, object]]
    ctxs: list[_Ctx]
