"""Database tables (SQLModel). Wire types live in ``reelgate.types``; ``gateway.services.views``
converts between the two, in one place.

JSON columns hold validated wire objects (the request as given, the plan); money is
integer micro-USD; every time is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["ApiKey", "Attempt", "Event", "Job", "Shot", "Tenant", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kw)


def _json(**kw: Any) -> Any:
    return Field(sa_column=Column(JSON, **kw))


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    created_at: datetime = _ts()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    id: str = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    prefix: str = Field(index=True, description="Visible start of the key, for support.")
    key_hash: str = Field(unique=True, description="HMAC-SHA256 of the key with the server secret.")
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Job(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),)
    id: str = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    status: str = Field(default="queued", index=True)
    request: dict[str, Any] = _json(nullable=False)
    request_sha256: str
    idempotency_key: str | None = None
    assemble: bool = False
    estimate_micros: int = Field(default=0, sa_type=BigInteger)
    cost_micros: int | None = Field(default=None, sa_type=BigInteger)
    cancel_requested: bool = False
    final_key: str | None = None
    final_output: dict[str, Any] | None = _json(nullable=True)
    final_error: str | None = None
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Shot(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("job_id", "index"),)
    id: str = Field(primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True)
    tenant_id: str = Field(index=True)
    index: int
    name: str | None = None
    kind: str
    status: str = Field(default="queued", index=True)
    model: str
    spec: dict[str, Any] = _json(nullable=False)
    plan: dict[str, Any] = _json(nullable=False)
    progress: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    estimate_micros: int = Field(default=0, sa_type=BigInteger)
    cost_micros: int | None = Field(default=None, sa_type=BigInteger)
    output_key: str | None = None
    output: dict[str, Any] | None = _json(nullable=True)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Attempt(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("shot_id", "number"),)
    id: str = Field(primary_key=True)
    shot_id: str = Field(foreign_key="shot.id", index=True)
    number: int
    candidate: int = Field(description="Index into the shot's route of fallback candidates.")
    model: str
    adapter: str
    status: str = Field(default="pending", index=True)
    request: dict[str, Any] = _json(nullable=False)
    plan: dict[str, Any] = _json(nullable=False)
    backend_job_id: str | None = None
    submit_started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    retries: int = 0
    progress: float | None = None
    step: int | None = None
    total_steps: int | None = None
    queue_position: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    cost_micros: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(index=True)
    shot_id: str | None = None
    type: str
    data: dict[str, Any] = _json(nullable=False)
    created_at: datetime = _ts()
