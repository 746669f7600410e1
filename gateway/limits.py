"""Monthly budgets and concurrent jobs, per tenant and per key: counters on the row.

A metered submit (``Principal.metered``: prepaid, or a budget or a job limit on the
tenant or the key) moves its tenant's row with one conditional ``UPDATE``, the one that
already takes the job's holds from the balance::

    UPDATE tenant SET balance -= :hold, month_spent = (same month ? spent : 0) + :hold,
                      spend_month = :month, active_jobs += 1
    WHERE id = :t AND (not prepaid OR :hold <= balance)
      AND (no budget OR month_spent' <= budget) AND (no job limit OR active_jobs < max)

and, for a key with its own budget or job limit, the key's row the same way, first. The
row lock serialises a tenant's submits on PostgreSQL and the ``WHERE`` is re-checked
after a wait (SQLite has one writer), so concurrent submits never pass a limit. No row
updated: the caller rolls back and :func:`admit` says which limit refused.

``month_spent`` is this month's captures plus open holds: a shot's hold counts in the
month it was taken, and its release (the rest after a capture, all of it after a
failure or a cancel) gives it back only while that month is current. ``active_jobs``
drops by one when a counted job ends (:func:`job_ended`, guarded by ``job.counted`` so
it happens once).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    Update,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlmodel import col

from gateway.db import as_utc
from gateway.tables import ApiKey, Job, Tenant

__all__ = [
    "Refusal",
    "admission",
    "admission_params",
    "admit",
    "job_ended",
    "month_of",
    "tenant_refusal",
    "unreserve_key",
    "unreserve_tenant_values",
]

Row = type[Tenant] | type[ApiKey]


def month_of(when: datetime) -> int:
    when = as_utc(when)
    return when.year * 100 + when.month


@dataclass(frozen=True)
class Refusal:
    """Why a submit was refused, with the figures (micro-USD or job counts)."""

    kind: Literal["credits", "budget", "jobs"]
    scope: Literal["tenant", "key"]
    limit: int  # the balance, the monthly budget, or the job limit
    used: int  # -, spent this month, or jobs running
    needed: int  # what the job reserves (credits, budget) or 1


def _spent(row: Row, month: Any) -> ColumnElement[Any]:
    """The row's spend in ``month``: 0 once the month has turned."""
    return case(
        (col(row.spend_month) == month, func.coalesce(col(row.month_spent_micros), 0)), else_=0
    )


@functools.cache
def _count_statement(row: Row, check_balance: bool) -> Update:
    """Built once per shape (bound parameters ``row_id``, ``amount``, ``month``): on the
    submit path, constructing a statement costs more than the compiled-cache lookup."""
    amount = bindparam("amount", type_=BigInteger)
    spent = _spent(row, bindparam("month", type_=Integer)) + amount
    active = func.coalesce(col(row.active_jobs), 0)
    where = [
        col(row.id) == bindparam("row_id"),
        or_(col(row.monthly_budget_micros).is_(None), spent <= col(row.monthly_budget_micros)),
        or_(col(row.max_concurrent_jobs).is_(None), active < col(row.max_concurrent_jobs)),
    ]
    values: dict[str, Any] = {"spend_month": bindparam("month"), "month_spent_micros": spent}
    values["active_jobs"] = active + 1
    if row is Tenant:
        balance = func.coalesce(col(Tenant.balance_micros), 0)
        if check_balance:
            where.append(or_(col(Tenant.prepaid).is_not(True), amount <= balance))
        values["balance_micros"] = balance - amount
    return update(row).where(*where).values(**values)


def _count(conn: Connection, row: Row, row_id: str, amount: int, month: int) -> bool:
    """Add the job to the row's counters, unless that passes one of its limits."""
    statement = _count_statement(row, amount > 0)
    params = {"row_id": row_id, "amount": amount, "month": month}
    return conn.execute(statement, params).rowcount == 1


def _why(conn: Connection, row: Row, row_id: str, amount: int, month: int) -> Refusal | None:
    found = conn.execute(select(row).where(col(row.id) == row_id)).first()
    if found is None:
        return None
    scope: Literal["tenant", "key"] = "tenant" if row is Tenant else "key"
    balance = getattr(found, "balance_micros", None) or 0
    if row is Tenant and amount and found.prepaid and amount > balance:
        return Refusal("credits", scope, balance, 0, amount)
    spent = (found.month_spent_micros or 0) if found.spend_month == month else 0
    budget = found.monthly_budget_micros
    if budget is not None and spent + amount > budget:
        return Refusal("budget", scope, budget, spent, amount)
    most = found.max_concurrent_jobs
    if most is not None and (found.active_jobs or 0) >= most:
        return Refusal("jobs", scope, most, found.active_jobs or 0, 1)
    return None  # it changed since the UPDATE: the caller may try again


def admit(
    conn: Connection,
    tenant_id: str,
    key_id: str | None,
    amount: int,
    when: datetime,
    *,
    key_counted: bool,
) -> Refusal | None:
    """Count a job reserving ``amount`` against the key's and the tenant's limits and
    take ``amount`` from the balance; None: admitted (the rows stay locked to the
    commit); else nothing moved here that the caller's rollback would not undo."""
    month = month_of(when)
    key_done = not key_counted or key_id is None
    for _ in range(2):  # a second try only when a concurrent change explains nothing
        if not key_done:
            assert key_id is not None
            key_done = _count(conn, ApiKey, key_id, amount, month)
            if not key_done:
                why = _why(conn, ApiKey, key_id, amount, month)
                if why is not None:
                    return why
                continue
        if _count(conn, Tenant, tenant_id, amount, month):
            return None
        why = _why(conn, Tenant, tenant_id, amount, month)
        if why is not None:
            return why
    return Refusal("jobs", "tenant", 0, 0, 1)  # limits moving under us: try again later


@functools.cache
def admission(check_balance: bool) -> Select[Any]:
    """The tenant's conditional ``UPDATE`` (parameters ``row_id``, ``amount``, ``month``)
    as a statement that fails on a refusal, dividing by the number of rows it updated.

    For a transaction sent with its ``COMMIT`` in one go (``gateway.db.commit_pipelined``):
    nothing can look at a row count in between, so a refusal must abort it by itself.
    """
    admitted = _count_statement(Tenant, check_balance).returning(col(Tenant.id)).cte("admitted")
    return select(literal(1, BigInteger) / func.count()).select_from(admitted)


def admission_params(tenant_id: str, amount: int, when: datetime) -> dict[str, Any]:
    return {"row_id": tenant_id, "amount": amount, "month": month_of(when)}


def tenant_refusal(conn: Connection, tenant_id: str, amount: int, when: datetime) -> Refusal:
    """Why :func:`admission` refused (read after the rollback)."""
    why = _why(conn, Tenant, tenant_id, amount, month_of(when))
    return why or Refusal("jobs", "tenant", 0, 0, 1)  # it changed since: try again later


def unreserve_tenant_values(month: int, released: int) -> dict[str, Any]:
    """``UPDATE tenant`` values giving ``released`` back to the month it was held in."""
    if not released:
        return {}
    back = func.coalesce(col(Tenant.month_spent_micros), 0) - released
    spent = case((col(Tenant.spend_month) == month, back), else_=col(Tenant.month_spent_micros))
    return {"month_spent_micros": spent}


def unreserve_key(conn: Connection, key_id: str | None, month: int, released: int) -> None:
    """Give ``released`` back to a counted key's month (a no-op for other keys)."""
    if key_id is None or not released:
        return
    conn.execute(
        update(ApiKey)
        .where(col(ApiKey.id) == key_id, col(ApiKey.spend_month) == month)
        .values(month_spent_micros=func.coalesce(col(ApiKey.month_spent_micros), 0) - released)
    )


def job_ended(conn: Connection, job_id: str, tenant_id: str, key_id: str | None) -> None:
    """A counted job ended: it leaves its tenant's and key's ``active_jobs``, once."""
    ended = conn.execute(
        update(Job).where(col(Job.id) == job_id, col(Job.counted).is_(True)).values(counted=False)
    )
    if ended.rowcount != 1:
        return
    for row, row_id in ((Tenant, tenant_id), (ApiKey, key_id)):
        if row_id is not None:
            conn.execute(
                update(row)
                .where(col(row.id) == row_id, col(row.active_jobs) > 0)
                .values(active_jobs=col(row.active_jobs) - 1)
            )
