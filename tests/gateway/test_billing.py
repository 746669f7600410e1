"""Billing: quote, hold, capture, release — and never charge twice.

The whole gateway runs (SDK over ASGI, executor, database); vendors are scripted by
shot name (``billing_support.FateVendor``), so every money path is exercised for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from billing_support import FateVendor, books, check_books, make_prepaid, shot
from gateway_harness import Gateway, InstantClock, open_gateway
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from gateway import ledger
from gateway.catalog import micros
from gateway.tables import Event, LedgerEntry, Shot, Tenant, utcnow
from reelgate import PaymentRequiredError

RUNWAY_5S = 600_000  # runway/gen4.5: 0.12 USD/s at 720p
KLING_5S = 1_400_000  # kling/kling-v2-1-master: 0.28 USD/s at 1080p


@asynccontextmanager
async def billed(
    tmp_path: Path, database_url: str, fate_clip: bytes, **settings: Any
) -> AsyncIterator[tuple[Gateway, dict[str, FateVendor]]]:
    vendors = {"runway": FateVendor(fate_clip), "kling": FateVendor(fate_clip, name="kling")}
    async with open_gateway(
        tmp_path / "data",
        database_url,
        adapters=vendors,
        clock=InstantClock(),
        **{"max_retries": 2, **settings},
    ) as gw:
        yield gw, vendors


async def test_quote_shows_each_shot_and_route_price_the_hold_and_the_markup(
    tmp_path, database_url, fate_clip
) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        body = {"shots": [shot("ok", 1), shot("ok", 2, kind="draft")]}
        quote = await gw.client.quote(body)
        first = quote.shots[0]
        assert first.model == "runway/gen4.5" and micros(first.estimate_usd) == RUNWAY_5S
        prices = {c.model: c.estimate_usd for c in first.route if c.status != "skipped"}
        assert micros(prices["kling/kling-v2-1-master"]) == KLING_5S
        assert quote.shots[1].estimate_usd == 0
        assert micros(quote.total_usd) == RUNWAY_5S
        assert micros(quote.hold_usd or 0) == KLING_5S  # the dearest model on the route

        make_prepaid(gw.runtime, markup_bps=2000)  # +20%
        marked = await gw.client.quote(body)
        assert micros(marked.shots[0].estimate_usd) == RUNWAY_5S * 12 // 10
        assert micros(marked.hold_usd or 0) == KLING_5S * 12 // 10


async def test_a_short_balance_is_402_with_the_shortfall_and_nothing_is_created(
    tmp_path, database_url, fate_clip
) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        tenant = make_prepaid(gw.runtime, credits_micros=KLING_5S - 1)
        body = {"shots": [shot("ok", 1)]}
        r = await gw.http.post("/v1/jobs", json=body, headers=gw.auth())
        assert r.status_code == 402 and r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["code"] == "insufficient_credits"
        assert problem["shortfall_usd"] == "0.000001" and problem["balance_usd"] == "1.399999"
        with pytest.raises(PaymentRequiredError) as caught:  # the SDK carries the problem
            await gw.client.jobs.create(body)
        assert caught.value.problem is not None
        assert caught.value.problem.shortfall_usd == Decimal("0.000001")
        assert (await gw.client.jobs.list()).data == []
        b = check_books(gw.runtime, tenant)
        assert b.balance == KLING_5S - 1 and b.open_holds == 0


async def test_success_captures_the_catalog_price_and_releases_the_rest(
    tmp_path, database_url, fate_clip
) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        tenant = make_prepaid(gw.runtime, credits_micros=10_000_000)
        job = await gw.client.jobs.create({"shots": [shot("ok", 1)]})
        held = books(gw.runtime, tenant)
        assert held.balance == 10_000_000 - KLING_5S and held.open_holds == KLING_5S
        job = await gw.client.jobs.wait(job, timeout=30)
        assert job.status == "succeeded" and micros(job.cost_usd or 0) == RUNWAY_5S
        assert micros(job.shots[0].cost_usd or 0) == RUNWAY_5S
        b = check_books(gw.runtime, tenant)
        assert b.balance == 10_000_000 - RUNWAY_5S and b.open_holds == 0


async def test_a_vendor_reported_cost_is_captured_with_the_markup(
    tmp_path, database_url, fate_clip
) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, vendors):
        tenant = make_prepaid(gw.runtime, credits_micros=10_000_000, markup_bps=-1000)  # 10% off
        job = await gw.client.jobs.wait(
            await gw.client.jobs.create({"shots": [shot("cost", 1)]}), timeout=30
        )
        assert job.status == "succeeded"
        charged = vendors["runway"].reported_micros * 9 // 10
        assert micros(job.cost_usd or 0) == charged
        assert check_books(gw.runtime, tenant).balance == 10_000_000 - charged
        with gw.runtime.db.session() as s:  # the vendor's units stay on the success event
            event = s.exec(select(Event).where(Event.type == "shot.succeeded")).one()
        assert event.data["vendor_usage"] == {"billable_units": "5"}


async def test_a_failed_shot_releases_its_hold(tmp_path, database_url, fate_clip) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        tenant = make_prepaid(gw.runtime, credits_micros=10_000_000)
        job = await gw.client.jobs.wait(
            await gw.client.jobs.create({"shots": [shot("fatal", 1)]}), timeout=30
        )
        assert job.status == "failed" and job.cost_usd == 0
        b = check_books(gw.runtime, tenant)
        assert b.balance == 10_000_000 and b.captures == 0


async def test_a_shot_that_falls_back_is_charged_once_at_the_fallbacks_price(
    tmp_path, database_url, fate_clip
) -> None:
    """Acceptance 4: the storyboard's second shot fails at Runway, Kling makes it."""
    async with billed(tmp_path, database_url, fate_clip) as (gw, vendors):
        tenant = make_prepaid(gw.runtime, credits_micros=10_000_000)
        body = {"shots": [shot("ok", 1), shot("fail", 2)]}
        job = await gw.client.jobs.wait(await gw.client.jobs.create(body), timeout=30)
        assert job.status == "succeeded"
        second = job.shots[1]
        assert [a.model for a in second.attempts] == ["runway/gen4.5", "kling/kling-v2-1-master"]
        assert micros(second.cost_usd or 0) == KLING_5S
        assert micros(job.cost_usd or 0) == RUNWAY_5S + KLING_5S
        b = check_books(gw.runtime, tenant)
        assert b.captures_per_shot[second.id] == 1
        assert b.balance == 10_000_000 - RUNWAY_5S - KLING_5S
        assert len(vendors["kling"].jobs) == 1


async def test_a_canceled_job_is_charged_only_for_the_shots_that_had_finished(
    tmp_path, database_url, fate_clip
) -> None:
    """Acceptance 4: cancel mid-job; the vendor's running job is canceled too."""
    async with billed(tmp_path, database_url, fate_clip) as (gw, vendors):
        tenant = make_prepaid(gw.runtime, credits_micros=10_000_000)
        job = await gw.client.jobs.create({"shots": [shot("ok", 1), shot("hang", 2)]})
        for _ in range(500):
            job = await gw.client.jobs.get(job.id)
            if job.shots[0].status == "succeeded" and job.shots[1].attempts:
                break
            await asyncio.sleep(0.01)
        job = await gw.client.jobs.cancel(job.id)
        job = await gw.client.jobs.wait(job, timeout=30)
        assert job.status == "canceled"
        assert [s.status for s in job.shots] == ["succeeded", "canceled"]
        assert micros(job.cost_usd or 0) == RUNWAY_5S
        assert vendors["runway"].canceled == [job.shots[1].attempts[-1].backend_job_id]
        b = check_books(gw.runtime, tenant)
        assert b.balance == 10_000_000 - RUNWAY_5S and b.open_holds == 0


async def test_the_database_refuses_a_second_capture_of_a_shot(
    tmp_path, database_url, fate_clip
) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        tenant = make_prepaid(gw.runtime, credits_micros=10_000_000)
        job = await gw.client.jobs.wait(
            await gw.client.jobs.create({"shots": [shot("ok", 1)]}), timeout=30
        )
        before = books(gw.runtime, tenant)
        with gw.runtime.db.session() as s:
            row = s.get(Shot, job.shots[0].id)
            assert row is not None
            with pytest.raises(IntegrityError):  # what a duplicate worker would run into
                ledger.settle_shot(
                    s.connection(),
                    row,
                    charge=1,
                    attempt_id=None,
                    model=row.model,
                    key_id=None,
                    now=utcnow(),
                )
            s.rollback()
        assert books(gw.runtime, tenant) == before


async def test_an_unlimited_tenant_is_never_refused_and_its_spend_is_recorded(
    tmp_path, database_url, fate_clip
) -> None:
    """The bootstrap tenant is unlimited by default: today's behaviour, plus the ledger."""
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        job = await gw.client.jobs.wait(
            await gw.client.jobs.create({"shots": [shot("ok", 1)]}), timeout=30
        )
        assert job.status == "succeeded"
        with gw.runtime.db.session() as s:
            tenant = s.exec(select(Tenant)).one()
            kinds = [e.kind for e in s.exec(select(LedgerEntry))]
        assert not tenant.prepaid and kinds == ["capture"]
        assert tenant.balance_micros == -RUNWAY_5S  # spend beyond credits, on account


async def test_concurrent_submits_take_exactly_what_the_balance_covers(
    tmp_path, database_url, fate_clip
) -> None:
    """Acceptance 2: 200 concurrent submits, credits for 50 → 50 accepted, 150 x 402."""
    async with billed(tmp_path, database_url, fate_clip, executor="none") as (gw, _):
        body = {"shots": [{**shot("ok", 1), "model": "runway/gen4.5"}]}
        tenant = make_prepaid(gw.runtime, credits_micros=50 * RUNWAY_5S)
        seen: list[int] = []
        done = asyncio.Event()

        def balance() -> int:
            with gw.runtime.db.session() as s:
                row = s.get(Tenant, tenant)
                assert row is not None
                s.expire_all()
                return row.balance_micros or 0

        async def watch() -> None:
            while not done.is_set():
                seen.append(await gw.runtime.db.run(balance))
                await asyncio.sleep(0)

        async def submit() -> int:
            r = await gw.http.post("/v1/jobs", json=body, headers=gw.auth())
            return r.status_code

        watcher = asyncio.create_task(watch())
        codes = await asyncio.gather(*(submit() for _ in range(200)))
        done.set()
        await watcher
        assert codes.count(201) == 50 and codes.count(402) == 150
        assert min(seen) >= 0
        b = check_books(gw.runtime, tenant)
        assert b.balance == 0 and b.open_holds == 50 * RUNWAY_5S
        with gw.runtime.db.session() as s:
            entries = list(s.exec(select(LedgerEntry).order_by(LedgerEntry.id)))  # type: ignore[arg-type]
        running = 0
        for e in entries:  # the balance after every entry, in the order they were written
            running += e.amount_micros if e.kind == "credit" else -e.amount_micros
            assert running >= 0
        assert len((await gw.client.jobs.list(limit=100)).data) == 50


async def test_balance_and_usage_by_model_day_and_key_as_json_and_csv(
    tmp_path, database_url, fate_clip
) -> None:
    async with billed(tmp_path, database_url, fate_clip) as (gw, _):
        make_prepaid(gw.runtime, credits_micros=10_000_000)
        body = {"shots": [shot("ok", 1), shot("fail", 2)]}
        job = await gw.client.jobs.wait(await gw.client.jobs.create(body), timeout=30)
        assert job.status == "succeeded"
        balance = (await gw.http.get("/v1/balance", headers=gw.auth())).json()
        assert balance["prepaid"] is True and balance["held_usd"] == "0"
        assert balance["credits_usd"] == "10" and balance["captured_usd"] == "2"
        assert balance["balance_usd"] == "8"
        by_model = (await gw.http.get("/v1/usage?group_by=model", headers=gw.auth())).json()
        assert [(r["group"], r["shots"], r["cost_usd"]) for r in by_model["rows"]] == [
            ("kling/kling-v2-1-master", 1, "1.4"),
            ("runway/gen4.5", 1, "0.6"),
        ]
        by_day = (await gw.http.get("/v1/usage?group_by=day", headers=gw.auth())).json()
        assert len(by_day["rows"]) == 1 and by_day["total_usd"] == "2"
        r = await gw.http.get("/v1/usage?group_by=key", headers={**gw.auth(), "Accept": "text/csv"})
        assert r.headers["content-type"].startswith("text/csv")
        lines = r.text.splitlines()
        assert lines[0] == "key,shots,cost_usd" and lines[1].endswith(",2,2")
        empty = await gw.http.get(
            "/v1/usage?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", headers=gw.auth()
        )
        assert empty.json()["rows"] == [] and empty.json()["total_usd"] == "0"
