"""Billing test support: vendors whose every job's fate a test names, and the ledger's
invariants checked from the rows themselves."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from gateway_harness import h264_clip
from sqlmodel import select

from adapters.base import Failure, GenerationRequest, JobStatus, RetryableError, Submission
from gateway import ledger
from gateway.runtime import Runtime
from gateway.services.jobs import TERMINAL_JOB
from gateway.tables import Job, LedgerEntry, Shot, Tenant, utcnow


@pytest.fixture(scope="module")
def fate_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A one-second H.264 clip every scripted vendor hands back."""
    return h264_clip(tmp_path_factory.mktemp("clip"))


#: ok: succeeds; fail: fails (the next model on the route takes over); fatal: fails the
#: shot; hang: runs until canceled; retry: one poll error, then ok; cost: ok, and the
#: vendor reports its own cost (``reported_micros``).
FATES = ("ok", "fail", "fatal", "hang", "retry", "cost")


@dataclass
class FateVendor:
    """A vendor whose jobs end as the shot's name says: ``{fate}-{n}`` (``ok-3``)."""

    clip: bytes
    name: str = "runway"
    reported_micros: int = 50_000
    idempotent_submit: bool = False
    supports_cancel: bool = True
    jobs: dict[str, str] = field(default_factory=dict)
    polls: Counter[str] = field(default_factory=Counter)
    canceled: list[str] = field(default_factory=list)

    def configured_models(self) -> set[str] | None:
        return None

    async def submit(self, request: GenerationRequest) -> Submission:
        fate = (request.title or "ok").split("-")[0] if self.name == "runway" else "ok"
        job_id = f"{self.name}-{len(self.jobs) + 1}"
        self.jobs[job_id] = fate
        return Submission(backend_job_id=job_id, poll_after_s=0)

    async def poll(self, backend_job_id: str) -> JobStatus:
        fate = self.jobs[backend_job_id]
        self.polls[backend_job_id] += 1
        if backend_job_id in self.canceled:
            return JobStatus(state="canceled", next_poll_s=0)
        if fate == "hang":
            return JobStatus(state="running", next_poll_s=0.02)
        if fate == "retry" and self.polls[backend_job_id] == 1:
            raise RetryableError("vendor hiccup")
        if fate in ("fail", "fatal"):
            klass = "fatal" if fate == "fatal" else "fallback"
            failure = Failure(code="vendor_failed", message=fate, failure_class=klass)
            return JobStatus(state="failed", next_poll_s=0, failure=failure)
        if fate == "cost":  # the vendor reports what it billed, in its units and in USD
            return JobStatus(
                state="succeeded",
                next_poll_s=0,
                cost_usd_micros=self.reported_micros,
                vendor_usage={"billable_units": "5"},
            )
        return JobStatus(state="succeeded", next_poll_s=0)

    async def cancel(self, backend_job_id: str) -> None:
        self.canceled.append(backend_job_id)

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        await asyncio.sleep(0)
        yield self.clip

    async def aclose(self) -> None:
        pass


def shot(fate: str, n: int = 0, kind: str = "character") -> dict[str, object]:
    return {"kind": kind, "name": f"{fate}-{n}", "prompt": f"a tailor, take {n}", "duration_s": 5}


def make_prepaid(runtime: Runtime, credits_micros: int = 0, markup_bps: int = 0) -> str:
    """Turn the bootstrap tenant prepaid and credit it; returns its id."""
    with runtime.db.session() as s:
        tenant = s.exec(select(Tenant)).one()
        tenant.prepaid, tenant.markup_bps = True, markup_bps
        s.add(tenant)
        s.flush()
        if credits_micros:
            ledger.credit(
                s.connection(),
                tenant.id,
                credits_micros,
                note="test",
                idempotency_key=f"test-{utcnow().timestamp()}",
                now=utcnow(),
            )
        s.commit()
    runtime.auth.invalidate()
    return tenant.id


@dataclass(frozen=True)
class Books:
    balance: int
    credits: int
    captures: int
    open_holds: int
    captures_per_shot: Counter[str]
    releases_per_shot: Counter[str]
    holds: dict[str, int]


def books(runtime: Runtime, tenant_id: str) -> Books:
    with runtime.db.session() as s:
        rows = list(s.exec(select(LedgerEntry).where(LedgerEntry.tenant_id == tenant_id)))
        tenant = s.get(Tenant, tenant_id)
        assert tenant is not None
    total: Counter[str] = Counter()
    for r in rows:
        total[r.kind] += r.amount_micros
    holds = {r.shot_id: r.amount_micros for r in rows if r.kind == "hold" and r.shot_id}
    settled = sum(
        r.amount_micros for r in rows if r.kind in ("capture", "release") and r.shot_id in holds
    )
    open_holds = sum(holds.values()) - settled
    return Books(
        balance=tenant.balance_micros or 0,
        credits=total["credit"],
        captures=total["capture"],
        open_holds=open_holds,
        captures_per_shot=Counter(r.shot_id for r in rows if r.kind == "capture" and r.shot_id),
        releases_per_shot=Counter(r.shot_id for r in rows if r.kind == "release" and r.shot_id),
        holds=holds,  # type: ignore[arg-type]
    )


def check_books(runtime: Runtime, tenant_id: str) -> Books:
    """The ledger's invariants, at any moment (shots may still be running)."""
    b = books(runtime, tenant_id)
    assert b.balance == b.credits - b.captures - b.open_holds, b
    assert b.balance >= 0, b
    assert b.open_holds >= 0, b
    with runtime.db.session() as s:
        shots = list(s.exec(select(Shot, Job.status).join(Job).where(Shot.tenant_id == tenant_id)))
    for sh, job_status in shots:
        captures = b.captures_per_shot[sh.id]
        if sh.status == "succeeded":
            assert captures == 1, (sh.id, sh.status, b)
            assert sh.cost_micros is not None
        else:
            assert captures == 0, (sh.id, sh.status, b)
        assert b.releases_per_shot[sh.id] <= 1
        if job_status in TERMINAL_JOB and sh.id in b.holds:  # every hold settled
            assert b.releases_per_shot[sh.id] == 1, (sh.id, sh.status, b)
    return b
