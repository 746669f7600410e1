"""Retry timing and the clock, as small injectable objects so tests never wait."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Backoff", "Clock", "SystemClock"]

Sleep = Callable[[float], Awaitable[None]]


class Clock:
    """Wall time and sleep, swapped out in tests."""

    def now(self) -> float:
        raise NotImplementedError

    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError


class SystemClock(Clock):
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, never shorter than the backend's Retry-After."""

    base_s: float = 0.5
    cap_s: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, retries: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(0, retries - 1))
        jittered = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        return max(jittered, retry_after or 0.0)
