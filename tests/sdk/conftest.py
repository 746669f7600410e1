"""Fixtures: the fake API, fake time, and the client under test in both flavours.

``client`` is parametrized over ``Client`` and ``AsyncClient``: a test written once
with ``await resolve(client.jobs.get(...))`` checks both twins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sdk_fakes import FakeAPI, FakeTime

from reelgate import AsyncClient, Client

API_KEY = "rg_test_key"
BASE_URL = "http://gateway.test"


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(flavour: str, api: FakeAPI, fake_time: FakeTime, **kwargs: Any) -> Any:
    transport = httpx.MockTransport(api)
    if flavour == "sync":
        return Client(
            BASE_URL,
            API_KEY,
            http_client=httpx.Client(transport=transport),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            **kwargs,
        )
    return AsyncClient(
        BASE_URL,
        API_KEY,
        http_client=httpx.AsyncClient(transport=transport),
        sleep=fake_time.async_sleep,
        clock=fake_time.clock,
        **kwargs,
    )


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(flavour: str, api: FakeAPI, fake_time: FakeTime) -> AsyncIterator[Any]:
    sdk = make_client(flavour, api, fake_time)
    yield sdk
    http = sdk._http
    await http.aclose() if isinstance(http, httpx.AsyncClient) else http.close()
