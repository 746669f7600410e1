"""Acceptance 1: the ledger balances whatever happens, in whatever order.

Hypothesis draws sequences of submit / cancel / duplicate callback / restart / a second
capture attempt / waiting, run against the whole gateway (executor, engine, scripted
vendors that succeed, fail over, fail for good, hiccup, report their own cost or hang).
After every step: balance == credits - captures - open holds, balance >= 0, each
succeeded shot has exactly one capture and no other shot has any; once every job has
ended, no hold is left open.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any

import pytest
from billing_support import FATES, FateVendor, check_books, make_prepaid, shot
from gateway_harness import Gateway, InstantClock, open_gateway
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from gateway import ledger
from gateway.tables import Attempt, Shot, utcnow
from reelgate import PaymentRequiredError

PG_URL = os.environ.get("REELGATE_TEST_DATABASE_URL")
CREDITS = 8_000_000  # a handful of jobs, so 402s happen too

Op = tuple[Any, ...]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.lists(st.sampled_from(FATES), min_size=1, max_size=3)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("callback"), st.integers(0, 7)),
        st.tuples(st.just("capture_again"), st.integers(0, 7)),
        st.tuples(st.just("restart")),
        st.tuples(st.just("wait")),
    ),
    min_size=1,
    max_size=12,
)


class Scenario:
    def __init__(self, data_dir: Path, database_url: str, fate_clip: bytes) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.vendors = {
            "runway": FateVendor(fate_clip),
            "kling": FateVendor(fate_clip, name="kling"),
        }
        self.jobs: list[str] = []
        self.stack = AsyncExitStack()
        self.gw: Gateway | None = None
        self.tenant = ""

    async def open(self) -> Gateway:
        self.gw = await self.stack.enter_async_context(
            open_gateway(
                self.data_dir,
                self.database_url,
                adapters=self.vendors,
                clock=InstantClock(),
                max_retries=2,
            )
        )
        return self.gw

    async def restart(self) -> None:
        await self.stack.aclose()
        self.stack = AsyncExitStack()
        await self.open()

    def job(self, n: int) -> str | None:
        return self.jobs[n % len(self.jobs)] if self.jobs else None

    async def apply(self, op: Op) -> None:
        gw = self.gw
        assert gw is not None
        if op[0] == "submit":
            body = {"shots": [shot(fate, n) for n, fate in enumerate(op[1])]}
            with suppress(PaymentRequiredError):  # a 402 changes nothing
                self.jobs.append((await gw.client.jobs.create(body)).id)
        elif op[0] == "cancel" and (job_id := self.job(op[1])):
            await gw.client.jobs.cancel(job_id)
        elif op[0] == "callback" and (job_id := self.job(op[1])):
            for attempt in self.attempts(job_id):
                for _ in range(2):  # delivered twice
                    r = await gw.http.post(f"/v1/callbacks/runway/{attempt}", content=b"{}")
                    assert r.status_code in (204, 404)
        elif op[0] == "capture_again" and (job_id := self.job(op[1])):
            self.capture_again(job_id)
        elif op[0] == "restart":
            await self.restart()
        elif op[0] == "wait":
            await asyncio.sleep(0.05)

    def attempts(self, job_id: str) -> list[str]:
        assert self.gw is not None
        with self.gw.runtime.db.session() as s:
            shots = select(Shot.id).where(Shot.job_id == job_id)
            return list(s.exec(select(Attempt.id).where(col(Attempt.shot_id).in_(shots))))

    def capture_again(self, job_id: str) -> None:
        """What a second worker finishing the same shot would do: the database says no."""
        assert self.gw is not None
        with self.gw.runtime.db.session() as s:
            done = s.exec(select(Shot).where(Shot.job_id == job_id, Shot.status == "succeeded"))
            for row in list(done):
                with pytest.raises(IntegrityError):
                    ledger.settle_shot(
                        s.connection(),
                        row,
                        charge=row.cost_micros or 0,
                        attempt_id=None,
                        model=row.model,
                        key_id=None,
                        now=utcnow(),
                    )
                s.rollback()

    async def finish(self) -> None:
        gw = self.gw
        assert gw is not None
        for job_id in self.jobs:  # hanging shots end only when canceled
            await gw.client.jobs.cancel(job_id)
        assert gw.runtime.executor is not None
        await gw.runtime.executor.drain()
        for job_id in self.jobs:
            assert (await gw.client.jobs.get(job_id)).terminal


async def play(data_dir: Path, database_url: str, fate_clip: bytes, steps: list[Op]) -> None:
    scenario = Scenario(data_dir, database_url, fate_clip)
    gw = await scenario.open()
    try:
        scenario.tenant = make_prepaid(gw.runtime, credits_micros=CREDITS)
        for op in steps:
            await scenario.apply(op)
            assert scenario.gw is not None
            check_books(scenario.gw.runtime, scenario.tenant)
        await scenario.finish()
        assert scenario.gw is not None
        b = check_books(scenario.gw.runtime, scenario.tenant)
        assert b.open_holds == 0
    finally:
        await scenario.stack.aclose()


def _run(database: str, fate_clip: bytes, steps: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if database == "sqlite":
            asyncio.run(play(Path(tmp) / "data", f"sqlite:///{tmp}/reelgate.db", fate_clip, steps))
            return
        assert PG_URL is not None
        schema = f"p_{secrets.token_hex(6)}"  # a fresh schema per example
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        sep = "&" if "?" in PG_URL else "?"
        try:
            url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
            asyncio.run(play(Path(tmp) / "data", url, fate_clip, steps))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_the_books_balance_after_any_sequence_of_events(database: str, fate_clip: bytes) -> None:
    if database == "postgres" and not PG_URL:
        pytest.skip("set REELGATE_TEST_DATABASE_URL to run the PostgreSQL variant")

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=ops)
    def books_balance(steps: list[Op]) -> None:
        _run(database, fate_clip, steps)

    books_balance()
