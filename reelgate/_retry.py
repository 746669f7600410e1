"""The retry policy: which answers are worth another try, and how long to wait first.

The server's ``Retry-After`` wins over our own backoff; it is also ``jobs.wait``'s
polling hint, so both read it through :func:`parse_retry_after`.
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

DEFAULT_MAX_RETRIES = 2
_RETRYABLE_STATUSES = frozenset({408, 429})


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), or None when absent or bad."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait: the server's Retry-After, else jittered backoff."""

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def next_delay(
        self, attempt: int, retryable: bool, response: httpx.Response | None = None
    ) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up."""
        if not retryable or attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in _RETRYABLE_STATUSES and response.status_code < 500:
                return None
            hint = parse_retry_after(response.headers)
            if hint is not None:
                return min(hint, self.max_retry_after)
        backoff = min(self.base_delay * 2.0**attempt, self.max_delay)
        return backoff * (1 - 0.25 * random.random())
