"""Jobs through the real API: create, wait, download, provenance, list, cancel, replay."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from gateway_harness import Gateway

from gateway import media
from gateway.services.errors import ServiceError
from reelgate import NotFoundError, ReelgateError, UnprocessableEntityError


def storyboard(n: int = 2, *, assemble: bool = True, duration: float = 1.0) -> dict:
    kinds = ["establishing", "character", "action", "product", "broll", "dialogue"]
    return {
        "assemble": assemble,
        "defaults": {"resolution": "360p", "fps": 12, "aspect_ratio": "16:9"},
        "shots": [
            {
                "name": f"shot {i}",
                "kind": kinds[i % len(kinds)],
                "prompt": {
                    "subject": "a lighthouse keeper",
                    "action": "climbs the spiral stairs",
                    "camera": "slow push in",
                },
                "duration_s": duration,
                "seed": i,
            }
            for i in range(n)
        ],
    }


async def test_job_renders_stores_and_assembles(gateway: Gateway, tmp_path: Path) -> None:
    job = await gateway.client.jobs.create(storyboard(3, duration=1.0))
    assert job.status == "queued" and len(job.shots) == 3
    assert all(s.plan.model == "local/preview" for s in job.shots)
    job = await gateway.client.jobs.wait(job, timeout=60)
    assert job.status == "succeeded", [(s.status, s.error_message) for s in job.shots]
    assert job.final is not None and job.final.duration_s == pytest.approx(3.0, abs=3 / 12)

    out = await gateway.client.jobs.download(job, tmp_path / "final.mp4")
    info = await media.probe(out)
    assert info.frames == 36 and (info.width, info.height) == (640, 360)
    prov = await gateway.client.jobs.provenance(job)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert prov["final"]["output"]["sha256"] == digest == job.final.sha256
    parents = [p["sha256"] for p in prov["final"]["parents"]]
    assert parents == [s.output.sha256 for s in job.shots if s.output]
    for shot, manifest in zip(job.shots, prov["shots"], strict=True):
        shot_file = await gateway.client.jobs.download(
            job, tmp_path / f"{shot.index}.mp4", shot=shot.index
        )
        assert hashlib.sha256(shot_file.read_bytes()).hexdigest() == manifest["output"]["sha256"]
        assert manifest["model"]["id"] == "local/preview"
        assert manifest["ids"]["shot"] == shot.id


async def test_shot_content_supports_ranges(gateway: Gateway) -> None:
    job = await gateway.client.jobs.wait(
        await gateway.client.jobs.create(storyboard(1, assemble=False)), timeout=60
    )
    shot = job.shots[0]
    assert shot.output is not None
    url = f"/v1/shots/{shot.id}/content"
    whole = await gateway.http.get(url, headers=gateway.auth())
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert len(whole.content) == shot.output.bytes
    part = await gateway.http.get(url, headers={**gateway.auth(), "Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-19/{shot.output.bytes}"
    assert part.content == whole.content[10:20]
    tail = await gateway.http.get(url, headers={**gateway.auth(), "Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == whole.content[-5:]
    bad = await gateway.http.get(url, headers={**gateway.auth(), "Range": "bytes=999999999-"})
    assert bad.status_code == 416
    assert bad.headers["content-type"] == "application/problem+json"


async def test_idempotency_key_replays_and_refuses_a_different_body(gateway: Gateway) -> None:
    body = storyboard(1, assemble=False)
    first = await gateway.http.post(
        "/v1/jobs", json=body, headers={**gateway.auth(), "Idempotency-Key": "k1"}
    )
    again = await gateway.http.post(
        "/v1/jobs", json=body, headers={**gateway.auth(), "Idempotency-Key": "k1"}
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    body["shots"][0]["seed"] = 99
    other = await gateway.http.post(
        "/v1/jobs", json=body, headers={**gateway.auth(), "Idempotency-Key": "k1"}
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    page = await gateway.client.jobs.list()
    assert [j.id for j in page.data] == [first.json()["id"]]


async def test_a_replay_is_answered_when_planning_would_now_refuse(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = storyboard(1, assemble=False)
    headers = {**gateway.auth(), "Idempotency-Key": "k2"}
    first = await gateway.http.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == 201

    def refuse(*_: object) -> None:  # as if the catalog dropped the model since
        raise ServiceError(422, "model_unavailable", "no such model now")

    monkeypatch.setattr(gateway.runtime.jobs, "_plan", refuse)
    again = await gateway.http.post("/v1/jobs", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    fresh = await gateway.http.post(
        "/v1/jobs", json=body, headers={**gateway.auth(), "Idempotency-Key": "k3"}
    )
    assert fresh.status_code == 422 and fresh.json()["code"] == "model_unavailable"
    body["shots"][0]["seed"] = 99
    other = await gateway.http.post("/v1/jobs", json=body, headers=headers)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


async def test_concurrent_creates_under_one_key_make_one_job(gateway: Gateway) -> None:
    body = storyboard(1, assemble=False)
    headers = {**gateway.auth(), "Idempotency-Key": "k4"}
    answers = await asyncio.gather(
        *(gateway.http.post("/v1/jobs", json=body, headers=headers) for _ in range(8))
    )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    page = await gateway.client.jobs.list()
    assert [j.id for j in page.data] == [answers[0].json()["id"]]


async def test_list_paginates_newest_first(gateway: Gateway) -> None:
    ids = [(await gateway.client.jobs.create(storyboard(1, assemble=False))).id for _ in range(5)]
    page = await gateway.client.jobs.list(limit=2)
    assert [j.id for j in page.data] == ids[::-1][:2] and page.next_cursor
    seen = [j.id async for j in gateway.client.jobs.iter(page_size=2)]
    assert seen == ids[::-1]


async def test_cancel_stops_running_shots(gateway: Gateway) -> None:
    job = await gateway.client.jobs.create(storyboard(3, duration=20))
    job = await gateway.client.jobs.cancel(job)
    assert job.status == "canceled"
    assert all(s.status == "canceled" for s in job.shots)
    assert job.final is None
    again = await gateway.client.jobs.cancel(job)
    assert again.status == "canceled"


async def test_unknown_ids_are_404(gateway: Gateway) -> None:
    with pytest.raises(NotFoundError):
        await gateway.client.jobs.get("job_nope")
    r = await gateway.http.get("/v1/shots/shot_nope/content", headers=gateway.auth())
    assert r.status_code == 404 and r.json()["code"] == "shot_not_found"


async def test_content_of_an_unfinished_shot_is_409(gateway: Gateway) -> None:
    job = await gateway.client.jobs.create(storyboard(1, duration=20, assemble=False))
    r = await gateway.http.get(f"/v1/shots/{job.shots[0].id}/content", headers=gateway.auth())
    assert r.status_code == 409 and r.json()["code"] == "output_not_ready"
    with pytest.raises(ReelgateError, match="has no output"):
        await gateway.client.jobs.download(job, "/tmp/never.mp4", shot=0)
    await gateway.client.jobs.cancel(job)


async def test_quote_shows_route_params_and_lint(gateway: Gateway) -> None:
    body = storyboard(1)
    body["shots"][0]["prompt"] = {
        "subject": "a beautiful dog and a cat",
        "camera": "close-up wide shot",
    }
    q = await gateway.client.quote(body)
    plan = q.shots[0]
    assert plan.model == "local/preview"
    assert any(c.status == "skipped" and "not configured" in (c.reason or "") for c in plan.route)
    codes = {w.code for w in plan.lint}
    assert {"contradictory_camera", "abstract_wording"} <= codes
    with pytest.raises(UnprocessableEntityError) as err:
        await gateway.client.quote({"shots": [{"prompt": "x", "kind": "nope"}]})
    assert err.value.problem is not None and err.value.problem.errors[0].field == "shots[0].kind"


async def test_a_vanished_output_is_410_not_an_empty_200(gateway: Gateway) -> None:
    job = await gateway.client.jobs.wait(
        await gateway.client.jobs.create(storyboard(1, assemble=False)), timeout=60
    )
    shot = job.shots[0]
    key = next(k for k in await gateway.runtime.store.list("") if k.endswith("video.mp4"))
    await gateway.runtime.store.delete(key)
    r = await gateway.http.get(f"/v1/shots/{shot.id}/content", headers=gateway.auth())
    assert r.status_code == 410 and r.json()["code"] == "output_missing"


async def test_absurd_range_headers_are_ignored_not_500(gateway: Gateway) -> None:
    job = await gateway.client.jobs.wait(
        await gateway.client.jobs.create(storyboard(1, assemble=False)), timeout=60
    )
    url = f"/v1/shots/{job.shots[0].id}/content"
    for value in ["bytes=" + "9" * 5000 + "-", "bytes=5-2", "items=0-1", "bytes=0-1,4-5"]:
        r = await gateway.http.get(url, headers={**gateway.auth(), "Range": value})
        assert r.status_code in (200, 416), (value, r.status_code)


async def test_cancel_in_an_api_only_process_ends_the_job(tmp_path, database_url) -> None:
    from gateway_harness import open_gateway

    async with open_gateway(tmp_path / "data", database_url, executor="none") as gw:
        job = await gw.client.jobs.create(storyboard(2))
        assert job.status == "queued"
        job = await gw.client.jobs.cancel(job)
        assert job.status == "canceled" and {s.status for s in job.shots} == {"canceled"}
        job = await gw.client.jobs.wait(job, timeout=5)  # terminal: wait returns at once
        assert job.status == "canceled"
