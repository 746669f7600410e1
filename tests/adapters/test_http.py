"""The rules every HTTP adapter shares."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from adapters._http import retry_after, transport_error


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
