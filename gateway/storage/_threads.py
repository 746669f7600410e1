"""Work on a worker thread that a cancel of the caller neither leaks nor leaves running."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")


async def opened_in_thread(opener: Callable[[], T], close: Callable[[T], object]) -> T:
    """``opener()`` on a worker thread, its result handed back open.

    A cancel cannot stop the thread: whatever it opens after the caller has gone is
    closed as soon as it exists, not left to the garbage collector (which warns, and
    holds a file or a connection until it runs).
    """
    future = asyncio.ensure_future(asyncio.to_thread(opener))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda f: _close_result(f, close))
        raise


def _close_result(future: asyncio.Future[T], close: Callable[[T], object]) -> None:
    if not future.cancelled() and future.exception() is None:
        close(future.result())


async def finished_in_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn`` on a worker thread; a cancel waits for it to end, then is raised.

    For short work with effects (a rename into place, a temp file removed after): the
    caller learns of the cancel only once nothing is still changing behind its back.
    """
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise
