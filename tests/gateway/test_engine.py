"""The engine's decisions: retry, fall back, fail, and resume without resubmitting.

A scripted vendor stands in for Runway (vendors are the one thing we cannot reach);
everything else is real: the database, the executor, the local backend that serves
the fallback, storage and ffmpeg.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gateway_harness import InstantClock, h264_clip, open_gateway

from adapters.base import (
    ContentRejected,
    Failure,
    GenerationRequest,
    JobStatus,
    RateLimited,
    RetryableError,
    Submission,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return h264_clip(tmp_path_factory.mktemp("clip"))


@dataclass
class ScriptedVendor:
    """A vendor whose behaviour each test scripts: errors at submit, then poll states."""

    clip: bytes
    submit_errors: list[Exception] = field(default_factory=list)
    states: list[JobStatus] = field(default_factory=list)
    name: str = "runway"
    idempotent_submit: bool = False
    supports_cancel: bool = True
    poll_errors: list[Exception | None] = field(default_factory=list)
    submit_delay: float = 0.0
    submits: list[GenerationRequest] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    polls: int = 0
    download_errors: list[Exception] = field(default_factory=list)

    def configured_models(self) -> set[str] | None:
        return None

    async def submit(self, request: GenerationRequest) -> Submission:
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        await asyncio.sleep(self.submit_delay)
        self.submits.append(request)
        return Submission(backend_job_id=f"task-{len(self.submits)}", poll_after_s=0)

    async def poll(self, backend_job_id: str) -> JobStatus:
        self.polls += 1
        if self.poll_errors and (error := self.poll_errors.pop(0)) is not None:
            raise error
        if len(self.states) > 1:
            return self.states.pop(0)
        return self.states[0] if self.states else JobStatus(state="succeeded", next_poll_s=0)

    async def cancel(self, backend_job_id: str) -> None:
        self.canceled.append(backend_job_id)

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        yield self.clip[: len(self.clip) // 2]
        if self.download_errors:  # the connection drops halfway
            raise self.download_errors.pop(0)
        yield self.clip[len(self.clip) // 2 :]

    async def aclose(self) -> None:
        pass


CHARACTER = {
    "shots": [
        {"kind": "character", "prompt": "a tailor threads a needle", "duration_s": 1, "fps": 24}
    ]
}


async def run(
    tmp_path: Path, database_url: str, vendor: ScriptedVendor, body: dict, **settings: object
) -> tuple:
    async with open_gateway(
        tmp_path / "data",
        database_url,
        adapters={"runway": vendor},
        clock=InstantClock(),
        **{"max_retries": 2, **settings},
    ) as gw:
        job = await gw.client.jobs.create(body)
        job = await gw.client.jobs.wait(job, timeout=60)
        prov = await gw.client.jobs.provenance(job)
    return job, prov


async def test_vendor_success_is_stored_with_its_job_id(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(
        clip,
        states=[
            JobStatus(state="queued", queue_position=3, next_poll_s=0),
            JobStatus(state="running", progress=0.5, next_poll_s=0),
            JobStatus(state="succeeded", next_poll_s=0),
        ],
    )
    job, prov = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "succeeded" and shot.model == "runway/gen4.5"
    assert len(vendor.submits) == 1 and vendor.submits[0].model == "gen4.5"
    assert vendor.submits[0].width == 1280 and vendor.submits[0].fps == 24
    assert prov["shots"][0]["backend"] == {"adapter": "runway", "job_id": "task-1"}
    assert shot.cost_usd is not None and shot.cost_usd > 0


async def test_a_failed_download_is_fetched_again_not_resubmitted(
    tmp_path, database_url, clip
) -> None:
    vendor = ScriptedVendor(clip, download_errors=[RetryableError("connection reset")] * 2)
    job, prov = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "succeeded" and len(shot.attempts) == 1
    assert len(vendor.submits) == 1  # the generation is kept: only the download is redone
    assert vendor.polls == 3  # each fetch asks for a fresh status (output URLs expire)
    assert shot.output is not None and shot.output.bytes == len(clip)
    assert prov["shots"][0]["output"]["sha256"] == shot.output.sha256
    spool = tmp_path / "data" / "spool"
    assert spool.is_dir() and list(spool.iterdir()) == []


async def test_rate_limits_are_retried_on_the_same_model(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(clip, submit_errors=[RateLimited("slow down", retry_after=0.01)] * 2)
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "succeeded" and shot.model == "runway/gen4.5"
    assert len(shot.attempts) == 1 and len(vendor.submits) == 1


async def test_failed_generation_falls_back_to_the_next_candidate(
    tmp_path, database_url, clip
) -> None:
    failed = JobStatus(
        state="failed",
        next_poll_s=0,
        failure=Failure(code="INTERNAL", message="vendor broke", failure_class="fallback"),
    )
    vendor = ScriptedVendor(clip, states=[failed])
    job, prov = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "succeeded"
    assert [a.status for a in shot.attempts] == ["failed", "succeeded"]
    assert shot.attempts[0].model == "runway/gen4.5"
    assert shot.model == shot.attempts[1].model != "runway/gen4.5"
    history = prov["shots"][0]["attempts"]
    assert history[0]["status"] == "failed" and "vendor broke" in history[0]["error"]


async def test_content_rejection_fails_the_shot_without_fallback(
    tmp_path, database_url, clip
) -> None:
    vendor = ScriptedVendor(clip, submit_errors=[ContentRejected("policy", code="SAFETY.INPUT")])
    job, prov = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "failed" and shot.status == "failed"
    assert shot.error_code == "SAFETY.INPUT" and len(shot.attempts) == 1
    assert prov["shots"] == []


async def test_a_lost_submit_is_never_resubmitted_blindly(tmp_path, database_url, clip) -> None:
    lost = RetryableError("read timeout after sending", code="timeout", outcome_unknown=True)
    vendor = ScriptedVendor(clip, submit_errors=[lost])
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "succeeded" and vendor.submits == []
    assert shot.attempts[0].status == "unknown" and shot.attempts[0].model == "runway/gen4.5"
    assert shot.attempts[-1].status == "succeeded" and shot.model != "runway/gen4.5"


async def test_retries_run_out_then_the_next_candidate_runs(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(clip, submit_errors=[RetryableError("503", code="http_503")] * 5)
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER)
    shot = job.shots[0]
    assert job.status == "succeeded" and vendor.submits == []
    assert shot.attempts[0].status == "failed" and shot.attempts[0].error_code == "http_503"
    assert len(vendor.submit_errors) == 2  # 1 try + max_retries=2 retries
    assert shot.attempts[-1].status == "succeeded"


async def test_restart_resumes_polling_and_never_resubmits(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(
        clip, states=[JobStatus(state="running", progress=0.3, next_poll_s=0.01)]
    )
    data = tmp_path / "data"
    async with open_gateway(data, database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        for _ in range(500):
            job = await gw.client.jobs.get(job)
            if job.shots[0].attempts and job.shots[0].attempts[0].status == "running":
                break
            await asyncio.sleep(0.01)
        assert job.shots[0].attempts[0].backend_job_id == "task-1"
    assert len(vendor.submits) == 1
    vendor.states = [JobStatus(state="succeeded", next_poll_s=0)]
    async with open_gateway(data, database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.wait(job, timeout=60)
    assert job.status == "succeeded" and len(vendor.submits) == 1
    assert len(job.shots[0].attempts) == 1


async def test_cancel_cancels_the_vendor_job(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(clip, states=[JobStatus(state="running", next_poll_s=0.01)])
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        for _ in range(500):
            job = await gw.client.jobs.get(job)
            if job.shots[0].attempts and job.shots[0].attempts[0].backend_job_id:
                break
            await asyncio.sleep(0.01)
        job = await gw.client.jobs.cancel(job)
    assert job.status == "canceled" and job.shots[0].attempts[0].status == "canceled"
    assert vendor.canceled == ["task-1"]


async def test_a_cancel_flagged_by_another_process_stops_a_polled_shot(
    tmp_path, database_url, clip
) -> None:
    """Between polls the engine keeps the shot's rows in memory; the running jobs'
    cancel_requested flags are read once a second for all of them, so an API process
    elsewhere (which only sets the flag) stops it too."""
    from sqlalchemy import update

    from gateway.tables import Job

    vendor = ScriptedVendor(clip, states=[JobStatus(state="running", next_poll_s=0.01)])
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        while vendor.polls < 3:  # polled from memory a few times
            await asyncio.sleep(0.01)
        with gw.runtime.db.session() as s:
            s.exec(update(Job).where(Job.id == job.id).values(cancel_requested=True))
            s.commit()
        for _ in range(500):
            job = await gw.client.jobs.get(job)
            if job.shots[0].status == "canceled":
                break
            await asyncio.sleep(0.01)
    assert job.shots[0].status == "canceled" and job.shots[0].attempts[0].status == "canceled"
    assert vendor.canceled == ["task-1"]


class SteppedClock(InstantClock):
    """Real time plus what a test adds; sleeps only yield."""

    def __init__(self) -> None:
        self.added = 0.0

    def now(self) -> float:
        return super().now() + self.added


async def test_a_new_jobs_steps_read_no_cancel_flags_for_a_period(
    tmp_path, database_url, clip
) -> None:
    """A job less than cancel_check_s old cannot have waited that long for a cancel from
    elsewhere: its submit and polls skip the flags' read (a query on the event loop,
    which would land on a local render's first milliseconds); after that, polls read."""
    from sqlalchemy import event

    clock = SteppedClock()
    flag_reads: list[str] = []
    reads_before_poll: list[int] = []

    class Recording(ScriptedVendor):
        async def poll(self, backend_job_id: str) -> JobStatus:
            reads_before_poll.append(len(flag_reads))
            clock.added += 0.6  # each poll takes 0.6 s of the job's life
            return await super().poll(backend_job_id)

    running = JobStatus(state="running", next_poll_s=0)
    vendor = Recording(clip, states=[running] * 3 + [JobStatus(state="succeeded")])
    async with open_gateway(
        tmp_path / "data", database_url, adapters={"runway": vendor}, clock=clock
    ) as gw:

        def before(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
            if "cancel_requested IS" in statement:
                flag_reads.append(statement)

        event.listen(gw.runtime.db.engine, "before_cursor_execute", before)
        job = await gw.client.jobs.wait(await gw.client.jobs.create(CHARACTER), timeout=60)
    assert job.status == "succeeded" and vendor.polls == 4
    # At 0 s and 0.6 s old: no read; at 1.2 s (past cancel_check_s = 1 s) a read, once.
    assert reads_before_poll == [0, 0, 1, 1]


async def test_an_unexpected_error_is_retried_not_stranded(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(clip, poll_errors=[ValueError("vendor sent nonsense")])
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER)
    assert job.status == "succeeded" and job.shots[0].model == "runway/gen4.5"
    assert len(job.shots[0].attempts) == 1


async def test_scattered_poll_errors_never_abandon_a_running_job(
    tmp_path, database_url, clip
) -> None:
    running = JobStatus(state="running", next_poll_s=0)
    vendor = ScriptedVendor(
        clip,
        states=[running] * 12 + [JobStatus(state="succeeded", next_poll_s=0)],
        poll_errors=[RetryableError("502", code="http_502"), None] * 6,
    )
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER)
    assert job.status == "succeeded" and job.shots[0].model == "runway/gen4.5"
    assert len(vendor.submits) == 1 and vendor.canceled == []


async def test_a_job_given_up_at_its_deadline_is_canceled_at_the_vendor(
    tmp_path, database_url, clip
) -> None:
    vendor = ScriptedVendor(clip, states=[JobStatus(state="running", next_poll_s=0.05)])
    # The deadline also binds the local fallback: leave it time for its preview render.
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER, attempt_timeout_s=1.5)
    shot = job.shots[0]
    assert job.status == "succeeded" and shot.attempts[0].error_code == "timeout"
    assert vendor.canceled == ["task-1"] and shot.model != "runway/gen4.5"


async def test_a_result_found_after_the_deadline_is_kept(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(clip, submit_delay=0.05)  # first poll lands past the deadline
    job, _ = await run(tmp_path, database_url, vendor, CHARACTER, attempt_timeout_s=0.01)
    assert job.status == "succeeded" and job.shots[0].model == "runway/gen4.5"
    assert vendor.canceled == []


async def test_cancel_during_a_submit_cancels_the_vendor_job(tmp_path, database_url, clip) -> None:
    vendor = ScriptedVendor(
        clip, submit_delay=0.3, states=[JobStatus(state="running", next_poll_s=0.01)]
    )
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        for _ in range(500):  # running: the create is on its way (0.3 s to answer)
            job = await gw.client.jobs.get(job)
            if job.shots[0].status == "running":
                break
            await asyncio.sleep(0.01)
        assert vendor.submits == []
        job = await gw.client.jobs.cancel(job)
    assert job.status == "canceled"
    assert vendor.canceled == ["task-1"]
    assert job.shots[0].attempts[0].backend_job_id == "task-1"


async def test_one_executor_per_data_dir(tmp_path, database_url) -> None:
    from gateway.engine.lock import ExecutorLocked

    async with open_gateway(tmp_path / "data", database_url):
        with pytest.raises(ExecutorLocked, match="another reelgate process"):
            async with open_gateway(tmp_path / "data", database_url):
                pass
        async with open_gateway(tmp_path / "data", database_url, executor="none") as api:
            assert (await api.http.get("/healthz")).status_code == 200


def test_a_cancel_after_every_shot_finished_changes_nothing() -> None:
    from gateway.engine.jobs import job_status

    assert job_status(["succeeded", "succeeded"], cancel_requested=True) == "succeeded"
    assert job_status(["succeeded", "canceled"], cancel_requested=True) == "canceled"
    assert job_status(["failed", "succeeded"], cancel_requested=False) == "partially_succeeded"
    assert job_status(["failed"], cancel_requested=False) == "failed"


class AgingClock(InstantClock):
    """Every attempt looks five minutes old; sleeps are recorded, not waited."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> float:
        return super().now() + 300

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


async def test_a_long_job_is_polled_less_often_as_it_ages(tmp_path, database_url, clip) -> None:
    running = JobStatus(state="running", next_poll_s=1)
    vendor = ScriptedVendor(clip, states=[running] * 3 + [JobStatus(state="succeeded")])
    clock = AgingClock()
    async with open_gateway(
        tmp_path / "data", database_url, adapters={"runway": vendor}, clock=clock
    ) as gw:
        job = await gw.client.jobs.wait(await gw.client.jobs.create(CHARACTER), timeout=60)
    assert job.status == "succeeded" and vendor.polls == 4
    # A tenth of its age, not the 1 s hint (and never past a minute).
    assert [round(s) for s in clock.sleeps if s >= 1] == [30, 30, 30]


async def test_a_long_polled_job_is_asked_again_at_once_whatever_its_age(
    tmp_path, database_url, clip
) -> None:
    """A hint of 0 means the backend's poll waits for the next change itself (the local
    backend): stretching it would delay progress and completion by a tenth of the age."""
    running = JobStatus(state="running", next_poll_s=0)
    vendor = ScriptedVendor(clip, states=[running] * 3 + [JobStatus(state="succeeded")])
    clock = AgingClock()
    async with open_gateway(
        tmp_path / "data", database_url, adapters={"runway": vendor}, clock=clock
    ) as gw:
        job = await gw.client.jobs.wait(await gw.client.jobs.create(CHARACTER), timeout=60)
    assert job.status == "succeeded" and vendor.polls == 4
    assert [s for s in clock.sleeps if s > 0] == []


async def _shots_done(gw, job):
    for _ in range(1000):
        job = await gw.client.jobs.get(job)
        if all(s.status in ("succeeded", "failed", "canceled") for s in job.shots):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"shots still running: {job}")


@pytest.mark.parametrize("shots", [1, 2])
async def test_a_job_ends_in_its_last_shots_commit(
    tmp_path, database_url, clip, monkeypatch, shots
) -> None:
    """No finisher needed: the last shot's success records the job's end with it."""
    from gateway.engine.jobs import JobFinisher

    async def no_finisher(self, job_id: str) -> None:
        return None

    monkeypatch.setattr(JobFinisher, "finish", no_finisher)
    vendor = ScriptedVendor(clip)
    body = {"shots": CHARACTER["shots"] * shots}
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await _shots_done(gw, await gw.client.jobs.create(body))
    assert [s.status for s in job.shots] == ["succeeded"] * shots
    assert job.status == "succeeded"
    assert job.cost_usd == sum(s.cost_usd for s in job.shots) and job.cost_usd > 0


async def test_a_final_cut_is_left_to_the_finisher(
    tmp_path, database_url, clip, monkeypatch
) -> None:
    from gateway.engine.jobs import JobFinisher

    async def no_finisher(self, job_id: str) -> None:
        return None

    monkeypatch.setattr(JobFinisher, "finish", no_finisher)
    vendor = ScriptedVendor(clip)
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create({**CHARACTER, "assemble": True})
        job = await _shots_done(gw, job)
    assert job.shots[0].status == "succeeded" and job.status == "running"


async def test_a_new_job_carries_its_first_attempt_and_the_step_submits_it(
    tmp_path, database_url, clip
) -> None:
    vendor = ScriptedVendor(clip, submit_delay=0.05)
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        created = await gw.client.jobs.create(CHARACTER)
        job = await gw.client.jobs.wait(created, timeout=30)
    first = created.shots[0].attempts
    assert created.shots[0].status == "queued"
    assert [(a.number, a.status, a.model) for a in first] == [(1, "pending", "runway/gen4.5")]
    assert job.status == "succeeded"
    assert [a.id for a in job.shots[0].attempts] == [first[0].id]  # that row ran, no other
    assert [r.request_id for r in vendor.submits] == [first[0].id]


async def test_without_an_engine_a_job_has_no_attempt_until_a_step_makes_one(
    tmp_path, database_url, clip
) -> None:
    vendor = ScriptedVendor(clip)
    async with open_gateway(
        tmp_path / "data", database_url, adapters={"runway": vendor}, executor="none"
    ) as gw:
        job = await gw.client.jobs.create(CHARACTER)
    assert job.shots[0].status == "queued" and job.shots[0].attempts == []
    # An engine starts on the same database: it resumes the job.
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.wait(job, timeout=30)
    assert job.status == "succeeded" and len(job.shots[0].attempts) == 1
    assert [r.request_id for r in vendor.submits] == [job.shots[0].attempts[0].id]


QUIET = JobStatus(state="queued", next_poll_s=0.01)  # nothing changes: nothing to write


async def test_a_deduping_backends_job_id_is_written_with_the_next_write(
    tmp_path, database_url, clip
) -> None:
    """Where the backend dedupes creates, the submit's record waits for the attempt's
    next write: here the success, which carries the job id and the submitted event."""
    from sqlmodel import select

    from gateway.db import Database
    from gateway.tables import Event

    done = JobStatus(state="succeeded", next_poll_s=0)
    vendor = ScriptedVendor(clip, idempotent_submit=True, states=[QUIET, QUIET, done])
    job, prov = await run(tmp_path, database_url, vendor, CHARACTER)
    attempt = job.shots[0].attempts[0]
    assert job.status == "succeeded" and attempt.backend_job_id == "task-1"
    assert prov["shots"][0]["backend"] == {"adapter": "runway", "job_id": "task-1"}
    db = Database(database_url)
    try:
        with db.session() as s:
            kinds = [e.type for e in s.exec(select(Event).where(Event.job_id == job.id))]
    finally:
        db.dispose()
    assert kinds.count("attempt.submitted") == 1 and "shot.succeeded" in kinds


@pytest.mark.parametrize("where", ["api", "another process"])
async def test_a_cancel_reaches_a_deduping_backends_unrecorded_job(
    tmp_path, database_url, clip, where
) -> None:
    from sqlalchemy import update

    from gateway.tables import Attempt, Job

    vendor = ScriptedVendor(clip, idempotent_submit=True, states=[QUIET])
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        while vendor.polls < 3:
            await asyncio.sleep(0.01)
        with gw.runtime.db.session() as s:  # polled from memory: the id is not written yet
            assert s.get(Attempt, job.shots[0].attempts[0].id).backend_job_id is None
            if where == "another process":
                s.exec(update(Job).where(Job.id == job.id).values(cancel_requested=True))
                s.commit()
        if where == "api":
            job = await gw.client.jobs.cancel(job)
        for _ in range(500):
            job = await gw.client.jobs.get(job)
            if job.shots[0].status == "canceled":
                break
            await asyncio.sleep(0.01)
    assert job.shots[0].status == "canceled"
    assert job.shots[0].attempts[0].backend_job_id == "task-1"
    assert vendor.canceled == ["task-1"]


async def test_an_unsaved_submit_record_never_overwrites_an_ended_attempt(
    tmp_path, database_url, clip
) -> None:
    """A shot stopped with its submit record unsaved writes it only onto a pending
    attempt: one that ended meanwhile (here, marked canceled behind the engine's back)
    keeps its end, and gets no submitted event."""
    from sqlalchemy import update
    from sqlmodel import select

    from gateway.db import Database
    from gateway.tables import Attempt, Event

    vendor = ScriptedVendor(clip, idempotent_submit=True, states=[QUIET])
    async with open_gateway(tmp_path / "data", database_url, adapters={"runway": vendor}) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        while vendor.polls < 3:
            await asyncio.sleep(0.01)
        attempt_id = job.shots[0].attempts[0].id
        with gw.runtime.db.session() as s:
            s.exec(update(Attempt).where(Attempt.id == attempt_id).values(status="canceled"))
            s.commit()
    # The gateway stopped: the shot's task wrote what it held, where it still could.
    db = Database(database_url)
    try:
        with db.session() as s:
            attempt = s.get(Attempt, attempt_id)
            kinds = [e.type for e in s.exec(select(Event).where(Event.job_id == job.id))]
    finally:
        db.dispose()
    assert attempt.status == "canceled" and attempt.backend_job_id is None
    assert "attempt.submitted" not in kinds
