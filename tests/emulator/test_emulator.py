"""The emulator's clock, knobs and chaos, through its HTTP API (Runway's wire)."""

from __future__ import annotations

import json

import httpx
import pytest
from emulator_support import Clock
from fastapi.testclient import TestClient

from emulator.app import create_app
from emulator.core import Emulator, Knobs

HEADERS = {"Authorization": "Bearer k", "X-Runway-Version": "2024-11-06"}
CREATE = {"model": "gen4.5", "ratio": "1280:720", "promptText": "a kite", "duration": 5}


def test_a_job_is_queued_then_runs_then_ends_on_the_scaled_clock() -> None:
    clock = Clock()
    em = Emulator(Knobs(queue_s=10, latency_s=20, time_scale=10), clock=clock)
    job = em.create("runway", "gen4.5", {})
    assert job.state(clock.now) == "queued"
    clock.now += 1.5  # 15 vendor seconds
    assert job.state(clock.now) == "running" and job.progress(clock.now) == pytest.approx(0.25)
    clock.now += 2.0
    assert job.state(clock.now) == "succeeded"
    assert not em.cancel(job)  # too late
    late = em.create("runway", "gen4.5", {})
    assert em.cancel(late) and late.state(clock.now + 100) == "canceled"


def test_latency_is_drawn_around_the_median() -> None:
    em = Emulator(Knobs(latency_s=30, latency_sigma=0.5, seed=1))
    spans = sorted(j.finished - j.started for j in (em.create("v", "m", {}) for _ in range(501)))
    assert spans[250] == pytest.approx(30, rel=0.15) and spans[0] < 20 < 45 < spans[-1]


def test_runway_task_through_its_states_and_the_output_file() -> None:
    with TestClient(create_app(Knobs(latency_s=0))) as client:
        task = client.post("/runway/v1/text_to_video", json=CREATE, headers=HEADERS).json()
        body = client.get(f"/runway/v1/tasks/{task['id']}", headers=HEADERS).json()
        assert body["status"] == "SUCCEEDED" and len(body["output"]) == 1
        video = client.get(body["output"][0])
        assert video.status_code == 200 and video.content[4:8] == b"ftyp"
        assert client.get("/runway/v1/tasks/nope", headers=HEADERS).status_code == 404
        assert client.get(f"/runway/v1/tasks/{task['id']}").status_code == 401


def test_fail_vendors_fails_every_job_of_the_vendors_named_and_only_theirs() -> None:
    clock = Clock()
    em = Emulator(Knobs(latency_s=1, fail_vendors=["runway"]), clock=clock)
    runway, kling = em.create("runway", "gen4.5", {}), em.create("kling", "kling-v2-1-master", {})
    clock.now += 2
    assert runway.state(clock.now) == "failed" and kling.state(clock.now) == "succeeded"
    with TestClient(create_app(Knobs(latency_s=0))) as client:
        assert client.get("/_emulator/knobs").json()["fail_vendors"] == []
        client.put("/_emulator/knobs", json={"latency_s": 0, "fail_vendors": ["runway"]})
        task = client.post("/runway/v1/text_to_video", json=CREATE, headers=HEADERS).json()
        body = client.get(f"/runway/v1/tasks/{task['id']}", headers=HEADERS).json()
        assert body["status"] == "FAILED" and body["failureCode"] == "INTERNAL"
        client.put("/_emulator/knobs", json={"latency_s": 0})  # the default: none
        task = client.post("/runway/v1/text_to_video", json=CREATE, headers=HEADERS).json()
        body = client.get(f"/runway/v1/tasks/{task['id']}", headers=HEADERS).json()
        assert body["status"] == "SUCCEEDED"


@pytest.mark.parametrize("knob", ["rate_limit_rate", "server_error_rate", "malformed_rate"])
def test_chaos_knobs(knob: str) -> None:
    with TestClient(create_app()) as client:
        client.put("/_emulator/knobs", json={knob: 1.0, "retry_after_s": 7})
        response = client.post("/runway/v1/text_to_video", json=CREATE, headers=HEADERS)
        if knob == "rate_limit_rate":
            assert response.status_code == 429 and response.headers["retry-after"] == "7"
        elif knob == "server_error_rate":
            assert response.status_code == 503
        else:
            with pytest.raises(json.JSONDecodeError):
                response.json()
        assert client.get("/_emulator/jobs").json() == []  # nothing was created


def test_a_dropped_connection_breaks_the_response() -> None:
    with (
        TestClient(create_app(Knobs(drop_rate=1.0))) as client,
        pytest.raises((httpx.HTTPError, ConnectionAbortedError)),
    ):
        client.post("/runway/v1/text_to_video", json=CREATE, headers=HEADERS).json()
