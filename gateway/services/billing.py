"""A tenant's money as it sees it: balance, and usage by model, day or key."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime
from typing import Literal

from sqlalchemy import func
from sqlmodel import Session, col, select

from gateway.catalog import usd
from gateway.db import Database, as_utc
from gateway.services.errors import ServiceError
from gateway.tables import LedgerEntry, Tenant, utcnow
from reelgate import types as t

__all__ = ["BillingService", "month_spent", "month_start", "usage_csv"]

GroupBy = Literal["model", "day", "key"]


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _sum(s: Session, tenant_id: str, *kinds: str, since: datetime | None = None) -> int:
    q = select(func.coalesce(func.sum(LedgerEntry.amount_micros), 0)).where(
        LedgerEntry.tenant_id == tenant_id, col(LedgerEntry.kind).in_(kinds)
    )
    if since is not None:
        q = q.where(LedgerEntry.created_at >= since)
    return int(s.exec(q).one())


def open_holds(s: Session, tenant_id: str) -> int:
    """Holds minus what their shots captured or released."""
    held = select(LedgerEntry.shot_id).where(
        LedgerEntry.tenant_id == tenant_id, LedgerEntry.kind == "hold"
    )
    settled = s.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_micros), 0)).where(
            LedgerEntry.tenant_id == tenant_id,
            col(LedgerEntry.kind).in_(("capture", "release")),
            col(LedgerEntry.shot_id).in_(held),
        )
    ).one()
    return _sum(s, tenant_id, "hold") - int(settled)


def month_spent(s: Session, tenant_id: str, now: datetime) -> int:
    """This calendar month's captures plus every open hold, from the ledger."""
    return _sum(s, tenant_id, "capture", since=month_start(now)) + open_holds(s, tenant_id)


class BillingService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def balance(self, tenant_id: str) -> t.Balance:
        with self._db.session() as s:
            tenant = s.get(Tenant, tenant_id)
            if tenant is None:
                raise ServiceError(404, "tenant_not_found", f"No tenant {tenant_id!r}.")
            held = open_holds(s, tenant_id)
            return t.Balance(
                tenant_id=tenant_id,
                prepaid=bool(tenant.prepaid),
                balance_usd=usd(tenant.balance_micros or 0),
                credits_usd=usd(_sum(s, tenant_id, "credit")),
                captured_usd=usd(_sum(s, tenant_id, "capture")),
                held_usd=usd(held),
                monthly_budget_usd=(
                    None
                    if tenant.monthly_budget_micros is None
                    else usd(tenant.monthly_budget_micros)
                ),
                month_spent_usd=usd(month_spent(s, tenant_id, utcnow())),
            )

    def usage(
        self, tenant_id: str, start: datetime | None, end: datetime | None, group_by: GroupBy
    ) -> t.Usage:
        """Captured spend in ``[start, end)`` (default: this month so far), grouped."""
        now = utcnow()
        start = as_utc(start) if start else month_start(now)
        end = as_utc(end) if end else now
        if end <= start:
            raise ServiceError(422, "invalid_range", "`to` must be after `from`.")
        with self._db.session() as s:
            rows = s.exec(
                select(
                    LedgerEntry.created_at,
                    LedgerEntry.amount_micros,
                    LedgerEntry.model,
                    LedgerEntry.key_id,
                ).where(
                    LedgerEntry.tenant_id == tenant_id,
                    LedgerEntry.kind == "capture",
                    LedgerEntry.created_at >= start,
                    LedgerEntry.created_at < end,
                )
            ).all()
        shots: dict[str, int] = defaultdict(int)
        cost: dict[str, int] = defaultdict(int)
        for created, amount, model, key_id in rows:
            group = {
                "model": model or "unknown",
                "day": as_utc(created).date().isoformat(),
                "key": key_id or "unknown",
            }[group_by]
            shots[group] += 1
            cost[group] += amount
        return t.Usage(
            start=start,
            end=end,
            group_by=group_by,
            rows=[t.UsageRow(group=g, shots=shots[g], cost_usd=usd(cost[g])) for g in sorted(cost)],
            total_usd=usd(sum(cost.values())),
        )


def usage_csv(usage: t.Usage) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([usage.group_by, "shots", "cost_usd"])
    for row in usage.rows:
        writer.writerow([row.group, row.shots, format(row.cost_usd.normalize(), "f")])
    return out.getvalue()
