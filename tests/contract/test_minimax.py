"""MiniMaxAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/minimax.py``):
image-to-video and options, what v1 cannot take, failed tasks, the file step.

Shapes: ``vendors.md`` §8 (MiniMax-AI/MiniMax-MCP's client and server: create, query,
files/retrieve, ``base_resp`` in HTTP 200 answers, the error-code table).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from vendor_cases.base import Vendor
from vendor_cases.minimax import API, FILE_ID, OK, RETRIEVED, TASK, query, request

from adapters.base import InvalidInput, JobStatus, RetryableError
from adapters.minimax import MiniMaxAdapter, parse_status, to_payload


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[MiniMaxAdapter] = []

    def build(vendor: Vendor, **kw: Any) -> MiniMaxAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
        made.append(MiniMaxAdapter("mm_key", client=client, **kw))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


async def read(adapter: MiniMaxAdapter, job: str, status: JobStatus) -> bytes:
    return b"".join([chunk async for chunk in adapter.download(job, status)])


# --- payloads and statuses ----------------------------------------------------------------


async def test_a_download_without_a_url_asks_for_one(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json=query("Success", FILE_ID)),
        httpx.Response(200, json=RETRIEVED),
        httpx.Response(200, content=b"bytes"),
    )
    assert await read(make(vendor), TASK, JobStatus(state="succeeded")) == b"bytes"


async def test_image_to_video_and_options(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json={"task_id": TASK, "base_resp": OK}))
    adapter = make(vendor, prompt_optimizer=False)
    await adapter.submit(
        request(
            duration_s=10,
            resolution="768p",
            image="data:image/jpeg;base64,/9j/4AAQ",
            callback_url="https://gateway.test/hooks/minimax",
        )
    )
    assert vendor.body(0) == {
        "model": "MiniMax-Hailuo-2.3",
        "prompt": "A harbour at dawn [Pan left]",
        "duration": 10,
        "resolution": "768P",
        "first_frame_image": "data:image/jpeg;base64,/9j/4AAQ",
        "prompt_optimizer": False,
        "callback_url": "https://gateway.test/hooks/minimax",
    }


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image": "https://example.test/a.png", "last_frame": "https://e.test/b.png"}, "last"),
        ({"image": "s3://bucket/a.png"}, "image: MiniMax takes"),
        ({"duration_s": 6.5}, "whole seconds"),
    ],
)
def test_inputs_minimax_cannot_take_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        to_payload(request(**overrides))


@pytest.mark.parametrize(
    ("code", "failure_code", "failure_class"),
    [
        (0, "generation_failed", "fallback"),
        (1027, "content_rejected", "fatal"),
        (1000, "generation_failed", "fallback"),
    ],
)
def test_a_failed_task_is_data(code: int, failure_code: str, failure_class: str) -> None:
    status = parse_status(query("Fail", base_resp={"status_code": code, "status_msg": "no"}))
    assert (status.state, status.raw_state) == ("failed", "Fail")
    assert status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (failure_code, failure_class)


@pytest.mark.parametrize(
    ("extra", "base_resp", "message"),
    [
        # a query that worked says "success" about a task that failed: never the reason
        ({}, OK, "MiniMax reported the task failed"),
        ({"error_message": "video generation timed out"}, OK, "video generation timed out"),
        ({"error": {"message": "output flagged"}}, OK, "output flagged"),
        ({"error": "the model crashed"}, OK, "the model crashed"),
        ({"error_message": "  "}, OK, "MiniMax reported the task failed"),
        ({}, {"status_code": 1000, "status_msg": "unknown error"}, "unknown error"),
        (
            {"error_message": "frame decode failed"},
            {"status_code": 1000, "status_msg": "unknown error"},
            "frame decode failed",
        ),
    ],
)
def test_a_failed_task_carries_minimaxs_own_reason(
    extra: dict[str, Any], base_resp: dict[str, Any], message: str
) -> None:
    status = parse_status(query("Fail", base_resp=base_resp) | extra)
    assert status.failure is not None
    assert status.failure.message == message
    assert status.failure.message != "success"


async def test_a_polled_failure_reports_the_reason_not_the_query_outcome(make: Any) -> None:
    body = query("Fail") | {"error_message": "generation failed: input image unreadable"}
    status = await make(Vendor(httpx.Response(200, json=body))).poll(TASK)
    assert (status.state, status.raw_state) == ("failed", "Fail")
    assert status.failure is not None
    assert status.failure.code == "generation_failed"
    assert status.failure.message == "generation failed: input image unreadable"


# --- errors -------------------------------------------------------------------------------


async def test_a_success_whose_file_has_no_url_is_retried(make: Any) -> None:
    vendor = Vendor(
        httpx.Response(200, json=query("Success", FILE_ID)),
        httpx.Response(200, json={"file": {"file_id": int(FILE_ID)}, "base_resp": OK}),
    )
    with pytest.raises(RetryableError, match="download_url"):
        await make(vendor).poll(TASK)


async def test_the_trace_id_is_in_the_message(make: Any) -> None:
    vendor = Vendor(httpx.Response(500, text="oops", headers={"Trace-Id": "trace-42"}))
    with pytest.raises(RetryableError, match="trace-42"):
        await make(vendor).submit(request())


HOOK = "https://gateway.test/hooks/minimax"


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(400, text="unknown field callback_url"),
        httpx.Response(
            200,
            json={
                "task_id": "",
                "base_resp": {"status_code": 2013, "status_msg": "invalid params"},
            },
        ),
    ],
    ids=["http-400", "base_resp-2013"],
)
async def test_a_create_refused_with_its_unconfirmed_callback_is_sent_once_without_it(
    make: Any, refusal: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    """``callback_url`` is UNCONFIRMED on v1: a refused create made no task, one resend is safe."""
    vendor = Vendor(refusal, httpx.Response(200, json={"task_id": TASK, "base_resp": OK}))
    submission = await make(vendor).submit(request(callback_url=HOOK))
    assert submission.backend_job_id == TASK
    assert vendor.body(0)["callback_url"] == HOOK
    assert "callback_url" not in vendor.body(1)
    assert {k: v for k, v in vendor.body(0).items() if k != "callback_url"} == vendor.body(1)
    assert "callback_url" in caplog.text


async def test_a_create_refused_again_without_the_callback_is_bad_input(make: Any) -> None:
    vendor = Vendor(httpx.Response(400, text="bad"), httpx.Response(400, text="still bad"))
    with pytest.raises(InvalidInput, match="still bad"):
        await make(vendor).submit(request(callback_url=HOOK))
    assert len(vendor.seen) == 2


@pytest.mark.parametrize(
    ("hook", "answer"),
    [(None, httpx.Response(400, text="bad")), (HOOK, httpx.Response(500, text="oops"))],
    ids=["400-without-callback", "500-with-callback"],
)
async def test_only_a_refused_create_with_a_callback_is_resent(
    make: Any, hook: str | None, answer: httpx.Response
) -> None:
    vendor = Vendor(answer)
    with pytest.raises((InvalidInput, RetryableError)):
        await make(vendor).submit(request(callback_url=hook))
    assert len(vendor.seen) == 1
