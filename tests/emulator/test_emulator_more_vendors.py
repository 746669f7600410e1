"""The emulator's Google (Veo, Omni), Kling, MiniMax and Seedance wires, then our adapters
driven against them over ASGI: what each emulator speaks, it speaks to the real client."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from emulator_support import Clock
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.base import Adapter, GenerationRequest, JobStatus
from adapters.google import GoogleAdapter
from adapters.kling import KlingAdapter
from adapters.minimax import MiniMaxAdapter
from adapters.seedance import SeedanceAdapter
from emulator.app import create_app
from emulator.core import Knobs, sample_mp4
from emulator.vendors import kling as kling_emulator


@pytest.fixture
def clock() -> Clock:
    return Clock()


def app_on(clock: Clock, **knobs: Any) -> FastAPI:
    """The emulator with 10 s queued then 10 s running, on a clock the test moves."""
    app = create_app(Knobs(**{"queue_s": 10, "latency_s": 10, **knobs}))
    app.state.emulator.clock = clock
    return app


@pytest.fixture
def client(clock: Clock) -> Iterator[TestClient]:
    with TestClient(app_on(clock)) as client:
        yield client


def is_mp4(content: bytes) -> bool:
    return content[4:8] == b"ftyp"


# --- Google: Veo operations ---------------------------------------------------------------

GKEY = {"x-goog-api-key": "g-key"}
VEO = "veo-3.1-generate-preview"
VEO_BODY = {
    "instances": [{"prompt": "a lighthouse at dawn"}],
    "parameters": {"aspectRatio": "16:9", "durationSeconds": 8, "resolution": "720p"},
}


def test_veo_operation_runs_to_a_keyed_video(client: TestClient, clock: Clock) -> None:
    created = client.post(
        f"/google/v1beta/models/{VEO}:predictLongRunning", json=VEO_BODY, headers=GKEY
    )
    name = created.json()["name"]
    assert created.status_code == 200 and name.startswith(f"models/{VEO}/operations/")
    seen = []
    for _ in range(3):
        seen.append(client.get(f"/google/v1beta/{name}", headers=GKEY).json())
        clock.now += 10
    assert seen[0] == {"name": name} and seen[1] == {"name": name}  # done omitted while false
    assert seen[2]["done"] is True and "error" not in seen[2]
    uri = seen[2]["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
    assert uri.endswith(":download?alt=media")
    assert client.get(uri).status_code == 401  # the download needs the key
    redirect = client.get(uri, headers=GKEY, follow_redirects=False)
    assert redirect.status_code == 302
    assert is_mp4(client.get(uri, headers=GKEY).content)


def test_veo_refusals(client: TestClient) -> None:
    path = f"/google/v1beta/models/{VEO}:predictLongRunning"
    unauthenticated = client.post(path, json=VEO_BODY)
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["status"] == "UNAUTHENTICATED"
    seeded = {**VEO_BODY, "parameters": {**VEO_BODY["parameters"], "seed": 7}}
    assert client.post(path, json=seeded, headers=GKEY).json()["error"]["status"] == (
        "INVALID_ARGUMENT"
    )
    omni = "/google/v1beta/models/gemini-omni-1.1-flash:predictLongRunning"
    assert client.post(omni, json=VEO_BODY, headers=GKEY).status_code == 400
    missing = client.get(f"/google/v1beta/models/{VEO}/operations/nope", headers=GKEY)
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("fail_code", "expected"),
    [
        ("rai_filtered", {"raiMediaFilteredCount": 1}),
        ("resource_exhausted", {"code": 8, "status": "RESOURCE_EXHAUSTED"}),
        ("generation_failed", {"code": 13, "status": "INTERNAL"}),
    ],
)
def test_veo_failures(clock: Clock, fail_code: str, expected: dict[str, Any]) -> None:
    with TestClient(app_on(clock, fail_rate=1.0, fail_code=fail_code)) as client:
        path = f"/google/v1beta/models/{VEO}:predictLongRunning"
        name = client.post(path, json=VEO_BODY, headers=GKEY).json()["name"]
        clock.now += 30
        body = client.get(f"/google/v1beta/{name}", headers=GKEY).json()
    part = body["response"]["generateVideoResponse"] if "response" in body else body["error"]
    assert body["done"] is True and expected.items() <= part.items()


# --- Google: Omni interactions ------------------------------------------------------------

OMNI_BODY: dict[str, Any] = {
    "model": "gemini-omni-1.1-flash",
    "input": "a lighthouse at dawn",
    "response_format": {"type": "video", "duration": "6s", "delivery": "uri"},
    "background": True,
}


def test_omni_interaction_through_its_states(client: TestClient, clock: Clock) -> None:
    created = client.post("/google/v1beta/interactions", json=OMNI_BODY, headers=GKEY).json()
    assert created["status"] == "queued" and created["id"].startswith("v1_")
    statuses = []
    for _ in range(3):
        body = client.get(f"/google/v1beta/interactions/{created['id']}", headers=GKEY).json()
        statuses.append(body["status"])
        clock.now += 10
    assert statuses == ["queued", "in_progress", "completed"]
    (video,) = body["steps"][-1]["content"]
    assert body["steps"][-1]["type"] == "model_output" and video["mime_type"] == "video/mp4"
    assert body["usage"]["output_tokens_by_modality"] == [{"modality": "video", "tokens": 6 * 5792}]
    assert is_mp4(client.get(video["uri"], headers=GKEY).content)

    inline = {**OMNI_BODY, "response_format": {"type": "video", "duration": "6s"}}
    job = client.post("/google/v1beta/interactions", json=inline, headers=GKEY).json()["id"]
    clock.now += 30
    done = client.get(f"/google/v1beta/interactions/{job}", headers=GKEY).json()
    assert is_mp4(base64.b64decode(done["steps"][-1]["content"][0]["data"]))


def test_omni_cancel_refusals_and_failure(clock: Clock) -> None:
    with TestClient(app_on(clock, fail_rate=0.0)) as client:
        ix = client.post("/google/v1beta/interactions", json=OMNI_BODY, headers=GKEY).json()["id"]
        canceled = client.post(f"/google/v1beta/interactions/{ix}/cancel", headers=GKEY).json()
        assert canceled["status"] == "cancelled"
        assert client.get(f"/google/v1beta/interactions/{ix}").status_code == 401
        assert client.get("/google/v1beta/interactions/v1_nope", headers=GKEY).status_code == 404
        streamed = {**OMNI_BODY, "stream": True}
        assert (
            client.post("/google/v1beta/interactions", json=streamed, headers=GKEY).status_code
            == 400
        )
        too_long = {**OMNI_BODY, "response_format": {"type": "video", "duration": "12s"}}
        assert (
            client.post("/google/v1beta/interactions", json=too_long, headers=GKEY).status_code
            == 400
        )
        client.put("/_emulator/knobs", json={"queue_s": 10, "latency_s": 10, "fail_rate": 1.0})
        failing = client.post("/google/v1beta/interactions", json=OMNI_BODY, headers=GKEY)
        clock.now += 30
        body = client.get(f"/google/v1beta/interactions/{failing.json()['id']}", headers=GKEY)
        assert body.json()["status"] == "failed" and body.json()["errors"][0]["code"] == "internal"


# --- Kling --------------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def kling_jwt(ak: str = "AK", sk: str = "SK", exp_in: int = 1800, nbf_in: int = -5) -> str:
    now = int(time.time())
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64url(json.dumps({"iss": ak, "exp": now + exp_in, "nbf": now + nbf_in}).encode())
    signature = hmac.new(sk.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{_b64url(signature)}"


def kling_auth(**kw: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {kling_jwt(**kw)}"}


KLING_BODY = {"model_name": "kling-v2-6", "prompt": "a kite", "duration": "5", "mode": "std"}


def test_kling_task_through_its_states(client: TestClient, clock: Clock) -> None:
    body = {**KLING_BODY, "external_task_id": "att_1"}
    created = client.post("/kling/v1/videos/text2video", json=body, headers=kling_auth()).json()
    assert (created["code"], created["data"]["task_status"]) == (0, "submitted")
    assert created["data"]["task_info"] == {"external_task_id": "att_1"}
    task_id = created["data"]["task_id"]
    statuses = []
    for _ in range(3):
        reply = client.get(f"/kling/v1/videos/text2video/{task_id}", headers=kling_auth())
        statuses.append(reply.json()["data"]["task_status"])
        clock.now += 10
    assert statuses == ["submitted", "processing", "succeed"]
    data = reply.json()["data"]
    assert is_mp4(client.get(data["task_result"]["videos"][0]["url"]).content)
    by_external = client.get("/kling/v1/videos/text2video/att_1", headers=kling_auth()).json()
    assert by_external["data"]["task_id"] == task_id
    listed = client.get("/kling/v1/videos/text2video?pageNum=1&pageSize=10", headers=kling_auth())
    assert [t["task_id"] for t in listed.json()["data"]] == [task_id]


def test_kling_refusals(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "/kling/v1/videos/text2video"
    body = {**KLING_BODY, "external_task_id": "att_2"}
    task_id = client.post(url, json=body, headers=kling_auth()).json()["data"]["task_id"]

    def refusal(response: httpx.Response) -> tuple[int, int]:
        return response.status_code, response.json()["code"]

    assert refusal(client.post(url, json=body, headers=kling_auth())) == (400, 1201)  # duplicate
    assert refusal(client.get(f"{url}/{task_id}", headers=kling_auth(ak="other"))) == (404, 1203)
    assert refusal(client.get(f"/kling/v1/videos/image2video/{task_id}", headers=kling_auth())) == (
        404,
        1203,
    )
    assert refusal(client.get(f"{url}/{task_id}")) == (401, 1001)
    assert refusal(client.get(f"{url}/{task_id}", headers={"Authorization": "Bearer a.b"})) == (
        401,
        1002,
    )
    assert refusal(client.get(f"{url}/{task_id}", headers=kling_auth(exp_in=-1))) == (401, 1004)
    monkeypatch.setattr(kling_emulator, "SECRET_KEY", "SK")
    assert refusal(client.get(f"{url}/{task_id}", headers=kling_auth(sk="wrong"))) == (401, 1000)
    assert client.get(f"{url}/{task_id}", headers=kling_auth()).json()["code"] == 0
    as_int = {**KLING_BODY, "duration": 5}
    assert refusal(client.post(url, json=as_int, headers=kling_auth())) == (400, 1201)
    prefixed = {**KLING_BODY, "image": "data:image/png;base64,iVBORw0KGgo="}
    i2v = client.post("/kling/v1/videos/image2video", json=prefixed, headers=kling_auth())
    assert refusal(i2v) == (400, 1201)


def test_kling_callback_body_is_the_task_object(clock: Clock) -> None:
    app = app_on(clock, queue_s=0, latency_s=0)
    with TestClient(app) as client:
        body = {**KLING_BODY, "callback_url": "http://127.0.0.1:9/hook"}
        client.post("/kling/v1/videos/text2video", json=body, headers=kling_auth())
    em = app.state.emulator
    (job,) = em.jobs.values()
    callback_body = kling_emulator.routes(em).callback_body
    assert callback_body is not None
    data = callback_body(job, "http://emu")
    assert data["task_status"] == "succeed" and job.callback_url == body["callback_url"]
    assert data["task_result"]["videos"][0]["url"] == f"http://emu/_emulator/files/{job.id}.mp4"


# --- MiniMax ------------------------------------------------------------------------------

MKEY = {"Authorization": "Bearer mm-key"}
MINIMAX_BODY = {"model": "MiniMax-Hailuo-2.3", "prompt": "a kite", "duration": 6}


def test_minimax_task_file_and_download(client: TestClient, clock: Clock) -> None:
    created = client.post("/minimax/v1/video_generation", json=MINIMAX_BODY, headers=MKEY).json()
    assert created["base_resp"] == {"status_code": 0, "status_msg": "success"}
    statuses = []
    for _ in range(4):
        reply = client.get(f"/minimax/v1/query/video_generation?task_id={created['task_id']}",
                           headers=MKEY).json()  # fmt: skip
        statuses.append(reply["status"])
        clock.now += 7
    assert statuses == ["Preparing", "Queueing", "Processing", "Success"]
    assert reply["file_id"] and (reply["video_width"], reply["video_height"]) == (1366, 768)
    file = client.get(f"/minimax/v1/files/retrieve?file_id={reply['file_id']}", headers=MKEY)
    url = file.json()["file"]["download_url"]
    assert is_mp4(client.get(url).content)


def test_minimax_errors_are_http_200_with_base_resp(clock: Clock) -> None:
    with TestClient(app_on(clock, fail_rate=1.0, fail_code="1027")) as client:

        def code(response: httpx.Response) -> int:
            assert response.status_code == 200
            return int(response.json()["base_resp"]["status_code"])

        url = "/minimax/v1/video_generation"
        assert code(client.post(url, json=MINIMAX_BODY)) == 1004
        assert (
            code(client.get("/minimax/v1/query/video_generation?task_id=1", headers=MKEY)) == 2013
        )
        assert code(client.get("/minimax/v1/files/retrieve?file_id=1", headers=MKEY)) == 2013
        long_1080 = {**MINIMAX_BODY, "duration": 10, "resolution": "1080P"}
        assert code(client.post(url, json=long_1080, headers=MKEY)) == 2013
        task = client.post(url, json=MINIMAX_BODY, headers=MKEY).json()["task_id"]
        clock.now += 30
        failed = client.get(f"/minimax/v1/query/video_generation?task_id={task}", headers=MKEY)
        assert failed.json()["status"] == "Fail" and code(failed) == 1027
        client.put("/_emulator/knobs", json={"rate_limit_rate": 1.0})
        assert code(client.post(url, json=MINIMAX_BODY, headers=MKEY)) == 1002


# --- Seedance -----------------------------------------------------------------------------

SKEY = {"Authorization": "Bearer ark-key"}
TASKS = "/seedance/contents/generations/tasks"
SEEDANCE_BODY = {
    "model": "seedance-1-0-pro-250528",
    "content": [{"type": "text", "text": "a kite"}],
    "ratio": "16:9",
    "duration": 5,
    "resolution": "720p",
}


def test_seedance_task_through_its_states(client: TestClient, clock: Clock) -> None:
    task_id = client.post(TASKS, json=SEEDANCE_BODY, headers=SKEY).json()["id"]
    assert task_id.startswith("cgt-")
    statuses = []
    for _ in range(3):
        body = client.get(f"{TASKS}/{task_id}", headers=SKEY).json()
        statuses.append(body["status"])
        clock.now += 10
    assert statuses == ["queued", "running", "succeeded"]
    assert body["usage"]["completion_tokens"] == 1280 * 720 * 5 * 24 // 1024
    assert is_mp4(client.get(body["content"]["video_url"]).content)
    assert client.delete(f"{TASKS}/{task_id}", headers=SKEY).json() == {}  # deletes the record
    assert client.get(f"{TASKS}/{task_id}", headers=SKEY).status_code == 404


def test_seedance_cancel_and_refusals(client: TestClient, clock: Clock) -> None:
    queued = client.post(TASKS, json=SEEDANCE_BODY, headers=SKEY).json()["id"]
    assert client.delete(f"{TASKS}/{queued}", headers=SKEY).status_code == 200
    assert client.get(f"{TASKS}/{queued}", headers=SKEY).json()["status"] == "cancelled"
    running = client.post(TASKS, json=SEEDANCE_BODY, headers=SKEY).json()["id"]
    clock.now += 15
    assert client.delete(f"{TASKS}/{running}", headers=SKEY).status_code == 409
    unauthenticated = client.get(f"{TASKS}/{running}")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "AuthenticationError"
    missing = client.get(f"{TASKS}/cgt-nope", headers=SKEY)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ResourceNotFound")
    as_text = {**SEEDANCE_BODY, "duration": "5"}
    assert client.post(TASKS, json=as_text, headers=SKEY).status_code == 400


# --- our adapters against the emulator ----------------------------------------------------


def request(model: str, **kw: Any) -> GenerationRequest:
    fields: dict[str, Any] = {
        "request_id": "att_1",
        "model": model,
        "prompt": "a lighthouse at dawn",
        "duration_s": 8,
        "fps": 24,
        "width": 1280,
        "height": 720,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        **kw,
    }
    return GenerationRequest(**fields)


def asgi_client(app: FastAPI, vendor: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://emu/{vendor}"
    )


async def run_to_the_end(adapter: Adapter, req: GenerationRequest) -> tuple[str, JobStatus, bytes]:
    submission = await adapter.submit(req)
    status = await adapter.poll(submission.backend_job_id)
    assert status.state == "succeeded", status
    chunks = [c async for c in adapter.download(submission.backend_job_id, status)]
    return submission.backend_job_id, status, b"".join(chunks)


@pytest.mark.parametrize(
    ("vendor", "req"),
    [
        ("google", request(VEO)),
        ("google", request("gemini-omni-1.1-flash", duration_s=6)),
        ("kling", request("kling-v2-6", duration_s=5)),
        ("minimax", request("MiniMax-Hailuo-2.3", duration_s=6, resolution="768p")),
        ("seedance", request("seedance-1-0-pro-250528", duration_s=5)),
    ],
    ids=["veo", "omni", "kling", "minimax", "seedance"],
)
async def test_our_adapter_runs_a_job_on_the_emulator(vendor: str, req: GenerationRequest) -> None:
    app = create_app(Knobs(latency_s=0))
    client = asgi_client(app, vendor)
    adapter: Adapter = {
        "google": lambda: GoogleAdapter("g-key", client=client, fetch_image_urls=False),
        "kling": lambda: KlingAdapter("AK:SK", client=client),
        "minimax": lambda: MiniMaxAdapter("mm-key", client=client),
        "seedance": lambda: SeedanceAdapter("ark-key", client=client),
    }[vendor]()
    try:
        job_id, _, video = await run_to_the_end(adapter, req)
        assert video == sample_mp4()
        if vendor == "kling":  # a resubmit of the same attempt finds the first task
            again = await adapter.submit(req)
            assert again.backend_job_id == job_id
    finally:
        await adapter.aclose()
    (job,) = app.state.emulator.jobs.values()
    assert (job.vendor, job.model) == (vendor, req.model)


async def test_our_seedance_adapter_cancels_a_queued_task() -> None:
    app = create_app(Knobs(queue_s=100))
    adapter = SeedanceAdapter("ark-key", client=asgi_client(app, "seedance"))
    try:
        submission = await adapter.submit(request("seedance-1-0-pro-250528", duration_s=5))
        await adapter.cancel(submission.backend_job_id)
        status = await adapter.poll(submission.backend_job_id)
    finally:
        await adapter.aclose()
    assert (status.state, status.raw_state) == ("canceled", "cancelled")


async def test_our_google_adapter_cancels_an_omni_interaction() -> None:
    app = create_app(Knobs(queue_s=100))
    adapter = GoogleAdapter("g-key", client=asgi_client(app, "google"))
    try:
        submission = await adapter.submit(request("gemini-omni-1.1-flash", duration_s=6))
        await adapter.cancel(submission.backend_job_id)
        status = await adapter.poll(submission.backend_job_id)
    finally:
        await adapter.aclose()
    assert (status.state, status.raw_state) == ("canceled", "cancelled")


def test_omni_without_background_answers_when_the_clip_is_done(clock: Clock) -> None:
    with TestClient(app_on(clock, queue_s=0, latency_s=0)) as client:
        blocking = {**OMNI_BODY, "background": False}
        body = client.post("/google/v1beta/interactions", json=blocking, headers=GKEY).json()
    assert body["status"] == "completed" and body["steps"][-1]["content"][0]["uri"]
