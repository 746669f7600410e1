"""Limits per tenant and per key: monthly budget (402), concurrent jobs and requests per
minute (429 with Retry-After), on SQLite and PostgreSQL, through the whole gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from billing_support import FateVendor, check_books, shot
from gateway_harness import Gateway, InstantClock, open_gateway
from sqlalchemy import update
from sqlmodel import col

from gateway.services.auth import Principal
from gateway.services.ratelimit import RateLimiter
from gateway.tables import ApiKey, Tenant

ADMIN = "adm-limits-secret"
RUNWAY = {**shot("ok", 1), "model": "runway/gen4.5"}  # pinned: holds 0.6 USD


@asynccontextmanager
async def limited(
    tmp_path: Path, database_url: str, fate_clip: bytes, **settings: Any
) -> AsyncIterator[Gateway]:
    vendors = {"runway": FateVendor(fate_clip), "kling": FateVendor(fate_clip, name="kling")}
    async with open_gateway(
        tmp_path / "data",
        database_url,
        adapters=vendors,
        clock=InstantClock(),
        admin_key=ADMIN,
        **settings,
    ) as gw:
        yield gw


async def tenant_and_key(
    gw: Gateway, tenant: dict[str, Any], key: dict[str, Any] | None = None, credits: str = "10"
) -> tuple[str, str]:
    admin = gw.auth(ADMIN)
    r = await gw.http.post("/v1/admin/tenants", json={"name": "acme", **tenant}, headers=admin)
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    if credits:
        r = await gw.http.post(
            f"/v1/admin/tenants/{tenant_id}/credits",
            json={"amount_usd": credits, "note": "start"},
            headers={**admin, "Idempotency-Key": "start"},
        )
        assert r.status_code == 201, r.text
    r = await gw.http.post(f"/v1/admin/tenants/{tenant_id}/keys", json=key or {}, headers=admin)
    assert r.status_code == 201, r.text
    return tenant_id, r.json()["key"]


async def post_job(gw: Gateway, key: str, *shots: dict[str, Any]) -> Any:
    return await gw.http.post("/v1/jobs", json={"shots": list(shots)}, headers=gw.auth(key))


async def wait_done(gw: Gateway, key: str, job_id: str) -> dict[str, Any]:
    for _ in range(1000):
        job = (await gw.http.get(f"/v1/jobs/{job_id}", headers=gw.auth(key))).json()
        if job["status"] in ("succeeded", "partially_succeeded", "failed", "canceled"):
            return dict(job)
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not end")


async def test_a_tenants_monthly_budget_counts_open_holds_and_gives_back_releases(
    tmp_path, database_url, fate_clip
) -> None:
    async with limited(tmp_path, database_url, fate_clip) as gw:
        tenant, key = await tenant_and_key(gw, {"monthly_budget_usd": "2"})
        first = await post_job(gw, key, shot("ok", 1))  # holds 1.4 (Kling is on its route)
        assert first.status_code == 201, first.text
        # The first job may still hold its 1.4: a second one would pass 2 USD.
        await wait_done(gw, key, first.json()["id"])  # captures 0.6, releases 0.8
        second = await post_job(gw, key, shot("hang", 2))  # 0.6 + 1.4 = 2.0: within
        assert second.status_code == 201, second.text
        third = await post_job(gw, key, RUNWAY)
        assert third.status_code == 402
        problem = third.json()
        assert problem["code"] == "monthly_budget_exceeded"
        assert problem["limit_scope"] == "tenant" and problem["monthly_budget_usd"] == "2"
        assert problem["month_spent_usd"] == "2" and problem["needed_usd"] == "0.6"
        assert "0 USD left" in problem["detail"]
        balance = (await gw.http.get("/v1/balance", headers=gw.auth(key))).json()
        assert balance["month_spent_usd"] == "2" and balance["monthly_budget_usd"] == "2"

        # The cancel releases the hanging shot's hold: the budget has room again.
        await gw.http.post(f"/v1/jobs/{second.json()['id']}/cancel", headers=gw.auth(key))
        await wait_done(gw, key, second.json()["id"])
        assert (await post_job(gw, key, RUNWAY)).status_code == 201
        # A new month starts from nothing: last month's spend no longer counts.
        with gw.runtime.db.session() as s:
            s.exec(update(Tenant).where(col(Tenant.id) == tenant).values(spend_month=202001))
            s.commit()
        assert (await post_job(gw, key, shot("ok", 3), RUNWAY)).status_code == 201
        check_books(gw.runtime, tenant)


async def test_a_keys_budget_binds_that_key_even_on_an_unlimited_tenant(
    tmp_path, database_url, fate_clip
) -> None:
    async with limited(tmp_path, database_url, fate_clip, executor="none") as gw:
        tenant, key = await tenant_and_key(
            gw, {"prepaid": False}, {"monthly_budget_usd": "1"}, credits=""
        )
        assert (await post_job(gw, key, RUNWAY)).status_code == 201
        refused = await post_job(gw, key, RUNWAY)  # 0.6 + 0.6 > 1
        assert refused.status_code == 402, refused.text
        assert refused.json()["code"] == "monthly_budget_exceeded"
        assert refused.json()["limit_scope"] == "key"
        r = await gw.http.post(f"/v1/admin/tenants/{tenant}/keys", json={}, headers=gw.auth(ADMIN))
        other = r.json()["key"]
        assert (await post_job(gw, other, RUNWAY)).status_code == 201  # its own key: no budget
        with gw.runtime.db.session() as s:
            row = s.get(ApiKey, r.json()["id"])
            assert row is not None and row.month_spent_micros is None  # uncounted key


async def test_concurrent_jobs_are_limited_per_tenant_and_per_key_and_freed_when_they_end(
    tmp_path, database_url, fate_clip
) -> None:
    async with limited(tmp_path, database_url, fate_clip) as gw:
        tenant, key = await tenant_and_key(gw, {"max_concurrent_jobs": 2})
        running = [await post_job(gw, key, shot("hang", n)) for n in range(2)]
        assert [r.status_code for r in running] == [201, 201]
        refused = await post_job(gw, key, shot("ok", 3))
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
        problem = refused.json()
        assert problem["code"] == "too_many_jobs" and problem["max_concurrent_jobs"] == 2
        assert problem["limit_scope"] == "tenant"
        job_id = running[0].json()["id"]
        await gw.http.post(f"/v1/jobs/{job_id}/cancel", headers=gw.auth(key))
        await wait_done(gw, key, job_id)
        assert (await post_job(gw, key, shot("ok", 4))).status_code == 201

        # A key's own limit, on a tenant without one.
        other, one = await tenant_and_key(gw, {}, {"max_concurrent_jobs": 1})
        hanging = await post_job(gw, one, shot("hang", 5))
        assert hanging.status_code == 201
        refused = await post_job(gw, one, shot("ok", 6))
        assert refused.status_code == 429 and refused.json()["limit_scope"] == "key"
        await gw.http.post(f"/v1/jobs/{hanging.json()['id']}/cancel", headers=gw.auth(one))
        await wait_done(gw, one, hanging.json()["id"])
        assert (await post_job(gw, one, shot("ok", 7))).status_code == 201
        check_books(gw.runtime, other)
        check_books(gw.runtime, tenant)


async def test_concurrent_submits_never_pass_the_job_limit(tmp_path, database_url, fate_clip):
    """20 submits at once against a limit of 5 (no executor: nothing ends)."""
    async with limited(tmp_path, database_url, fate_clip, executor="none") as gw:
        tenant, key = await tenant_and_key(gw, {"max_concurrent_jobs": 5})
        codes = await asyncio.gather(*(post_job(gw, key, RUNWAY) for _ in range(20)))
        statuses = [r.status_code for r in codes]
        assert statuses.count(201) == 5 and statuses.count(429) == 15
        with gw.runtime.db.session() as s:
            row = s.get(Tenant, tenant)
            assert row is not None and row.active_jobs == 5
            assert row.month_spent_micros == 5 * 600_000
        check_books(gw.runtime, tenant)


async def test_requests_per_minute_per_key_and_per_tenant(
    tmp_path, database_url, fate_clip
) -> None:
    async with limited(tmp_path, database_url, fate_clip, executor="none") as gw:
        tenant, key = await tenant_and_key(
            gw, {"requests_per_minute": 5}, {"requests_per_minute": 3}
        )
        for _ in range(3):
            assert (await gw.http.get("/v1/jobs", headers=gw.auth(key))).status_code == 200
        r = await gw.http.post("/v1/jobs", json={"shots": [RUNWAY]}, headers=gw.auth(key))
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert r.json()["limit_scope"] == "key" and r.json()["requests_per_minute"] == 3
        assert int(r.headers["Retry-After"]) == 20  # a token every 20 s
        r = await gw.http.post(f"/v1/admin/tenants/{tenant}/keys", json={}, headers=gw.auth(ADMIN))
        other = r.json()["key"]
        for _ in range(2):  # the tenant's 5: 3 taken by the first key
            assert (await gw.http.get("/v1/balance", headers=gw.auth(other))).status_code == 200
        r = await gw.http.get("/v1/models", headers=gw.auth(other))
        assert r.status_code == 429 and r.json()["limit_scope"] == "tenant"
        assert (await gw.http.get("/v1/jobs", headers=gw.auth())).status_code == 200  # others


def test_a_bucket_refills_at_rpm_per_minute_and_a_refusal_takes_no_token() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    p = Principal(tenant_id="t", key_id="k", key_rpm=2, tenant_rpm=60)
    assert limiter.check(p) is None and limiter.check(p) is None
    throttled = limiter.check(p)
    assert throttled is not None and throttled.scope == "key"
    assert throttled.retry_after_s == 30
    now[0] = 29.0
    assert limiter.check(p) is not None
    now[0] = 30.0
    assert limiter.check(p) is None
    assert limiter.check(Principal(tenant_id="t", key_id="k2")) is None  # no limit


async def test_a_budget_set_later_counts_the_months_spend_so_far(
    tmp_path, database_url, fate_clip
) -> None:
    async with limited(tmp_path, database_url, fate_clip) as gw:
        tenant, key = await tenant_and_key(gw, {"prepaid": False}, credits="")
        job = await post_job(gw, key, RUNWAY)  # unmetered: captured, nothing counted
        await wait_done(gw, key, job.json()["id"])
        r = await gw.http.patch(
            f"/v1/admin/tenants/{tenant}",
            json={"monthly_budget_usd": "1"},
            headers=gw.auth(ADMIN),
        )
        assert r.status_code == 200, r.text
        refused = await post_job(gw, key, RUNWAY)  # 0.6 spent + 0.6 > 1
        assert refused.status_code == 402 and refused.json()["month_spent_usd"] == "0.6"
