"""API keys: shown once, stored as HMAC-SHA256 with the server secret, compared by hash.

Full multi-tenancy (admin API, scopes, expiry) comes later; this module creates the
default tenant and key on first start and authenticates bearer tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import select

from gateway.db import Database
from gateway.ids import new_id
from gateway.tables import ApiKey, Tenant

__all__ = ["Authenticator", "Principal", "bootstrap", "load_or_create_secret"]

KEY_PREFIX = "rg_"
KEY_FILE = "api-key"
SECRET_FILE = "server-secret"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str


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


def bootstrap(db: Database, secret: bytes, data_dir: Path) -> str | None:
    """On an empty database create the default tenant and key; return the key once."""
    with db.session() as s:
        if s.exec(select(Tenant.id).limit(1)).first() is not None:
            return None
        tenant = Tenant(id=new_id("ten"), name="default")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        s.add(tenant)
        s.flush()
        s.add(
            ApiKey(
                id=new_id("key"),
                tenant_id=tenant.id,
                prefix=key[:10],
                key_hash=hash_key(secret, key),
            )
        )
        s.commit()
    _write_private(data_dir / KEY_FILE, key)
    return key


class Authenticator:
    """Resolves a bearer token to its tenant; caches hits (keys are only revoked by admins)."""

    def __init__(self, db: Database, secret: bytes) -> None:
        self._db = db
        self._secret = secret
        self._cache: dict[str, Principal] = {}

    def cached(self, token: str) -> Principal | None:
        """The principal of a token already seen: no I/O, so callers may skip a thread hop."""
        return self._cache.get(hash_key(self._secret, token))

    def authenticate(self, token: str) -> Principal | None:
        digest = hash_key(self._secret, token)
        hit = self._cache.get(digest)
        if hit is not None:
            return hit
        with self._db.session() as s:
            row = s.exec(
                select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
            ).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        principal = Principal(tenant_id=row.tenant_id, key_id=row.id)
        self._cache[digest] = principal
        return principal
