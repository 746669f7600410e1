"""The configured backends, by adapter name, and why a model's backend is unavailable."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from adapters.base import Adapter, BackendFailure
from gateway.catalog import CatalogEntry

__all__ = ["AdapterRegistry"]


class AdapterRegistry:
    def __init__(self, adapters: Mapping[str, Adapter]) -> None:
        self._adapters = dict(adapters)

    def get(self, name: str) -> Adapter:
        try:
            return self._adapters[name]
        except KeyError:
            raise BackendFailure(
                f"backend {name!r} is not configured in this gateway", code="not_configured"
            ) from None

    def backend_status(self, entry: CatalogEntry) -> str | None:
        """None when ``entry`` can run here, else the reason it cannot."""
        adapter = self._adapters.get(entry.adapter)
        if adapter is None:
            env = f"REELGATE_{entry.adapter.upper()}_API_KEY"
            if entry.adapter == "local":
                env = "REELGATE_LOCAL_BACKEND_URLS"
            return f"backend {entry.adapter!r} not configured (set {env})"
        served = adapter.configured_models()
        if served is not None and entry.vendor_model not in served:
            reason = f"no configured {entry.adapter!r} backend serves {entry.vendor_model!r}"
            if entry.adapter == "local":
                reason += (
                    " (list it in a models config: REELGATE_LOCAL_MODELS for the in-process "
                    "backend, `reelgate local-backend --models` for a service; "
                    "`reelgate local-backend make-tiny DIR` writes one for the tiny models)"
                )
            return reason
        return None

    async def aclose(self) -> None:
        await asyncio.gather(*(a.aclose() for a in self._adapters.values()))
