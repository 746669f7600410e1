"""Contract tests never wait for real: a sleep that would is a failure."""

from __future__ import annotations

import asyncio
import time

import pytest

_asleep = asyncio.sleep


@pytest.fixture(autouse=True)
def no_real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adapters own no retries and no waits; any time they need comes from an injected clock."""

    async def asleep(delay: float, result: object = None) -> object:
        assert delay <= 0, f"a contract test slept {delay} s"
        return await _asleep(0, result)

    def sleep(delay: float) -> None:
        raise AssertionError(f"a contract test slept {delay} s")

    monkeypatch.setattr(asyncio, "sleep", asleep)
    monkeypatch.setattr(time, "sleep", sleep)
