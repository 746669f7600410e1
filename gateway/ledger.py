"""The money ledger: append-only entries, and each tenant's balance kept beside them.

Entries (``gateway.tables.LedgerEntry``), all integer micro-USD and never updated:

- ``credit``: a top-up (admin API), with a note and an idempotency key.
- ``hold``: one per shot, taken when the job is accepted, in the transaction that
  inserts the job. It covers the most expensive model on the shot's route, so a
  fallback never runs on money that is not there.
- ``capture``: the real cost of a succeeded shot (the vendor's figure where it reports
  one, else the catalog's), with the tenant's markup, at most the hold.
- ``release``: what a shot's hold does not capture: the rest after a success, all of it
  after a failure or a cancel.

``UNIQUE (shot_id, kind)`` makes each of a shot's three entries happen at most once:
a second capture of the same shot fails in the database whatever the code above does.

``tenant.balance_micros`` is the available balance, credits - captures - open holds,
moved in the same transaction as every entry. Submits check and move it with one
conditional ``UPDATE``: on PostgreSQL the row lock serialises a tenant's submits and the
``WHERE`` is re-checked after a wait, on SQLite the single writer does the same; so
concurrent submits can never take it below zero.

The same ``UPDATE`` moves the tenant's limit counters (``gateway.limits``: this month's
spend, jobs running), and each release gives its amount back to the hold's month.

Tenants that are not ``prepaid`` (the bootstrap tenant unless configured) take no holds
and are never refused, unless they or their key have a budget or a job limit (then the
holds count against it and the balance runs on account); their spend is still captured,
so usage reports stay complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.errors import DivisionByZero
from sqlalchemy import BigInteger, Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from gateway import db, limits
from gateway.catalog import micros, with_markup
from gateway.tables import LedgerEntry, Shot, Tenant

__all__ = [
    "ShotSettlement",
    "balance_of",
    "credit",
    "release_open_holds",
    "settle_shot",
    "shot_charge",
    "take_holds",
]

_INSERT_ENTRY = insert(LedgerEntry).inline()
_BALANCE = func.coalesce(Tenant.balance_micros, 0)
# Built once (building costs more than running them on every shot's settlement).
_HOLD_OF = select(
    col(LedgerEntry.amount_micros), col(LedgerEntry.key_id), col(LedgerEntry.created_at)
).where(col(LedgerEntry.shot_id) == bindparam("shot"), col(LedgerEntry.kind) == "hold")
_SETTLED = select(col(LedgerEntry.shot_id)).where(
    col(LedgerEntry.job_id) == bindparam("job"), col(LedgerEntry.kind).in_(("capture", "release"))
)
_OPEN_HOLDS = select(LedgerEntry).where(
    col(LedgerEntry.job_id) == bindparam("job"),
    col(LedgerEntry.kind) == "hold",
    col(LedgerEntry.shot_id).not_in(_SETTLED),
)
_MOVE_BALANCE = (
    update(Tenant)
    .where(col(Tenant.id) == bindparam("tenant"))
    .values(balance_micros=_BALANCE + bindparam("delta", type_=BigInteger))
)


def shot_charge(
    plan: Mapping[str, Any],
    model: str,
    vendor_cost_micros: int | None,
    attempt_estimate_micros: int,
    markup_bps: int | None,
) -> int:
    """What a succeeded shot costs the tenant.

    The vendor's own figure (marked up) where it reports one; else the catalog price of
    the model that made it, as quoted on the shot's route (already marked up).
    """
    if vendor_cost_micros is not None:
        return with_markup(vendor_cost_micros, markup_bps)
    for candidate in plan.get("route") or ():
        if candidate.get("model") == model and candidate.get("estimate_usd") is not None:
            return micros(candidate["estimate_usd"])
    return attempt_estimate_micros  # a job from before route prices: its plan's estimate


def _move(conn: Connection, tenant_id: str, delta: int, released: int = 0, month: int = 0) -> None:
    """Move the balance by ``delta``; give ``released`` back to the hold's ``month``."""
    if delta and not released:  # every settlement of a shot nothing was held for
        conn.execute(_MOVE_BALANCE, {"tenant": tenant_id, "delta": delta})
    elif delta or released:
        conn.execute(
            update(Tenant)
            .where(col(Tenant.id) == tenant_id)
            .values(
                balance_micros=_BALANCE + delta,
                **limits.unreserve_tenant_values(month, released),
            )
        )


def balance_of(conn: Connection, tenant_id: str) -> int:
    found = conn.execute(select(_BALANCE).where(col(Tenant.id) == tenant_id)).scalar()
    return int(found or 0)


def take_holds(
    conn: Connection,
    tenant_id: str,
    job_id: str,
    key_id: str | None,
    holds: Sequence[tuple[str, str, int]],
    now: datetime,
    *,
    key_counted: bool = False,
) -> limits.Refusal | None:
    """Hold ``(shot_id, model, amount)`` for each shot, within the tenant's balance (if
    prepaid) and the tenant's and key's limits (``limits``), and commit the job's
    transaction; None: held and committed, else the caller rolls back.

    Run it last in the job's transaction: the tenant's row is locked from its ``UPDATE``
    to the commit.
    """
    rows = [
        {
            "tenant_id": tenant_id,
            "kind": "hold",
            "amount_micros": amount,
            "job_id": job_id,
            "shot_id": shot_id,
            "key_id": key_id,
            "model": model,
            "created_at": now,
        }
        for shot_id, model, amount in holds
        if amount
    ]
    total = sum(amount for _, _, amount in holds)
    if db.can_pipeline(conn) and not (key_counted and key_id is not None):
        return _hold_pipelined(conn, tenant_id, rows, total, now)
    if rows:  # first: the tenant's row is locked only from the UPDATE to the commit
        conn.execute(_INSERT_ENTRY, rows)
    refused = limits.admit(conn, tenant_id, key_id, total, now, key_counted=key_counted)
    if refused is None:
        conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
    return refused


def _hold_pipelined(
    conn: Connection, tenant_id: str, rows: list[dict[str, Any]], total: int, now: datetime
) -> limits.Refusal | None:
    """The holds, the tenant's admission and the commit in one round trip (PostgreSQL):
    the tenant's row, which every submit of the tenant waits for, is then locked only
    while the server runs them, not while this thread waits for its turn at the GIL."""
    admission = limits.admission(total > 0)
    try:
        db.commit_pipelined(
            conn,
            [
                (_INSERT_ENTRY, rows),
                (admission, [limits.admission_params(tenant_id, total, now)]),
            ],
        )
    except DBAPIError as exc:
        if not isinstance(exc.orig, DivisionByZero):  # the admission's refusal
            raise
        return limits.tenant_refusal(conn, tenant_id, total, now)
    return None


@dataclass(frozen=True)
class ShotSettlement:
    captured: int | None
    released: int


def settle_shot(
    conn: Connection,
    shot: Shot,
    *,
    charge: int | None,
    attempt_id: str | None,
    model: str,
    key_id: str | None,
    now: datetime,
) -> ShotSettlement:
    """Capture ``charge`` (None: nothing, the shot failed or was canceled) and release
    the rest of the shot's hold, in the caller's transaction.

    A second capture or release of the same shot raises ``IntegrityError`` (the unique
    constraint): the caller's transaction, shot state included, rolls back whole. A held
    shot always gets its release row, 0 after a full capture, so a cancel racing a
    success collides with it instead of releasing money already captured.
    """
    held = conn.execute(_HOLD_OF, {"shot": shot.id}).first()
    hold = None if held is None else int(held.amount_micros)
    base = {
        "tenant_id": shot.tenant_id,
        "job_id": shot.job_id,
        "shot_id": shot.id,
        "attempt_id": attempt_id,
        "key_id": key_id or (held.key_id if held else None),
        "model": model,
        "created_at": now,
    }
    if charge is None:
        captured, released = None, hold or 0
        delta = released
    elif hold is None:  # not prepaid: spend is recorded, nothing was held
        captured, released, delta = charge, 0, -charge
    else:
        captured = min(charge, hold)
        released = delta = hold - captured
    rows = []
    if captured is not None:
        rows.append({**base, "kind": "capture", "amount_micros": captured})
    if hold is not None:  # even 0: a shot's one release row is what a racing cancel hits
        rows.append({**base, "kind": "release", "amount_micros": released})
    if rows:
        conn.execute(_INSERT_ENTRY, rows)
    month = limits.month_of(held.created_at) if held is not None else 0
    _move(conn, shot.tenant_id, delta, released, month)
    if held is not None:
        limits.unreserve_key(conn, held.key_id, month, released)
    return ShotSettlement(captured, released)


def release_open_holds(conn: Connection, job_id: str, now: datetime) -> int:
    """Release the hold of every shot of the job that neither captured nor released.

    The backstop the job's finisher runs: whatever path ended a shot without settling
    it, the job does not end with money still held. Returns the amount released.
    """
    open_holds = conn.execute(_OPEN_HOLDS, {"job": job_id}).all()
    total = 0
    for hold in open_holds:
        conn.execute(
            _INSERT_ENTRY,
            [
                {
                    "tenant_id": hold.tenant_id,
                    "kind": "release",
                    "amount_micros": hold.amount_micros,
                    "job_id": job_id,
                    "shot_id": hold.shot_id,
                    "key_id": hold.key_id,
                    "model": hold.model,
                    "created_at": now,
                }
            ],
        )
        month = limits.month_of(hold.created_at)
        _move(conn, hold.tenant_id, hold.amount_micros, hold.amount_micros, month)
        limits.unreserve_key(conn, hold.key_id, month, hold.amount_micros)
        total += hold.amount_micros
    return total


def credit(
    conn: Connection,
    tenant_id: str,
    amount_micros: int,
    *,
    note: str,
    idempotency_key: str,
    now: datetime,
) -> None:
    """Add credits; a repeated ``idempotency_key`` raises ``IntegrityError``."""
    conn.execute(
        _INSERT_ENTRY,
        [
            {
                "tenant_id": tenant_id,
                "kind": "credit",
                "amount_micros": amount_micros,
                "note": note,
                "idempotency_key": idempotency_key,
                "created_at": now,
            }
        ],
    )
    _move(conn, tenant_id, amount_micros)
