"""CancelWatch: one read per period for every running shot, and only running jobs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, update

from gateway.db import Database
from gateway.engine.cancels import CancelWatch
from gateway.engine.policy import Clock
from gateway.tables import Job, Tenant


class FixedClock(Clock):
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.create_all()
    with database.session() as s:
        s.add(Tenant(id="ten", name="t"))
        s.flush()
        for job_id, status in [("run", "running"), ("queue", "queued"), ("done", "succeeded")]:
            s.add(Job(id=job_id, tenant_id="ten", status=status, request={}, request_sha256="-"))
        s.commit()
    yield database
    database.dispose()


def flag(db: Database, *job_ids: str) -> None:
    with db.session() as s:
        for job_id in job_ids:
            s.connection().execute(
                update(Job).where(Job.id == job_id).values(cancel_requested=True)
            )
        s.commit()


def count_selects(db: Database) -> list[str]:
    seen: list[str] = []

    def before(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    return seen


def test_a_cancel_is_seen_within_one_period_with_one_read_for_all(db: Database) -> None:
    clock = FixedClock()
    watch = CancelWatch(db, clock, period_s=1.0)
    selects = count_selects(db)
    assert not watch.requested("run")
    flag(db, "run", "queue", "done")
    for _ in range(50):  # many shots polling inside one period: no new read
        assert not watch.requested("run")
    assert len(selects) == 1
    clock.t += 1.0
    assert watch.requested("run") and watch.requested("queue")
    assert not watch.requested("done")  # a finished job has no shot to stop
    assert len(selects) == 2


def test_a_clock_that_steps_back_reads_again(db: Database) -> None:
    clock = FixedClock()
    watch = CancelWatch(db, clock, period_s=1.0)
    assert not watch.requested("run")
    flag(db, "run")
    clock.t -= 3600  # wall time corrected backwards: never trust the old read forever
    assert watch.requested("run")
