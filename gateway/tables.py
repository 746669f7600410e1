"""Database tables (SQLModel). Wire types live in ``reelgate.types``; ``gateway.services.views``
converts between the two, in one place.

JSON columns hold validated wire objects (the request as given, the plan); money is
integer micro-USD; every time is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

__all__ = ["ApiKey", "Attempt", "Event", "Job", "LedgerEntry", "Shot", "Tenant", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), **kw)


def _json(**kw: Any) -> Any:
    return Field(sa_column=Column(JSON, **kw))


def _micros(**kw: Any) -> Any:
    return Field(default=None, sa_type=BigInteger, **kw)


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True)
    name: str
    created_at: datetime = _ts()
    # Billing. Nullable: added in place to databases from before billing (see db.py).
    prepaid: bool | None = Field(
        default=None, description="Submits need credits (holds, 402); else unlimited."
    )
    balance_micros: int | None = _micros(
        description="Available balance (credits - captures - open holds), kept with the ledger."
    )
    markup_bps: int | None = Field(default=None, description="+2000: +20%; -1000: 10% off.")
    monthly_budget_micros: int | None = _micros()
    max_concurrent_jobs: int | None = None
    requests_per_minute: int | None = None
    # Limit counters (see gateway.limits), moved by the submit's conditional UPDATE.
    spend_month: int | None = Field(default=None, description="yyyymm month_spent counts.")
    month_spent_micros: int | None = _micros(description="Captures + open holds that month.")
    active_jobs: int | None = Field(default=None, description="Counted jobs not yet ended.")


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    id: str = Field(primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    prefix: str = Field(index=True, description="Visible start of the key, for support.")
    key_hash: str = Field(unique=True, description="HMAC-SHA256 of the key with the server secret.")
    created_at: datetime = _ts()
    revoked_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    name: str | None = None
    scopes: list[str] | None = _json(nullable=True)  # None: every tenant scope (not admin)
    expires_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    monthly_budget_micros: int | None = _micros()
    max_concurrent_jobs: int | None = None
    requests_per_minute: int | None = None
    # Limit counters, kept only for a key with a budget or a job limit (see gateway.limits).
    spend_month: int | None = None
    month_spent_micros: int | None = _micros()
    active_jobs: int | None = None


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
    key_id: str | None = Field(default=None, description="The API key that created it.")
    markup_bps: int | None = Field(default=None, description="The tenant's markup at submit.")
    counted: bool | None = Field(
        default=None, description="In its tenant's (and key's) active_jobs until it ends."
    )


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


class LedgerEntry(SQLModel, table=True):
    """One append-only money movement; see ``gateway.ledger``.

    ``UNIQUE (shot_id, kind)`` is what makes a shot's hold, capture and release happen
    at most once each, whatever retries, restarts or duplicate callbacks do (rows
    without a shot, the credits, have a NULL ``shot_id`` and never collide).
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint("shot_id", "kind", name="uq_ledger_shot_kind"),
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_ledger_idempotency"),
        CheckConstraint("amount_micros >= 0", name="ck_ledger_amount"),
        CheckConstraint("kind IN ('credit', 'hold', 'capture', 'release')", name="ck_ledger_kind"),
        Index("ix_ledger_tenant_time", "tenant_id", "created_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id")
    kind: str
    amount_micros: int = Field(sa_type=BigInteger)
    job_id: str | None = Field(default=None, index=True)
    shot_id: str | None = None
    attempt_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    note: str | None = None
    idempotency_key: str | None = None
    created_at: datetime = _ts()
