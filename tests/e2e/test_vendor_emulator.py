"""Storyboards routed to vendors, over real sockets: the gateway process, the real
adapters, and the vendor emulator (uvicorn on a loopback port)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from e2e_support import free_port

from emulator.app import create_app as create_emulator
from emulator.core import Knobs
from reelgate import Client

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    port = free_port()
    app = create_emulator(Knobs(latency_s=0.3, queue_s=0.1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "emulator did not start"
        time.sleep(0.02)
    yield url
    server.should_exit = True
    thread.join(5)


def vendor_env(url: str, *vendors: str) -> dict[str, str]:
    env = {"REELGATE_POLL_SCALE": "0.02"}  # vendors' 5 s hints → 0.1 s
    for vendor in vendors:
        env[f"REELGATE_{vendor.upper()}_API_KEY"] = f"test-key-{vendor}"
        env[f"REELGATE_{vendor.upper()}_BASE_URL"] = f"{url}/{vendor}"
    return env


def test_a_shot_routed_to_runway_is_stored_with_its_provenance(
    server_factory, emulator_url: str, tmp_path
) -> None:
    server = server_factory(**vendor_env(emulator_url, "runway"))
    server.start()
    body = {
        "shots": [
            {"kind": "character", "prompt": "a tailor threads a needle", "duration_s": 5},
        ]
    }
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.wait(client.jobs.create(body), timeout=60)
        assert job.status == "succeeded", [(s.model, s.error_message) for s in job.shots]
        path = client.jobs.download(job, tmp_path / "shot.mp4", shot=0)
        prov = client.jobs.provenance(job)
    shot = job.shots[0]
    assert shot.model == "runway/gen4.5"
    record = prov["shots"][0]
    task_id = shot.attempts[-1].backend_job_id
    assert record["backend"] == {"adapter": "runway", "job_id": task_id}
    assert record["model"]["id"] == "runway/gen4.5"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["output"]["sha256"]
    jobs = httpx.get(f"{emulator_url}/_emulator/jobs").json()
    sent = next(j for j in jobs if j["id"] == task_id)
    assert sent["model"] == "gen4.5" and sent["payload"]["promptText"]


def test_a_storyboard_across_four_vendors(server_factory, emulator_url: str, tmp_path) -> None:
    """Each kind's first choice is a different vendor; every output is stored with
    provenance naming the vendor, the model and the vendor's job id."""
    env = vendor_env(emulator_url, "runway", "fal", "kling", "google")
    env["REELGATE_KLING_API_KEY"] = "test-access:test-secret"
    env["REELGATE_FAL_PRICING_URL"] = ""  # no price lookups off this machine
    server = server_factory(**env)
    server.start()
    shots = [
        {"kind": "character", "prompt": "a tailor threads a needle, close up", "duration_s": 5},
        {"kind": "stylized", "prompt": "paper birds fold themselves and fly", "duration_s": 5},
        {"kind": "action", "prompt": "a cyclist races down a wet street", "duration_s": 5},
        {"kind": "establishing", "prompt": "fog lifts off a harbour at dawn", "duration_s": 6},
    ]
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.wait(client.jobs.create({"shots": shots}), timeout=90)
        assert job.status == "succeeded", [(s.model, s.error_message) for s in job.shots]
        prov = client.jobs.provenance(job)
        paths = [client.jobs.download(job, tmp_path / f"{i}.mp4", shot=i) for i in range(4)]
    expected = ["runway/gen4.5", "fal/wan-v2.2-a14b", "kling/kling-v2-1-master", "google/veo-3.1"]
    assert [s.model for s in job.shots] == expected
    emulated = {j["id"]: j for j in httpx.get(f"{emulator_url}/_emulator/jobs").json()}
    for shot, record, path in zip(job.shots, prov["shots"], paths, strict=True):
        vendor = shot.model.partition("/")[0]
        job_id = shot.attempts[-1].backend_job_id
        assert record["backend"] == {"adapter": vendor, "job_id": job_id}
        assert record["model"]["id"] == shot.model
        assert hashlib.sha256(path.read_bytes()).hexdigest() == record["output"]["sha256"]
        assert any(j["vendor"] == vendor and j["id"] in job_id for j in emulated.values())


def emulated_callback(emulator_url: str, backend_job_id: str | None) -> dict[str, Any]:
    """The emulator's record of the job, once its callback has been answered (10 s at
    most): the job may finish by polling before the callback lands."""
    assert backend_job_id is not None
    deadline = time.monotonic() + 10
    while True:
        sent = next(
            j for j in httpx.get(f"{emulator_url}/_emulator/jobs").json()
            if j["id"] in backend_job_id  # fal's job ids carry the endpoint too
        )  # fmt: skip
        if sent["callback_status"] is not None or time.monotonic() > deadline:
            return sent
        time.sleep(0.05)


def test_fal_callbacks_are_signed_by_the_emulator_and_verified_by_the_gateway(
    sqlite_server_factory, emulator_url: str
) -> None:
    """The emulator signs its fal webhooks with a key pair made at start and serves the
    public half as a JWKS; the gateway fetches that key set over a real socket, accepts
    the emulator's callback (204) and refuses one signed by a key not in the set (401)."""
    env = vendor_env(emulator_url, "fal")
    env["REELGATE_FAL_PRICING_URL"] = ""
    env["REELGATE_FAL_JWKS_URL"] = f"{emulator_url}/fal/.well-known/jwks.json"
    server = sqlite_server_factory(**env)
    server.env["REELGATE_PUBLIC_BASE_URL"] = server.url
    server.start()
    shot = {"kind": "stylized", "prompt": "paper birds fold themselves", "duration_s": 5}
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.wait(client.jobs.create({"shots": [shot]}), timeout=60)
    assert job.status == "succeeded", [(s.model, s.error_message) for s in job.shots]
    attempt = job.shots[0].attempts[-1]
    assert job.shots[0].model == "fal/wan-v2.2-a14b"
    sent = emulated_callback(emulator_url, attempt.backend_job_id)
    assert sent["callback_sent"] and sent["callback_status"] == 204

    forger = Ed25519PrivateKey.generate()
    body = b'{"request_id": "x", "status": "OK"}'
    stamp = str(int(time.time()))
    message = "\n".join(["x", "user", stamp, hashlib.sha256(body).hexdigest()]).encode()
    forged = {
        "X-Fal-Webhook-Request-Id": "x",
        "X-Fal-Webhook-User-Id": "user",
        "X-Fal-Webhook-Timestamp": stamp,
        "X-Fal-Webhook-Signature": forger.sign(message).hex(),
    }
    refused = httpx.post(
        f"{server.url}/v1/callbacks/fal/{attempt.id}", content=body, headers=forged
    )
    assert refused.status_code == 401 and refused.json()["code"] == "bad_signature"


def test_replicate_callbacks_are_verified_with_the_secret_fetched_from_the_emulator(
    sqlite_server_factory, emulator_url: str
) -> None:
    """No secret configured: the gateway asks the emulator's Replicate API for the signing
    secret (``/v1/webhooks/default/secret``), accepts the emulator's signed callback (204)
    and refuses one signed with another secret (401)."""
    server = sqlite_server_factory(**vendor_env(emulator_url, "replicate"))
    server.env["REELGATE_PUBLIC_BASE_URL"] = server.url
    server.start()
    shot = {"kind": "establishing", "prompt": "fog lifts off a harbour", "duration_s": 6}
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.wait(client.jobs.create({"shots": [shot]}), timeout=60)
    assert job.status == "succeeded", [(s.model, s.error_message) for s in job.shots]
    attempt = job.shots[0].attempts[-1]
    assert job.shots[0].model == "replicate/veo-3.1"
    sent = emulated_callback(emulator_url, attempt.backend_job_id)
    assert sent["callback_sent"] and sent["callback_status"] == 204

    body = b'{"id": "x", "status": "succeeded"}'
    stamp = str(int(time.time()))
    key = b"not the emulator's secret, 32 b."
    mac = hmac.new(key, f"msg_x.{stamp}.".encode() + body, hashlib.sha256).digest()
    forged = {
        "webhook-id": "msg_x",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    refused = httpx.post(
        f"{server.url}/v1/callbacks/replicate/{attempt.id}", content=body, headers=forged
    )
    assert refused.status_code == 401 and refused.json()["code"] == "bad_signature"
