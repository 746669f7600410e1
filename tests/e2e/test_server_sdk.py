"""The SDK against a real gateway process: create, wait, download, provenance, sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reelgate import Client

pytestmark = pytest.mark.slow


def test_sdk_drives_a_running_server(server_factory, tmp_path: Path) -> None:
    server = server_factory()
    server.start()
    with Client(server.url, api_key=server.key) as client:
        job = client.jobs.create(
            {
                "assemble": True,
                "defaults": {"resolution": "360p", "fps": 12},
                "shots": [
                    {
                        "kind": "establishing",
                        "prompt": "a harbour at dawn, boats drift out",
                        "duration_s": 1,
                    },
                    {
                        "kind": "product",
                        "prompt": {
                            "subject": "a cup",
                            "action": "steam rises",
                            "camera": "slow orbit left",
                        },
                        "duration_s": 1,
                    },
                ],
            }
        )
        job = client.jobs.wait(job, timeout=60)
        assert job.status == "succeeded"
        final = client.jobs.download(job, tmp_path / "final.mp4")
        shot = client.jobs.download(job, tmp_path / "shot1.mp4", shot=1)
        prov = client.jobs.provenance(job)
    assert hashlib.sha256(final.read_bytes()).hexdigest() == prov["final"]["output"]["sha256"]
    assert hashlib.sha256(shot.read_bytes()).hexdigest() == prov["shots"][1]["output"]["sha256"]
    assert [p["shot_id"] for p in prov["final"]["parents"]] == [s.id for s in job.shots]
    assert prov["shots"][1]["backend"]["job_id"] == job.shots[1].attempts[-1].backend_job_id
