"""What every HTTP adapter shares: reading Retry-After, and errors with no answer.

Vendor specifics (bodies, states, error codes) stay in each vendor's module; these
two rules are the same everywhere and must not drift between adapters.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import httpx

from adapters.base import AdapterError, RetryableError

__all__ = ["EXPIRED_LINK", "POOL_LIMITS", "retry_after", "stream_output", "transport_error"]

#: What an expired presigned output link answers.
EXPIRED_LINK = frozenset({401, 403, 404, 410})

#: A vendor client's connection pool. httpcore scans every queued request against
#: every connection on each change, so hundreds of in-flight jobs polling through one
#: unbounded pool cost more CPU than the polls themselves; a small pool of reused
#: keep-alive connections makes the rest wait their (short) turn.
POOL_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16)

_MAX_RETRY_AFTER_S = 3600.0


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
    """No answer: retry. Unless the connection never opened, the backend may have acted
    (``outcome_unknown``): the engine never resubmits a create blindly after one."""
    sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
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
