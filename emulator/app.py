"""The emulator's FastAPI app: one router per vendor under ``/{vendor}``, plus knobs.

``create_app(knobs)`` serves every vendor in :data:`VENDORS`; an adapter's base URL is
``{emulator}/{vendor}``. ``GET/PUT /_emulator/knobs`` reads and changes the knobs,
``GET /_emulator/jobs`` lists jobs (tests assert on it; ``callback_status`` is the
receiver's answer to the job's callback), and
``/_emulator/files/{job}.mp4`` serves outputs for vendors that hand out URLs.
Completion callbacks are POSTed by a background task when a job finishes, unless
``callback_loss_rate`` drops them.

:func:`chaos_response` answers a request the chaos knobs pick, and a create the
``create_error`` knob refuses: each vendor module passes its table of documented refusals
(:class:`VendorError` by :data:`~emulator.core.CreateError` name); a name missing from it
gets :data:`GENERIC_ERRORS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import importlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from emulator.core import CreateError, EmJob, Emulator, Knobs, sample_mp4

__all__ = [
    "GENERIC_ERRORS",
    "VENDORS",
    "VendorError",
    "VendorRoutes",
    "chaos_response",
    "create_app",
]

log = logging.getLogger(__name__)

#: Vendor modules under ``emulator.vendors`` that the app mounts.
VENDORS = ["runway", "luma", "replicate", "fal", "google", "kling", "minimax", "seedance"]


@dataclass
class VendorRoutes:
    name: str
    router: APIRouter
    #: (job, emulator base URL) -> the JSON the vendor POSTs to a callback URL.
    callback_body: Callable[[EmJob, str], dict[str, Any]] | None = None
    #: (job, the exact body bytes) -> extra headers, e.g. a webhook signature.
    callback_headers: Callable[[EmJob, bytes], dict[str, str]] | None = None


@dataclass(frozen=True)
class VendorError:
    """A documented refusal: the HTTP status and body a vendor answers a create with."""

    status: int
    #: The JSON body, or a function making it (for a fresh request id per answer).
    body: dict[str, Any] | Callable[[], dict[str, Any]]
    headers: dict[str, str] = field(default_factory=dict)
    #: Send ``Retry-After`` (the ``retry_after_s`` knob), where the vendor documents one.
    retry_after: bool = False


#: For a vendor whose reference documents no body for a refusal: plain, vendor-neutral
#: answers (a quota 429 without ``Retry-After``: waiting will not clear it).
GENERIC_ERRORS: dict[CreateError, VendorError] = {
    "billing": VendorError(402, {"error": "payment required: the account has no credits"}),
    "quota": VendorError(429, {"error": "quota exceeded"}),
    "bad_input": VendorError(400, {"error": "invalid request"}),
    "content": VendorError(400, {"error": "the input was refused by content moderation"}),
    "unavailable": VendorError(503, {"error": "service unavailable"}),
}


def chaos_response(
    em: Emulator,
    kind: str,
    *,
    rate_limit_body: dict[str, Any] | None = None,
    rate_limit_status: int = 429,
    vendor: str | None = None,
    create_errors: Mapping[CreateError, VendorError] | None = None,
) -> Response | None:
    """The failure this request gets from the chaos knobs, or None to answer normally.

    ``rate_limit_status``: MiniMax answers its rate limit with HTTP 200. A create
    (``kind`` ``"create"``) may also get the ``create_error`` knob's refusal, from
    ``create_errors`` (the vendor's documented ones) or else :data:`GENERIC_ERRORS`.
    """
    match em.chaos(kind):
        case "rate_limit":
            body = rate_limit_body or {"error": "rate limited"}
            retry = f"{em.knobs.retry_after_s:g}"
            return JSONResponse(body, status_code=rate_limit_status, headers={"Retry-After": retry})
        case "server_error":
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        case "malformed":
            return Response(b'{"id": "trunc', media_type="application/json")
        case "drop":
            return StreamingResponse(_dropped(), media_type="application/json")
    if kind == "create" and (name := em.create_error(vendor)) is not None:
        error = (create_errors or {}).get(name) or GENERIC_ERRORS[name]
        headers = dict(error.headers)
        if error.retry_after:
            headers["Retry-After"] = f"{em.knobs.retry_after_s:g}"
        body = error.body() if callable(error.body) else error.body
        return JSONResponse(body, status_code=error.status, headers=headers)
    return None


async def _dropped() -> AsyncIterator[bytes]:
    yield b'{"status": '
    raise ConnectionAbortedError("emulated dropped connection")


def file_url(request: Request, job: EmJob) -> str:
    return f"{str(request.base_url).rstrip('/')}/_emulator/files/{job.id}.mp4"


def create_app(knobs: Knobs | None = None, vendors: list[str] | None = None) -> FastAPI:
    em = Emulator(knobs)
    routes = [
        importlib.import_module(f"emulator.vendors.{name}").routes(em)
        for name in vendors or VENDORS
    ]
    callbacks = {r.name: r for r in routes if r.callback_body}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_deliver_callbacks(em, callbacks, app))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPI(title="reelgate vendor emulator", lifespan=lifespan)
    app.state.emulator = em
    app.state.base_url = "http://127.0.0.1"
    for r in routes:
        app.include_router(r.router, prefix=f"/{r.name}")

    @app.middleware("http")
    async def remember_base_url(request: Request, call_next: Any) -> Response:
        app.state.base_url = str(request.base_url).rstrip("/")
        response: Response = await call_next(request)
        return response

    @app.get("/_emulator/knobs")
    async def get_knobs() -> Knobs:
        return em.knobs

    @app.put("/_emulator/knobs")
    async def put_knobs(knobs: Knobs) -> Knobs:
        em.set_knobs(knobs)
        return em.knobs

    @app.get("/_emulator/jobs")
    async def jobs() -> list[dict[str, Any]]:
        now = em.clock()
        return [
            {"id": j.id, "vendor": j.vendor, "model": j.model, "state": j.state(now),
             "payload": j.payload, "callback_sent": j.callback_sent,
             "callback_status": j.callback_status,
             "created": j.created, "finished": j.finished}
            for j in em.jobs.values()
        ]  # fmt: skip

    @app.get("/_emulator/stats")
    async def stats() -> dict[str, Any]:
        """Requests served by kind (create, poll, download, cancel; fal's result fetches
        count as polls and again as ``result``; creates refused by ``create_error`` also
        as ``create_error``), and jobs by state."""
        now = em.clock()
        states: dict[str, int] = {}
        for j in em.jobs.values():
            states[j.state(now)] = states.get(j.state(now), 0) + 1
        return {"requests": dict(em.requests), "jobs": states}

    @app.get("/_emulator/files/{name}")
    async def files(name: str) -> Response:
        job = em.get(name.removesuffix(".mp4"))
        if job is None or job.state(em.clock()) != "succeeded":
            return JSONResponse({"error": "no such file"}, status_code=404)
        if (failure := chaos_response(em, "download")) is not None:
            return failure
        return Response(sample_mp4(), media_type="video/mp4")

    return app


async def _deliver_callbacks(em: Emulator, vendors: dict[str, VendorRoutes], app: FastAPI) -> None:
    """POST each finished job's callback once, in finish order (lost ones are not sent)."""
    due = em.callbacks_due
    sending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            now = em.clock()
            while due and due[0][0] <= now:
                _, job_id = heapq.heappop(due)
                job = em.jobs[job_id]
                vendor = vendors.get(job.vendor)
                if vendor is None or vendor.callback_body is None:
                    continue
                if job.callback_sent or em.lose_callback():
                    continue
                job.callback_sent = True
                raw = json.dumps(vendor.callback_body(job, app.state.base_url)).encode()
                headers = {"content-type": "application/json"}
                if vendor.callback_headers is not None:
                    headers.update(vendor.callback_headers(job, raw))
                task = asyncio.create_task(_post(client, job, raw, headers))
                sending.add(task)
                task.add_done_callback(sending.discard)
            await asyncio.sleep(0.02)


async def _post(
    client: httpx.AsyncClient, job: EmJob, body: bytes, headers: dict[str, str]
) -> None:
    try:
        response = await client.post(job.callback_url or "", content=body, headers=headers)
    except httpx.HTTPError as exc:
        log.info("callback to %s failed: %s", job.callback_url, exc)
    else:
        job.callback_status = response.status_code


def serve(host: str = "127.0.0.1", port: int = 9100, knobs: Knobs | None = None) -> None:
    import uvicorn

    uvicorn.run(create_app(knobs), host=host, port=port, log_level="warning")
