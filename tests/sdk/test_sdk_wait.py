"""jobs.wait: polls at the server's pace, returns failures as data, times out cleanly."""

from __future__ import annotations

from typing import Any

import pytest
from sdk_fakes import FakeAPI, FakeTime, job_response, resolve, shot_json

from reelgate import Job, WaitTimeout

JOB = "/v1/jobs/job_1"


async def test_wait_sleeps_what_retry_after_says_until_terminal(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add(
        "GET",
        JOB,
        job_response("2", status="queued"),
        job_response("0.5", status="running"),
        job_response(status="succeeded"),
    )

    job = await resolve(client.jobs.wait("job_1", poll_interval=7))

    assert job.status == "succeeded"
    assert fake_time.sleeps == [2.0, 0.5]
    assert len(api.sent("GET", JOB)) == 3


async def test_wait_falls_back_to_poll_interval_then_one_second(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("GET", JOB, job_response(), job_response(status="succeeded"))
    await resolve(client.jobs.wait("job_1", poll_interval=3))

    api.routes.clear()
    api.add("GET", JOB, job_response(), job_response(status="succeeded"))
    await resolve(client.jobs.wait("job_1"))

    assert fake_time.sleeps == [3.0, 1.0]


async def test_a_zero_retry_after_does_not_become_a_busy_loop(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("GET", JOB, job_response("0"), job_response(status="succeeded"))
    await resolve(client.jobs.wait("job_1"))
    assert fake_time.sleeps == [0.1]


@pytest.mark.parametrize("status", ["failed", "partially_succeeded", "canceled"])
async def test_a_failed_job_is_returned_not_raised(client: Any, api: FakeAPI, status: str) -> None:
    failed = shot_json(status="failed", error_message="content policy")
    api.add("GET", JOB, job_response(status=status, shots=[failed]))

    job = await resolve(client.jobs.wait("job_1"))

    assert job.status == status and job.shots[0].error_message == "content policy"


async def test_wait_accepts_a_job_object(client: Any, api: FakeAPI) -> None:
    api.add("GET", JOB, job_response(status="succeeded"))
    job = Job.model_validate(job_response().json())
    assert (await resolve(client.jobs.wait(job))).status == "succeeded"


async def test_a_job_just_created_is_first_polled_after_the_servers_hint(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    """Polling at once would only fetch what the create answered: one request saved."""
    created = job_response("0.5", status="queued")
    created.status_code = 201
    api.add("POST", "/v1/jobs", created)
    api.add("GET", JOB, job_response(status="succeeded"))
    seen: list[str] = []

    job = await resolve(client.jobs.create({"shots": [{"prompt": "a red kite rises"}]}))
    job = await resolve(client.jobs.wait(job, progress=lambda j: seen.append(j.status)))

    assert job.status == "succeeded" and seen == ["queued", "succeeded"]
    assert fake_time.sleeps == [0.5] and len(api.sent("GET", JOB)) == 1


async def test_a_job_read_back_is_polled_at_once(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    queued = job_response("0.5", status="queued")
    api.add("GET", JOB, queued, queued, job_response(status="succeeded"))
    job = await resolve(client.jobs.get("job_1"))  # no create hint: it may be stale
    job = await resolve(client.jobs.wait(job))
    assert fake_time.sleeps == [0.5] and len(api.sent("GET", JOB)) == 3


async def test_wait_timeout_carries_the_last_job_and_never_oversleeps(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add(
        "GET",
        JOB,
        job_response("4", status="queued"),
        job_response("4", shots=[shot_json(status="running", progress=0.4)]),
    )

    with pytest.raises(WaitTimeout, match="job_1 still running after 6") as info:
        await resolve(client.jobs.wait("job_1", timeout=6))

    assert fake_time.sleeps == [4.0, 2.0]  # the second sleep is cut to the deadline
    assert info.value.job.status == "running"
    assert info.value.job.shots[0].progress == 0.4
    assert len(api.sent("GET", JOB)) == 3


async def test_progress_callable_gets_every_polled_job(client: Any, api: FakeAPI) -> None:
    api.add(
        "GET",
        JOB,
        job_response("1", shots=[shot_json(progress=0.2)]),
        job_response("1", shots=[shot_json(progress=0.7)]),
        job_response(status="succeeded", shots=[shot_json(status="succeeded")]),
    )
    seen: list[tuple[str, float | None]] = []

    await resolve(
        client.jobs.wait(
            "job_1", progress=lambda job: seen.append((job.status, job.shots[0].progress))
        )
    )

    assert seen == [("running", 0.2), ("running", 0.7), ("succeeded", None)]


async def test_async_wait_awaits_a_coroutine_progress_callback(
    api: FakeAPI, fake_time: FakeTime
) -> None:
    from sdk_fakes import make_client

    api.add("GET", JOB, job_response("1"), job_response(status="succeeded"))
    seen: list[str] = []

    async def on_progress(job: Job) -> None:
        seen.append(job.status)

    async with make_client("async", api, fake_time) as client:
        await client.jobs.wait("job_1", progress=on_progress)

    assert seen == ["running", "succeeded"]


async def test_progress_true_draws_each_shot(
    client: Any, api: FakeAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    shots = [
        shot_json(0, status="succeeded", kind="establishing"),
        shot_json(1, status="failed", model="local/preview", error_message="oom"),
    ]
    api.add("GET", JOB, job_response(status="partially_succeeded", shots=shots))

    await resolve(client.jobs.wait("job_1", progress=True))

    err = capsys.readouterr().err
    for text in ("establishing", "runway/gen4.5", "local/preview", "failed", "oom", "100%"):
        assert text in err
