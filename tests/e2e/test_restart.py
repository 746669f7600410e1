"""SIGKILL the gateway mid-job; a new process on the same data dir finishes the job and
stores each shot's output exactly once."""

from __future__ import annotations

import time

import httpx
import pytest

from reelgate import Client

pytestmark = pytest.mark.slow


def test_job_survives_sigkill(server_factory) -> None:
    server = server_factory(REELGATE_MAX_CONCURRENT_SHOTS="4")
    server.start()
    body = {
        "assemble": True,
        "defaults": {"resolution": "480p", "fps": 24},
        "shots": [
            {
                "kind": "broll",
                "prompt": f"shot {i}: waves roll in, camera pans right",
                "duration_s": 3,
            }
            for i in range(4)
        ],
    }
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.create(body)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until rendering is under way, not done
            job = client.jobs.get(job)
            if any(a.status == "running" for s in job.shots for a in s.attempts):
                break
            time.sleep(0.02)
        assert not job.terminal
    server.kill()
    server.start()
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.wait(job, timeout=120)
        assert job.status == "succeeded", [(s.status, s.error_message) for s in job.shots]
        for shot in job.shots:
            r = httpx.get(
                f"{server.url}/v1/shots/{shot.id}/content",
                headers={"Authorization": f"Bearer {server.key}"},
            )
            assert r.status_code == 200 and len(r.content) == shot.output.bytes
    objects = server.data_dir / "objects"
    videos = sorted(p.relative_to(objects) for p in objects.rglob("video.mp4"))
    per_shot = {v.parts[2] for v in videos}
    assert len(videos) == len(per_shot) == 4, videos
    assert not list(objects.rglob("*.tmp")), "a half-written object was left behind"
    assert not list((server.data_dir / "spool").glob("*")), "the spool was not emptied"
