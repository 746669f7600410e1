"""Vendor callbacks wake the shot at once; they are verified where signed, never trusted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from gateway_harness import open_gateway
from test_engine import CHARACTER, ScriptedVendor, clip  # noqa: F401  (fixture)

from adapters.base import JobStatus
from gateway.services.callbacks import CallbackService, verify_standard_webhook
from gateway.services.errors import ServiceError
from gateway.services.replicate_webhooks import RETRY_S, ReplicateWebhooks, SecretUnavailable

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def sign(
    body: bytes, *, msg_id: str = "msg_1", stamp: int | None = None, secret: str = SECRET
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1,bogus v1," + base64.b64encode(mac).decode(),
    }


def test_standard_webhook_signatures() -> None:
    body = b'{"id": "p1", "status": "succeeded"}'
    assert verify_standard_webhook(SECRET, sign(body), body)
    assert not verify_standard_webhook(SECRET, sign(body), body + b" ")  # tampered
    assert not verify_standard_webhook(SECRET, sign(body, stamp=int(time.time()) - 600), body)
    assert not verify_standard_webhook(SECRET, {}, body)
    other = "whsec_" + base64.b64encode(b"another secret, another key....").decode()
    assert not verify_standard_webhook(other, sign(body), body)


async def test_a_callback_ends_the_wait_for_the_next_poll(tmp_path, database_url, clip) -> None:  # noqa: F811
    vendor = ScriptedVendor(
        clip,
        states=[
            JobStatus(state="running", next_poll_s=60),  # without a callback: a minute
            JobStatus(state="succeeded", next_poll_s=0),
        ],
    )
    async with open_gateway(
        tmp_path / "data",
        database_url,
        adapters={"runway": vendor},
        public_base_url="https://gw.example",
    ) as gw:
        job = await gw.client.jobs.create(CHARACTER)
        while vendor.polls < 1:
            await asyncio.sleep(0.01)
        attempt = (await gw.client.jobs.get(job.id)).shots[0].attempts[-1]
        assert vendor.submits[0].callback_url == (
            f"https://gw.example/v1/callbacks/runway/{attempt.id}"
        )
        started = time.monotonic()
        response = await gw.http.post(f"/v1/callbacks/runway/{attempt.id}", json={"any": "body"})
        assert response.status_code == 204
        done = await gw.client.jobs.wait(job.id, timeout=10, poll_interval=0.05)
        assert done.status == "succeeded" and time.monotonic() - started < 5
        # A late duplicate for the finished attempt changes nothing.
        again = await gw.http.post(f"/v1/callbacks/runway/{attempt.id}", content=b"{}")
        assert again.status_code == 204 and vendor.polls == 2
        lost = await gw.http.post("/v1/callbacks/runway/att_nope", content=b"{}")
        assert lost.status_code == 404
        assert lost.headers["content-type"] == "application/problem+json"
        wrong_vendor = await gw.http.post(f"/v1/callbacks/kling/{attempt.id}", content=b"{}")
        assert wrong_vendor.status_code == 404


@pytest.mark.parametrize("signed", [True, False])
async def test_signed_vendors_are_verified(tmp_path, database_url, signed: bool) -> None:
    async with open_gateway(tmp_path / "data", database_url, replicate_webhook_secret=SECRET) as gw:
        body = b'{"id": "p1"}'
        headers = sign(body) if signed else {"webhook-id": "x"}
        response = await gw.http.post(
            "/v1/callbacks/replicate/att_1", content=body, headers=headers
        )
    # signed: past the check, then no such attempt; unsigned: refused at the door
    assert response.status_code == (404 if signed else 401)


# --- Replicate's secret, fetched from Replicate's API -------------------------------------

SECRET_URL = "https://api.replicate.example/v1/webhooks/default/secret"
OTHER = "whsec_" + base64.b64encode(b"a rotated secret, 32 bytes long!").decode()
NOW = 1_700_000_000
BODY = b'{"id": "p1", "status": "succeeded"}'


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


class SecretServer:
    """Replicate's ``GET /v1/webhooks/default/secret``, answering ``secret`` or failing as
    ``failure`` says; counts GETs and checks the API token."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.failure: str | None = None
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "GET" and str(request.url) == SECRET_URL
        assert request.headers["authorization"] == "Bearer r8_token"
        self.gets += 1
        match self.failure:
            case "status":
                return httpx.Response(401, json={"title": "Unauthenticated", "status": 401})
            case "not json":
                return httpx.Response(200, text="<html>", headers={"content-type": "text/html"})
            case "no key":
                return httpx.Response(200, json={"detail": "nothing here"})
            case "not whsec":
                return httpx.Response(200, json={"key": "sk_not-a-signing-secret"})
            case "unreachable":
                raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"key": self.secret})


def fetcher(server: SecretServer, clock: Callable[[], float] = time.time) -> ReplicateWebhooks:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return ReplicateWebhooks(SECRET_URL, "r8_token", client, clock=clock)


async def test_the_secret_is_fetched_once_and_kept() -> None:
    server, clock = SecretServer(), Clock()
    replicate = fetcher(server, clock)
    assert server.gets == 0  # nothing until the first callback
    for n in range(3):
        assert await replicate.verify(sign(BODY, msg_id=f"msg_{n}", stamp=NOW), BODY)
    assert not await replicate.verify(sign(BODY, stamp=NOW), BODY + b" ")  # tampered
    assert server.gets == 1


async def test_unsigned_or_stale_calls_are_refused_without_fetching() -> None:
    server, clock = SecretServer(), Clock()
    replicate = fetcher(server, clock)
    assert not await replicate.verify({}, BODY)
    assert not await replicate.verify({"webhook-id": "x", "webhook-timestamp": str(NOW)}, BODY)
    assert not await replicate.verify(sign(BODY, stamp=NOW - 301), BODY)
    assert server.gets == 0


async def test_a_rotated_secret_is_fetched_but_forgeries_refetch_at_most_once_a_minute() -> None:
    server, clock = SecretServer(), Clock()
    replicate = fetcher(server, clock)
    assert await replicate.verify(sign(BODY, stamp=NOW), BODY)
    clock.now += RETRY_S
    server.secret = OTHER
    assert await replicate.verify(sign(BODY, stamp=int(clock.now), secret=OTHER), BODY)
    assert server.gets == 2
    for _ in range(5):  # signed with a secret Replicate never handed out
        assert not await replicate.verify(sign(BODY, stamp=int(clock.now)), BODY)
    assert server.gets == 2  # the last fetch was under a minute ago


@pytest.mark.parametrize("failure", ["status", "not json", "no key", "not whsec", "unreachable"])
async def test_a_secret_that_cannot_be_had_raises_and_is_asked_again_later(failure: str) -> None:
    server, clock = SecretServer(), Clock()
    server.failure = failure
    replicate = fetcher(server, clock)
    with pytest.raises(SecretUnavailable, match=re.escape(SECRET_URL)):
        await replicate.verify(sign(BODY, stamp=NOW), BODY)
    with pytest.raises(SecretUnavailable):  # not asked again within the minute
        await replicate.verify(sign(BODY, stamp=NOW), BODY)
    assert server.gets == 1
    server.failure = None  # Replicate is back; a minute later it is asked again
    clock.now += RETRY_S
    assert await replicate.verify(sign(BODY, stamp=int(clock.now)), BODY)
    assert server.gets == 2


@pytest.mark.parametrize(
    ("configured", "signed_with", "status"),
    [
        (None, SECRET, 404),  # the fetched secret verifies: past the check, no such attempt
        (None, OTHER, 401),  # a signature the fetched secret does not verify
        (OTHER, OTHER, 404),  # a configured secret wins: nothing is fetched
        (OTHER, SECRET, 401),  # ... even when Replicate's API would hand out another
    ],
)
async def test_replicate_callbacks_in_the_service(
    tmp_path, database_url, configured: str | None, signed_with: str, status: int
) -> None:
    server = SecretServer()
    async with open_gateway(tmp_path / "data", database_url) as gw:
        secrets = {"replicate": configured} if configured else {}
        service = CallbackService(gw.runtime.db, None, secrets, replicate=fetcher(server))
        with pytest.raises(ServiceError) as refused:
            await service.receive("replicate", "att_1", sign(BODY, secret=signed_with), BODY)
    assert refused.value.status == status
    assert server.gets == (0 if configured else 1)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("configured", "signed", "status"),
    [
        (False, True, 503),  # the secret cannot be fetched: Replicate retries, polling goes on
        (False, False, 401),  # no headers: refused, nothing fetched
        (True, True, 404),  # a configured secret: nothing to fetch, past the check
    ],
)
async def test_replicate_callbacks_at_the_route(
    tmp_path, database_url, configured: bool, signed: bool, status: int
) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    settings = {"replicate_api_key": "r8_token", "replicate_base_url": base_url}
    if configured:
        settings["replicate_webhook_secret"] = SECRET
    async with open_gateway(tmp_path / "data", database_url, **settings) as gw:
        headers = sign(BODY) if signed else {}
        response = await gw.http.post(
            "/v1/callbacks/replicate/att_1", content=BODY, headers=headers
        )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = json.loads(response.content)
    if status == 503:
        assert problem["code"] == "keys_unavailable" and response.headers["retry-after"] == "60"
        assert f"{base_url}/v1/webhooks/default/secret" in problem["detail"]
        assert "r8_token" not in problem["detail"]
    elif status == 401:
        assert problem["code"] == "bad_signature"
