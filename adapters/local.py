"""The adapter for ``local_backend`` services (one per GPU, or one in-process).

It speaks the local backend's HTTP API like any vendor's: submits carry the
attempt's ``request_id`` (the backend dedupes on it, so a resubmit after a lost
answer is safe), polls are long polls that return as soon as the status changes,
and errors are classified once, in :func:`classify`.

With several backends (one per GPU), a submit goes to the least-loaded backend
that serves the model: each candidate is asked ``GET /v1/load`` (queued + running)
at once, under a short timeout, and this adapter's own submits still in flight are
added. A backend that does not answer is left out of that pick; when none answers
the pick goes on without load figures, and the submit's own answer is classified as
usual. Ties rotate, so shots submitted together spread over idle backends. With a
single candidate no load is asked: a one-GPU gateway pays nothing for the choice.
A backend whose model list could not be read is asked again, at most every
``rediscover_s``, so one that comes up after the gateway is found without a restart.

A backend running in this process (the embedded one) is called directly
(``in_process``, an :class:`InProcessBackend`): the same operations and JSON as its
API, and its refusals as the same problems, without two HTTP framings a call (≈1 ms
each on a tiny shot, more than the work they carry). Its finished files are read
from its folder; a file already pruned is asked for over HTTP, which says why it is
gone. Model lists and loads still go over its HTTP API: they are not per shot.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx

from adapters._http import retry_after, stream_output, transport_error
from adapters.base import (
    AdapterError,
    BackendFailure,
    BackendJobLost,
    Failure,
    GenerationRequest,
    InvalidInput,
    JobState,
    JobStatus,
    RateLimited,
    RetryableError,
    Submission,
)

__all__ = ["InProcessBackend", "LocalBackendAdapter", "LocalProblem", "classify", "parse_status"]


class LocalProblem(Exception):
    """An in-process backend's refusal: the HTTP status and problem body its API sends."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("detail") or f"HTTP {status}")
        self.status, self.body = status, body


class InProcessBackend(Protocol):
    """A local backend in this process, called without HTTP: each call answers what its
    API route would (``POST /v1/generations``, ``GET /v1/generations/{id}?wait=``,
    ``POST .../cancel``) as JSON, and raises :class:`LocalProblem` where it would refuse."""

    async def create_json(self, payload: dict[str, Any]) -> dict[str, Any]: ...

    async def read_json(self, gen_id: str, wait: float = 0) -> dict[str, Any]: ...

    async def cancel_json(self, gen_id: str) -> dict[str, Any]: ...

    def output(self, gen_id: str) -> Path | None:
        """A succeeded generation's file, to read directly; None otherwise."""


_CHUNK = 1 << 20

_STATES: dict[str, JobState] = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def classify(response: httpx.Response, *, polling: bool = False) -> AdapterError:
    """Map a non-2xx answer to the adapter error tree."""
    try:
        body = response.json()
        code = str(body.get("code") or "local_backend_error")
        detail = str(body.get("detail") or response.reason_phrase)
    except (ValueError, AttributeError):
        code, detail = "local_backend_error", response.text[:200] or response.reason_phrase
    status = response.status_code
    if status == 404 and polling:
        return BackendJobLost(f"local backend lost the job: {detail}", code=code)
    if status == 404:
        return BackendFailure(detail, code=code)
    if status in (400, 413, 422):
        return InvalidInput(detail, code=code)
    if status == 429:
        return RateLimited(detail, code=code, retry_after=retry_after(response))
    if status >= 500 or status in (408, 409):
        return RetryableError(detail, code=code, retry_after=retry_after(response))
    return BackendFailure(f"HTTP {status}: {detail}", code=code)


def parse_status(body: dict[str, Any], *, long_poll: bool) -> JobStatus:
    """The backend's generation record → :class:`JobStatus`; unknown states are errors."""
    raw = body.get("status")
    state = _STATES.get(raw) if isinstance(raw, str) else None
    if state is None:
        raise BackendFailure(f"local backend reported unknown status {raw!r}", code="unknown_state")
    total = body.get("total_steps") or None
    step = body.get("step")
    error = body.get("error") or {}
    failure = None
    if state == "failed":
        failure = Failure(
            code=str(error.get("code") or "generation_failed"),
            message=str(error.get("message") or "generation failed"),
            failure_class="fallback",
        )
    progress = body.get("progress")
    return JobStatus(
        state=state,
        progress=min(1.0, max(0.0, float(progress))) if progress is not None else None,
        step=step,
        total_steps=total,
        queue_position=body.get("queue_position"),
        next_poll_s=0.0 if long_poll else (0.2 if state == "running" else 0.5),
        failure=failure,
        raw_state=raw,
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _answer(call: Awaitable[dict[str, Any]], *, polling: bool = False) -> dict[str, Any]:
    """An in-process call's answer; its refusal classified as the HTTP one would be."""
    try:
        return await call
    except LocalProblem as problem:
        response = httpx.Response(problem.status, json=problem.body)
        raise classify(response, polling=polling) from None


def _parse_load(body: Any) -> int | None:
    """``{"queued": q, "running": r}`` → ``q + r``; None when the body is not that."""
    if not isinstance(body, dict):
        return None
    queued, running = _count(body.get("queued")), _count(body.get("running"))
    return None if queued is None or running is None else queued + running


class LocalBackendAdapter:
    name = "local"
    idempotent_submit = True
    supports_cancel = True

    def __init__(
        self,
        clients: Sequence[httpx.AsyncClient],
        *,
        long_poll_s: float = 1.0,
        load_timeout_s: float = 0.5,
        rediscover_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        in_process: Sequence[InProcessBackend | None] = (),
    ) -> None:
        if not clients:
            raise ValueError("LocalBackendAdapter needs at least one backend client")
        if len(in_process) > len(clients):
            raise ValueError("in_process has more entries than there are backend clients")
        self._clients = list(clients)
        #: Per client: the same backend, called directly where it runs in this process.
        self._in_process = [*in_process, *[None] * (len(clients) - len(in_process))]
        self._long_poll_s = long_poll_s
        self._load_timeout_s = load_timeout_s
        self._rediscover_s = rediscover_s
        self._clock = clock
        #: Each backend's models; None while its model list has not been read.
        self._served: list[set[str] | None] = [None for _ in self._clients]
        self._looked_at = -float("inf")
        self._pending = [0 for _ in self._clients]  # submits sent, not yet answered
        self._turn = 0

    async def refresh(self) -> None:
        """Learn which models each backend serves (one that does not answer: none, for now)."""
        self._looked_at = self._clock()
        await asyncio.gather(*(self._read_models(i) for i in range(len(self._clients))))

    async def _read_models(self, index: int, timeout: float | None = None) -> None:
        try:
            async with asyncio.timeout(timeout):
                response = await self._clients[index].get("/v1/models")
            response.raise_for_status()
            self._served[index] = {m["id"] for m in response.json()}
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError, TypeError):
            self._served[index] = None

    def configured_models(self) -> set[str] | None:
        return set().union(*(served for served in self._served if served))

    def _serving(self, model: str) -> list[int]:
        return [i for i, served in enumerate(self._served) if served and model in served]

    async def _candidates(self, model: str) -> list[int]:
        """The backends serving ``model``; a miss re-reads the model lists once."""
        await self._rediscover()
        found = self._serving(model)
        if not found:
            await self.refresh()  # a backend may have come up since the last look
            found = self._serving(model)
        if not found:
            raise BackendFailure(f"no local backend serves {model!r}", code="model_not_served")
        return found

    async def _rediscover(self) -> None:
        """Re-read the model lists that could not be read, at most every ``rediscover_s``."""
        unread = [i for i, served in enumerate(self._served) if served is None]
        if not unread or self._clock() - self._looked_at < self._rediscover_s:
            return
        self._looked_at = self._clock()
        await asyncio.gather(*(self._read_models(i, self._load_timeout_s) for i in unread))

    async def _load(self, index: int) -> int | None:
        """Queued + running work on one backend; None when it does not say in time."""
        try:
            async with asyncio.timeout(self._load_timeout_s):
                response = await self._clients[index].get("/v1/load")
            return _parse_load(response.json()) if response.status_code == 200 else None
        except (httpx.HTTPError, TimeoutError, ValueError):
            return None

    async def _pick(self, model: str) -> int:
        """The least-loaded backend serving ``model``; ties rotate (see the module docstring)."""
        candidates = await self._candidates(model)
        if len(candidates) == 1:
            return candidates[0]
        self._turn += 1
        start = self._turn % len(candidates)
        order = candidates[start:] + candidates[:start]
        loads = await asyncio.gather(*(self._load(i) for i in order))
        answered = [(i, n) for i, n in zip(order, loads, strict=True) if n is not None]
        scored = answered or [(i, 0) for i in order]  # nobody said: go by our own submits
        return min(scored, key=lambda pair: pair[1] + self._pending[pair[0]])[0]

    def _locate(self, backend_job_id: str) -> tuple[int, str]:
        """The backend's index and its generation id; an id naming no configured backend
        (a negative index included, which Python would read from the end) is lost."""
        index, _, gen_id = backend_job_id.partition("/")
        if not (index.isascii() and index.isdigit() and int(index) < len(self._clients)):
            raise BackendJobLost(f"no local backend for job {backend_job_id!r}")
        return int(index), gen_id

    def _split(self, backend_job_id: str) -> tuple[httpx.AsyncClient, str]:
        index, gen_id = self._locate(backend_job_id)
        return self._clients[index], gen_id

    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, *, polling: bool = False, **kw: Any
    ) -> dict[str, Any]:
        try:
            response = await client.request(method, url, **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, "local backend") from exc
        if response.status_code >= 300:
            raise classify(response, polling=polling)
        try:
            body = response.json()
        except json.JSONDecodeError as exc:
            raise RetryableError(
                "local backend sent malformed JSON", code="malformed", outcome_unknown=True
            ) from exc
        if not isinstance(body, dict):
            raise RetryableError(
                "local backend sent an unexpected body", code="malformed", outcome_unknown=True
            )
        return body

    async def submit(self, request: GenerationRequest) -> Submission:
        index = await self._pick(request.model)
        payload = request.model_dump(
            exclude={"aspect_ratio", "resolution", "audio", "callback_url"}, exclude_none=True
        )
        self._pending[index] += 1
        try:
            if (backend := self._in_process[index]) is not None:
                body = await _answer(backend.create_json(payload))
            else:
                client = self._clients[index]
                body = await self._send(client, "POST", "/v1/generations", json=payload)
        finally:
            self._pending[index] -= 1
        return Submission(backend_job_id=f"{index}/{body['id']}", poll_after_s=0.0)

    async def poll(self, backend_job_id: str) -> JobStatus:
        index, gen_id = self._locate(backend_job_id)
        if (backend := self._in_process[index]) is not None:
            body = await _answer(backend.read_json(gen_id, self._long_poll_s), polling=True)
        else:
            params = {"wait": self._long_poll_s} if self._long_poll_s else None
            url = f"/v1/generations/{gen_id}"
            body = await self._send(self._clients[index], "GET", url, params=params, polling=True)
        return parse_status(body, long_poll=bool(self._long_poll_s))

    async def cancel(self, backend_job_id: str) -> None:
        index, gen_id = self._locate(backend_job_id)
        if (backend := self._in_process[index]) is not None:
            await _answer(backend.cancel_json(gen_id), polling=True)
            return
        url = f"/v1/generations/{gen_id}/cancel"
        await self._send(self._clients[index], "POST", url, polling=True)

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        index, gen_id = self._locate(backend_job_id)
        backend = self._in_process[index]
        path = backend.output(gen_id) if backend is not None else None
        if path is not None:
            try:
                f = path.open("rb")
            except FileNotFoundError:
                pass  # pruned since: the content request below says so
            else:
                with f:  # a file just written: the page cache answers
                    while chunk := f.read(_CHUNK):
                        yield chunk
                return
        async for chunk in stream_output(
            self._clients[index],
            f"/v1/generations/{gen_id}/content",
            backend="local backend",
            on_error=partial(classify, polling=True),
            follow_redirects=False,
        ):
            yield chunk

    async def generation(self, backend_job_id: str) -> dict[str, Any]:
        """The backend's raw record (timings included), for diagnostics and benchmarks."""
        client, gen_id = self._split(backend_job_id)
        return await self._send(client, "GET", f"/v1/generations/{gen_id}", polling=True)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
