"""``client.jobs``: create, read, list, cancel, wait for and download jobs.

The request shapes and the waiting arithmetic are shared plain functions; ``Jobs``
and ``AsyncJobs`` only do the I/O, with the same method names.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ._base_client import AsyncAPIClient, SyncAPIClient, parse
from ._download import PartFile, StrPath, check_size, pick_output, target_path
from ._exceptions import WaitTimeout, connection_error
from ._progress import ProgressArg, open_progress
from ._retry import parse_retry_after
from .types import Job, JobCreate, JobStatus, Page

__all__ = ["AsyncJobs", "Jobs", "job_body"]

DEFAULT_POLL_INTERVAL = 1.0
MIN_SERVER_POLL = 0.1  # a "Retry-After: 0" must not turn wait() into a busy loop
_CHUNK = 1 << 20
_CONTENT_HEADERS = {"Accept": "video/mp4, */*"}


def _path(job: str | Job, suffix: str = "") -> str:
    job_id = job.id if isinstance(job, Job) else job
    return f"/v1/jobs/{quote(job_id, safe='')}{suffix}"


def job_body(job: JobCreate | Mapping[str, Any]) -> dict[str, Any]:
    """Validate locally, so a typo fails before any request (the wire types forbid extras)."""
    spec = job if isinstance(job, JobCreate) else JobCreate.model_validate(job)
    return spec.model_dump(mode="json", exclude_none=True)


def _created(response: httpx.Response) -> Job:
    """The new job, with the server's polling hint (its ``Retry-After``) kept for ``wait``."""
    job = parse(response, Job)
    job._poll_after = parse_retry_after(response.headers)
    return job


def _created_hint(job: Job) -> float | None:
    """How long ``wait`` sleeps before its first poll of a job ``create`` just returned:
    polling at once would only fetch the state the create answered with."""
    return None if job.terminal else job._poll_after


def _create_headers(idempotency_key: str | None) -> dict[str, str]:
    """Always send a key: it makes retrying a lost ``POST /v1/jobs`` safe, since the
    server answers a replay with the job it already made instead of billing another."""
    return {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}


def _list_params(limit: int | None, cursor: str | None, status: JobStatus | None) -> dict[str, Any]:
    return {"limit": limit, "cursor": cursor, "status": status}


class _Waiter:
    """The pure half of ``wait``: how long to sleep next, and when to give up."""

    def __init__(
        self, clock: Callable[[], float], timeout: float | None, poll_interval: float | None
    ) -> None:
        self._clock = clock
        self._timeout = timeout
        self._deadline = None if timeout is None else clock() + timeout
        self._fallback = DEFAULT_POLL_INTERVAL if poll_interval is None else poll_interval

    def next_sleep(self, job: Job, response: httpx.Response) -> float:
        """The server's Retry-After when it sent one, else poll_interval; capped by the deadline."""
        return self.delay(job, parse_retry_after(response.headers))

    def delay(self, job: Job, hint: float | None) -> float:
        """``hint`` (the server's), else poll_interval; capped by the deadline."""
        delay = self._fallback if hint is None else max(hint, MIN_SERVER_POLL)
        if self._deadline is None:
            return delay
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise WaitTimeout(
                f"job {job.id} still {job.status} after {self._timeout}s; it keeps running on "
                "the server (wait again, or cancel it)",
                job=job,
            )
        return min(delay, remaining)


class Jobs:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def create(
        self, job: JobCreate | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Job:
        """Submit a storyboard; retried safely under one Idempotency-Key (auto-made if None)."""
        body, headers = job_body(job), _create_headers(idempotency_key)
        return _created(self._client.request("POST", "/v1/jobs", json=body, headers=headers))

    def get(self, job: str | Job) -> Job:
        return parse(self._client.request("GET", _path(job)), Job)

    def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        status: JobStatus | None = None,
    ) -> Page[Job]:
        """One page, newest first; pass ``next_cursor`` back as ``cursor``, or use ``iter``."""
        params = _list_params(limit, cursor, status)
        return parse(self._client.request("GET", "/v1/jobs", params=params), Page[Job])

    def iter(
        self, *, status: JobStatus | None = None, page_size: int | None = None
    ) -> Iterator[Job]:
        """Every job, fetching pages lazily as the iteration reaches them."""
        cursor: str | None = None
        while True:
            page = self.list(limit=page_size, cursor=cursor, status=status)
            yield from page.data
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def cancel(self, job: str | Job) -> Job:
        return parse(self._client.request("POST", _path(job, "/cancel")), Job)

    def provenance(self, job: str | Job) -> dict[str, Any]:
        """``{job, shots: [manifest, ...], final: manifest | None}`` as the server stored it."""
        return parse(self._client.request("GET", _path(job, "/provenance")), dict[str, Any])

    def wait(
        self,
        job: str | Job,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        progress: ProgressArg = False,
    ) -> Job:
        """Poll until the job is terminal and return it; a failed job is returned, not raised.

        Sleeps what the server's ``Retry-After`` says between polls (else ``poll_interval``,
        1 s by default). Raises :class:`WaitTimeout`, carrying the last job, after ``timeout``.
        """
        waiter = _Waiter(self._client._clock, timeout, poll_interval)
        with open_progress(progress) as report:
            if isinstance(job, Job) and (hint := _created_hint(job)) is not None:
                report(job)
                self._client._sleep(waiter.delay(job, hint))
            while True:
                response = self._client.request("GET", _path(job))
                current = parse(response, Job)
                report(current)
                if current.terminal:
                    return current
                self._client._sleep(waiter.next_sleep(current, response))

    def download(self, job: str | Job, path: StrPath, *, shot: int | str | None = None) -> Path:
        """Stream the final cut (or ``shot``, by index or id) to ``path``; return where it went.

        A ``Job`` is used as given; pass its id to fetch the latest state first.
        """
        current = job if isinstance(job, Job) else self.get(job)
        output, default_name = pick_output(current, shot)
        target = target_path(path, default_name)
        stream = self._client.stream(output.content_url, headers=_CONTENT_HEADERS)
        with stream as response, PartFile(target) as file:
            written = 0
            try:
                for chunk in response.iter_bytes(_CHUNK):
                    written += file.write(chunk)
            except httpx.TransportError as exc:
                raise connection_error(exc, response.request) from exc
            check_size(output, written)
        return target


class AsyncJobs:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def create(
        self, job: JobCreate | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Job:
        """Submit a storyboard; retried safely under one Idempotency-Key (auto-made if None)."""
        body, headers = job_body(job), _create_headers(idempotency_key)
        return _created(await self._client.request("POST", "/v1/jobs", json=body, headers=headers))

    async def get(self, job: str | Job) -> Job:
        return parse(await self._client.request("GET", _path(job)), Job)

    async def list(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        status: JobStatus | None = None,
    ) -> Page[Job]:
        """One page, newest first; pass ``next_cursor`` back as ``cursor``, or use ``iter``."""
        params = _list_params(limit, cursor, status)
        return parse(await self._client.request("GET", "/v1/jobs", params=params), Page[Job])

    async def iter(
        self, *, status: JobStatus | None = None, page_size: int | None = None
    ) -> AsyncIterator[Job]:
        """Every job, fetching pages lazily as the iteration reaches them."""
        cursor: str | None = None
        while True:
            page = await self.list(limit=page_size, cursor=cursor, status=status)
            for job in page.data:
                yield job
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def cancel(self, job: str | Job) -> Job:
        return parse(await self._client.request("POST", _path(job, "/cancel")), Job)

    async def provenance(self, job: str | Job) -> dict[str, Any]:
        """``{job, shots: [manifest, ...], final: manifest | None}`` as the server stored it."""
        return parse(await self._client.request("GET", _path(job, "/provenance")), dict[str, Any])

    async def wait(
        self,
        job: str | Job,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        progress: ProgressArg = False,
    ) -> Job:
        """Poll until the job is terminal and return it; a failed job is returned, not raised.

        As :meth:`Jobs.wait`; a ``progress`` callable may also be a coroutine function.
        """
        waiter = _Waiter(self._client._clock, timeout, poll_interval)
        with open_progress(progress) as report:
            if isinstance(job, Job) and (hint := _created_hint(job)) is not None:
                if inspect.isawaitable(result := report(job)):
                    await result
                await self._client._sleep(waiter.delay(job, hint))
            while True:
                response = await self._client.request("GET", _path(job))
                current = parse(response, Job)
                if inspect.isawaitable(result := report(current)):
                    await result
                if current.terminal:
                    return current
                await self._client._sleep(waiter.next_sleep(current, response))

    async def download(
        self, job: str | Job, path: StrPath, *, shot: int | str | None = None
    ) -> Path:
        """Stream the final cut (or ``shot``, by index or id) to ``path``; return where it went."""
        current = job if isinstance(job, Job) else await self.get(job)
        output, default_name = pick_output(current, shot)
        target = target_path(path, default_name)
        async with self._client.stream(output.content_url, headers=_CONTENT_HEADERS) as response:
            with PartFile(target) as file:
                written = 0
                try:
                    async for chunk in response.aiter_bytes(_CHUNK):
                        written += file.write(chunk)
                except httpx.TransportError as exc:
                    raise connection_error(exc, response.request) from exc
                check_size(output, written)
        return target
