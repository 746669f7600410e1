"""The runtime container: every long-lived part of one gateway process, built once.

Routes reach it through ``request.app.state.runtime``; nothing here is global.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.catalog import Catalog, to_wire
from gateway.db import Database
from gateway.engine.executor import EmbeddedExecutor
from gateway.planning import PlanningError, RoutingTable, plan_for_candidate, plan_job
from gateway.planning import shot_request as planning_shot_request
from gateway.registry import AdapterRegistry
from gateway.services.auth import Authenticator
from gateway.services.billing import BillingService
from gateway.services.callbacks import CallbackService
from gateway.services.content import ContentService
from gateway.services.errors import ServiceError
from gateway.services.jobs import JobService
from gateway.services.ratelimit import RateLimiter
from gateway.services.tenants import TenantService
from gateway.settings import Settings
from gateway.storage import ObjectStore
from reelgate import types as t

__all__ = ["Planner", "Runtime"]


class Planner:
    """Quotes storyboards and refits a shot to a fallback model."""

    def __init__(self, catalog: Catalog, routing: RoutingTable, registry: AdapterRegistry) -> None:
        self.catalog = catalog
        self.routing = routing
        self.registry = registry

    def __call__(self, body: t.JobCreate, markup_bps: int = 0) -> t.Quote:
        """The plan, priced for a tenant with ``markup_bps`` (+2000: +20%)."""
        try:
            return plan_job(
                body,
                catalog=self.catalog,
                routing=self.routing,
                backend_status=self.registry.backend_status,
                markup_bps=markup_bps,
            )
        except PlanningError as e:
            raise ServiceError(422, e.code, e.detail, errors=e.errors) from e

    def replan(self, body: t.JobCreate, index: int, model_id: str) -> t.ShotPlan:
        """The shot planned for ``model_id``, a fallback on its route."""
        entry = self.catalog[model_id]
        cand = plan_for_candidate(planning_shot_request(body, index), entry)
        return t.ShotPlan(
            index=index,
            kind=body.shots[index].kind,
            model=entry.id,
            route=[],
            prompt_sent=cand.prompt.text,
            negative_sent=cand.prompt.negative,
            lint=cand.lint,
            params=cand.params,
            adjustments=cand.adjustments,
            estimate_usd=cand.estimate_usd,
        )

    def backend_of(self, model_id: str) -> tuple[str, str]:
        entry = self.catalog[model_id]
        return entry.adapter, entry.vendor_model

    def models(self) -> list[t.Model]:
        out = []
        for entry in self.catalog:
            reason = self.registry.backend_status(entry)
            out.append(to_wire(entry, configured=reason is None, reason=reason))
        return out


@dataclass
class Runtime:
    settings: Settings
    db: Database
    auth: Authenticator
    store: ObjectStore
    planner: Planner
    jobs: JobService
    content: ContentService
    tenants: TenantService
    billing: BillingService
    callbacks: CallbackService
    registry: AdapterRegistry
    executor: EmbeddedExecutor | None
    bootstrap_key: str | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Requests per minute, per key and tenant, in this process.
    limiter: RateLimiter = field(default_factory=RateLimiter)

    def plan(self, body: t.JobCreate, markup_bps: int = 0) -> t.Quote:
        return self.planner(body, markup_bps)

    def models(self) -> list[t.Model]:
        return self.planner.models()

    def redirect_ttl_s(self) -> int | None:
        """Lifetime of the signed URLs content endpoints redirect to; None: they stream."""
        return self.settings.storage_url_ttl_s if self.settings.storage_redirect else None

    async def aclose(self) -> None:
        if self.executor is not None:
            await self.executor.stop()
        await self.registry.aclose()
        for close in reversed(self.closers):
            await close()
        self.db.dispose()
