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

    async def sleep_or_wake(self, wake: asyncio.Event, seconds: float) -> None:
        """Return after ``seconds`` or as soon as ``wake`` is set, whichever comes first;
        ``wake`` may be left set (the caller clears it)."""
        waits = [asyncio.ensure_future(self.sleep(seconds)), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()


class SystemClock(Clock):
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def sleep_or_wake(self, wake: asyncio.Event, seconds: float) -> None:
        """One timer that sets ``wake``: no task per wait. Every running shot waits here
        between polls; two tasks, a sleep and ``asyncio.wait`` cost ~20 µs of CPU per
        wait under uvloop, this ~4 µs."""
        timer = asyncio.get_running_loop().call_later(seconds, wake.set)
        try:
            await wake.wait()
        finally:
            timer.cancel()


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
