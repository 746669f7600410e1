"""Statements sent with their COMMIT in one psycopg pipeline (PostgreSQL's submit path)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from psycopg.errors import DivisionByZero, UniqueViolation
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from gateway import limits
from gateway.db import Database, can_pipeline, commit_pipelined
from gateway.tables import Tenant

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.create_all()
    yield database
    database.dispose()


def tenants(db: Database) -> dict[str, int | None]:
    with db.session() as s:
        rows = s.connection().execute(select(col(Tenant.id), col(Tenant.balance_micros)))
        return {row.id: row.balance_micros for row in rows}


def tenant(id_: str, balance: int | None = None) -> dict[str, object]:
    return {"id": id_, "name": id_, "created_at": NOW, "prepaid": True, "balance_micros": balance}


def test_statements_and_the_commit_land_together(db: Database) -> None:
    with db.session() as s:
        conn = s.connection()
        assert can_pipeline(conn)
        commit_pipelined(conn, [(insert(Tenant), [tenant("a"), tenant("b")])])
        s.commit()  # a no-op after the pipeline's COMMIT
    assert tenants(db) == {"a": None, "b": None}


def test_an_error_rolls_back_the_whole_transaction(db: Database) -> None:
    with db.session() as s:
        conn = s.connection()
        conn.execute(insert(Tenant), [tenant("early")])  # before the pipeline, same transaction
        with pytest.raises(DBAPIError) as raised:
            commit_pipelined(conn, [(insert(Tenant), [tenant("x"), tenant("x")])])
        assert isinstance(raised.value.orig, UniqueViolation)
        s.rollback()
    assert tenants(db) == {}


def test_a_refused_admission_aborts_the_commit_sent_with_it(db: Database) -> None:
    with db.session() as s:
        s.connection().execute(insert(Tenant), [tenant("t", 10)])
        s.commit()
    with db.session() as s:
        conn = s.connection()
        too_much = limits.admission_params("t", 11, NOW)
        with pytest.raises(DBAPIError) as raised:
            commit_pipelined(
                conn,
                [(insert(Tenant), [tenant("other")]), (limits.admission(True), [too_much])],
            )
        assert isinstance(raised.value.orig, DivisionByZero)
        s.rollback()
    assert tenants(db) == {"t": 10}  # nothing sent with the refused admission landed
    with db.session() as s:
        commit_pipelined(
            s.connection(), [(limits.admission(True), [limits.admission_params("t", 4, NOW)])]
        )
        s.commit()
    assert tenants(db) == {"t": 6}
