"""KlingAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/kling.py``):
the JWT and its re-signing, image2video, modes, and deduplicated creates.

Shapes: the copy of Kling's API docs named in ``vendors.md`` §5 (create and query
envelopes, ``task_status`` values, the HTTP status / ``code`` error table, JWT claims).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from vendor_cases.base import Vendor
from vendor_cases.kling import (
    AK,
    API,
    JOB,
    NOW,
    SK,
    SUCCEED,
    TASK,
    Clock,
    refusal,
    request,
    task,
)

from adapters.base import BackendJobLost, InvalidInput, RetryableError
from adapters.kling import KlingAdapter, parse_status, sign_jwt, to_payload


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[KlingAdapter] = []

    def build(vendor: Vendor, clock: Clock | None = None, **kw: Any) -> KlingAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
        made.append(KlingAdapter(f"{AK}:{SK}", client=client, clock=clock or Clock(), **kw))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


def claims_of(req: httpx.Request) -> dict[str, Any]:
    """Verify the bearer JWT's HS256 signature with the secret key; return its claims."""
    scheme, _, token = req.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    head, body, sig = token.split(".")
    expected = hmac.new(SK.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)) == expected
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


# --- payloads -----------------------------------------------------------------------------


async def test_image2video_sends_raw_base64_and_polls_its_own_path(make: Any) -> None:
    vendor = Vendor(httpx.Response(200, json=task("submitted")), httpx.Response(200, json=SUCCEED))
    adapter = make(vendor)
    png = base64.b64encode(b"\x89PNG fake").decode()
    job = await adapter.submit(
        request(
            model="kling-v2-1",
            resolution="720p",
            audio=True,
            image=f"data:image/png;base64,{png}",
            last_frame="https://example.test/last.jpg",
            callback_url="https://gateway.test/hooks/kling",
        )
    )
    assert job.backend_job_id == f"image2video/{TASK}"
    assert vendor.seen[0].url.path == "/v1/videos/image2video"
    assert vendor.body(0) == {
        "model_name": "kling-v2-1",
        "prompt": "A harbour at dawn, the camera pans left",
        "negative_prompt": "blur",
        "duration": "5",
        "mode": "std",
        "sound": "on",
        "callback_url": "https://gateway.test/hooks/kling",
        "image": png,
        "image_tail": "https://example.test/last.jpg",
        "external_task_id": "att_1",
    }
    assert (await adapter.poll(job.backend_job_id)).state == "succeeded"
    assert vendor.seen[1].url.path == f"/v1/videos/image2video/{TASK}"


@pytest.mark.parametrize(
    ("model", "resolution", "mode"),
    [("kling-v2-5-turbo", "1080p", "pro"), ("kling-v1-6", "720p", "std"), ("kling-v3", "4k", None)],
)
def test_mode_follows_the_resolution_except_for_master_models(
    model: str, resolution: str, mode: str | None
) -> None:
    _, body = to_payload(request(model=model, resolution=resolution))
    assert body.get("mode") == mode


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"image": "ftp://example.test/a.png"}, "image: Kling takes"),
        ({"image": "data:image/png,not-base64"}, "image: Kling takes"),
        ({"last_frame": "https://example.test/b.png"}, "last_frame needs a first frame"),
        ({"duration_s": 5.5}, "whole seconds"),
    ],
)
def test_inputs_kling_cannot_take_are_refused_before_sending(
    overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        to_payload(request(**overrides))


# --- auth ---------------------------------------------------------------------------------


def test_the_jwt_is_hs256_over_iss_exp_nbf() -> None:
    token = sign_jwt(AK, SK, NOW)
    req = httpx.Request("GET", API, headers={"Authorization": f"Bearer {token}"})
    assert claims_of(req) == {"iss": AK, "exp": int(NOW) + 1800, "nbf": int(NOW) - 5}


async def test_the_token_is_reused_then_re_signed_before_it_expires(make: Any) -> None:
    clock = Clock()
    vendor = Vendor(*[httpx.Response(200, json=task("processing")) for _ in range(3)])
    adapter = make(vendor, clock)
    await adapter.poll(f"text2video/{TASK}")
    clock.now += 1400  # 400 s of validity left: reused
    await adapter.poll(f"text2video/{TASK}")
    clock.now += 200  # 200 s left: re-signed
    await adapter.poll(f"text2video/{TASK}")
    exps = [claims_of(r)["exp"] for r in vendor.seen]
    assert exps == [int(NOW) + 1800, int(NOW) + 1800, int(NOW) + 1600 + 1800]


async def test_an_expired_token_is_retryable_and_dropped(make: Any) -> None:
    clock = Clock()
    vendor = Vendor(
        refusal(401, 1004, "token expired"), httpx.Response(200, json=task("submitted"))
    )
    adapter = make(vendor, clock)
    with pytest.raises(RetryableError) as caught:
        await adapter.submit(request())
    assert (caught.value.code, caught.value.outcome_unknown) == ("token_expired", False)
    clock.now += 10
    await adapter.submit(request())
    assert claims_of(vendor.seen[1])["exp"] == int(NOW) + 10 + 1800


async def test_keys_come_as_access_colon_secret_or_apart() -> None:
    adapter = KlingAdapter(AK, secret_key=SK, client=httpx.AsyncClient())
    req = httpx.Request("GET", API, headers={"Authorization": adapter._bearer()})
    assert claims_of(req)["iss"] == AK
    await adapter.aclose()
    with pytest.raises(ValueError, match="ACCESS_KEY:SECRET_KEY"):
        KlingAdapter("only-one-key", client=httpx.AsyncClient())


# --- dedup --------------------------------------------------------------------------------


async def test_a_resubmit_refused_as_a_duplicate_returns_the_first_job(make: Any) -> None:
    vendor = Vendor(
        refusal(400, 1201, "external_task_id already exists"),
        httpx.Response(200, json=task("processing")),
    )
    job = await make(vendor).submit(request())
    assert job.backend_job_id == f"text2video/{TASK}"
    lookup = vendor.seen[1]
    assert (lookup.method, lookup.url.path) == ("GET", "/v1/videos/text2video/att_1")


async def test_a_bad_request_with_no_earlier_job_stays_a_bad_request(make: Any) -> None:
    vendor = Vendor(refusal(400, 1201, "duration invalid"), refusal(404, 1203, "not found"))
    with pytest.raises(InvalidInput, match="duration invalid"):
        await make(vendor).submit(request())


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("job", ["843759", "video/843759", "text2video/"])
async def test_a_job_id_that_is_not_ours_is_lost(make: Any, job: str) -> None:
    with pytest.raises(BackendJobLost):
        await make(Vendor()).poll(job)


# --- cost ---------------------------------------------------------------------------------


async def test_the_unit_deduction_is_priced_at_the_configured_unit_price(make: Any) -> None:
    """``data.final_unit_deduction`` (addendum §8) x USD per unit: the operator's figure,
    since Kling publishes none (UNCONFIRMED); the units are reported either way."""
    body = {**SUCCEED, "data": {**SUCCEED["data"], "final_unit_deduction": "2.5"}}
    status = await make(Vendor(httpx.Response(200, json=body)), unit_price_usd="0.14").poll(JOB)
    assert status.state == "succeeded"
    assert status.cost_usd_micros == 350_000  # 2.5 units x $0.14
    assert status.vendor_usage == {"final_unit_deduction": "2.5"}


@pytest.mark.parametrize(
    ("units", "usage", "cost"),
    [
        ("1", {"final_unit_deduction": "1"}, 140_000),
        (10, {"final_unit_deduction": "10"}, 1_400_000),  # a number as well as a string
        ("", None, None),
        ("n/a", None, None),
        ("-1", None, None),
        (True, None, None),
    ],
)
def test_only_a_usable_unit_deduction_is_reported(
    units: Any, usage: dict[str, str] | None, cost: int | None
) -> None:
    body = {**SUCCEED, "data": {**SUCCEED["data"], "final_unit_deduction": units}}
    status = parse_status(body, Decimal("0.14"))
    assert (status.vendor_usage, status.cost_usd_micros) == (usage, cost)
    assert parse_status(body).cost_usd_micros is None  # no price, no cost


def test_a_bad_unit_price_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="not a USD price"):
        KlingAdapter(f"{AK}:{SK}", client=httpx.AsyncClient(), unit_price_usd="-1")
