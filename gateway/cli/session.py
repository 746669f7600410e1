"""A client for the CLI: the SDK against a running gateway, or against one built here.

Embedded mode runs the real app (lifespan, executor, local backend) in this process
and talks to it through the SDK over an in-memory ASGI transport: the CLI exercises
exactly the HTTP API a remote client would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from gateway.services.auth import KEY_FILE
from gateway.settings import Settings
from reelgate import AsyncClient, ReelgateError

__all__ = ["open_session"]

EMBEDDED_URL = "http://reelgate.embedded"


@asynccontextmanager
async def open_session(
    server: str | None, api_key: str | None, data_dir: Path | None, *, executor: bool = True
) -> AsyncIterator[AsyncClient]:
    if server:
        async with AsyncClient(base_url=server, api_key=api_key) as client:
            yield client
        return
    from gateway.app import create_app

    overrides: dict[str, object] = {"poll_interval_s": 0.2}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if not executor:
        overrides["executor"] = "none"
    settings = Settings(**overrides)  # type: ignore[arg-type]
    app = create_app(settings, announce_key=False)
    async with app.router.lifespan_context(app):
        key = app.state.runtime.bootstrap_key or _saved_key(settings.data_dir)
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url=EMBEDDED_URL, timeout=None) as http,
            AsyncClient(base_url=EMBEDDED_URL, api_key=key, http_client=http) as client,
        ):
            yield client


def _saved_key(data_dir: Path) -> str:
    path = data_dir / KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise ReelgateError(
            f"{data_dir} holds a gateway database but no {KEY_FILE} file; pass --api-key "
            "or use a fresh --data-dir"
        ) from None
