"""What every HTTP adapter shares: reading Retry-After, errors with no answer, the pool.

Vendor specifics (bodies, states, error codes) stay in each vendor's module; these
rules are the same everywhere and must not drift between adapters.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import httpx

from adapters._wire import WireLane, wire_available
from adapters.base import AdapterError, BackendFailure, BackendJobLost, JobStatus, RetryableError

__all__ = [
    "EXPIRED_LINK",
    "POOL_LIMITS",
    "VendorTransport",
    "retry_after",
    "stream_finished_output",
    "stream_output",
    "transport_error",
    "vendor_client",
]

#: What an expired presigned output link answers.
EXPIRED_LINK = frozenset({401, 403, 404, 410})

#: A vendor client's connection pool. httpcore scans every queued request against
#: every connection on each change, so hundreds of in-flight jobs polling through one
#: unbounded pool cost more CPU than the polls themselves; a small pool of reused
#: keep-alive connections makes the rest wait their (short) turn.
POOL_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)

_MAX_RETRY_AFTER_S = 3600.0


def vendor_client(base_url: str, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """A vendor's HTTP client: its base URL and timeouts over a :class:`VendorTransport`."""
    return httpx.AsyncClient(transport=VendorTransport(), base_url=base_url, timeout=timeout)


class VendorTransport(httpx.AsyncBaseTransport):
    """The vendor clients' keep-alive pool (:data:`POOL_LIMITS`), as lanes.

    httpcore's pool rescans every connection (and every queued request) whenever a
    request comes or goes, so thousands of jobs polling through one 16-connection pool
    spent more CPU in that scan than in their polls. Here each lane is one connection
    (``adapters._wire.WireLane``: asyncio and httptools, without httpcore's anyio layers):
    a request takes a free lane (the one that last spoke to its host, if any) or waits
    its turn in arrival order, and gives the lane back when its response is closed. The
    pool timeout bounds the wait.
    """

    def __init__(
        self,
        limits: httpx.Limits = POOL_LIMITS,
        *,
        lane: Callable[[httpx.Limits], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        """``lane`` makes one lane's transport from its limits (tests: a MockTransport)."""
        one = httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=limits.keepalive_expiry
        )
        make = lane or _default_lane
        self._lanes = [_Lane(make(one)) for _ in range(limits.max_connections or 100)]
        self._free = list(self._lanes)
        self._waiting: collections.deque[asyncio.Future[_Lane]] = collections.deque()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lane = self._take(request.url.netloc) or await self._wait(request)
        lane.host = request.url.netloc
        try:
            response = await lane.transport.handle_async_request(request)
        except BaseException:
            self._give(lane)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _LaneStream(response.stream, lambda: self._give(lane))
        return response

    def _take(self, host: bytes) -> _Lane | None:
        free = self._free
        for i in range(len(free) - 1, -1, -1):
            if free[i].host == host:
                return free.pop(i)
        return free.pop() if free else None

    async def _wait(self, request: httpx.Request) -> _Lane:
        turn: asyncio.Future[_Lane] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        wait = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(wait):
                return await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():  # handed a lane just too late
                self._give(turn.result())
            else:
                turn.cancel()
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout(f"no vendor connection free within {wait} s") from None
            raise

    def _give(self, lane: _Lane) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(lane)
                return
        self._free.append(lane)

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.transport.aclose()


def _default_lane(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if wire_available():
        return WireLane(keepalive_expiry=limits.keepalive_expiry)
    return httpx.AsyncHTTPTransport(limits=limits)


class _Lane:
    __slots__ = ("host", "transport")

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport
        self.host = b""


class _LaneStream(httpx.AsyncByteStream):
    """A response body that gives its lane back when closed (once)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            await self._stream.aclose()
        finally:
            if release is not None:
                release()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or an HTTP date)."""
    ms = response.headers.get("retry-after-ms")
    if ms is not None:
        try:
            return min(max(float(ms) / 1000, 0.0), _MAX_RETRY_AFTER_S)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def transport_error(exc: httpx.TransportError, backend: str) -> RetryableError:
    """No answer: retry. Unless the request never left (no connection opened, or none
    free in the pool), the backend may have acted (``outcome_unknown``): the engine
    never resubmits a create blindly after one."""
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, httpx.TimeoutException):
        message, code = f"{backend} timed out: {exc}", "timeout"
    else:
        message, code = f"{backend} unreachable: {exc}", "unreachable"
    return RetryableError(message, code=code, outcome_unknown=sent)


async def stream_output(
    client: httpx.AsyncClient,
    url: str,
    *,
    backend: str,
    on_error: Callable[[httpx.Response], AdapterError],
    refresh: Callable[[], Awaitable[str]] | None = None,
    headers: Mapping[str, str] | None = None,
    follow_redirects: bool = True,
) -> AsyncIterator[bytes]:
    """Stream a finished output's bytes; a refusal is read and raised as ``on_error(response)``.

    With ``refresh``, a link refused as expired (:data:`EXPIRED_LINK`) is swapped once for
    a fresh one from the vendor; a fresh link refused again is ``on_error``'s to classify.
    """
    while True:
        try:
            async with client.stream(
                "GET", url, headers=headers, follow_redirects=follow_redirects
            ) as response:
                if response.status_code < 300:
                    async for chunk in response.aiter_bytes():
                        yield chunk
                    return
                await response.aread()
                if refresh is None or response.status_code not in EXPIRED_LINK:
                    raise on_error(response)
        except httpx.TransportError as exc:
            raise transport_error(exc, backend) from exc
        url, refresh = await refresh(), None


async def stream_finished_output(
    client: httpx.AsyncClient,
    status: JobStatus,
    *,
    backend: str,
    poll: Callable[[], Awaitable[JobStatus]],
    classify_download: Callable[[httpx.Response], AdapterError],
) -> AsyncIterator[bytes]:
    """Stream a finished job's output from its short-lived link (Runway, Luma).

    A link past its expiry is swapped once for a fresh one from ``poll``; a status that
    carries no link is polled for one first (then without a second refresh). A link
    refused again after a refresh means the file is gone (``output_gone``); any other
    refusal is ``classify_download``'s.
    """

    async def fresh_url() -> str:
        now = await poll()
        if now.state != "succeeded" or now.output_url is None:
            raise BackendFailure(
                f"{backend} job is {now.raw_state}, no output to fetch", code="no_output"
            )
        return now.output_url

    def on_error(response: httpx.Response) -> AdapterError:
        if response.status_code in EXPIRED_LINK:
            return BackendJobLost(
                f"{backend}'s output URL answered HTTP {response.status_code} after a refresh",
                code="output_gone",
            )
        return classify_download(response)

    if status.output_url is None:
        url, refresh = await fresh_url(), None
    else:
        url, refresh = status.output_url, fresh_url
    async for chunk in stream_output(
        client, url, backend=backend, on_error=on_error, refresh=refresh
    ):
        yield chunk
