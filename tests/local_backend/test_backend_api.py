"""The local backend's HTTP API, called in-process as the embedded gateway does."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest
from backend_harness import LONG, Poll, probe, shot
from fastapi import FastAPI

PROBLEM = "application/problem+json"


async def submit(client: httpx.AsyncClient, **overrides: object) -> dict:
    response = await client.post("/v1/generations", json=shot(**overrides))
    assert response.status_code == 202, response.text
    return response.json()


async def test_submit_poll_download(
    client: httpx.AsyncClient, poll_until: Poll, work_dir: Path
) -> None:
    created = await submit(client, duration_s=1.5, fps=12, request_id="r-1")
    assert created["status"] in {"queued", "running"}
    assert (created["request_id"], created["model"]) == ("r-1", "preview")
    assert (created["total_steps"], created["error"], created["finished_at"]) == (18, None, None)

    done = await poll_until(created["id"])
    assert done["status"] == "succeeded"
    assert (done["step"], done["total_steps"], done["progress"]) == (18, 18, 1.0)
    assert done["queue_position"] is None and done["finished_at"] is not None

    content = await client.get(f"/v1/generations/{created['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "video/mp4"
    assert content.content[4:8] == b"ftyp"
    (work_dir / "copy.mp4").write_bytes(content.content)
    assert probe(work_dir / "copy.mp4").frames == 18


async def test_progress_is_reported_while_running(
    client: httpx.AsyncClient, poll_until: Poll
) -> None:
    gen = await submit(client, **LONG)
    body = await poll_until(gen["id"], lambda b: 0 < b["step"] < b["total_steps"])
    assert body["status"] == "running" and body["queue_position"] == 0
    assert body["progress"] == pytest.approx(body["step"] / body["total_steps"])
    later = await poll_until(gen["id"], lambda b: b["step"] > body["step"])
    assert later["progress"] > body["progress"]
    await client.post(f"/v1/generations/{gen['id']}/cancel")


async def test_queue_positions_and_cancel(
    client: httpx.AsyncClient, poll_until: Poll, work_dir: Path
) -> None:
    first, second, third = [await submit(client, **LONG) for _ in range(3)]
    await poll_until(first["id"], lambda b: b["step"] > 0)
    positions = [
        ((await client.get(f"/v1/generations/{g['id']}")).json()) for g in (first, second, third)
    ]
    assert [(p["status"], p["queue_position"]) for p in positions] == [
        ("running", 0),
        ("queued", 1),
        ("queued", 2),
    ]

    # A queued job is cancelled at once and the ones behind it move up.
    canceled = (await client.post(f"/v1/generations/{second['id']}/cancel")).json()
    assert (canceled["status"], canceled["queue_position"]) == ("canceled", None)
    third_now = (await client.get(f"/v1/generations/{third['id']}")).json()
    assert third_now["queue_position"] == 1

    # A running job stops within a frame; its partial file is removed.
    stopped = (await client.post(f"/v1/generations/{first['id']}/cancel")).json()
    assert stopped["status"] == "canceled"
    assert 0 < stopped["step"] < stopped["total_steps"]
    assert not list(work_dir.glob(f"{first['id']}*"))
    content = await client.get(f"/v1/generations/{first['id']}/content")
    assert (content.status_code, content.json()["code"]) == (409, "not_ready")

    # The next job in line runs.
    await poll_until(third["id"], lambda b: b["status"] == "running")
    await client.post(f"/v1/generations/{third['id']}/cancel")
    # Cancelling a finished job changes nothing.
    again = (await client.post(f"/v1/generations/{second['id']}/cancel")).json()
    assert again["status"] == "canceled"


async def test_request_id_returns_the_existing_generation(
    client: httpx.AsyncClient, poll_until: Poll, work_dir: Path
) -> None:
    a = await submit(client, request_id="attempt-7")
    b = await submit(client, request_id="attempt-7")
    c = await submit(client)
    assert a["id"] == b["id"] != c["id"]
    await poll_until(a["id"])
    await poll_until(c["id"])
    assert sorted(p.name for p in work_dir.glob("*.mp4")) == sorted(
        [f"{a['id']}.mp4", f"{c['id']}.mp4"]
    )


async def test_concurrent_submits_with_one_request_id_make_one_job(
    client: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(*(submit(client, request_id="same") for _ in range(8)))
    assert len({a["id"] for a in answers}) == 1


async def test_long_poll_answers_when_the_status_changes(
    client: httpx.AsyncClient,
) -> None:
    gen = await submit(client, duration_s=0.5)
    body = (await client.get(f"/v1/generations/{gen['id']}", params={"wait": 5})).json()
    while body["status"] not in {"succeeded", "failed", "canceled"}:
        body = (await client.get(f"/v1/generations/{gen['id']}", params={"wait": 5})).json()
    assert body["status"] == "succeeded"


def hold_device(app: FastAPI) -> threading.Event:
    """Keep the device thread busy until the returned event is set: what is submitted
    meanwhile waits in the queue."""
    release, busy = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(10)

    threading.Thread(target=app.state.runner.run_on_device, args=(hold,), daemon=True).start()
    assert busy.wait(10)
    return release


async def test_a_short_jobs_start_is_told_with_its_end(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A poll waiting on a queued job is not answered for the start alone (a round trip,
    and a gateway commit, in the render's first milliseconds): a job done within
    STEP_NOTIFY_S is told once, at its end."""
    release = hold_device(app)
    gen = await submit(client, duration_s=0.5, fps=8, width=64, height=64)
    assert gen["status"] == "queued"
    waiting = asyncio.ensure_future(client.get(f"/v1/generations/{gen['id']}", params={"wait": 5}))
    await asyncio.sleep(0.05)  # the poll is waiting on the queued job
    release.set()
    body = (await waiting).json()
    assert body["status"] == "succeeded"


async def test_a_start_is_told_within_the_step_interval(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """...and a longer job's start reaches a waiting poll within STEP_NOTIFY_S, steps or not."""
    import local_backend.service

    monkeypatch.setattr(local_backend.service, "STEP_NOTIFY_S", 0.1)  # steps tell every 0.5 s
    release = hold_device(app)
    gen = await submit(client, **LONG)
    waiting = asyncio.ensure_future(client.get(f"/v1/generations/{gen['id']}", params={"wait": 5}))
    await asyncio.sleep(0.05)
    release.set()
    started = asyncio.get_running_loop().time()
    body = (await waiting).json()
    assert body["status"] == "running"
    assert asyncio.get_running_loop().time() - started < 0.45
    await client.post(f"/v1/generations/{gen['id']}/cancel")


@pytest.mark.parametrize(
    ("overrides", "code", "words"),
    [
        ({"width": 641}, "invalid_params", "width 641"),
        ({"fps": 120}, "invalid_params", "fps 120 not supported by preview; allowed 8..60"),
        ({"duration_s": 61}, "invalid_params", "allowed 0.5..60"),
        ({"width": 3840, "height": 2160}, "invalid_params", "at most 1920"),
        ({"duration_s": 0}, "invalid_request", "duration_s"),
        ({"fps": "fast"}, "invalid_request", "fps"),
        ({"prompt": None}, "invalid_request", "prompt"),
    ],
)
async def test_bad_input_is_a_422_problem(
    client: httpx.AsyncClient, overrides: dict, code: str, words: str
) -> None:
    response = await client.post("/v1/generations", json=shot(**overrides))
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (422, code)
    assert words in body["detail"]
    assert set(body) >= {"type", "title", "status", "code", "detail"}


async def test_unknown_model_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/generations", json=shot(model="wan2.1-t2v-14b"))
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "unknown_model"
    assert "preview" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/generations/gen_missing"),
        ("GET", "/v1/generations/gen_missing/content"),
        ("POST", "/v1/generations/gen_missing/cancel"),
    ],
)
async def test_unknown_id_is_a_404_problem(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "generation_not_found"


async def test_models_and_health(client: httpx.AsyncClient) -> None:
    models = (await client.get("/v1/models")).json()
    assert [m["id"] for m in models] == ["preview"]
    caps = models[0]["capabilities"]
    assert models[0]["family"] == "preview"
    assert caps["duration_s"] == {"min": 0.5, "max": 60}
    assert caps["fps"] == {"min": 8, "max": 60}
    assert caps["max_long_side"] == 1920
    assert set(caps["modes"]) == {"t2v", "i2v", "first_last"}
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


async def test_close_stops_the_worker_and_refuses_new_work(
    app: FastAPI, client: httpx.AsyncClient, poll_until: Poll
) -> None:
    before = set(threading.enumerate())
    running = await submit(client, **LONG)
    queued = await submit(client, **LONG)
    await poll_until(running["id"], lambda b: b["status"] == "running")
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("reelgate-")]
    assert workers, "the first submit starts the worker"
    await asyncio.to_thread(app.state.close)
    assert not [t for t in workers if t.is_alive()]
    states = [(await client.get(f"/v1/generations/{g['id']}")).json() for g in (running, queued)]
    assert [s["status"] for s in states] == ["canceled", "canceled"]
    late = await client.post("/v1/generations", json=shot())
    assert (late.status_code, late.json()["code"]) == (503, "shutting_down")
