"""The S3 store goes down during a job: fetched outputs wait in the local spool, their
shots stay in ``fetching`` (not failed, not fetched again from the vendor, whose URLs
expire), and everything is stored once the store is back, also across a restart.

The outage is real at the socket level: the gateway reaches moto's S3 server through a
TCP proxy the test owns. Cutting it closes the port and drops open connections (what a
stopped server looks like to a client); restoring it listens on the same port again,
in front of the same server and its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from gateway_harness import Gateway, h264_clip, open_gateway
from sqlmodel import select

from adapters.base import BackendFailure, GenerationRequest, JobStatus, Submission
from gateway.engine.policy import Clock
from gateway.tables import Tenant
from reelgate import types as t


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; :meth:`cut` and :meth:`restore` it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # the same port as before the cut
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            _kill(listener)
        with self._lock:
            conns, self._open = self._open, set()
        for conn in conns:
            _kill(conn)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (src, dst):
                _kill(conn)
            with self._lock:
                self._open -= {src, dst}


def _kill(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


class QuickClock(Clock):
    """Real time; waits (polls, backoff) capped at 50 ms so the test runs in seconds."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.05))


@dataclass
class Vendor:
    """A vendor whose jobs succeed at once; counts what it is asked for."""

    clip: bytes
    name: str = "runway"
    idempotent_submit: bool = False
    supports_cancel: bool = True
    submits: int = 0
    downloads: list[str] = field(default_factory=list)
    #: After a restart: the vendor has forgotten its jobs (its polls fail).
    forgot: bool = False

    def configured_models(self) -> set[str] | None:
        return None

    async def submit(self, request: GenerationRequest) -> Submission:
        self.submits += 1
        return Submission(backend_job_id=f"task-{request.request_id}", poll_after_s=0)

    async def poll(self, backend_job_id: str) -> JobStatus:
        if self.forgot:
            raise BackendFailure(f"no task {backend_job_id}", code="not_found")
        return JobStatus(state="succeeded", next_poll_s=0)

    async def cancel(self, backend_job_id: str) -> None:
        pass

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        self.downloads.append(backend_job_id)
        yield self.clip

    async def aclose(self) -> None:
        pass


STORYBOARD = {
    "assemble": True,
    "shots": [
        {"kind": "character", "prompt": f"a tailor threads a needle, take {i}", "duration_s": 1}
        for i in range(3)
    ],
}


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return h264_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def proxy(
    moto_endpoint: str, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TcpProxy]:
    target = urlsplit(moto_endpoint)
    assert target.hostname is not None and target.port is not None
    proxy = TcpProxy((target.hostname, target.port))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # no botocore retries: the spool's turn
    try:
        yield proxy
    finally:
        proxy.cut()


def gateway(tmp_path: Path, database_url: str, bucket: str, vendor: Vendor) -> Any:
    return open_gateway(
        tmp_path / "data",
        database_url,
        adapters={"runway": vendor},
        clock=QuickClock(),
        storage_url=f"s3://{bucket}/gw",
    )


async def until(check: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def spooled(gw: Gateway) -> list[str]:
    spool = gw.data_dir / "spool"
    return sorted(p.stem for p in spool.glob("*.json")) if spool.is_dir() else []


async def all_waiting(gw: Gateway, job: t.Job) -> bool:
    """Every shot fetched, spooled, and waiting in ``fetching`` for the store."""
    job = await gw.client.jobs.get(job.id)
    attempts = [a for s in job.shots for a in s.attempts]
    return (
        len(attempts) == 3
        and all(a.status == "fetching" for a in attempts)
        and spooled(gw) == sorted(a.id for a in attempts)
    )


def check_stored(job: t.Job, s3_client: Any, bucket: str, vendor: Vendor) -> None:
    """Succeeded, each output fetched once, stored once, intact; nothing left spooled."""
    assert job.status == "succeeded", [(s.status, s.error_message) for s in job.shots]
    assert vendor.submits == 3 and len(vendor.downloads) == 3  # never fetched twice
    assert all(len(s.attempts) == 1 for s in job.shots)
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="gw/")["Contents"]
    keys = sorted(o["Key"] for o in listed)
    tenant = keys[0].split("/")[1]
    base = f"gw/{tenant}/{job.id}"
    assert keys == sorted(
        [f"{base}/final.mp4", f"{base}/final.provenance.json"]
        + [f"{base}/{s.id}/1/{n}" for s in job.shots for n in ("video.mp4", "provenance.json")]
    )
    for shot in job.shots:
        assert shot.output is not None
        body = s3_client.get_object(Bucket=bucket, Key=f"{base}/{shot.id}/1/video.mp4")["Body"]
        assert hashlib.sha256(body.read()).hexdigest() == shot.output.sha256
    assert job.final is not None


async def test_outputs_wait_in_the_spool_until_the_store_is_back(
    tmp_path: Path, database_url: str, proxy: TcpProxy, s3_client: Any, bucket: str, clip: bytes
) -> None:
    vendor = Vendor(clip)
    async with gateway(tmp_path, database_url, bucket, vendor) as gw:
        proxy.cut()  # the S3 server stops
        job = await gw.client.jobs.create(STORYBOARD)
        await until(lambda: all_waiting(gw, job))
        await asyncio.sleep(0.5)  # several failed uploads later: still waiting, not failed
        assert await all_waiting(gw, job)
        assert (await gw.client.jobs.get(job.id)).status == "running"

        proxy.restore()  # back on the same port, with the same data
        job = await gw.client.jobs.wait(job, timeout=30)
        assert spooled(gw) == [] and list((gw.data_dir / "spool").iterdir()) == []
    check_stored(job, s3_client, bucket, vendor)


async def test_a_restart_stores_what_the_spool_holds(
    tmp_path: Path, database_url: str, proxy: TcpProxy, s3_client: Any, bucket: str, clip: bytes
) -> None:
    vendor = Vendor(clip)  # reports no cost: the catalog price, marked up once, is charged
    async with gateway(tmp_path, database_url, bucket, vendor) as gw:
        with gw.runtime.db.session() as s:
            tenant = s.exec(select(Tenant)).one()
            tenant.markup_bps = 2000
            s.add(tenant)
            s.commit()
        gw.runtime.auth.invalidate()
        proxy.cut()
        job = await gw.client.jobs.create(STORYBOARD)
        await until(lambda: all_waiting(gw, job))
        (gw.data_dir / "spool" / "att_leftover.mp4").write_bytes(b"a crashed download")
    # stopped while the store was down; it comes back before the gateway does, and the
    # vendor has forgotten the jobs meanwhile: the spooled outputs need nothing from it
    proxy.restore()
    vendor.forgot = True
    async with gateway(tmp_path, database_url, bucket, vendor) as gw:
        job = await gw.client.jobs.wait(job, timeout=30)
        assert list((gw.data_dir / "spool").iterdir()) == []
    check_stored(job, s3_client, bucket, vendor)
    for shot in job.shots:  # the spooled estimate is not taken for the vendor's own figure
        quoted = [c.estimate_usd for c in shot.plan.route if c.model == shot.model]
        assert shot.cost_usd == quoted[0] and shot.cost_usd is not None
