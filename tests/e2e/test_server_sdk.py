"""The SDK against a real gateway process: create, wait, download, provenance, sha256."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from e2e_support import free_port

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


def test_gateway_uses_a_separate_local_backend_process(server_factory, tmp_path: Path) -> None:
    port = free_port()
    backend = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "local-backend",
            "--port",
            str(port),
            "--work-dir",
            str(tmp_path / "backend"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        server = server_factory(REELGATE_LOCAL_BACKEND_URLS=f'["http://127.0.0.1:{port}"]')
        server.start()
        with Client(server.url, api_key=server.key) as client:
            job = client.jobs.wait(
                client.jobs.create(
                    {
                        "shots": [
                            {
                                "kind": "draft",
                                "prompt": "a kite",
                                "duration_s": 1,
                                "fps": 12,
                                "resolution": "360p",
                            }
                        ]
                    }
                ),
                timeout=60,
            )
        assert job.status == "succeeded"
        gen_id = job.shots[0].attempts[0].backend_job_id.partition("/")[2]
        record = httpx.get(f"http://127.0.0.1:{port}/v1/generations/{gen_id}").json()
        assert (
            record["status"] == "succeeded" and record["request_id"] == job.shots[0].attempts[0].id
        )
    finally:
        backend.terminate()
        backend.wait(10)
