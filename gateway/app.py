"""The composition root: ``create_app(settings)`` builds one gateway process.

Everything long-lived (database, store, catalog, adapters, executor) is built in
the app's lifespan, never at import time. With no ``REELGATE_LOCAL_BACKEND_URLS``
the local backend runs in this process: the adapter calls its operations directly
(:func:`in_process_backend`) and reads its model list over its HTTP API on an
in-memory ASGI transport. With the CLI, this is the only place that imports
``local_backend``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI

from adapters.base import Adapter
from adapters.local import InProcessBackend, LocalBackendAdapter, LocalProblem
from gateway.api.problems import install_problem_handlers
from gateway.api.routes import admin, billing, callbacks, catalog, health, jobs, shots
from gateway.c2pa import C2paSigner
from gateway.catalog import load_catalog
from gateway.db import Database
from gateway.engine.executor import EmbeddedExecutor
from gateway.engine.jobs import JobFinisher
from gateway.engine.lock import ExecutorLock
from gateway.engine.outputs import OutputWriter
from gateway.engine.policy import Clock, SystemClock
from gateway.engine.shots import EngineConfig, ShotEngine
from gateway.planning import load_routing
from gateway.provenance import ModelRef, gateway_version
from gateway.registry import AdapterRegistry
from gateway.runtime import Planner, Runtime
from gateway.services.auth import Authenticator, bootstrap, load_or_create_secret
from gateway.services.billing import BillingService
from gateway.services.callbacks import CallbackService
from gateway.services.content import ContentService
from gateway.services.fal_webhooks import FalWebhooks
from gateway.services.jobs import JobService
from gateway.services.replicate_webhooks import ReplicateWebhooks
from gateway.services.tenants import TenantService
from gateway.settings import ConfigError, Settings
from gateway.storage import open_store

if TYPE_CHECKING:
    from local_backend.config import BackendConfig
    from local_backend.service import LocalService

__all__ = ["build_runtime", "create_app", "embedded_local_adapter", "in_process_backend"]

log = logging.getLogger("reelgate")


class _Embedded:
    """The in-process local backend's service as the adapter calls it
    (:class:`adapters.local.InProcessBackend`): its refusals become ``LocalProblem``."""

    def __init__(self, service: LocalService) -> None:
        from local_backend.service import Problem

        self._service, self._refusal = service, Problem

    async def _call(self, call: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        try:
            return await call
        except self._refusal as exc:
            raise LocalProblem(exc.status, exc.body()) from None

    async def create_json(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._call(self._service.create_json(payload))

    async def read_json(self, gen_id: str, wait: float = 0) -> dict[str, Any]:
        return await self._call(self._service.read_json(gen_id, wait))

    async def cancel_json(self, gen_id: str) -> dict[str, Any]:
        return await self._call(self._service.cancel_json(gen_id))

    def output(self, gen_id: str) -> Path | None:
        return self._service.output(gen_id)


def in_process_backend(backend: FastAPI) -> InProcessBackend:
    """How the local adapter calls a backend app built in this process: directly, with
    its refusals as the same problems its HTTP API sends."""
    return _Embedded(backend.state.service)


def embedded_local_adapter(backend: FastAPI) -> LocalBackendAdapter:
    """The adapter for a backend app built in this process: generations called directly,
    model lists and loads over its API on an in-memory ASGI transport."""
    transport = httpx.ASGITransport(app=backend)
    client = httpx.AsyncClient(transport=transport, base_url="http://local-backend")
    return LocalBackendAdapter([client], in_process=[in_process_backend(backend)])


async def _local_adapter(settings: Settings, runtime_closers: list[Any]) -> Adapter:
    if settings.local_backend_urls:
        clients = [
            httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, connect=5))
            for url in settings.local_backend_urls
        ]
        adapter = LocalBackendAdapter(clients)
    else:
        from local_backend.app import create_app as create_backend
        from local_backend.config import BackendConfig

        # Outputs wait in a temp dir only until the gateway fetches them into the store.
        config = _local_models(settings.local_models) if settings.local_models else None
        try:
            backend = create_backend(config or BackendConfig())
        except RuntimeError as exc:  # diffusers models listed, torch not installed
            raise ConfigError(f"REELGATE_LOCAL_MODELS={settings.local_models}: {exc}") from None
        adapter = embedded_local_adapter(backend)

        async def _close_backend() -> None:
            close = getattr(backend.state, "close", None)
            if close is not None:
                close()

        runtime_closers.append(_close_backend)
    await adapter.refresh()
    return adapter


#: Vendor name -> the adapter class in ``adapters.<name>``.
_ADAPTER_CLASSES = {
    "google": "GoogleAdapter",
    "runway": "RunwayAdapter",
    "luma": "LumaAdapter",
    "kling": "KlingAdapter",
    "fal": "FalAdapter",
    "replicate": "ReplicateAdapter",
    "minimax": "MiniMaxAdapter",
    "seedance": "SeedanceAdapter",
}


def _vendor_adapters(settings: Settings) -> dict[str, Adapter]:
    """An adapter for every vendor with a key; the rest stay "not configured"."""
    import importlib

    adapters: dict[str, Adapter] = {}
    for name, (key, base_url) in settings.vendor_keys().items():
        cls = getattr(importlib.import_module(f"adapters.{name}"), _ADAPTER_CLASSES[name])
        kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
        if name == "luma":
            kwargs["api"] = settings.luma_api
        if name == "fal":
            kwargs["pricing_url"] = settings.fal_pricing_url or None
        if name == "kling":
            kwargs["unit_price_usd"] = settings.kling_unit_price_usd
        if name == "seedance":
            kwargs["token_prices_usd"] = settings.seedance_token_prices_usd
        adapters[name] = cls(key, **kwargs)
    return adapters


def _fal_webhooks(settings: Settings, closers: list[Any]) -> FalWebhooks | None:
    """fal's callback verifier; its key set is fetched on the first fal callback."""
    if not settings.fal_jwks_url:
        return None
    client = httpx.AsyncClient(timeout=httpx.Timeout(10, connect=5))
    closers.append(client.aclose)
    return FalWebhooks(settings.fal_jwks_url, client)


def _replicate_webhooks(settings: Settings, closers: list[Any]) -> ReplicateWebhooks | None:
    """Replicate's callback verifier when Replicate is configured and no secret is: the
    account's signing secret is fetched from Replicate's API on the first callback."""
    configured = settings.vendor_keys().get("replicate")
    if configured is None or "replicate" in settings.webhook_secrets():
        return None  # a configured secret wins (CallbackService checks it)
    from adapters.replicate import DEFAULT_BASE_URL

    key, base_url = configured
    url = f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/webhooks/default/secret"
    client = httpx.AsyncClient(timeout=httpx.Timeout(10, connect=5))
    closers.append(client.aclose)
    return ReplicateWebhooks(url, key, client)


def _local_models(path: Path) -> BackendConfig:
    from local_backend.config import load_config

    try:
        return load_config(path)
    except (OSError, ValueError) as exc:  # TOML and validation errors are ValueErrors
        raise ConfigError(f"REELGATE_LOCAL_MODELS={path}: {exc}") from None


async def build_runtime(
    settings: Settings,
    *,
    adapters: Mapping[str, Adapter] | None = None,
    clock: Clock | None = None,
) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Before anything opens: a bad certificate is a startup error, never a failed shot.
    signer = C2paSigner.from_settings(settings) if settings.executor == "embedded" else None
    closers: list[Any] = []
    if settings.executor == "embedded":  # first: a refused start opens nothing
        lock = ExecutorLock(settings.data_dir)
        lock.acquire()

        async def _release() -> None:
            lock.release()

        closers.append(_release)  # closers run in reverse: released last
    db = Database(settings.resolved_database_url())
    db.create_all()
    secret = (
        settings.secret.get_secret_value().encode()
        if settings.secret
        else load_or_create_secret(settings.data_dir)
    )
    key = bootstrap(db, secret, settings.data_dir, prepaid=settings.default_tenant_prepaid)
    store = open_store(settings.resolved_storage_url(), data_dir=settings.data_dir)
    configured: dict[str, Adapter] = {"local": await _local_adapter(settings, closers)}
    configured.update(_vendor_adapters(settings))
    configured.update(adapters or {})
    registry = AdapterRegistry(configured)
    catalog_ = load_catalog(settings.catalog)
    planner = Planner(catalog_, load_routing(settings.routing, catalog=catalog_), registry)

    def model_ref(model_id: str) -> ModelRef:
        entry = catalog_[model_id]
        return ModelRef(entry.id, entry.adapter, entry.vendor_model)

    executor = None
    if settings.executor == "embedded":
        outputs = OutputWriter(
            store,
            settings.data_dir / "spool",
            model_ref,
            ffmpeg=settings.ffmpeg,
            signer=signer,
            clock=clock,
        )
        engine = ShotEngine(
            db,
            registry.get,
            planner.backend_of,
            planner.replan,
            outputs,
            clock or SystemClock(),
            config=EngineConfig(
                max_retries=settings.max_retries,
                attempt_timeout_s=settings.attempt_timeout_s,
                poll_scale=settings.poll_scale,
                callback_base=settings.public_base_url,
            ),
        )
        executor = EmbeddedExecutor(
            db,
            engine,
            JobFinisher(db, outputs),
            max_concurrent_shots=settings.max_concurrent_shots,
        )
    auth = Authenticator(
        db,
        secret,
        admin_key=settings.admin_key.get_secret_value() if settings.admin_key else None,
        ttl_s=settings.key_cache_ttl_s,
    )
    return Runtime(
        settings=settings,
        db=db,
        auth=auth,
        store=store,
        planner=planner,
        jobs=JobService(db, planner, executor),
        content=ContentService(db, store),
        tenants=TenantService(db, auth),
        billing=BillingService(db),
        callbacks=CallbackService(
            db,
            executor.nudge_shot if executor else None,
            settings.webhook_secrets(),
            fal=_fal_webhooks(settings, closers),
            replicate=_replicate_webhooks(settings, closers),
        ),
        registry=registry,
        executor=executor,
        bootstrap_key=key,
        closers=closers,
    )


def create_app(
    settings: Settings | None = None,
    *,
    adapters: Mapping[str, Adapter] | None = None,
    clock: Clock | None = None,
    announce_key: bool = True,
) -> FastAPI:
    """Build the gateway. ``adapters`` adds or replaces backends (tests, emulators)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, adapters=adapters, clock=clock)
        app.state.runtime = runtime
        if runtime.bootstrap_key and announce_key:
            print(
                "reelgate: created the default tenant. Its API key (shown once; also saved "
                f"mode 0600 in {settings.data_dir / 'api-key'}):\n  {runtime.bootstrap_key}",
                file=sys.stderr,
            )
        if runtime.executor is not None:
            await runtime.store.recover()
            await runtime.executor.start()
        try:
            yield
        finally:
            await runtime.aclose()

    app = FastAPI(
        title="reelgate",
        version=gateway_version(),
        summary="One API for every video-generation model.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    for module in (jobs, shots, catalog, billing, admin, callbacks, health):
        app.include_router(module.router)
    return app
