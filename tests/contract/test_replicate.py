"""ReplicateAdapter beyond the shared contract (``test_contract.py``,
``vendor_cases/replicate.py``): per-family inputs, pinned versions, progress from logs,
failed predictions, and which URLs get the token.

Shapes: the vendor reference (§7).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from vendor_cases.replicate import API, MODEL, PID, TOKEN, VIDEO_URL, prediction, problem, request

from adapters.base import BackendFailure, InvalidInput, JobStatus
from adapters.replicate import ReplicateAdapter, parse_progress, parse_status, to_payload

VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"frame" * 5000

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class Replicate:
    """Scripted Replicate: answers per ``METHOD url`` in order (the last repeats), records all."""

    def __init__(self, routes: dict[str, Answer | list[Answer]]) -> None:
        self.routes = {k: v if isinstance(v, list) else [v] for k, v in routes.items()}
        self.seen: list[httpx.Request] = []

    def __call__(self, req: httpx.Request) -> httpx.Response:
        self.seen.append(req)
        key = f"{req.method} {req.url.copy_with(query=None)}"
        if key not in self.routes:
            return httpx.Response(599, text=f"unscripted {key}")
        answers = self.routes[key]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(req) if callable(answer) else answer


def adapter(vendor: Replicate) -> ReplicateAdapter:
    client = httpx.AsyncClient(transport=httpx.MockTransport(vendor), base_url=API)
    return ReplicateAdapter(TOKEN, client=client)


TQDM = " 45%|████▌     | 9/20 [00:31<00:38,  3.50s/it]"
CREATE = f"POST {API}/v1/models/{MODEL}/predictions"
GET = f"GET {API}/v1/predictions/{PID}"


# --- create, download, close ------------------------------------------------------------------


async def test_a_create_never_holds_the_connection_open() -> None:
    vendor = Replicate({CREATE: httpx.Response(201, json=prediction("starting"))})
    await adapter(vendor).submit(request())
    assert "prefer" not in vendor.seen[0].headers  # async: no ``Prefer: wait``


async def test_a_pinned_version_uses_the_predictions_endpoint() -> None:
    vendor = Replicate(
        {f"POST {API}/v1/predictions": httpx.Response(201, json=prediction("starting"))}
    )
    await adapter(vendor).submit(request(model="acme/clipper:5c7d5dc6dd8b"))
    (create,) = vendor.seen
    assert json.loads(create.content) == {
        "version": "5c7d5dc6dd8b",
        "input": {
            "prompt": "A harbour at dawn, boats rocking",
            "duration": 5,
            "aspect_ratio": "16:9",
        },
    }


async def test_a_file_url_on_the_api_host_is_fetched_with_the_token() -> None:
    file_url = f"{API}/v1/files/abc/download"
    vendor = Replicate({f"GET {file_url}": httpx.Response(200, content=VIDEO)})
    done = JobStatus(state="succeeded", output_url=file_url)
    assert b"".join([c async for c in adapter(vendor).download(PID, done)]) == VIDEO
    assert vendor.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


async def test_download_without_a_url_polls_again() -> None:
    vendor = Replicate(
        {
            GET: httpx.Response(200, json=prediction("succeeded", output=[VIDEO_URL])),
            f"GET {VIDEO_URL}": httpx.Response(200, content=VIDEO),
        }
    )
    chunks = [c async for c in adapter(vendor).download(PID, JobStatus(state="succeeded"))]
    assert b"".join(chunks) == VIDEO


async def test_aclose_closes_the_client() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(Replicate({})), base_url=API)
    await ReplicateAdapter(TOKEN, client=client).aclose()
    assert client.is_closed


# --- statuses ---------------------------------------------------------------------------------

STATES = [
    (prediction("starting"), "queued", None),
    (prediction("processing", logs=TQDM), "running", None),
    (
        prediction("succeeded", output=[VIDEO_URL, "https://replicate.delivery/x/2.mp4"]),
        "succeeded",
        None,
    ),
    (prediction("succeeded", output=None), "failed", ("no_output", "fallback")),
    (prediction("failed", error="CUDA out of memory"), "failed", ("prediction_failed", "fallback")),
    (
        prediction(
            "failed",
            error="The input or output was flagged as sensitive. Please try again. (E005)",
        ),
        "failed",
        ("content_rejected", "fatal"),
    ),
    (prediction("canceled"), "canceled", None),
    (prediction("aborted"), "canceled", None),  # a Cancel-After deadline before it started
]


@pytest.mark.parametrize(("body", "state", "failure"), STATES)
def test_parse_status_maps_every_documented_status(
    body: dict[str, Any], state: str, failure: tuple[str, str] | None
) -> None:
    status = parse_status(body)
    assert (status.state, status.raw_state) == (state, body["status"])
    got = (status.failure.code, status.failure.failure_class) if status.failure else None
    assert got == failure
    if state == "succeeded":
        assert status.output_url == VIDEO_URL


@pytest.mark.parametrize("raw", ["queued", "PROCESSING", None, 3])
def test_an_unknown_status_is_an_error(raw: Any) -> None:
    with pytest.raises(BackendFailure) as caught:
        parse_status(prediction("starting") | {"status": raw})
    assert caught.value.code == "unknown_state"


def test_progress_comes_from_the_last_tqdm_line() -> None:
    assert parse_progress(f"{TQDM}\r100%|██████████| 20/20 [01:10<00:00]") == (1.0, 20, 20)
    assert parse_progress("no bars here") is None
    assert parse_progress(None) is None


# --- payloads ---------------------------------------------------------------------------------

IMG, LAST = "https://img.example/a.png", "https://img.example/z.png"
PROMPT = "A harbour at dawn, boats rocking"

PAYLOADS = [
    (
        {
            "model": "google/veo-3.1",
            "duration_s": 8,
            "audio": True,
            "resolution": "1080p",
            "image": IMG,
            "last_frame": LAST,
            "negative_prompt": "text",
        },
        {
            "prompt": PROMPT,
            "negative_prompt": "text",
            "duration": 8,
            "aspect_ratio": "16:9",
            "resolution": "1080p",
            "generate_audio": True,
            "image": IMG,
            "last_frame": LAST,
        },
    ),
    (
        {"model": "kwaivgi/kling-v2.1", "duration_s": 10, "image": IMG, "seed": 4},
        {"prompt": PROMPT, "duration": 10, "start_image": IMG},
    ),
    (
        {"model": "kwaivgi/kling-v1.6-standard", "negative_prompt": "blur"},
        {"prompt": PROMPT, "negative_prompt": "blur", "duration": 5, "aspect_ratio": "16:9"},
    ),
    (
        {
            "model": "wan-video/wan-2.2-i2v-fast",
            "image": IMG,
            "last_frame": LAST,
            "negative_prompt": "blur",
        },
        {
            "prompt": PROMPT,
            "num_frames": 81,
            "frames_per_second": 16,
            "resolution": "480p",
            "image": IMG,
            "last_image": LAST,
        },
    ),
    (
        {
            "model": "lightricks/ltx-2-fast",
            "duration_s": 6,
            "resolution": "1080p",
            "image": "data:image/png;base64,iVBO",
        },
        {
            "prompt": PROMPT,
            "duration": 6,
            "resolution": "1080p",
            "generate_audio": False,
            "image": "data:image/png;base64,iVBO",
        },
    ),
    (
        {"model": "acme/any-video", "seed": 2, "audio": True, "image": IMG},
        {
            "prompt": PROMPT,
            "seed": 2,
            "duration": 5,
            "aspect_ratio": "16:9",
            "generate_audio": True,
            "image": IMG,
        },
    ),
]


@pytest.mark.parametrize(("fields", "model_input"), PAYLOADS)
def test_to_payload_maps_each_family(fields: dict[str, Any], model_input: dict[str, Any]) -> None:
    path, body = to_payload(request(**fields))
    assert path == f"v1/models/{fields['model']}/predictions"
    assert body == {"input": model_input}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"model": "wan-video"}, "must be 'owner/name' or 'owner/name:version'"),
        ({"model": "a/b/c"}, "must be 'owner/name'"),
        ({"last_frame": LAST}, "last_frame needs image"),
        ({"model": "acme/any-video", "image": IMG, "last_frame": LAST}, "takes no last frame"),
        ({"image": "s3://bucket/a.png"}, "image must be an http(s) URL or a data: URI"),
    ],
)
def test_inputs_replicate_cannot_take_are_invalid(fields: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        to_payload(request(**fields))


# --- errors -----------------------------------------------------------------------------------


async def test_a_validation_error_says_which_field() -> None:
    routes: dict[str, Answer | list[Answer]] = {
        CREATE: problem(422, "- input.num_frames: Must be less than or equal to 121")()
    }
    with pytest.raises(InvalidInput, match="num_frames"):
        await adapter(Replicate(routes)).submit(request())
