"""Shared fixtures: databases (SQLite always, PostgreSQL when REELGATE_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

PG_URL = os.environ.get("REELGATE_TEST_DATABASE_URL")


def _pg_schema_url() -> Iterator[str]:
    """A throwaway schema per test: cheap isolation on one shared database."""
    assert PG_URL is not None
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Run a database-backed test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'reelgate.db'}"
        return
    if not PG_URL:
        pytest.skip("set REELGATE_TEST_DATABASE_URL to run the PostgreSQL variant")
    yield from _pg_schema_url()
