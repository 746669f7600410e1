"""SeedanceAdapter beyond the shared contract (``test_contract.py``, ``vendor_cases/seedance.py``):
frames as content items, fields rather than prompt flags, failed tasks, refusal messages.

Shapes: ``vendors.md`` §8 (vercel/ai's ByteDance provider and its recorded task
``issue-17883-status-response.json``; the ``{"error": {"code", "message"}}`` body).
Error codes beyond the reference are ModelArk's public error table (UNCONFIRMED there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from vendor_cases.base import Vendor
from vendor_cases.seedance import API, TASK, refusal, request, task

from adapters.base import InvalidInput
from adapters.seedance import SeedanceAdapter, parse_status, to_payload


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[SeedanceAdapter] = []

    def build(vendor: Vendor, **kw: Any) -> SeedanceAdapter:
        client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
        made.append(SeedanceAdapter("ark_key", client=client, **kw))
        return made[-1]

    yield build
    for adapter in made:
        await adapter.aclose()


# --- payloads and statuses ----------------------------------------------------------------


def test_frames_are_content_items_with_roles_only_when_both_are_given() -> None:
    first, last = "https://example.test/first.png", "data:image/png;base64,iVBORw0KGgo="
    only_first = to_payload(request(image=first))["content"]
    assert only_first[1:] == [{"type": "image_url", "image_url": {"url": first}}]
    both = to_payload(request(image=first, last_frame=last, audio=True))
    assert both["content"][1:] == [
        {"type": "image_url", "image_url": {"url": first}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": last}, "role": "last_frame"},
    ]
    assert both["generate_audio"] is True
    assert "--" not in both["content"][0]["text"]  # parameters are fields, not prompt flags


def test_unset_options_stay_unset() -> None:
    body = to_payload(request(seed=None, resolution="1080P", aspect_ratio="21:9", duration_s=12))
    assert (body["ratio"], body["duration"], body["resolution"]) == ("21:9", 12, "1080p")
    assert not {"seed", "generate_audio", "negative_prompt", "callback_url"} & body.keys()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"last_frame": "https://example.test/b.png"}, "last_frame needs a first frame"),
        ({"image": "gs://bucket/a.png"}, "image: Seedance takes"),
        ({"duration_s": 4.5}, "whole s"),
    ],
)
def test_inputs_seedance_cannot_take_are_refused(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        to_payload(request(**overrides))


@pytest.mark.parametrize(
    ("record", "failure_code", "failure_class"),
    [
        (task("failed"), "generation_failed", "fallback"),
        (
            task("failed", error={"code": "InternalServiceError", "message": "try later"}),
            "InternalServiceError",
            "fallback",
        ),
        (
            task("failed", error={"code": "OutputVideoSensitiveContentDetected", "message": "no"}),
            "content_rejected",
            "fatal",
        ),
        (task("expired"), "expired", "fallback"),
    ],
)
def test_a_failed_task_is_data(record: Any, failure_code: str, failure_class: str) -> None:
    status = parse_status(record)
    assert status.state == "failed" and status.raw_state == record["status"]
    assert status.failure is not None
    assert (status.failure.code, status.failure.failure_class) == (failure_code, failure_class)


# --- errors -------------------------------------------------------------------------------


async def test_a_refusal_carries_the_vendors_code_and_message(make: Any) -> None:
    vendor = Vendor(refusal(400, "InvalidParameter", "duration 7 is not valid for this model"))
    with pytest.raises(InvalidInput, match=r"InvalidParameter: duration 7 is not valid") as caught:
        await make(vendor).submit(request())
    assert caught.value.failure_class == "fatal"


# --- cost ---------------------------------------------------------------------------------

USAGE = {"completion_tokens": 19845, "total_tokens": 19845}  # the recorded task's usage


async def test_completion_tokens_are_priced_per_million(make: Any) -> None:
    """Billing is per token (``usage.completion_tokens``, vendors.md §8); the configured
    price per million tokens replaces the UNCONFIRMED default."""
    vendor = Vendor(httpx.Response(200, json=task("succeeded")))
    status = await make(vendor, token_prices_usd={"seedance-1-0-pro-250528": "3"}).poll(TASK)
    assert status.cost_usd_micros == 59_535  # 19,845 tokens x $3 per million
    assert status.vendor_usage == USAGE


@pytest.mark.parametrize(
    ("record", "usage", "cost"),
    [
        (task("succeeded"), USAGE, 49_613),  # the default rate: $2.50 per million
        (task("succeeded", model="ep-20260828-abcde"), USAGE, None),  # no price: units only
        (task("succeeded", usage={"completion_tokens": 1000}), {"completion_tokens": 1000}, 2_500),
        (task("succeeded", usage={"completion_tokens": "1000"}), None, None),
        (task("succeeded", usage=None), None, None),
        (task("running"), None, None),
    ],
)
def test_usage_is_reported_and_priced_where_the_model_has_a_price(
    record: dict[str, Any], usage: dict[str, int] | None, cost: int | None
) -> None:
    status = parse_status(record)
    assert (status.vendor_usage, status.cost_usd_micros) == (usage, cost)
