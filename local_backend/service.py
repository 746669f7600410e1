"""The local backend's operations, without HTTP.

The FastAPI routes (:mod:`local_backend.app`) are thin wrappers over these, and a
gateway running the backend in its own process (embedded mode) calls them directly:
the same views, long polls and refusals, without two HTTP framings a request. On a
tiny shot those cost more than the work (≈1 ms of request and response building,
routing and validation per call, in the render's first milliseconds and right
after its end; measured ≈2 ms of gateway work a shot, randomized per shot).

A refusal is a :class:`Problem`: the HTTP status and the ``application/problem+json``
body the API answers with.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from local_backend.families.base import GenerationParams, InvalidParams, ModelInfo
from local_backend.runner import (
    STEP_NOTIFY_S,
    Generation,
    Runner,
    RunnerClosed,
    UnknownModel,
)

__all__ = [
    "MAX_WAIT_S",
    "GenerationCreate",
    "GenerationError",
    "GenerationView",
    "LoadView",
    "LocalService",
    "Problem",
    "invalid_request",
]


#: The longest long poll, in seconds (the API refuses a longer ``wait``).
MAX_WAIT_S = 30.0


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


class Problem(Exception):
    """A refusal: its HTTP status, a machine code and the detail for a person."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail

    def body(self) -> dict[str, Any]:
        """The ``application/problem+json`` body."""
        return {
            "type": "about:blank",
            "title": self.code.replace("_", " "),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }


def invalid_request(errors: list[Any], prefix: int = 0) -> Problem:
    """A request body that does not validate: 422 naming the first field at fault
    (``prefix``: leading parts of each error's location to drop, e.g. FastAPI's "body")."""
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"][prefix:]) or "body"
    return Problem(422, "invalid_request", f"{field}: {first['msg']}")


class LocalService:
    """Submit, read (long polls included), cancel: what the API's generation routes do."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def create(self, body: GenerationCreate) -> GenerationView:
        runner = self.runner
        try:
            if body.image is None and body.last_frame is None:  # checks only: no hop
                gen, _ = runner.submit(body, body.request_id)
            else:  # decoding and fitting an image takes milliseconds: off the loop
                gen, _ = await asyncio.to_thread(runner.submit, body, body.request_id)
        except UnknownModel:
            raise Problem(
                404,
                "unknown_model",
                f"No model {body.model!r}; serving: {', '.join(runner.models)}.",
            ) from None
        except InvalidParams as exc:
            raise Problem(422, "invalid_params", exc.message) from None
        except RunnerClosed as exc:
            raise Problem(503, "shutting_down", str(exc)) from None
        return self.view(gen)

    async def read(self, gen_id: str, wait: float = 0) -> GenerationView:
        """The generation; with ``wait`` (seconds, at most :data:`MAX_WAIT_S`), a long
        poll that answers on its next change."""
        gen = self.lookup(gen_id)
        if wait > 0 and not gen.terminal:
            await self._wait_for_change(gen, min(wait, MAX_WAIT_S))
        return self.view(gen)

    async def cancel(self, gen_id: str) -> GenerationView:
        gen = self.lookup(gen_id)
        self.runner.cancel(gen)
        if gen.status == "running":
            await self._wait_for_change(gen, 5)
        return self.view(gen)

    def models(self) -> list[ModelInfo]:
        return [m.info for m in self.runner.models.values()]

    def load(self) -> LoadView:
        return LoadView(**self.runner.load()._asdict())

    # --- the same, in JSON, for a caller in this process (the embedded gateway) ---------

    async def create_json(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`create` from a JSON body, validated as the API validates it."""
        try:
            body = GenerationCreate.model_validate(payload)
        except ValidationError as exc:
            raise invalid_request(exc.errors()) from None
        return (await self.create(body)).model_dump(mode="json")

    async def read_json(self, gen_id: str, wait: float = 0) -> dict[str, Any]:
        return (await self.read(gen_id, wait)).model_dump(mode="json")

    async def cancel_json(self, gen_id: str) -> dict[str, Any]:
        return (await self.cancel(gen_id)).model_dump(mode="json")

    def output(self, gen_id: str) -> Path | None:
        """A succeeded generation's file, to read directly (see :meth:`Runner.output`)."""
        return self.runner.output(gen_id)

    # --- internals ------------------------------------------------------------------

    def lookup(self, gen_id: str) -> Generation:
        """The generation, or the API's 404 ``generation_not_found``."""
        gen = self.runner.get(gen_id)
        if gen is None:
            raise Problem(404, "generation_not_found", f"No generation {gen_id!r}.")
        return gen

    def view(self, live: Generation) -> GenerationView:
        gen, position = self.runner.snapshot(live)
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

    async def _wait_for_change(self, gen: Generation, timeout: float) -> None:
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

        unwatch = self.runner.watch(gen, wake)
        try:
            if gen.status == seen and not gen.terminal:
                await _until(changed, deadline)
            if seen == "queued" and gen.status == "running" and gen.started_at is not None:
                changed.clear()  # then look again: the end may have come meanwhile
                if gen.status == "running":  # steps are told no sooner than told_by
                    told_by = loop.time() + gen.started_at + STEP_NOTIFY_S - time.time()
                    await _until(changed, min(deadline, told_by))
        finally:
            unwatch()


def _ts(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


async def _until(event: asyncio.Event, deadline: float) -> None:
    """Wait for ``event`` until the loop's clock reads ``deadline``."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(0.0, deadline - asyncio.get_running_loop().time()))
