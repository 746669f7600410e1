"""The same app under uvicorn: its lifespan shutdown stops the worker thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from backend_harness import shot

from local_backend.app import create_app
from local_backend.config import BackendConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_under_uvicorn(tmp_path: Path) -> None:
    app = create_app(BackendConfig(work_dir=tmp_path))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    before = set(threading.enumerate())
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        gen = client.post("/v1/generations", json=shot()).json()
        body = client.get(f"/v1/generations/{gen['id']}", params={"wait": 5}).json()
        while body["status"] in {"queued", "running"}:
            body = client.get(f"/v1/generations/{gen['id']}", params={"wait": 5}).json()
        assert body["status"] == "succeeded"
        video = client.get(f"/v1/generations/{gen['id']}/content")
        assert video.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("reelgate-")]
    assert workers, "the first submit starts the worker"
    server.should_exit = True
    thread.join(10)
    assert not thread.is_alive()
    assert not [t for t in workers if t.is_alive()]
