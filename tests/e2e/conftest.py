"""A real gateway process: ``reelgate serve`` (uvicorn) on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from e2e_support import free_port


@dataclass
class Server:
    data_dir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return (self.data_dir / "api-key").read_text().strip()

    def start(self, timeout: float = 30) -> None:
        self.log = self.data_dir.parent / f"server-{time.monotonic_ns()}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gateway.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not get ready: {self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@contextmanager
def _servers(data_dir: Path, database_url: str) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(**env: str) -> Server:
        full = {
            **os.environ,
            "REELGATE_DATABASE_URL": database_url,
            "REELGATE_POLL_INTERVAL_S": "0.1",
            **env,
        }
        server = Server(data_dir, full)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for s in servers:
            s.stop()


@pytest.fixture
def server_factory(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Server]]:
    """Servers on SQLite and on PostgreSQL (the test runs once per database)."""
    with _servers(tmp_path / "data", database_url) as make:
        yield make


@pytest.fixture
def sqlite_server_factory(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Servers on SQLite only, for tests whose subject does not depend on the database."""
    with _servers(tmp_path / "data", f"sqlite:///{tmp_path / 'reelgate.db'}") as make:
        yield make
