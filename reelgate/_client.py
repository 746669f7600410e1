"""``Client`` and ``AsyncClient``: the entry points, and the small ``models`` resource.

with reelgate.Client() as client:          # REELGATE_BASE_URL, REELGATE_API_KEY
    job = client.jobs.create({"shots": [{"prompt": "a red kite over dunes"}]})
    job = client.jobs.wait(job, progress=True)
    client.jobs.download(job, "kite.mp4")
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from functools import cached_property
from types import TracebackType
from typing import Any, Self

from ._base_client import AsyncAPIClient, SyncAPIClient, parse
from ._jobs import AsyncJobs, Jobs, job_body
from .types import JobCreate, Model, Quote

__all__ = ["AsyncClient", "AsyncModels", "Client", "Models"]


class Models:
    def __init__(self, client: SyncAPIClient) -> None:
        self._client = client

    def list(self) -> builtins.list[Model]:
        """Every catalog model with capabilities, prices and whether it is configured."""
        return parse(self._client.request("GET", "/v1/models"), builtins.list[Model])


class AsyncModels:
    def __init__(self, client: AsyncAPIClient) -> None:
        self._client = client

    async def list(self) -> builtins.list[Model]:
        """Every catalog model with capabilities, prices and whether it is configured."""
        return parse(await self._client.request("GET", "/v1/models"), builtins.list[Model])


class Client(SyncAPIClient):
    """The synchronous reelgate client; see :class:`SyncAPIClient` for the arguments."""

    @cached_property
    def jobs(self) -> Jobs:
        return Jobs(self)

    @cached_property
    def models(self) -> Models:
        return Models(self)

    def quote(self, job: JobCreate | Mapping[str, Any]) -> Quote:
        """The whole plan (prompts, lint, parameters, route, cost) without running anything."""
        response = self.request("POST", "/v1/quote", json=job_body(job), retryable=True)
        return parse(response, Quote)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(AsyncAPIClient):
    """The asyncio twin of :class:`Client`: same arguments, same methods, awaited."""

    @cached_property
    def jobs(self) -> AsyncJobs:
        return AsyncJobs(self)

    @cached_property
    def models(self) -> AsyncModels:
        return AsyncModels(self)

    async def quote(self, job: JobCreate | Mapping[str, Any]) -> Quote:
        """The whole plan (prompts, lint, parameters, route, cost) without running anything."""
        response = await self.request("POST", "/v1/quote", json=job_body(job), retryable=True)
        return parse(response, Quote)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
