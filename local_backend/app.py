"""The local-backend HTTP service: generations on this machine's device.

``create_app(config)`` builds it; the gateway mounts the same app in-process (over
an ASGI transport) or talks to one started with ``reelgate local-backend``. Long
polls (``GET /v1/generations/{id}?wait=S``) answer as soon as the status
changes or a step completes (steps at most every 0.5 s, a start with them), so a
client sees progress and completion without polling in a tight loop.
``GET /v1/load`` (queued and running counts, also in ``/healthz``) lets a gateway
with several backends send a shot to the least-loaded one.

The runner's worker thread starts on the first submit, not in a lifespan (the
ASGI transport runs none); ``app.state.close()`` stops it, and under uvicorn the
lifespan's shutdown calls it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from local_backend.config import BackendConfig
from local_backend.families import load_all_models
from local_backend.families.base import GenerationParams, InvalidParams, ModelInfo
from local_backend.runner import STEP_NOTIFY_S, Generation, Runner, RunnerClosed, UnknownModel
from local_backend.warm import WarmPool

__all__ = ["GenerationCreate", "GenerationView", "LoadView", "create_app", "serve"]

_PROBLEM = "application/problem+json"


class GenerationCreate(GenerationParams):
    request_id: str | None = Field(
        default=None,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Client idempotency key: the same id returns the same generation.",
    )


class GenerationError(BaseModel):
    code: str
    message: str


class GenerationView(BaseModel):
    id: str
    request_id: str | None
    model: str
    status: str
    step: int
    total_steps: int
    progress: float
    queue_position: int | None
    error: GenerationError | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class LoadView(BaseModel):
    queued: int = Field(description="Generations waiting in this device's queue.")
    running: int = Field(description="Generations running on this device (0 or 1).")


class _Problem(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _view(runner: Runner, live: Generation) -> GenerationView:
    gen, position = runner.snapshot(live)
    error = GenerationError(code=gen.error_code or "failed", message=gen.error_message or "")
    return GenerationView(
        id=gen.id,
        request_id=gen.request_id,
        model=gen.model,
        status=gen.status,
        step=gen.step,
        total_steps=gen.total_steps,
        progress=1.0 if gen.status == "succeeded" else gen.step / max(gen.total_steps, 1),
        queue_position=position,
        error=error if gen.status == "failed" else None,
        created_at=_ts(gen.created_at),  # type: ignore[arg-type]
        started_at=_ts(gen.started_at),
        finished_at=_ts(gen.finished_at),
    )


async def _until(event: asyncio.Event, deadline: float) -> None:
    """Wait for ``event`` until the loop's clock reads ``deadline``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(0.0, deadline - asyncio.get_running_loop().time()))


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, media_type=_PROBLEM)


def create_app(config: BackendConfig | None = None) -> FastAPI:
    config = config or BackendConfig()
    budget = config.memory_budget_gb
    pool = WarmPool(round(budget * 1e9) if budget is not None else None)
    runner = Runner(load_all_models(config, pool), config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(runner.close)

    app = FastAPI(
        title="reelgate local backend",
        summary="Video generation on this device.",
        lifespan=lifespan,
    )
    app.state.runner = runner
    app.state.pool = pool
    app.state.close = runner.close

    @app.exception_handler(_Problem)
    async def _on_problem(_: Request, exc: _Problem) -> JSONResponse:
        return _problem(exc.status, exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"][1:]) or "body"
        return _problem(422, "invalid_request", f"{field}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def _on_http(_: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, "http_error", str(exc.detail))

    async def wait_for_status_change(gen: Generation, timeout: float) -> None:
        """Until ``gen``'s status changes or a step is told (``STEP_NOTIFY_S``), at most
        ``timeout`` seconds. A start is told with the first step told or the end, at
        most ``STEP_NOTIFY_S`` after it: a poll that woke for the start alone would
        cost its client a round trip (and the gateway a commit) in the render's first
        milliseconds, for a state its own clients see no sooner (they look every 0.5 s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        changed = asyncio.Event()
        seen = gen.status

        def wake() -> None:  # runs on the worker thread
            with contextlib.suppress(RuntimeError):  # the loop may be gone already
                loop.call_soon_threadsafe(changed.set)

        unwatch = runner.watch(gen, wake)
        try:
            if gen.status == seen and not gen.terminal:
                await _until(changed, deadline)
            if seen == "queued" and gen.status == "running" and gen.started_at is not None:
                changed.clear()
                if gen.status == "running" and gen.step == 0:  # nothing else happened yet
                    told_by = loop.time() + gen.started_at + STEP_NOTIFY_S - time.time()
                    await _until(changed, min(deadline, told_by))
        finally:
            unwatch()

    def lookup(gen_id: str) -> Generation:
        gen = runner.get(gen_id)
        if gen is None:
            raise _Problem(404, "generation_not_found", f"No generation {gen_id!r}.")
        return gen

    @app.post("/v1/generations", status_code=202, response_model=GenerationView)
    async def create(body: GenerationCreate) -> GenerationView:
        params = GenerationParams.model_validate(body.model_dump(exclude={"request_id"}))
        try:
            if params.image is None and params.last_frame is None:  # checks only: no hop
                gen, _ = runner.submit(params, body.request_id)
            else:  # decoding and fitting an image takes milliseconds: off the loop
                gen, _ = await asyncio.to_thread(runner.submit, params, body.request_id)
        except UnknownModel:
            raise _Problem(
                404,
                "unknown_model",
                f"No model {params.model!r}; serving: {', '.join(runner.models)}.",
            ) from None
        except InvalidParams as exc:
            raise _Problem(422, "invalid_params", exc.message) from None
        except RunnerClosed as exc:
            raise _Problem(503, "shutting_down", str(exc)) from None
        return _view(runner, gen)

    @app.get("/v1/generations/{gen_id}", response_model=GenerationView)
    async def read(gen_id: str, wait: Annotated[float, Query(ge=0, le=30)] = 0) -> GenerationView:
        gen = lookup(gen_id)
        if wait and not gen.terminal:
            await wait_for_status_change(gen, wait)
        return _view(runner, gen)

    @app.post("/v1/generations/{gen_id}/cancel", response_model=GenerationView)
    async def cancel(gen_id: str) -> GenerationView:
        gen = lookup(gen_id)
        runner.cancel(gen)
        if gen.status == "running":
            await wait_for_status_change(gen, 5)
        return _view(runner, gen)

    @app.get("/v1/generations/{gen_id}/content")
    async def content(gen_id: str) -> StreamingResponse:
        gen = lookup(gen_id)
        if gen.status != "succeeded" or gen.path is None or not gen.path.exists():
            raise _Problem(409, "not_ready", f"Generation {gen_id} is {gen.status}.")
        path = gen.path

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        size = str(path.stat().st_size)
        return StreamingResponse(chunks(), media_type="video/mp4", headers={"Content-Length": size})

    @app.get("/v1/models", response_model=list[ModelInfo])
    async def models() -> list[ModelInfo]:
        return [m.info for m in runner.models.values()]

    @app.get("/v1/load", response_model=LoadView)
    async def load() -> LoadView:
        """The device's work now, for a gateway choosing the least-loaded backend."""
        return LoadView(**runner.load()._asdict())

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "device": config.device,
            "models": list(runner.models),
            "load": runner.load()._asdict(),
            "pipelines": pool.stats(),
        }

    return app


def serve(host: str = "127.0.0.1", port: int = 8008, config: BackendConfig | None = None) -> None:
    """Run one backend under uvicorn until interrupted (``reelgate local-backend``)."""
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("serving needs uvicorn: pip install 'reelgate[server]'") from exc
    uvicorn.run(create_app(config), host=host, port=port, log_level="info")
