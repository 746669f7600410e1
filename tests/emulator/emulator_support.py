"""What the emulator tests share: a clock the test moves, and an app that reads it."""

from __future__ import annotations

from fastapi import FastAPI

from emulator.app import create_app
from emulator.core import Knobs


class Clock:
    """Vendor time that moves only when a test sets ``now``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stepped(knobs: Knobs) -> tuple[FastAPI, Clock]:
    """An emulator app on a :class:`Clock` of its own."""
    app = create_app(knobs)
    clock = Clock()
    app.state.emulator.clock = clock
    return app, clock
