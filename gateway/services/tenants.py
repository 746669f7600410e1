"""The operator's side: tenants, their API keys and their credits (``/v1/admin/...``,
``reelgate admin ...``). Every change here forgets this process's cached keys."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway import ledger, limits
from gateway.catalog import micros, usd
from gateway.db import Database, as_utc
from gateway.ids import new_id
from gateway.services.auth import DEFAULT_SCOPES, Authenticator, new_key
from gateway.services.billing import month_spent
from gateway.services.errors import ServiceError
from gateway.tables import ApiKey, LedgerEntry, Tenant, utcnow
from reelgate import types as t

__all__ = ["TenantService", "key_view", "tenant_view"]

_LIMITS = ("max_concurrent_jobs", "requests_per_minute")


def _opt_usd(amount: int | None) -> t.Usd | None:
    return None if amount is None else usd(amount)


def tenant_view(row: Tenant) -> t.Tenant:
    return t.Tenant(
        id=row.id,
        name=row.name,
        created_at=as_utc(row.created_at),
        prepaid=bool(row.prepaid),
        markup_bps=row.markup_bps or 0,
        balance_usd=usd(row.balance_micros or 0),
        monthly_budget_usd=_opt_usd(row.monthly_budget_micros),
        max_concurrent_jobs=row.max_concurrent_jobs,
        requests_per_minute=row.requests_per_minute,
    )


def key_view(row: ApiKey) -> t.ApiKey:
    return t.ApiKey(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        prefix=row.prefix,
        scopes=sorted(DEFAULT_SCOPES if row.scopes is None else row.scopes),  # type: ignore[arg-type]
        created_at=as_utc(row.created_at),
        expires_at=as_utc(row.expires_at) if row.expires_at else None,
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
        monthly_budget_usd=_opt_usd(row.monthly_budget_micros),
        max_concurrent_jobs=row.max_concurrent_jobs,
        requests_per_minute=row.requests_per_minute,
    )


class TenantService:
    def __init__(self, db: Database, auth: Authenticator) -> None:
        self._db = db
        self._auth = auth

    # --- tenants ------------------------------------------------------------------------

    def create_tenant(self, body: t.TenantCreate) -> t.Tenant:
        row = Tenant(
            id=new_id("ten"),
            name=body.name,
            prepaid=body.prepaid,
            balance_micros=0,
            markup_bps=body.markup_bps,
            monthly_budget_micros=_opt_micros(body.monthly_budget_usd),
            max_concurrent_jobs=body.max_concurrent_jobs,
            requests_per_minute=body.requests_per_minute,
        )
        with self._db.session() as s:
            s.add(row)
            s.commit()
        return tenant_view(row)

    def list_tenants(self) -> list[t.Tenant]:
        with self._db.session() as s:
            return [tenant_view(r) for r in s.exec(select(Tenant).order_by(col(Tenant.id)))]

    def get_tenant(self, tenant_id: str) -> t.Tenant:
        with self._db.session() as s:
            return tenant_view(_tenant(s, tenant_id))

    def update_tenant(self, tenant_id: str, body: t.TenantUpdate) -> t.Tenant:
        sent = body.model_fields_set
        with self._db.session() as s:
            row = _tenant(s, tenant_id, lock=True)  # no submit moves its counters meanwhile
            for name in ("name", "prepaid", "markup_bps"):
                if name in sent and getattr(body, name) is not None:
                    setattr(row, name, getattr(body, name))
            for name in _LIMITS:
                if name in sent:
                    setattr(row, name, getattr(body, name))
            if "monthly_budget_usd" in sent:
                row.monthly_budget_micros = _opt_micros(body.monthly_budget_usd)
                # From the ledger: spend before the tenant was metered counts too.
                now = utcnow()
                row.spend_month = limits.month_of(now)
                row.month_spent_micros = month_spent(s, tenant_id, now)
            s.add(row)
            s.commit()
        self._auth.invalidate()
        return tenant_view(row)

    # --- keys ---------------------------------------------------------------------------

    def create_key(self, tenant_id: str, body: t.ApiKeyCreate) -> t.ApiKeyCreated:
        with self._db.session() as s:
            _tenant(s, tenant_id)
            row, key = new_key(
                self._auth.secret,
                tenant_id,
                name=body.name,
                scopes=None if body.scopes is None else sorted(set(body.scopes)),
                expires_at=body.expires_at,
                monthly_budget_micros=_opt_micros(body.monthly_budget_usd),
                max_concurrent_jobs=body.max_concurrent_jobs,
                requests_per_minute=body.requests_per_minute,
            )
            s.add(row)
            s.commit()
        return t.ApiKeyCreated(**key_view(row).model_dump(), key=key)

    def list_keys(self, tenant_id: str) -> list[t.ApiKey]:
        with self._db.session() as s:
            _tenant(s, tenant_id)
            rows = s.exec(
                select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(col(ApiKey.id))
            )
            return [key_view(r) for r in rows]

    def revoke_key(self, tenant_id: str, key_id: str) -> t.ApiKey:
        with self._db.session() as s:
            row = s.get(ApiKey, key_id)
            if row is None or row.tenant_id != tenant_id:
                raise ServiceError(
                    404, "key_not_found", f"Tenant {tenant_id} has no key {key_id!r}."
                )
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                s.add(row)
                s.commit()
        self._auth.invalidate()
        return key_view(row)

    # --- credits ------------------------------------------------------------------------

    def add_credits(
        self, tenant_id: str, body: t.CreditCreate, idempotency_key: str
    ) -> tuple[t.Credit, bool]:
        """Top up; the same ``idempotency_key`` again returns the first credit (True)."""
        amount = micros(body.amount_usd)
        with self._db.session() as s:
            _tenant(s, tenant_id)
            replay = _credit_replay(s, tenant_id, idempotency_key, amount, body.note)
            if replay is not None:
                return replay, True
            try:
                ledger.credit(
                    s.connection(),
                    tenant_id,
                    amount,
                    note=body.note,
                    idempotency_key=idempotency_key,
                    now=utcnow(),
                )
                s.commit()
            except IntegrityError:  # the same key, concurrently: answer with the winner
                s.rollback()
            replay = _credit_replay(s, tenant_id, idempotency_key, amount, body.note)
            assert replay is not None
            return replay, False


def _opt_micros(amount: t.Usd | None) -> int | None:
    return None if amount is None else micros(amount)


def _tenant(s: Session, tenant_id: str, *, lock: bool = False) -> Tenant:
    row = s.get(Tenant, tenant_id, with_for_update=lock)
    if row is None:
        raise ServiceError(404, "tenant_not_found", f"No tenant {tenant_id!r}.")
    return row


def _credit_replay(s: Session, tenant_id: str, key: str, amount: int, note: str) -> t.Credit | None:
    entry = s.exec(
        select(LedgerEntry).where(
            LedgerEntry.tenant_id == tenant_id,
            LedgerEntry.idempotency_key == key,
        )
    ).first()
    if entry is None:
        return None
    if entry.amount_micros != amount or entry.note != note:
        raise ServiceError(
            422,
            "idempotency_key_reused",
            f"Idempotency-Key {key!r} was used for another top-up; use a new key.",
        )
    balance = ledger.balance_of(s.connection(), tenant_id)
    assert entry.id is not None
    return t.Credit(
        id=entry.id,
        tenant_id=tenant_id,
        amount_usd=usd(entry.amount_micros),
        note=entry.note,
        created_at=as_utc(entry.created_at),
        balance_usd=usd(balance),
    )
