"""``reelgate admin tenants|keys|credits ...``: the admin API's operations, run on the
database directly (``REELGATE_DATABASE_URL`` / ``--data-dir``), so no server or admin key
is needed on the machine that holds them. Answers print as JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, TypeAdapter

from gateway.db import Database
from gateway.services.auth import Authenticator, load_or_create_secret
from gateway.services.errors import ServiceError
from gateway.services.tenants import TenantService
from gateway.settings import Settings
from gateway.tables import utcnow
from reelgate import types as t

__all__ = ["register"]

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="[default: ./reelgate-data]")]
Limit = Annotated[int | None, typer.Option(min=1)]


@contextmanager
def _service(data_dir: Path | None) -> Iterator[TenantService]:
    settings = Settings(**({"data_dir": data_dir} if data_dir else {}))  # type: ignore[arg-type]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url())
    db.create_all()
    secret = (
        settings.secret.get_secret_value().encode()
        if settings.secret
        else load_or_create_secret(settings.data_dir)
    )
    try:
        yield TenantService(db, Authenticator(db, secret))
    except ServiceError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        raise typer.Exit(1) from None
    finally:
        db.dispose()


def _print(value: Any) -> None:
    if isinstance(value, BaseModel):
        print(value.model_dump_json(indent=2))
    else:
        print(TypeAdapter(type(value)).dump_json(value, indent=2).decode())


tenants_app = typer.Typer(help="Tenants.", no_args_is_help=True)
keys_app = typer.Typer(help="A tenant's API keys.", no_args_is_help=True)
credits_app = typer.Typer(help="A tenant's credits.", no_args_is_help=True)


@tenants_app.command("create")
def tenants_create(
    name: str,
    unlimited: Annotated[bool, typer.Option(help="Never refused; no credits needed.")] = False,
    markup_bps: Annotated[int, typer.Option(help="2000: +20%; -1000: 10% off.")] = 0,
    monthly_budget_usd: Annotated[Decimal | None, typer.Option()] = None,
    max_concurrent_jobs: Limit = None,
    requests_per_minute: Limit = None,
    data_dir: DataDir = None,
) -> None:
    body = t.TenantCreate(
        name=name,
        prepaid=not unlimited,
        markup_bps=markup_bps,
        monthly_budget_usd=monthly_budget_usd,
        max_concurrent_jobs=max_concurrent_jobs,
        requests_per_minute=requests_per_minute,
    )
    with _service(data_dir) as service:
        _print(service.create_tenant(body))


@tenants_app.command("list")
def tenants_list(data_dir: DataDir = None) -> None:
    with _service(data_dir) as service:
        _print(service.list_tenants())


@keys_app.command("create")
def keys_create(
    tenant: str,
    name: Annotated[str | None, typer.Option()] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="jobs:read, jobs:write, admin (repeat it).")
    ] = None,
    expires_in_days: Annotated[float | None, typer.Option(min=0)] = None,
    data_dir: DataDir = None,
) -> None:
    """Print the new key (shown once)."""
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    body = t.ApiKeyCreate.model_validate({"name": name, "scopes": scope, "expires_at": expires})
    with _service(data_dir) as service:
        _print(service.create_key(tenant, body))


@keys_app.command("list")
def keys_list(tenant: str, data_dir: DataDir = None) -> None:
    with _service(data_dir) as service:
        _print(service.list_keys(tenant))


@keys_app.command("revoke")
def keys_revoke(tenant: str, key_id: str, data_dir: DataDir = None) -> None:
    with _service(data_dir) as service:
        _print(service.revoke_key(tenant, key_id))


@credits_app.command("add")
def credits_add(
    tenant: str,
    amount_usd: Decimal,
    note: Annotated[str, typer.Option(help="Why (an invoice, a grant).")],
    idempotency_key: Annotated[
        str, typer.Option(help="Running it again with the same key adds nothing.")
    ],
    data_dir: DataDir = None,
) -> None:
    body = t.CreditCreate(amount_usd=amount_usd, note=note)
    with _service(data_dir) as service:
        credit, replayed = service.add_credits(tenant, body, idempotency_key)
        _print(credit)
        if replayed:
            print("(already added under this idempotency key)", file=sys.stderr)


def register(admin_app: typer.Typer) -> None:
    admin_app.add_typer(tenants_app, name="tenants")
    admin_app.add_typer(keys_app, name="keys")
    admin_app.add_typer(credits_app, name="credits")
