"""A scripted fake of the gateway's REST API and builders for its JSON bodies.

``FakeAPI`` is the handler behind ``httpx.MockTransport``: each route answers with
its queued responses in order (the last one repeats) and every request is recorded,
so tests assert on exactly what the SDK put on the wire.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from reelgate import AsyncClient, Client

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]

PROBLEM_JSON = {"content-type": "application/problem+json"}


class FakeAPI:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def add(self, method: str, path: str, *answers: Answer) -> None:
        self.routes.setdefault((method, path), []).extend(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if not queue:
            return httpx.Response(404, json={"title": "no route", "status": 404, "code": "x"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]


class FakeTime:
    """A clock that only moves when the SDK sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


async def resolve(value: Any) -> Any:
    """Await what the async client returned; pass the sync client's results through."""
    return await value if inspect.isawaitable(value) else value


async def collect(items: Iterator[Any] | AsyncIterator[Any]) -> list[Any]:
    if isinstance(items, Iterator):
        return list(items)
    return [item async for item in items]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


# --- wire bodies -----------------------------------------------------------------------


def output_json(url: str, size: int) -> dict[str, Any]:
    return {"sha256": "ab" * 32, "bytes": size, "content_url": url, "codec": "h264"}


def shot_json(
    index: int = 0,
    *,
    job_id: str = "job_1",
    status: str = "running",
    progress: float | None = None,
    output: dict[str, Any] | None = None,
    model: str = "runway/gen4.5",
    kind: str = "broll",
    error_message: str | None = None,
    step: int | None = None,
    total_steps: int | None = None,
) -> dict[str, Any]:
    params = {"duration_s": 5, "aspect_ratio": "16:9", "resolution": "720p", "fps": 24}
    plan = {
        "index": index,
        "kind": kind,
        "model": model,
        "route": [{"model": model, "status": "selected"}],
        "prompt_sent": "a red kite over dunes",
        "params": {**params, "width": 1280, "height": 720},
        "estimate_usd": "0.5",
    }
    return {
        "id": f"shot_{index}",
        "job_id": job_id,
        "index": index,
        "kind": kind,
        "status": status,
        "model": model,
        "prompt": "a red kite over dunes",
        "plan": plan,
        "progress": progress,
        "step": step,
        "total_steps": total_steps,
        "output": output,
        "error_message": error_message,
        "estimate_usd": "0.5",
    }


def job_json(
    job_id: str = "job_1",
    *,
    status: str = "running",
    shots: list[dict[str, Any]] | None = None,
    final: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": job_id,
        "status": status,
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:05Z",
        "shots": shots if shots is not None else [shot_json(job_id=job_id)],
        "assemble": final is not None,
        "final": final,
        "estimate_usd": "0.5",
    }


def job_response(retry_after: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(200, json=job_json(**kwargs), headers=headers)


def problem(
    status: int,
    code: str = "oops",
    detail: str | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = {"title": "Problem", "status": status, "code": code, "detail": detail}
    content["errors"] = errors or []
    return httpx.Response(status, json=content, headers={**PROBLEM_JSON, **(headers or {})})


def model_json(model_id: str = "runway/gen4.5") -> dict[str, Any]:
    return {
        "id": model_id,
        "adapter": "runway",
        "vendor_model": "gen4.5",
        "capabilities": {
            "modes": ["t2v", "i2v"],
            "durations": [5, 10],
            "resolutions": ["720p"],
            "aspect_ratios": ["16:9"],
            "fps": [24],
            "max_prompt_chars": 1000,
        },
        "price": {"per_second_usd": {"720p": "0.10"}},
        "configured": True,
    }


def quote_json() -> dict[str, Any]:
    plan = shot_json()["plan"]
    return {"shots": [plan], "total_usd": "0.5", "warnings": []}


API_KEY = "rg_test_key"
BASE_URL = "http://gateway.test"


def make_client(flavour: str, api: FakeAPI, fake_time: FakeTime, **kwargs: Any) -> Any:
    transport = httpx.MockTransport(api)
    if flavour == "sync":
        return Client(
            BASE_URL,
            API_KEY,
            http_client=httpx.Client(transport=transport),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            **kwargs,
        )
    return AsyncClient(
        BASE_URL,
        API_KEY,
        http_client=httpx.AsyncClient(transport=transport),
        sleep=fake_time.async_sleep,
        clock=fake_time.clock,
        **kwargs,
    )
