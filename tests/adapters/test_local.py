"""LocalBackendAdapter: against the real backend in-process, and against scripted answers."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.base import (
    Adapter,
    AdapterError,
    BackendFailure,
    BackendJobLost,
    GenerationRequest,
    InvalidInput,
    JobStatus,
    RateLimited,
    RetryableError,
)
from adapters.local import LocalBackendAdapter, parse_status
from gateway.app import in_process_backend
from local_backend.app import create_app
from local_backend.config import BackendConfig

TERMINAL = {"succeeded", "failed", "canceled"}


def request(**overrides: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": "preview",
        "prompt": "A harbour at dawn",
        "duration_s": 1,
        "fps": 8,
        "width": 160,
        "height": 90,
        "aspect_ratio": "16:9",
        "resolution": "90p",
        "kind": "establishing",
        "camera": "pan left",
    }
    return GenerationRequest(**{**fields, **overrides})


@pytest.fixture
def backend_app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(BackendConfig(work_dir=tmp_path))
    yield app
    app.state.close()


@pytest.fixture
async def backend(backend_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=backend_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://local-backend") as client:
        yield client


@pytest.fixture(params=["http", "in-process"])
async def adapter(
    backend: httpx.AsyncClient, backend_app: FastAPI, request: pytest.FixtureRequest
) -> LocalBackendAdapter:
    """Over the backend's HTTP API, and called in-process as the embedded gateway does."""
    direct = [in_process_backend(backend_app)] if request.param == "in-process" else []
    adapter = LocalBackendAdapter([backend], long_poll_s=0.2, in_process=direct)
    await adapter.refresh()
    return adapter


async def poll_until_done(adapter: LocalBackendAdapter, job_id: str) -> list[JobStatus]:
    seen, deadline = [], time.monotonic() + 10
    while not seen or seen[-1].state not in TERMINAL:
        assert time.monotonic() < deadline, seen[-1:]
        seen.append(await adapter.poll(job_id))
    return seen


async def test_submit_poll_download(
    adapter: LocalBackendAdapter, backend: httpx.AsyncClient
) -> None:
    assert isinstance(adapter, Adapter)
    assert (adapter.name, adapter.idempotent_submit, adapter.supports_cancel) == (
        "local",
        True,
        True,
    )
    assert adapter.configured_models() == {"preview"}

    submission = await adapter.submit(request())
    statuses = await poll_until_done(adapter, submission.backend_job_id)
    final = statuses[-1]
    assert (final.state, final.raw_state, final.failure) == ("succeeded", "succeeded", None)
    assert (final.step, final.total_steps, final.progress) == (8, 8, 1.0)

    video = b"".join([chunk async for chunk in adapter.download(submission.backend_job_id, final)])
    gen_id = submission.backend_job_id.split("/", 1)[1]
    direct = await backend.get(f"/v1/generations/{gen_id}/content")
    assert video[4:8] == b"ftyp" and video == direct.content


async def test_an_in_process_backend_is_called_without_http(
    backend_app: FastAPI,
) -> None:
    """Submit, long polls and the file: no request; a pruned file is asked for over
    HTTP, whose answer says why it is gone."""
    asked: list[str] = []

    async def record(req: httpx.Request) -> None:
        asked.append(req.url.path)

    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=backend_app),
        base_url="http://local-backend",
        event_hooks={"request": [record]},
    )
    runner = backend_app.state.runner
    adapter = LocalBackendAdapter(
        [client], long_poll_s=0.2, in_process=[in_process_backend(backend_app)]
    )
    try:
        await adapter.refresh()
        job = (await adapter.submit(request())).backend_job_id
        final = (await poll_until_done(adapter, job))[-1]
        video = b"".join([chunk async for chunk in adapter.download(job, final)])
        gen_id = job.split("/", 1)[1]
        assert asked == ["/v1/models"]  # the model list only: not per shot
        assert video[4:8] == b"ftyp" and video == runner.output(gen_id).read_bytes()

        runner.output(gen_id).unlink()
        with pytest.raises(AdapterError) as caught:
            b"".join([chunk async for chunk in adapter.download(job, final)])
        assert caught.value.code == "not_ready" and asked[-1].endswith("/content")
    finally:
        await client.aclose()


async def refusal(call: Awaitable[object]) -> tuple[type, str, str]:
    with pytest.raises(AdapterError) as caught:
        await call
    return type(caught.value), caught.value.code, str(caught.value)


async def test_in_process_refusals_are_the_http_ones(
    backend: httpx.AsyncClient, backend_app: FastAPI
) -> None:
    """The same bad input, lost job or shutdown gives the same error both ways."""
    over_http = LocalBackendAdapter([backend], long_poll_s=0.2)
    direct = LocalBackendAdapter(
        [backend], long_poll_s=0.2, in_process=[in_process_backend(backend_app)]
    )
    for adapter in (over_http, direct):
        await adapter.refresh()
    calls: list[Callable[[LocalBackendAdapter], Awaitable[object]]] = [
        lambda a: a.submit(request(fps=120)),  # 422 invalid_params
        lambda a: a.submit(request(duration_s=-1)),  # 422 invalid_request (the body)
        lambda a: a.poll("0/gen_missing"),  # 404 while polling: lost
        lambda a: a.cancel("0/gen_missing"),
    ]
    for call in calls:
        seen = await refusal(call(over_http))
        assert seen[0] in (InvalidInput, BackendJobLost)
        assert await refusal(call(direct)) == seen
    backend_app.state.close()
    stopped = [await refusal(a.submit(request(request_id="late"))) for a in (over_http, direct)]
    assert stopped[0] == stopped[1] and stopped[0][:2] == (RetryableError, "shutting_down")


def test_in_process_backends_cannot_outnumber_the_clients(backend_app: FastAPI) -> None:
    client = httpx.AsyncClient(base_url="http://local-backend")
    backend = in_process_backend(backend_app)
    with pytest.raises(ValueError, match="in_process"):
        LocalBackendAdapter([client], in_process=[backend, backend])


async def test_resubmitting_a_request_id_does_not_start_a_second_job(
    adapter: LocalBackendAdapter,
) -> None:
    first = await adapter.submit(request(request_id="att_9"))
    again = await adapter.submit(request(request_id="att_9"))
    other = await adapter.submit(request(request_id="att_10"))
    assert first.backend_job_id == again.backend_job_id != other.backend_job_id


async def test_cancel_a_running_job(adapter: LocalBackendAdapter) -> None:
    long = request(duration_s=60, fps=60, width=640, height=360)
    job = (await adapter.submit(long)).backend_job_id
    status = await adapter.poll(job)
    deadline = time.monotonic() + 5
    while not status.step:
        assert time.monotonic() < deadline
        status = await adapter.poll(job)
    assert status.state == "running" and status.queue_position == 0
    assert status.progress == pytest.approx(status.step / 3600)
    await adapter.cancel(job)
    assert (await adapter.poll(job)).state == "canceled"


async def test_a_model_no_backend_serves_is_a_fallback(adapter: LocalBackendAdapter) -> None:
    with pytest.raises(BackendFailure) as caught:
        await adapter.submit(request(model="wan2.1-t2v-14b"))
    assert caught.value.code == "model_not_served"


async def test_the_backend_serving_the_model_is_used(backend: httpx.AsyncClient) -> None:
    empty = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=[])), base_url="http://a"
    )
    adapter = LocalBackendAdapter([empty, backend], long_poll_s=0.2)
    job = (await adapter.submit(request())).backend_job_id  # no refresh: looked up on demand
    assert job.startswith("1/gen_")
    assert (await poll_until_done(adapter, job))[-1].state == "succeeded"


# --- error mapping, against scripted answers ----------------------------------------------


def scripted(answer: Callable[[httpx.Request], httpx.Response]) -> LocalBackendAdapter:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return httpx.Response(200, json=[{"id": "preview"}])
        return answer(req)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://b")
    return LocalBackendAdapter([client], long_poll_s=0)


def problem(status: int, code: str, detail: str = "it went wrong", **headers: str):
    body = {"type": "about:blank", "title": code, "status": status, "code": code, "detail": detail}
    return lambda _: httpx.Response(status, json=body, headers=headers)


def raise_(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(req: httpx.Request) -> httpx.Response:
        raise exc

    return handler


async def call(adapter: LocalBackendAdapter, op: str) -> Any:
    if op == "submit":
        return await adapter.submit(request())
    if op == "poll":
        return await adapter.poll("0/gen_x")
    if op == "cancel":
        return await adapter.cancel("0/gen_x")
    return b"".join([c async for c in adapter.download("0/gen_x", JobStatus(state="succeeded"))])


def reply(status: int, **kw: Any) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(status, **kw)


LOST = "generation_not_found"
ERRORS = [
    ("submit", problem(404, "unknown_model"), BackendFailure, "unknown_model", None),
    ("poll", problem(404, LOST), BackendJobLost, LOST, None),
    ("cancel", problem(404, LOST), BackendJobLost, LOST, None),
    ("download", problem(404, LOST), BackendJobLost, LOST, None),
    ("submit", problem(422, "invalid_params"), InvalidInput, "invalid_params", None),
    ("submit", problem(429, "busy", **{"Retry-After": "7"}), RateLimited, "busy", 7.0),
    (
        "poll",
        problem(503, "shutting_down", **{"Retry-After": "2"}),
        RetryableError,
        "shutting_down",
        2.0,
    ),
    ("poll", reply(500, text="<html>oops</html>"), RetryableError, "local_backend_error", None),
    ("poll", reply(200, json={"status": "paused"}), BackendFailure, "unknown_state", None),
    ("poll", reply(200, text="{not json"), RetryableError, "malformed", None),
    ("submit", reply(202, json=["a list"]), RetryableError, "malformed", None),
    ("submit", raise_(httpx.ConnectError("refused")), RetryableError, "unreachable", None),
    ("submit", raise_(httpx.ConnectTimeout("slow")), RetryableError, "timeout", None),
    ("poll", raise_(httpx.ReadTimeout("slow")), RetryableError, "timeout", None),
    ("download", raise_(httpx.ReadError("reset")), RetryableError, "unreachable", None),
]


@pytest.mark.parametrize(("op", "answer", "error", "code", "retry_after"), ERRORS)
async def test_errors_are_classified_once(
    op: str, answer: Any, error: type[AdapterError], code: str, retry_after: float | None
) -> None:
    adapter = scripted(answer)
    with pytest.raises(AdapterError) as caught:
        await call(adapter, op)
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.retry_after) == (code, retry_after)
    await adapter.aclose()


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [
        (raise_(httpx.ConnectError("refused")), False),
        (raise_(httpx.ConnectTimeout("slow")), False),
        (raise_(httpx.ReadTimeout("slow")), True),
        (raise_(httpx.RemoteProtocolError("dropped")), True),
        (reply(202, text="{truncated"), True),
        (problem(500, "boom"), False),
    ],
)
async def test_a_submit_that_may_have_landed_says_so(answer: Any, unknown: bool) -> None:
    with pytest.raises(RetryableError) as caught:
        await scripted(answer).submit(request())
    assert caught.value.outcome_unknown is unknown


async def test_a_422_carries_the_backends_message() -> None:
    adapter = scripted(problem(422, "invalid_params", "fps 5 not supported; allowed 8..60"))
    with pytest.raises(InvalidInput, match=r"allowed 8\.\.60") as caught:
        await adapter.submit(request())
    assert caught.value.failure_class == "fatal"


@pytest.mark.parametrize("job_id", ["gen_x", "7/gen_x", "x/gen_x", "-1/gen_x"])
async def test_a_job_id_for_no_configured_backend_is_lost(job_id: str) -> None:
    adapter = scripted(lambda _: httpx.Response(200, json={}))
    with pytest.raises(BackendJobLost):
        await adapter.poll(job_id)


def record(status: str, **extra: Any) -> dict[str, Any]:
    body = {"id": "gen_x", "status": status, "step": 0, "total_steps": 10, "progress": 0.0}
    body["queue_position"] = 2 if status == "queued" else None
    return {**body, "error": None, **extra}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (record("queued"), {"state": "queued", "queue_position": 2, "next_poll_s": 0.5}),
        (
            record("running", step=4, progress=0.4, queue_position=0),
            {"state": "running", "step": 4, "total_steps": 10, "progress": 0.4, "next_poll_s": 0.2},
        ),
        (record("succeeded", step=10, progress=1.0), {"state": "succeeded", "progress": 1.0}),
        (record("canceled"), {"state": "canceled", "failure": None}),
    ],
)
def test_parse_status(body: dict[str, Any], expected: dict[str, Any]) -> None:
    status = parse_status(body, long_poll=False).model_dump()
    assert {k: status[k] for k in expected} == expected
    assert status["raw_state"] == body["status"]


def test_a_failed_generation_is_data_for_the_next_candidate() -> None:
    body = record("failed", error={"code": "out_of_memory", "message": "CUDA out of memory"})
    status = parse_status(body, long_poll=True)
    assert status.state == "failed" and status.next_poll_s == 0
    assert status.failure is not None
    assert status.failure.model_dump() == {
        "code": "out_of_memory",
        "message": "CUDA out of memory",
        "failure_class": "fallback",
    }


async def test_aclose_closes_the_clients() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    adapter = LocalBackendAdapter([client])
    await adapter.aclose()
    assert client.is_closed


async def test_the_payload_is_what_the_backend_accepts() -> None:
    seen: list[dict[str, Any]] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/v1/models":
            return httpx.Response(200, json=[{"id": "preview"}])
        seen.append(json.loads(req.content))
        return httpx.Response(202, json=record("queued"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://b")
    await LocalBackendAdapter([client]).submit(request(seed=3, audio=False))
    assert set(seen[0]) == {
        "request_id", "model", "prompt", "duration_s", "fps", "width", "height",
        "seed", "kind", "camera",
    }  # fmt: skip
