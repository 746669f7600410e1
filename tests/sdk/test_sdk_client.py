"""Construction, configuration from the environment, lifecycle, and the Retry-After parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from sdk_fakes import FakeAPI, job_response

import reelgate
from reelgate import AsyncClient, Client, ReelgateError
from reelgate._retry import parse_retry_after


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REELGATE_API_KEY", raising=False)
    monkeypatch.delenv("REELGATE_BASE_URL", raising=False)


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_a_missing_api_key_fails_at_construction(cls: Any) -> None:
    with pytest.raises(ReelgateError, match="REELGATE_API_KEY"):
        cls()


def test_base_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELGATE_API_KEY", "env-key")
    monkeypatch.setenv("REELGATE_BASE_URL", "https://reelgate.example/api/")
    api = FakeAPI()
    api.add("GET", "/api/v1/jobs/job_1", job_response())

    with Client(http_client=httpx.Client(transport=httpx.MockTransport(api))) as client:
        client.jobs.get("job_1")

    (request,) = api.requests
    assert request.url == "https://reelgate.example/api/v1/jobs/job_1"
    assert request.headers["authorization"] == "Bearer env-key"


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELGATE_API_KEY", "env-key")
    api = FakeAPI()
    api.add("GET", "/v1/jobs/job_1", job_response())
    http = httpx.Client(transport=httpx.MockTransport(api))

    with (
        http,
        Client(
            "http://other:9000", "arg-key", http_client=http, default_headers={"X-Team": "film"}
        ) as client,
    ):
        client.jobs.get("job_1")

    (request,) = api.requests
    assert request.url.host == "other" and request.url.port == 9000
    assert request.headers["authorization"] == "Bearer arg-key"
    assert request.headers["x-team"] == "film"


def test_defaults_to_a_local_gateway_and_hides_the_key_in_repr() -> None:
    with Client(api_key="secret-key") as client:
        assert str(client.base_url) == "http://127.0.0.1:8000"
        assert "secret-key" not in repr(client)


def test_close_closes_only_the_http_client_it_made() -> None:
    injected = httpx.Client()
    with Client(api_key="k", http_client=injected) as client:
        owned = Client(api_key="k")
    owned.close()
    assert client._http is injected and not injected.is_closed
    assert owned._http.is_closed
    injected.close()


async def test_async_close_closes_only_the_http_client_it_made() -> None:
    injected = httpx.AsyncClient()
    async with AsyncClient(api_key="k", http_client=injected):
        pass
    async with AsyncClient(api_key="k") as owned:
        pass
    assert not injected.is_closed and owned._http.is_closed
    await injected.aclose()


def test_the_package_exports_the_sdk_and_the_wire_types() -> None:
    for name in ("Client", "AsyncClient", "JobCreate", "ShotSpec", "Job", "Shot", "Quote"):
        assert name in reelgate.__all__ and hasattr(reelgate, name)
    assert isinstance(reelgate.__version__, str) and reelgate.__version__


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2", 2.0), ("0.25", 0.25), ("-3", 0.0), ("soon", None), ("inf", None), ("nan", None)],
)
def test_parse_retry_after_seconds(value: str, expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": value})) == expected


def test_parse_retry_after_http_date_and_absence() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    seconds = parse_retry_after(httpx.Headers({"Retry-After": format_datetime(when, usegmt=True)}))
    assert seconds is not None and 28 <= seconds <= 30
    assert parse_retry_after(httpx.Headers()) is None
