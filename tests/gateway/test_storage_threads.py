"""A cancel while a worker thread opens something must not leak what it opens."""

from __future__ import annotations

import asyncio
import threading

from gateway.storage._threads import opened_in_thread


class Handle:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


async def test_the_result_is_handed_back_open() -> None:
    handle = await opened_in_thread(Handle, Handle.close)
    assert not handle.closed


async def test_what_a_cancelled_open_creates_is_closed() -> None:
    started, release = threading.Event(), threading.Event()
    made: list[Handle] = []

    def slow_open() -> Handle:
        started.set()
        release.wait(5)
        made.append(Handle())
        return made[-1]

    task = asyncio.create_task(opened_in_thread(slow_open, Handle.close))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    release.set()
    for _ in range(200):  # the thread finishes after the caller has gone
        if made and made[0].closed:
            break
        await asyncio.sleep(0.005)
    assert made and made[0].closed


async def test_an_opener_that_fails_after_a_cancel_closes_nothing() -> None:
    started, release = threading.Event(), threading.Event()
    closed: list[object] = []

    def failing_open() -> Handle:
        started.set()
        release.wait(5)
        raise OSError("disk gone")

    task = asyncio.create_task(opened_in_thread(failing_open, closed.append))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    release.set()
    await asyncio.sleep(0.05)
    assert closed == []
