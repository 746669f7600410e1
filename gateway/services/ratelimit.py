"""Requests per minute, per key and per tenant: token buckets in this process.

Each limited key and tenant has a bucket of ``rpm`` tokens refilled at ``rpm / 60`` per
second; an authenticated request takes one token from its key's bucket and one from
its tenant's, or neither when either is empty (then it waits ``Retry-After`` seconds).
In memory on purpose: a database-backed window would put a write on every request,
polls included. So the limit holds per process: with N workers (``reelgate serve
--workers N``) a key may reach N times its ``requests_per_minute``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.services.auth import Principal

__all__ = ["RateLimiter", "Throttled"]


@dataclass
class _Bucket:
    rpm: int
    tokens: float
    at: float

    def wait(self, now: float) -> float:
        """Seconds until a token is here (0: one is), after refilling to ``now``."""
        self.tokens = min(self.rpm, self.tokens + (now - self.at) * self.rpm / 60)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * 60 / self.rpm


@dataclass(frozen=True)
class Throttled:
    scope: str  # "tenant" or "key"
    rpm: int
    retry_after_s: float


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, name: str, rpm: int, now: float) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.rpm != rpm:  # new, or its limit changed: start full
            bucket = self._buckets[name] = _Bucket(rpm, float(rpm), now)
        return bucket

    def check(self, principal: Principal) -> Throttled | None:
        """Take a token for this request; None: go ahead."""
        limits = [
            ("key", f"key:{principal.key_id}", principal.key_rpm),
            ("tenant", f"tenant:{principal.tenant_id}", principal.tenant_rpm),
        ]
        limited = [(scope, name, rpm) for scope, name, rpm in limits if rpm is not None]
        if not limited:
            return None
        with self._lock:
            now = self._clock()
            buckets = [(scope, self._bucket(name, rpm, now)) for scope, name, rpm in limited]
            waits = [(bucket.wait(now), scope, bucket.rpm) for scope, bucket in buckets]
            longest = max(waits)
            if longest[0] > 0:
                return Throttled(longest[1], longest[2], longest[0])
            for _, bucket in buckets:
                bucket.tokens -= 1
        return None
