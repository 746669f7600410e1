"""API keys: shown once, stored as HMAC-SHA256 with the server secret, compared by hash.

A key belongs to one tenant and carries scopes (``jobs:read``, ``jobs:write``,
``admin``), an optional expiry and optional limits. ``REELGATE_ADMIN_KEY`` is an
operator key outside every tenant: it has the ``admin`` scope only. The bootstrap
creates the default tenant (unlimited unless configured) and its key on first start.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import select

from gateway.db import Database, as_utc
from gateway.ids import new_id
from gateway.tables import ApiKey, Tenant, utcnow

__all__ = [
    "ADMIN",
    "DEFAULT_SCOPES",
    "READ",
    "SCOPES",
    "WRITE",
    "Authenticator",
    "Principal",
    "bootstrap",
    "hash_key",
    "load_or_create_secret",
    "new_key",
]

KEY_PREFIX = "rg_"
KEY_FILE = "api-key"
SECRET_FILE = "server-secret"
READ, WRITE, ADMIN = "jobs:read", "jobs:write", "admin"
SCOPES = (READ, WRITE, ADMIN)
#: What a key created without scopes may do.
DEFAULT_SCOPES = frozenset({READ, WRITE})
#: The id the operator key (``REELGATE_ADMIN_KEY``) authenticates as.
ADMIN_KEY_ID = "admin"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant's key, with what that key and its tenant allow."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str] = DEFAULT_SCOPES
    expires_at: datetime | None = None
    #: Billing: a prepaid tenant's submits take holds against its balance.
    prepaid: bool = False
    markup_bps: int = 0
    #: Limits; None: none. Tenant-wide and this key's own.
    tenant_budget_micros: int | None = None
    tenant_max_jobs: int | None = None
    tenant_rpm: int | None = None
    key_budget_micros: int | None = None
    key_max_jobs: int | None = None
    key_rpm: int | None = None

    @property
    def key_counted(self) -> bool:
        """This key keeps its own counters: it has a budget or a job limit (fixed at
        creation, so every submit through it counts, or none does)."""
        return self.key_budget_micros is not None or self.key_max_jobs is not None

    @property
    def metered(self) -> bool:
        """Submits take holds and move the tenant's counters (``gateway.limits``)."""
        return (
            self.prepaid
            or self.key_counted
            or self.tenant_budget_micros is not None
            or self.tenant_max_jobs is not None
        )

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def load_or_create_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE
    if path.exists():
        return path.read_text().strip().encode()
    secret = secrets.token_urlsafe(32)
    _write_private(path, secret)
    return secret.encode()


def hash_key(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def new_key(secret: bytes, tenant_id: str, **fields: object) -> tuple[ApiKey, str]:
    """A new key row and the key itself (shown once, never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=new_id("key"),
        tenant_id=tenant_id,
        prefix=key[:10],
        key_hash=hash_key(secret, key),
        **fields,  # type: ignore[arg-type]
    )
    return row, key


def bootstrap(db: Database, secret: bytes, data_dir: Path, *, prepaid: bool = False) -> str | None:
    """On an empty database create the default tenant and key; return the key once."""
    with db.session() as s:
        if s.exec(select(Tenant.id).limit(1)).first() is not None:
            return None
        tenant = Tenant(id=new_id("ten"), name="default", prepaid=prepaid, balance_micros=0)
        s.add(tenant)
        s.flush()
        row, key = new_key(secret, tenant.id, name="bootstrap")
        s.add(row)
        s.commit()
    _write_private(data_dir / KEY_FILE, key)
    return key


def _principal(key: ApiKey, tenant: Tenant) -> Principal:
    scopes = DEFAULT_SCOPES if key.scopes is None else frozenset(key.scopes)
    return Principal(
        tenant_id=tenant.id,
        key_id=key.id,
        scopes=scopes,
        expires_at=as_utc(key.expires_at) if key.expires_at else None,
        prepaid=bool(tenant.prepaid),
        markup_bps=tenant.markup_bps or 0,
        tenant_budget_micros=tenant.monthly_budget_micros,
        tenant_max_jobs=tenant.max_concurrent_jobs,
        tenant_rpm=tenant.requests_per_minute,
        key_budget_micros=key.monthly_budget_micros,
        key_max_jobs=key.max_concurrent_jobs,
        key_rpm=key.requests_per_minute,
    )


class Authenticator:
    """Resolves a bearer token to its principal.

    Hits are cached for ``ttl_s``: a key revoked or a tenant changed through another
    process's admin API takes effect here within that time (at once in this process,
    whose admin service calls :meth:`invalidate`). Expiry is checked on every request.
    """

    def __init__(
        self,
        db: Database,
        secret: bytes,
        *,
        admin_key: str | None = None,
        ttl_s: float = 5.0,
    ) -> None:
        self._db = db
        self._secret = secret
        self._admin_digest = hash_key(secret, admin_key) if admin_key else None
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    @property
    def secret(self) -> bytes:
        return self._secret

    def invalidate(self) -> None:
        self._cache.clear()

    def cached(self, token: str) -> Principal | None:
        """The principal of a token seen lately: no I/O, so callers may skip a thread hop."""
        hit = self._cache.get(hash_key(self._secret, token))
        if hit is None or time.monotonic() - hit[0] > self._ttl_s:
            return None
        return hit[1]

    def authenticate(self, token: str) -> Principal | None:
        digest = hash_key(self._secret, token)
        if self._admin_digest is not None and hmac.compare_digest(digest, self._admin_digest):
            return Principal(tenant_id="", key_id=ADMIN_KEY_ID, scopes=frozenset({ADMIN}))
        with self._db.session() as s:
            row = s.exec(
                select(ApiKey, Tenant)
                .join(Tenant, Tenant.id == ApiKey.tenant_id)  # type: ignore[arg-type]
                .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
            ).first()
        if row is None or not hmac.compare_digest(row[0].key_hash, digest):
            return None
        principal = _principal(*row)
        self._cache[digest] = (time.monotonic(), principal)
        return principal

    @staticmethod
    def now() -> datetime:
        return utcnow()
