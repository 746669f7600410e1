"""The HTTP core shared by ``Client`` and ``AsyncClient``.

Everything that is not I/O lives in :class:`_BaseClient` and plain functions
(configuration, URLs, request building, the retry policy, response parsing), so the
sync and async twins differ only in their ``send`` loop. The httpx client is the
single test seam: pass ``httpx.Client(transport=httpx.MockTransport(...))``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from functools import cache
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from ._exceptions import (
    APIResponseValidationError,
    ReelgateError,
    connection_error,
    status_error,
)
from ._retry import DEFAULT_MAX_RETRIES, RetryPolicy
from ._version import __version__

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def parse(response: httpx.Response, tp: type[T]) -> T:
    """Validate a 2xx JSON body against a wire type; skew becomes an SDK error, not pydantic's."""
    try:
        key: Any = tp  # a type or generic alias: hashable, though mypy can't see it
        result: T = _adapter(key).validate_json(response.content)
    except ValidationError as exc:
        raise APIResponseValidationError(
            f"{response.request.method} {response.request.url}: unexpected response body: {exc}",
            response=response,
        ) from exc
    return result


class _BaseClient:
    """Configuration and request building; no I/O."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float | httpx.Timeout,
        max_retries: int,
        default_headers: Mapping[str, str] | None,
    ) -> None:
        api_key = api_key or os.environ.get("REELGATE_API_KEY")
        if not api_key:
            raise ReelgateError(
                "no API key: pass Client(api_key=...) or set the REELGATE_API_KEY environment "
                "variable"
            )
        base_url = base_url or os.environ.get("REELGATE_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = httpx.URL(base_url.rstrip("/"))
        self.api_key = api_key
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_retries = max_retries
        self._retry = RetryPolicy(max_retries=max_retries)
        self._headers = {
            "Accept": "application/json",
            "User-Agent": f"reelgate-python/{__version__}",
            **(default_headers or {}),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self.base_url)!r})"

    def _url(self, path_or_url: str) -> httpx.URL:
        """API paths and server-relative content URLs hang off ``base_url``; absolute ones don't."""
        if path_or_url.startswith(("http://", "https://")):
            return httpx.URL(path_or_url)
        return httpx.URL(str(self.base_url) + "/" + path_or_url.lstrip("/"))

    def _build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        url = self._url(path)
        all_headers = {**self._headers, **(headers or {})}
        if url.scheme == self.base_url.scheme and url.netloc == self.base_url.netloc:
            all_headers["Authorization"] = f"Bearer {self.api_key}"  # never to foreign hosts
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return http.build_request(
            method, url, json=json, params=query, headers=all_headers, timeout=self.timeout
        )

    @staticmethod
    def _retryable(request: httpx.Request) -> bool:
        """GETs are safe to repeat; a POST only when it carries an Idempotency-Key."""
        return request.method in ("GET", "HEAD") or "idempotency-key" in request.headers


class SyncAPIClient(_BaseClient):
    """Arguments fall back to ``REELGATE_BASE_URL`` / ``REELGATE_API_KEY``; no key raises.

    ``http_client`` is the seam for tests and embedding (``MockTransport``,
    ``ASGITransport``); one passed in is not closed by :meth:`close`. ``sleep`` and
    ``clock`` drive retries and ``jobs.wait``, so tests never really sleep.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client()
        self._sleep = sleep
        self._clock = clock

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise the translated error."""
        request = self._build(self._http, method, path, json=json, params=params, headers=headers)
        return self.send(request, retryable=retryable)

    def send(
        self, request: httpx.Request, *, retryable: bool | None = None, stream: bool = False
    ) -> httpx.Response:
        retryable = self._retryable(request) if retryable is None else retryable
        attempt = 0
        while True:
            try:
                response = self._http.send(request, stream=stream, follow_redirects=stream)
            except httpx.TransportError as exc:
                delay = self._retry.next_delay(attempt, retryable)
                if delay is None:
                    raise connection_error(exc, request) from exc
            else:
                if response.is_success:
                    return response
                delay = self._retry.next_delay(attempt, retryable, response)
                response.read()
                response.close()
                if delay is None:
                    raise status_error(response)
            self._sleep(delay)
            attempt += 1

    @contextmanager
    def stream(
        self, path: str, *, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """GET with retries, following redirects, leaving the body unread for ``iter_bytes``."""
        request = self._build(self._http, "GET", path, headers=headers)
        response = self.send(request, stream=True)
        try:
            yield response
        finally:
            response.close()

    def close(self) -> None:
        """Close the underlying httpx client, unless it was passed in (then it's yours)."""
        if self._owns_http:
            self._http.close()


class AsyncAPIClient(_BaseClient):
    """As :class:`SyncAPIClient`, with an ``httpx.AsyncClient`` and an async ``sleep``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            base_url,
            api_key,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self._sleep = sleep
        self._clock = clock

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
    ) -> httpx.Response:
        """Send with retries; return a 2xx response or raise the translated error."""
        request = self._build(self._http, method, path, json=json, params=params, headers=headers)
        return await self.send(request, retryable=retryable)

    async def send(
        self, request: httpx.Request, *, retryable: bool | None = None, stream: bool = False
    ) -> httpx.Response:
        retryable = self._retryable(request) if retryable is None else retryable
        attempt = 0
        while True:
            try:
                response = await self._http.send(request, stream=stream, follow_redirects=stream)
            except httpx.TransportError as exc:
                delay = self._retry.next_delay(attempt, retryable)
                if delay is None:
                    raise connection_error(exc, request) from exc
            else:
                if response.is_success:
                    return response
                delay = self._retry.next_delay(attempt, retryable, response)
                await response.aread()
                await response.aclose()
                if delay is None:
                    raise status_error(response)
            await self._sleep(delay)
            attempt += 1

    @asynccontextmanager
    async def stream(
        self, path: str, *, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """GET with retries, following redirects, leaving the body unread for ``aiter_bytes``."""
        request = self._build(self._http, "GET", path, headers=headers)
        response = await self.send(request, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def close(self) -> None:
        """Close the underlying httpx client, unless it was passed in (then it's yours)."""
        if self._owns_http:
            await self._http.aclose()
