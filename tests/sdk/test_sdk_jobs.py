"""Jobs, quotes and models: what goes on the wire and what comes back (both twins)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pydantic
import pytest
from sdk_fakes import (
    API_KEY,
    FakeAPI,
    body,
    collect,
    job_json,
    job_response,
    model_json,
    quote_json,
    resolve,
)

from reelgate import APIResponseValidationError, Job, JobCreate, Model, Page, Quote, ShotSpec

STORYBOARD = {"shots": [{"prompt": "a red kite over dunes", "kind": "establishing"}]}


async def test_create_posts_the_storyboard_with_auth_and_a_fresh_idempotency_key(
    client: Any, api: FakeAPI
) -> None:
    api.add("POST", "/v1/jobs", httpx.Response(201, json=job_json(status="queued")))

    job = await resolve(client.jobs.create(STORYBOARD))
    await resolve(client.jobs.create(JobCreate.model_validate(STORYBOARD)))

    assert isinstance(job, Job) and job.id == "job_1" and job.status == "queued"
    first, second = api.sent("POST", "/v1/jobs")
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert first.headers["user-agent"].startswith("reelgate-python/")
    assert body(first) == {
        "shots": [{"prompt": "a red kite over dunes", "kind": "establishing"}],
        "assemble": False,
        "metadata": {},
    }
    keys = [r.headers["idempotency-key"] for r in (first, second)]
    assert keys[0] != keys[1]
    assert all(uuid.UUID(k).version == 4 for k in keys)


async def test_create_uses_the_given_idempotency_key(client: Any, api: FakeAPI) -> None:
    api.add("POST", "/v1/jobs", httpx.Response(201, json=job_json()))
    job = JobCreate(shots=[ShotSpec(prompt="kite")], assemble=True)

    await resolve(client.jobs.create(job, idempotency_key="order-42"))

    (request,) = api.requests
    assert request.headers["idempotency-key"] == "order-42"
    assert body(request)["assemble"] is True


async def test_create_rejects_a_bad_storyboard_before_sending(client: Any, api: FakeAPI) -> None:
    with pytest.raises(pydantic.ValidationError, match="promt"):
        await resolve(client.jobs.create({"shots": [{"promt": "typo"}]}))
    assert api.requests == []


async def test_get_and_cancel(client: Any, api: FakeAPI) -> None:
    api.add("GET", "/v1/jobs/job_7", job_response(job_id="job_7"))
    api.add("POST", "/v1/jobs/job_7/cancel", job_response(job_id="job_7", status="canceled"))

    got = await resolve(client.jobs.get("job_7"))
    canceled = await resolve(client.jobs.cancel(got))

    assert got.status == "running"
    assert canceled.status == "canceled"
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("GET", "/v1/jobs/job_7"),
        ("POST", "/v1/jobs/job_7/cancel"),
    ]


async def test_ids_are_escaped_in_paths(client: Any, api: FakeAPI) -> None:
    api.add("GET", "/v1/jobs/a/b", job_response())
    await resolve(client.jobs.get("a/b"))
    assert api.requests[0].url.raw_path == b"/v1/jobs/a%2Fb"


async def test_list_sends_only_the_given_filters(client: Any, api: FakeAPI) -> None:
    page = {"data": [job_json("job_1"), job_json("job_2")], "next_cursor": "c2"}
    api.add("GET", "/v1/jobs", httpx.Response(200, json=page))

    first = await resolve(client.jobs.list(limit=2, status="failed"))
    await resolve(client.jobs.list())

    assert isinstance(first, Page)
    assert [j.id for j in first.data] == ["job_1", "job_2"] and first.next_cursor == "c2"
    with_filters, without = api.requests
    assert dict(with_filters.url.params) == {"limit": "2", "status": "failed"}
    assert dict(without.url.params) == {}


async def test_iter_follows_cursors_until_the_last_page(client: Any, api: FakeAPI) -> None:
    pages = [
        {"data": [job_json("job_1"), job_json("job_2")], "next_cursor": "c2"},
        {"data": [job_json("job_3")], "next_cursor": "c3"},
        {"data": [], "next_cursor": None},
    ]
    api.add("GET", "/v1/jobs", *(httpx.Response(200, json=p) for p in pages))

    jobs = await collect(client.jobs.iter(status="succeeded", page_size=2))

    assert [j.id for j in jobs] == ["job_1", "job_2", "job_3"]
    cursors = [r.url.params.get("cursor") for r in api.requests]
    assert cursors == [None, "c2", "c3"]
    assert all(r.url.params["limit"] == "2" for r in api.requests)
    assert all(r.url.params["status"] == "succeeded" for r in api.requests)


async def test_quote(client: Any, api: FakeAPI) -> None:
    api.add("POST", "/v1/quote", httpx.Response(200, json=quote_json()))

    quote = await resolve(client.quote(STORYBOARD))

    assert isinstance(quote, Quote)
    assert quote.total_usd == Decimal("0.5") and quote.shots[0].model == "runway/gen4.5"
    (request,) = api.requests
    assert body(request)["shots"][0]["kind"] == "establishing"
    assert "idempotency-key" not in request.headers


async def test_models_list(client: Any, api: FakeAPI) -> None:
    models = [model_json("runway/gen4.5"), model_json("local/preview")]
    api.add("GET", "/v1/models", httpx.Response(200, json=models))

    result = await resolve(client.models.list())

    assert all(isinstance(m, Model) for m in result)
    assert [m.id for m in result] == ["runway/gen4.5", "local/preview"]
    assert result[0].price.per_second_usd == {"720p": Decimal("0.10")}


async def test_provenance_is_returned_as_the_servers_json(client: Any, api: FakeAPI) -> None:
    manifest = {"job": "job_1", "shots": [{"output": {"sha256": "ab"}}], "final": None}
    api.add("GET", "/v1/jobs/job_1/provenance", httpx.Response(200, json=manifest))

    assert await resolve(client.jobs.provenance("job_1")) == manifest


async def test_a_body_that_breaks_the_contract_raises_a_clear_error(
    client: Any, api: FakeAPI
) -> None:
    api.add("GET", "/v1/jobs/job_1", httpx.Response(200, json={"id": "job_1"}))

    with pytest.raises(APIResponseValidationError, match="unexpected response body") as info:
        await resolve(client.jobs.get("job_1"))
    assert info.value.status_code == 200
