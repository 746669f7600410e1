"""The rules every HTTP adapter shares."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import pytest

from adapters._http import VendorTransport, retry_after, stream_output, transport_error
from adapters.base import AdapterError, BackendFailure, RetryableError


def response(**headers: str) -> httpx.Response:
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # the precise one wins
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "99999999"}, 3600.0),  # capped: a bogus hint must not park a job
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(response(**headers)) == expected


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after(response(**{"retry-after": when})) == pytest.approx(30, abs=2)


def test_a_connection_never_opened_created_nothing() -> None:
    request = httpx.Request("POST", "https://vendor.test/v1/tasks")
    refused = transport_error(httpx.ConnectError("refused", request=request), "runway")
    assert refused.retryable and not refused.outcome_unknown and refused.code == "unreachable"
    lost = transport_error(httpx.ReadTimeout("slow", request=request), "runway")
    assert lost.outcome_unknown and lost.code == "timeout" and "runway" in lost.message


def test_a_request_that_waited_out_the_pool_was_never_sent() -> None:
    """10,000 creates at once queue for the 16 connections; one that gives up waiting
    sent nothing, so it is retried, not treated as a create whose outcome is unknown."""
    request = httpx.Request("POST", "https://vendor.test/v1/tasks")
    waited = transport_error(httpx.PoolTimeout("no connection free", request=request), "fal")
    assert waited.retryable and not waited.outcome_unknown and waited.code == "timeout"


def _cdn(answers: dict[str, int]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        code = answers[request.url.path]
        return httpx.Response(code, content=b"video" if code == 200 else b"no")

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://cdn.test")


def _refused(response: httpx.Response) -> AdapterError:
    return BackendFailure(f"HTTP {response.status_code}", code="refused")


async def _collect(client: httpx.AsyncClient, url: str, **kw: Any) -> bytes:
    chunks = [c async for c in stream_output(client, url, backend="v", on_error=_refused, **kw)]
    return b"".join(chunks)


async def test_an_expired_link_is_refreshed_once() -> None:
    calls: list[int] = []

    async def fresh(path: str) -> str:
        calls.append(1)
        return path

    client = _cdn({"/old": 403, "/new": 200, "/gone": 410})
    assert await _collect(client, "/old", refresh=partial(fresh, "/new")) == b"video"
    with pytest.raises(BackendFailure, match="HTTP 410"):  # refreshed, still refused
        await _collect(client, "/old", refresh=partial(fresh, "/gone"))
    assert len(calls) == 2


async def test_other_refusals_and_no_refresh_go_to_on_error() -> None:
    client = _cdn({"/busy": 503, "/old": 403})
    with pytest.raises(BackendFailure, match="HTTP 503"):
        await _collect(client, "/busy", refresh=lambda: pytest.fail("not an expired link"))
    with pytest.raises(BackendFailure, match="HTTP 403"):
        await _collect(client, "/old")


async def test_a_dropped_download_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://c.test")
    with pytest.raises(RetryableError) as info:
        await _collect(client, "/x")
    assert info.value.code == "unreachable" and info.value.outcome_unknown


def streamed() -> httpx.Response:
    """A response whose body is still to be read, as a real connection's is."""

    async def body() -> AsyncIterator[bytes]:
        yield b"{}"

    return httpx.Response(200, content=body())


async def test_vendor_transport_holds_a_lane_per_open_response() -> None:
    """Two lanes: a third request waits until a response is closed, then takes its lane."""
    served: list[str] = []

    def lane(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
        assert limits.max_connections == 1
        return httpx.MockTransport(lambda r: served.append(r.url.path) or streamed())

    client = httpx.AsyncClient(
        transport=VendorTransport(httpx.Limits(max_connections=2), lane=lane)
    )
    async with client:
        first = await client.send(client.build_request("GET", "http://v/1"), stream=True)
        second = await client.send(client.build_request("GET", "http://v/2"), stream=True)
        third = asyncio.ensure_future(client.get("http://v/3"))
        await asyncio.sleep(0.01)
        assert served == ["/1", "/2"] and not third.done()
        await first.aclose()
        assert (await third).status_code == 200 and served == ["/1", "/2", "/3"]
        await second.aclose()
        assert (await client.get("http://v/4")).status_code == 200  # every lane came back


async def test_vendor_transport_bounds_the_wait_by_the_pool_timeout() -> None:
    transport = VendorTransport(
        httpx.Limits(max_connections=1),
        lane=lambda _: httpx.MockTransport(lambda r: streamed()),
    )
    async with httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(5, pool=0.05)
    ) as client:
        held = await client.send(client.build_request("GET", "http://v/1"), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("http://v/2")
        await held.aclose()
        assert (
            await client.get("http://v/3")
        ).status_code == 200  # the timed-out wait left no debt
