"""Fixtures: the fake API, fake time, and the client under test in both flavours.

``client`` is parametrized over ``Client`` and ``AsyncClient``: a test written once
with ``await resolve(client.jobs.get(...))`` checks both twins.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sdk_fakes import FakeAPI, FakeTime, make_client


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def client(flavour: str, api: FakeAPI, fake_time: FakeTime) -> AsyncIterator[Any]:
    sdk = make_client(flavour, api, fake_time)
    yield sdk
    http = sdk._http
    await http.aclose() if isinstance(http, httpx.AsyncClient) else http.close()
