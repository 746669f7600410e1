"""LocalBackendAdapter over several backends: the least-loaded one that serves the model.

The backends are real local-backend apps, each behind its own ASGI transport; scripted
transports stand only for a backend that is down, answers garbage, or serves other models.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from adapters.base import GenerationRequest, RetryableError
from adapters.local import LocalBackendAdapter
from local_backend.app import create_app
from local_backend.config import BackendConfig

#: Long enough (3600 frames) to still be running or queued while a test looks.
LONG = {"duration_s": 60, "fps": 60, "width": 640, "height": 360}
SHOT = {"model": "preview", "prompt": "A harbour at dawn", "duration_s": 1, "fps": 8}
IDLE = {"queued": 0, "running": 0}


def request(request_id: str = "att_1") -> GenerationRequest:
    size = {"width": 160, "height": 90, "aspect_ratio": "16:9", "resolution": "90p"}
    return GenerationRequest.model_validate({"request_id": request_id, **SHOT, **size})


@dataclass
class Backend:
    client: httpx.AsyncClient
    seen: list[str]  # "GET /v1/load", ...: what it was asked, in order

    async def occupy(self, n: int) -> list[str]:
        """Hand it ``n`` long generations directly (one runs, the others wait); their ids."""
        ids = []
        for _ in range(n):
            response = await self.client.post("/v1/generations", json={**SHOT, **LONG})
            assert response.status_code == 202
            ids.append(response.json()["id"])
        return ids

    async def load(self) -> dict[str, int]:
        return dict((await self.client.get("/v1/load")).json())


class Switch(httpx.AsyncBaseTransport):
    """A real backend behind a switch: while off, nothing connects."""

    def __init__(self, app: FastAPI, *, up: bool = True, reports_load: bool = True) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.up, self.reports_load = up, reports_load

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/v1/load" and not self.reports_load:  # an older backend
            return httpx.Response(404, json={"code": "http_error", "detail": "Not Found"})
        return await self.inner.handle_async_request(request)


Answer = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Backends:
    """Makes backends for one test and closes them (apps and clients) after it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.apps, self.made = tmp_path, list[FastAPI](), list[Backend]()

    def _client(self, transport: httpx.AsyncBaseTransport) -> Backend:
        seen: list[str] = []

        async def record(req: httpx.Request) -> None:
            seen.append(f"{req.method} {req.url.path}")

        hooks = {"request": [record]}
        client = httpx.AsyncClient(transport=transport, base_url="http://b", event_hooks=hooks)
        self.made.append(Backend(client, seen))
        return self.made[-1]

    def _app(self) -> FastAPI:
        app = create_app(BackendConfig(work_dir=self.tmp_path / f"b{len(self.apps)}"))
        self.apps.append(app)
        return app

    def real(self) -> Backend:
        return self._client(httpx.ASGITransport(app=self._app()))

    def switched(self, **kw: bool) -> tuple[Backend, Switch]:
        switch = Switch(self._app(), **kw)
        return self._client(switch), switch

    def scripted(self, load: Answer, models: tuple[str, ...] = ("preview",)) -> Backend:
        """Answers its model list and ``load``; any submit is refused (and recorded)."""

        async def handler(req: httpx.Request) -> httpx.Response:
            if req.url.path == "/v1/models":
                return httpx.Response(200, json=[{"id": m} for m in models])
            if req.url.path == "/v1/load":
                answer = load(req)
                return answer if isinstance(answer, httpx.Response) else await answer
            return httpx.Response(503, json={"code": "scripted", "detail": "not for submits"})

        return self._client(httpx.MockTransport(handler))

    async def close(self) -> None:
        for backend in self.made:
            await backend.client.aclose()
        await asyncio.gather(*(asyncio.to_thread(app.state.close) for app in self.apps))


@pytest.fixture
async def backends(tmp_path: Path) -> AsyncIterator[Backends]:
    made = Backends(tmp_path)
    yield made
    await made.close()


def adapter_for(*backends: Backend, **kw: Any) -> LocalBackendAdapter:
    return LocalBackendAdapter([b.client for b in backends], long_poll_s=0.2, **kw)


def on(job_id: str) -> int:
    """Which backend (its index in the adapter's list) a backend job id names."""
    return int(job_id.split("/", 1)[0])


# --- the backend's side: its load, cheaply -----------------------------------------------


async def test_the_load_endpoint_counts_queued_and_running_work(backends: Backends) -> None:
    backend = backends.real()
    assert await backend.load() == IDLE
    await backend.occupy(3)
    deadline = time.monotonic() + 5
    while (load := await backend.load())["running"] == 0:  # the worker picks the first up
        assert time.monotonic() < deadline, load
        await asyncio.sleep(0.005)
    assert load == {"queued": 2, "running": 1}
    health = (await backend.client.get("/healthz")).json()
    assert health["load"] == load


async def test_finished_and_canceled_work_leaves_the_load(backends: Backends) -> None:
    backend = backends.real()
    long_ids = await backend.occupy(2)
    adapter = adapter_for(backend)
    job = (await adapter.submit(request())).backend_job_id
    assert sum((await backend.load()).values()) == 3
    for gen_id in long_ids:  # the running one stops within a step, the queued one at once
        canceled = await backend.client.post(f"/v1/generations/{gen_id}/cancel")
        assert canceled.json()["status"] == "canceled"
    deadline = time.monotonic() + 10
    while (await adapter.poll(job)).state != "succeeded":
        assert time.monotonic() < deadline
    assert await backend.load() == IDLE


# --- the adapter's side: the pick --------------------------------------------------------


async def test_a_submit_goes_to_the_least_loaded_backend(backends: Backends) -> None:
    busy, idle, lighter = backends.real(), backends.real(), backends.real()
    await busy.occupy(3)
    await lighter.occupy(1)
    adapter = adapter_for(busy, idle, lighter)
    job = (await adapter.submit(request())).backend_job_id
    assert on(job) == 1
    assert all("GET /v1/load" in b.seen for b in (busy, idle, lighter))
    assert (await adapter.poll(job)).state in {"queued", "running", "succeeded"}


async def test_shots_submitted_together_spread_over_idle_backends(backends: Backends) -> None:
    first, second = backends.real(), backends.real()
    adapter = adapter_for(first, second)
    shots = [adapter.submit(request(f"att_{n}")) for n in range(4)]
    jobs = [s.backend_job_id for s in await asyncio.gather(*shots)]
    assert {on(job) for job in jobs} == {0, 1}


async def test_a_backend_that_does_not_serve_the_model_is_never_chosen(
    backends: Backends,
) -> None:
    other = backends.scripted(lambda _: httpx.Response(200, json=IDLE), models=("wan-14b",))
    busy, idle = backends.real(), backends.real()
    await busy.occupy(4)
    adapter = adapter_for(other, busy, idle)
    jobs = [(await adapter.submit(request(f"att_{n}"))).backend_job_id for n in range(3)]
    assert [on(job) for job in jobs] == [2, 2, 2]
    assert other.seen == ["GET /v1/models"]  # never asked for its load, never sent work


async def hangs(_: httpx.Request) -> httpx.Response:
    await asyncio.sleep(5)  # past the adapter's load timeout, which cancels it
    return httpx.Response(200, json=IDLE)


def refused(req: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=req)


LOAD_FAILURES: dict[str, Answer] = {
    "refused": refused,
    "hangs": hangs,
    "500": lambda _: httpx.Response(500, text="<html>oops</html>"),
    "not json": lambda _: httpx.Response(200, text="{queued: 0"),
    "not a load": lambda _: httpx.Response(200, json={"queued": "none", "running": 0}),
    "negative": lambda _: httpx.Response(200, json={"queued": -5, "running": 0}),
    "a list": lambda _: httpx.Response(200, json=[0, 0]),
}


@pytest.mark.parametrize("answer", LOAD_FAILURES.values(), ids=LOAD_FAILURES.keys())
async def test_a_backend_whose_load_fails_is_passed_over(
    backends: Backends, answer: Answer
) -> None:
    silent, busy = backends.scripted(answer), backends.real()
    await busy.occupy(2)
    adapter = adapter_for(silent, busy, load_timeout_s=0.05)
    started = time.monotonic()
    job = (await adapter.submit(request())).backend_job_id
    assert on(job) == 1
    assert time.monotonic() - started < 2.5  # the hanging one is cut off, not awaited (5 s)
    assert silent.seen == ["GET /v1/models", "GET /v1/load"]  # asked, then passed over


async def test_with_no_load_answers_the_submit_still_goes_out(backends: Backends) -> None:
    (first, _), (second, _) = (backends.switched(reports_load=False) for _ in range(2))
    adapter = adapter_for(first, second)
    job = (await adapter.submit(request())).backend_job_id
    assert all("GET /v1/load" in b.seen for b in (first, second))  # both 404: an older backend
    deadline = time.monotonic() + 10
    while (status := await adapter.poll(job)).state != "succeeded":
        assert time.monotonic() < deadline and status.state in {"queued", "running"}


async def test_when_every_backend_is_down_the_submit_is_retryable(backends: Backends) -> None:
    (first, one), (second, two) = backends.switched(), backends.switched()
    adapter = adapter_for(first, second)
    await adapter.refresh()
    one.up = two.up = False
    with pytest.raises(RetryableError) as caught:
        await adapter.submit(request())
    assert (caught.value.code, caught.value.outcome_unknown) == ("unreachable", False)


async def test_a_backend_that_comes_up_later_is_found(backends: Backends) -> None:
    now = [0.0]
    busy, (late, switch) = backends.real(), backends.switched(up=False)
    await busy.occupy(2)
    adapter = adapter_for(busy, late, rediscover_s=30, clock=lambda: now[0])
    await adapter.refresh()
    assert adapter.configured_models() == {"preview"}
    switch.up = True
    assert on((await adapter.submit(request("att_1"))).backend_job_id) == 0  # not yet looked
    now[0] += 30
    assert on((await adapter.submit(request("att_2"))).backend_job_id) == 1
    assert late.seen.count("GET /v1/models") == 2


async def test_a_single_candidate_is_not_asked_for_its_load(backends: Backends) -> None:
    only = backends.real()
    job = (await adapter_for(only).submit(request())).backend_job_id
    assert on(job) == 0 and "GET /v1/load" not in only.seen

    other = backends.scripted(lambda _: httpx.Response(200, json=IDLE), models=("wan-14b",))
    serving = backends.real()
    job = (await adapter_for(other, serving).submit(request("att_2"))).backend_job_id
    assert on(job) == 1
    assert "GET /v1/load" not in serving.seen + other.seen
