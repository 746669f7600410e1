"""Warm pipelines: each loaded once, the least recently used dropped past a budget.

Loading a video model takes seconds to minutes; running one shot on a warm
pipeline does not pay that again. The budget counts weight bytes (what a model
holds for as long as it is warm); a model bigger than the whole budget is still
loaded, alone, so a small budget means "one model at a time", never "none".
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["WarmPool", "free_memory"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def free_memory() -> None:
    """Collect cycles and, when torch is in use with CUDA, return its cached blocks."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class _Warm:
    value: Any
    nbytes: int


class WarmPool:
    """Loaded models by key, in least-recently-used order.

    ``get`` runs on the device thread (one per process); ``stats`` may be read
    from any thread. ``release`` runs after an eviction (e.g. emptying a CUDA cache).
    """

    def __init__(
        self, budget_bytes: int | None = None, release: Callable[[], None] = free_memory
    ) -> None:
        self.budget_bytes = budget_bytes
        self.release = release
        self.loads: Counter[str] = Counter()
        self.evictions: Counter[str] = Counter()
        self._warm: OrderedDict[str, _Warm] = OrderedDict()
        self._requests: weakref.WeakSet[Any] = weakref.WeakSet()
        self._spares: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(
        self,
        key: str,
        load: Callable[[], T],
        nbytes: Callable[[T], int],
        estimate: Callable[[], int] = lambda: 0,
    ) -> T:
        """The warm value for ``key``. On a miss, others are evicted to make room for
        ``estimate()`` bytes *before* ``load`` runs, so the peak stays in budget."""
        with self._lock:
            hit = self._warm.get(key)
            if hit is not None:
                self._warm.move_to_end(key)
                return hit.value  # type: ignore[no-any-return]
        incoming = estimate()
        with self._lock:
            evicted = self._evict(keep=key, incoming=incoming)
        if evicted:
            self.release()
        value = load()
        size = nbytes(value)
        with self._lock:
            self.loads[key] += 1
            self._warm[key] = _Warm(value, size)
            late = self._evict(keep=key)
        if late:
            self.release()
        log.info("loaded %s (%.1f MB of weights); evicted %s", key, size / 1e6, evicted + late)
        return value

    def put_spare(self, key: str, spare: object) -> None:
        """Keep one ready-made per-request object for ``key`` (built while the device
        was idle); it goes when ``key`` is evicted, so it never pins evicted weights."""
        with self._lock:
            if key in self._warm:
                self._spares[key] = spare

    def peek(self, key: str) -> Any | None:
        """The warm value for ``key`` if loaded, without loading or reordering."""
        with self._lock:
            hit = self._warm.get(key)
            return None if hit is None else hit.value

    def has_spare(self, key: str) -> bool:
        with self._lock:
            return key in self._spares

    def take_spare(self, key: str) -> Any | None:
        """The spare for ``key``, if any; taking it is a use of ``key`` (LRU order)."""
        with self._lock:
            spare = self._spares.pop(key, None)
            if spare is not None:
                self._warm.move_to_end(key)
            return spare

    def track(self, request: object) -> None:
        """Count a per-request object as alive until it is garbage."""
        with self._lock:
            self._requests.add(request)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "warm": list(self._warm),
                "warm_bytes": sum(w.nbytes for w in self._warm.values()),
                "budget_bytes": self.budget_bytes,
                "loads": dict(self.loads),
                "evictions": dict(self.evictions),
                "active_requests": len(self._requests),
            }

    def _evict(self, keep: str, incoming: int = 0) -> list[str]:
        """Drop least recently used models (never ``keep``) until the budget holds."""
        evicted: list[str] = []
        if self.budget_bytes is None:
            return evicted
        while sum(w.nbytes for w in self._warm.values()) + incoming > self.budget_bytes:
            oldest = next((k for k in self._warm if k != keep), None)
            if oldest is None:
                break
            del self._warm[oldest]
            self._spares.pop(oldest, None)
            self.evictions[oldest] += 1
            evicted.append(oldest)
        return evicted
