"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL with the same code."""

from __future__ import annotations

import asyncio
import functools
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection, Dialect, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlmodel import Session, SQLModel, create_engine

from gateway import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

__all__ = ["Database", "as_utc", "can_pipeline", "commit_pipelined"]

P = ParamSpec("P")
T = TypeVar("T")

#: Threads for blocking PostgreSQL work (``Database.run``): enough to keep a few round
#: trips in flight; more only contend for the GIL.
WORKERS = 4


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def can_pipeline(conn: Connection) -> bool:
    """Whether :func:`commit_pipelined` can run on ``conn`` (PostgreSQL through psycopg)."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


def commit_pipelined(
    conn: Connection, steps: Sequence[tuple[ClauseElement, Sequence[Mapping[str, Any]]]]
) -> None:
    """Run each statement once per parameter row, then ``COMMIT``, as one psycopg
    pipeline: one round trip for all of them.

    For a transaction whose last statements lock a hot row: sent one by one, the thread
    must win the GIL back after each answer, and the row stays locked through that wait.
    Any error rolls the whole transaction back and is raised as SQLAlchemy's
    ``DBAPIError`` (``orig``: psycopg's). The caller's session commit is then a no-op.
    """
    import psycopg

    raw = conn.connection.driver_connection
    assert raw is not None
    sql = ""
    try:
        with raw.pipeline(), raw.cursor() as cur:
            for statement, rows in steps:
                if not rows:
                    continue
                sql, defaults = _compiled(statement, conn.dialect, tuple(rows[0]))
                cur.executemany(sql, [{**defaults, **row} for row in rows])
            raw.commit()
    except psycopg.Error as exc:
        raw.rollback()
        raise DBAPIError.instance(sql, None, exc, psycopg.Error) from exc


@functools.lru_cache(maxsize=64)
def _compiled(
    statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """The statement's SQL for ``dialect`` and its bound defaults; compiled once."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    return str(compiled), {k: v for k, v in compiled.params.items() if k not in keys}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _set_result(future: asyncio.Future[T], result: T) -> None:
    if not future.cancelled():
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(error)


class _Workers:
    """Threads that run blocking calls for the event loop; started on first use.

    ``loop.run_in_executor`` with a ``ThreadPoolExecutor`` costs the loop a semaphore,
    a condition and a lock per call, all contended by the workers (~12% of the GIL time
    of a PostgreSQL-backed ``POST /v1/jobs``). Here a call is one put on a
    ``SimpleQueue`` and one ``call_soon_threadsafe`` back.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    async def run(self, call: Callable[[], T]) -> T:
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((loop, future, call))
        return await future

    def _start(self) -> None:
        for n in range(self._size):
            thread = threading.Thread(target=self._serve, name=f"db-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            loop, future, call = item
            try:
                result = call()
            except BaseException as e:
                loop.call_soon_threadsafe(_set_exception, future, e)
            else:
                loop.call_soon_threadsafe(_set_result, future, result)

    def stop(self) -> None:
        for _ in self._threads:
            self._calls.put(None)
        for thread in self._threads:
            thread.join()
        self._threads.clear()


class Database:
    """Owns the engine; hands out short sessions (one per unit of work)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: Engine = create_engine(url, **kwargs)
        self._workers = None if self.is_sqlite else _Workers(WORKERS)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_all(self) -> None:
        SQLModel.metadata.create_all(self.engine)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Add nullable columns a newer release defines to tables an older one created.

        The only schema change reelgate makes in place: additive and nullable, so old
        rows stay valid. Anything else needs a real migration.
        """
        from sqlalchemy import inspect
        from sqlalchemy.schema import CreateColumn

        inspector = inspect(self.engine)
        with self.engine.begin() as conn:
            for table in SQLModel.metadata.sorted_tables:
                have = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name in have:
                        continue
                    if not column.nullable:
                        raise RuntimeError(
                            f"table {table.name} lacks non-nullable column {column.name}: "
                            "this database needs a migration"
                        )
                    ddl = CreateColumn(column).compile(dialect=self.engine.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN {ddl}')

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    async def run(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database work from async code.

        On PostgreSQL each round trip would stall the event loop, so the work runs on a
        small thread pool: the loop keeps parsing and answering other requests while a
        thread waits on the network. SQLite has no network wait and takes one writer at a
        time, so threads would only add hand-offs and lock waits: it runs inline.
        """
        if self._workers is None:
            return work(*args, **kwargs)
        return await self._workers.run(functools.partial(work, *args, **kwargs))

    def ping(self) -> bool:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    def dispose(self) -> None:
        if self._workers is not None:
            self._workers.stop()
        self.engine.dispose()
