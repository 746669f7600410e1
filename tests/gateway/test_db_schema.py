"""An older database gains the nullable columns a newer release adds, rows intact."""

from __future__ import annotations

from sqlalchemy import inspect, text

from gateway.db import Database
from gateway.tables import Event


def columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def test_missing_nullable_columns_are_added_in_place(database_url: str) -> None:
    db = Database(database_url)
    db.create_all()
    with db.engine.begin() as conn:  # what a database from before `step` looks like
        conn.execute(text('ALTER TABLE "attempt" DROP COLUMN "step"'))
        conn.execute(text('ALTER TABLE "attempt" DROP COLUMN "total_steps"'))
    with db.session() as s:
        s.add(Event(job_id="job_1", type="job.created", data={}))
        s.commit()
    assert "step" not in columns(db, "attempt")

    restarted = Database(database_url)
    restarted.create_all()  # the next start

    assert {"step", "total_steps"} <= columns(restarted, "attempt")
    with restarted.engine.connect() as conn:
        assert conn.execute(text("SELECT job_id FROM event")).scalars().all() == ["job_1"]
    for d in (db, restarted):
        d.engine.dispose()
