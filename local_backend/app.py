"""The local-backend HTTP service: generations on this machine's device.

``create_app(config)`` builds it; a gateway talks to one started with ``reelgate
local-backend``, or builds it in its own process (embedded mode) and calls its
operations (``app.state.service``, :mod:`local_backend.service`) directly, the routes
being thin wrappers over them. Long
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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from local_backend.config import BackendConfig
from local_backend.families import load_all_models
from local_backend.families.base import ModelInfo
from local_backend.runner import Runner
from local_backend.service import (
    MAX_WAIT_S,
    GenerationCreate,
    GenerationView,
    LoadView,
    LocalService,
    Problem,
    invalid_request,
)
from local_backend.warm import WarmPool

__all__ = ["GenerationCreate", "GenerationView", "LoadView", "create_app", "serve"]

_PROBLEM = "application/problem+json"


def _problem(problem: Problem) -> JSONResponse:
    return JSONResponse(problem.body(), status_code=problem.status, media_type=_PROBLEM)


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
    service = LocalService(runner)
    app.state.runner = runner
    app.state.service = service  # for a gateway in this process: the same calls, no HTTP
    app.state.pool = pool
    app.state.close = runner.close

    @app.exception_handler(Problem)
    async def _on_problem(_: Request, exc: Problem) -> JSONResponse:
        return _problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(invalid_request(list(exc.errors()), prefix=1))  # loc[0] is "body"

    @app.exception_handler(HTTPException)
    async def _on_http(_: Request, exc: HTTPException) -> JSONResponse:
        return _problem(Problem(exc.status_code, "http_error", str(exc.detail)))

    @app.post("/v1/generations", status_code=202, response_model=GenerationView)
    async def create(body: GenerationCreate) -> GenerationView:
        return await service.create(body)

    @app.get("/v1/generations/{gen_id}", response_model=GenerationView)
    async def read(
        gen_id: str, wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S)] = 0
    ) -> GenerationView:
        return await service.read(gen_id, wait)

    @app.post("/v1/generations/{gen_id}/cancel", response_model=GenerationView)
    async def cancel(gen_id: str) -> GenerationView:
        return await service.cancel(gen_id)

    @app.get("/v1/generations/{gen_id}/content")
    async def content(gen_id: str) -> StreamingResponse:
        gen = service.lookup(gen_id)
        if gen.status != "succeeded" or gen.path is None or not gen.path.exists():
            raise Problem(409, "not_ready", f"Generation {gen_id} is {gen.status}.")
        path = gen.path

        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        size = str(path.stat().st_size)
        return StreamingResponse(chunks(), media_type="video/mp4", headers={"Content-Length": size})

    @app.get("/v1/models", response_model=list[ModelInfo])
    async def models() -> list[ModelInfo]:
        return service.models()

    @app.get("/v1/load", response_model=LoadView)
    async def load() -> LoadView:
        """The device's work now, for a gateway choosing the least-loaded backend."""
        return service.load()

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
