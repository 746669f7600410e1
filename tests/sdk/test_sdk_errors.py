"""Error mapping by status with actionable messages, and when requests are retried."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sdk_fakes import FakeAPI, FakeTime, job_json, job_response, make_client, problem, resolve

import reelgate
from reelgate import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

JOB = "/v1/jobs/job_1"
STORYBOARD = {"shots": [{"prompt": "a red kite"}]}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, PaymentRequiredError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (418, APIStatusError),
    ],
)
async def test_each_status_maps_to_its_error(
    flavour: str, api: FakeAPI, fake_time: FakeTime, status: int, error: type[APIStatusError]
) -> None:
    api.add("GET", JOB, problem(status, "some_code", "what went wrong"))
    async with _closing(make_client(flavour, api, fake_time, max_retries=0)) as client:
        with pytest.raises(error) as info:
            await resolve(client.jobs.get("job_1"))

    assert type(info.value) is error
    assert info.value.status_code == status and info.value.code == "some_code"
    assert info.value.problem is not None and info.value.problem.detail == "what went wrong"
    assert "what went wrong" in str(info.value)


async def test_the_message_names_each_field_and_what_is_allowed(client: Any, api: FakeAPI) -> None:
    errors = [
        {
            "field": "shots[0].duration_s",
            "message": "7 not supported by runway/gen4.5",
            "allowed": [5, 10],
        },
        {"field": "shots[1].prompt", "message": "empty"},
    ]
    api.add("POST", "/v1/jobs", problem(422, "invalid_request", "2 invalid fields", errors=errors))

    with pytest.raises(UnprocessableEntityError) as info:
        await resolve(client.jobs.create(STORYBOARD))

    assert str(info.value) == (
        "422 Problem [invalid_request]: 2 invalid fields; "
        "shots[0].duration_s: 7 not supported by runway/gen4.5 (allowed: [5, 10]); "
        "shots[1].prompt: empty"
    )
    assert [e.field for e in info.value.problem.errors] == [
        "shots[0].duration_s",
        "shots[1].prompt",
    ]


async def test_402_says_what_the_server_said_about_credits(client: Any, api: FakeAPI) -> None:
    api.add("POST", "/v1/jobs", problem(402, "insufficient_credits", "need $1.20, have $0.40"))
    with pytest.raises(PaymentRequiredError, match=r"need \$1.20, have \$0.40"):
        await resolve(client.jobs.create(STORYBOARD))


async def test_a_non_problem_error_body_still_reaches_the_message(
    client: Any, api: FakeAPI
) -> None:
    api.add("POST", "/v1/jobs/job_1/cancel", httpx.Response(502, text="<html>bad gateway</html>"))
    with pytest.raises(InternalServerError, match="502 Bad Gateway: <html>bad gateway") as info:
        await resolve(client.jobs.cancel("job_1"))
    assert info.value.problem is None and info.value.code is None


async def test_get_is_retried_on_503_sleeping_the_servers_retry_after(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("GET", JOB, problem(503, headers={"Retry-After": "3"}), job_response())

    job = await resolve(client.jobs.get("job_1"))

    assert job.id == "job_1"
    assert len(api.sent("GET", JOB)) == 2 and fake_time.sleeps == [3.0]


async def test_retries_stop_after_max_retries(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("GET", JOB, problem(429, "rate_limited", headers={"Retry-After": "1"}))

    with pytest.raises(RateLimitError):
        await resolve(client.jobs.get("job_1"))

    assert len(api.sent("GET", JOB)) == 3  # the first try and max_retries=2
    assert fake_time.sleeps == [1.0, 1.0]


async def test_backoff_without_retry_after_grows(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("GET", JOB, problem(500), problem(500), job_response())
    await resolve(client.jobs.get("job_1"))
    first, second = fake_time.sleeps
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0


async def test_create_is_retried_under_the_same_idempotency_key(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("POST", "/v1/jobs", problem(503), httpx.Response(201, json=job_json()))

    await resolve(client.jobs.create(STORYBOARD))

    first, second = api.sent("POST", "/v1/jobs")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.content == second.content
    assert len(fake_time.sleeps) == 1


async def test_create_survives_a_lost_connection_under_the_same_key(
    client: Any, api: FakeAPI
) -> None:
    api.add("POST", "/v1/jobs", httpx.ReadError("reset"), httpx.Response(201, json=job_json()))

    await resolve(client.jobs.create(STORYBOARD, idempotency_key="k-1"))

    keys = [r.headers["idempotency-key"] for r in api.sent("POST", "/v1/jobs")]
    assert keys == ["k-1", "k-1"]


async def test_a_post_without_idempotency_key_is_never_retried(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("POST", "/v1/jobs/job_1/cancel", problem(503), job_response(status="canceled"))

    with pytest.raises(InternalServerError):
        await resolve(client.jobs.cancel("job_1"))

    assert len(api.requests) == 1 and fake_time.sleeps == []


async def test_the_side_effect_free_quote_is_retried(client: Any, api: FakeAPI) -> None:
    quote = {"shots": [], "total_usd": "0", "warnings": []}
    api.add("POST", "/v1/quote", problem(503), httpx.Response(200, json=quote))
    await resolve(client.quote(STORYBOARD))
    assert len(api.requests) == 2


async def test_client_errors_are_not_retried(client: Any, api: FakeAPI) -> None:
    api.add("GET", JOB, problem(404, "not_found"))
    with pytest.raises(NotFoundError):
        await resolve(client.jobs.get("job_1"))
    assert len(api.requests) == 1


async def test_connection_errors_are_retried_then_translated(
    client: Any, api: FakeAPI, fake_time: FakeTime
) -> None:
    api.add("GET", JOB, httpx.ConnectError("refused"), job_response())
    assert (await resolve(client.jobs.get("job_1"))).id == "job_1"

    api.routes.clear()
    api.add("GET", JOB, httpx.ConnectError("refused"))
    where = re.escape("GET http://gateway.test/v1/jobs/job_1")
    with pytest.raises(APIConnectionError, match=where) as info:
        await resolve(client.jobs.get("job_1"))
    assert not isinstance(info.value, APITimeoutError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_timeouts_raise_api_timeout_error(client: Any, api: FakeAPI) -> None:
    api.add("GET", JOB, httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError, match="timed out"):
        await resolve(client.jobs.get("job_1"))
    assert len(api.requests) == 3


def test_every_error_is_a_reelgate_error() -> None:
    errors = [getattr(reelgate, name) for name in reelgate.__all__ if name.endswith("Error")]
    assert len(errors) == 14
    assert all(issubclass(e, reelgate.ReelgateError) for e in errors)
    assert issubclass(reelgate.WaitTimeout, reelgate.ReelgateError)


class _closing:
    """``async with`` for either twin, so parametrized tests close what they made."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def __aenter__(self) -> Any:
        return self.client

    async def __aexit__(self, *exc: object) -> None:
        http = self.client._http
        await http.aclose() if isinstance(http, httpx.AsyncClient) else http.close()
