"""fal's callbacks are checked as fal documents: Ed25519 over request id, user id,
timestamp and the body's SHA-256 hex, under any key of fal's JWKS (cached, refetched
at most once a minute). Real keys made here; the JWKS is served by a MockTransport."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_harness import open_gateway

from gateway.services.fal_webhooks import (
    CACHE_S,
    RETRY_S,
    FalWebhooks,
    KeysUnavailable,
    parse_jwks,
    signed_message,
)

URL = "https://rest.fal.example/.well-known/jwks.json"
NOW = 1_700_000_000
BODY = b'{"request_id": "req-1", "status": "OK", "payload": {"video": {"url": "u"}}}'


def jwk(key: Ed25519PrivateKey, *, padded: bool = False) -> dict[str, str]:
    x = base64.urlsafe_b64encode(key.public_key().public_bytes_raw()).decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x if padded else x.rstrip("=")}


def sign(
    key: Ed25519PrivateKey, body: bytes = BODY, *, stamp: int = NOW, request_id: str = "req-1"
) -> dict[str, str]:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{request_id}\nuser-1\n{stamp}\n{digest}".encode()
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "user-1",
        "X-Fal-Webhook-Timestamp": str(stamp),
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """fal's JWKS endpoint, serving ``keys`` or failing as ``failure`` says; counts GETs."""

    def __init__(self, *keys: dict[str, str]) -> None:
        self.document: object = {"keys": list(keys)}
        self.failure: str | None = None
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == URL
        self.gets += 1
        match self.failure:
            case "status":
                return httpx.Response(503, json={"detail": "unavailable"})
            case "not json":
                return httpx.Response(200, text="<html>", headers={"content-type": "text/html"})
            case "null":
                return httpx.Response(200, json=None)
            case "no keys":
                return httpx.Response(200, json={"keys": []})
            case "unreachable":
                raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=self.document)


def verifier(server: JwksServer, clock: Clock) -> FalWebhooks:
    client = httpx.AsyncClient(transport=httpx.MockTransport(server))
    return FalWebhooks(URL, client, clock=clock)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


async def test_a_genuine_call_verifies_and_a_tampered_body_does_not(key) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    fal = verifier(server, clock)
    assert await fal.verify(sign(key), BODY)
    assert not await fal.verify(sign(key), BODY.replace(b"OK", b"ERROR"))
    # Any signed field changed breaks it too: the request id is part of the message.
    forged = {**sign(key), "X-Fal-Webhook-Request-Id": "req-2"}
    assert not await fal.verify(forged, BODY)


async def test_a_signature_by_a_key_not_in_the_jwks_is_refused(key) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    fal = verifier(server, clock)
    assert not await fal.verify(sign(Ed25519PrivateKey.generate()), BODY)


@pytest.mark.parametrize(
    ("skew", "valid"), [(-300, True), (300, True), (-301, False), (301, False)]
)
async def test_the_timestamp_must_be_within_300_s_either_way(key, skew: int, valid: bool) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    fal = verifier(server, clock)
    assert await fal.verify(sign(key, stamp=NOW + skew), BODY) is valid


@pytest.mark.parametrize(
    "header",
    [
        "X-Fal-Webhook-Request-Id",
        "X-Fal-Webhook-User-Id",
        "X-Fal-Webhook-Timestamp",
        "X-Fal-Webhook-Signature",
    ],
)
async def test_a_missing_header_is_refused_without_fetching_keys(key, header: str) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    fal = verifier(server, clock)
    headers = sign(key)
    del headers[header]
    assert not await fal.verify(headers, BODY)
    assert server.gets == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Fal-Webhook-Timestamp", "soon"),
        ("X-Fal-Webhook-Signature", "not hex"),
        ("X-Fal-Webhook-Signature", "ab" * 32),  # hex, but 32 bytes, not 64
    ],
)
def test_malformed_headers_give_no_message(key, name: str, value: str) -> None:
    assert signed_message(sign(key), BODY, now=NOW) is not None
    assert signed_message({**sign(key), name: value}, BODY, now=NOW) is None


async def test_any_key_of_several_verifies_and_odd_entries_are_skipped(key) -> None:
    rsa = {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
    broken = {"kty": "OKP", "crv": "Ed25519", "x": "too-short"}
    other = jwk(Ed25519PrivateKey.generate())
    server, clock = JwksServer(rsa, broken, other, jwk(key, padded=True)), Clock()
    fal = verifier(server, clock)
    assert await fal.verify(sign(key), BODY)
    assert len(parse_jwks(server.document)) == 2
    assert parse_jwks({"keys": "none"}) == [] and parse_jwks([]) == []


async def test_the_key_set_is_cached_for_at_most_24_hours(key) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    fal = verifier(server, clock)
    for _ in range(3):
        assert await fal.verify(sign(key, stamp=int(clock.now)), BODY)
    assert server.gets == 1
    clock.now += CACHE_S
    assert await fal.verify(sign(key, stamp=int(clock.now)), BODY)
    assert server.gets == 2


async def test_a_rotated_key_is_fetched_but_forgeries_refetch_at_most_once_a_minute(key) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    fal = verifier(server, clock)
    assert await fal.verify(sign(key), BODY)
    clock.now += RETRY_S
    rotated = Ed25519PrivateKey.generate()
    server.document = {"keys": [jwk(rotated)]}
    assert await fal.verify(sign(rotated, stamp=int(clock.now)), BODY)
    assert server.gets == 2
    forger = Ed25519PrivateKey.generate()
    for _ in range(5):
        assert not await fal.verify(sign(forger, stamp=int(clock.now)), BODY)
    assert server.gets == 2  # the last fetch was under a minute ago


@pytest.mark.parametrize("failure", ["status", "not json", "null", "no keys", "unreachable"])
async def test_a_key_set_that_cannot_be_had_raises_and_is_asked_again_later(
    key, failure: str
) -> None:
    server, clock = JwksServer(jwk(key)), Clock()
    server.failure = failure
    fal = verifier(server, clock)
    with pytest.raises(KeysUnavailable, match=re.escape(URL)):
        await fal.verify(sign(key), BODY)
    with pytest.raises(KeysUnavailable):  # not asked again within the minute
        await fal.verify(sign(key), BODY)
    assert server.gets == 1
    server.failure = None  # fal's JWKS is back; a minute later it is asked again
    clock.now += RETRY_S
    assert await fal.verify(sign(key, stamp=int(clock.now)), BODY)
    assert server.gets == 2


# --- through the gateway ----------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("verified", "signed", "status"),
    [
        (True, False, 401),  # no headers: refused, nothing fetched
        (True, True, 503),  # keys unreachable: cannot tell now; fal retries, polling goes on
        (False, False, 404),  # verification off: past the check, then no such attempt
    ],
)
async def test_fal_callbacks_at_the_route(
    tmp_path, database_url, key, verified: bool, signed: bool, status: int
) -> None:
    jwks_url = f"http://127.0.0.1:{closed_port()}/jwks.json" if verified else ""
    async with open_gateway(tmp_path / "data", database_url, fal_jwks_url=jwks_url) as gw:
        headers = sign(key, stamp=int(time.time())) if signed else {}
        response = await gw.http.post("/v1/callbacks/fal/att_1", content=BODY, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = json.loads(response.content)
    if status == 503:
        assert problem["code"] == "keys_unavailable" and response.headers["retry-after"] == "60"
        assert jwks_url in problem["detail"]
    elif status == 401:
        assert problem["code"] == "bad_signature"
