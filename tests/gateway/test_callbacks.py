"""Vendor callbacks wake the shot at once; they are verified where signed, never trusted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time

import pytest
from gateway_harness import open_gateway
from test_engine import CHARACTER, ScriptedVendor, clip  # noqa: F401  (fixture)

from adapters.base import JobStatus
from gateway.services.callbacks import verify_standard_webhook

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def sign(body: bytes, *, msg_id: str = "msg_1", stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
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
