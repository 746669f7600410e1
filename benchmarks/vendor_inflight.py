"""Vendor jobs in flight in one gateway process, CPU per job and per poll, and how soon
a finished vendor job is seen: with polling alone, then with callbacks.

Two processes on loopback: the vendor emulator (``python -m emulator``, fal's queue
wire, job latency log-normal around ``--latency`` vendor seconds compressed by
``--time-scale``) and the gateway (``reelgate serve``, embedded executor, SQLite,
polling hints scaled by the same factor). This script creates ``--jobs`` one-shot
jobs routed to fal, samples both processes once a second, waits for every job, and
reads:

- in flight: the most vendor jobs running at once, every one held by a gateway task;
- all-in CPU: the gateway process's user+system seconds over the whole run per job
  (the job's POST, the vendor create, its polls, the result fetch, download, store,
  manifest and the job's finish), and vendor requests per job;
- marginal CPU per poll: gateway CPU over status polls in the *quiet window*, the
  seconds after every job was created (plus one polling interval, so first polls are
  done) and before the first one finished, when the gateway does nothing but poll;
- visible after: gateway's job marked done minus the emulator's job finish, p50/p95.

The default run takes about three minutes. To hold ten thousand jobs, make the
latency outlast their creation and stop after the quiet window::

    python benchmarks/vendor_inflight.py --jobs 10000 --latency 900 --sigma 0.1 \\
        --time-scale 1 --mode callbacks --steady-only
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder leads sys.path, and benchmarks/local_backend.py would
# shadow the local_backend package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import itertools
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

SHOT = {"kind": "stylized", "prompt": "paper birds fold themselves and fly", "duration_s": 5}
#: fal's polling hint in vendor seconds (the adapter's default ``poll_interval_s``).
FAL_HINT_S = 5.0
_FINISHED = ("succeeded", "failed", "canceled")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def create_jobs(url: str, key: str, n: int, concurrency: int) -> list[str]:
    ids: list[str] = []
    numbers = iter(range(n))
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        for i in numbers:
            r = await client.post("/v1/jobs", json={"shots": [{**SHOT, "seed": i}]})
            r.raise_for_status()
            ids.append(r.json()["id"])

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300, limits=limits) as c:
        await asyncio.gather(*(worker(c) for _ in range(concurrency)))
    return ids


async def finished_jobs(url: str, key: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    jobs: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/v1/jobs", params=params)).json()
            jobs += page["data"]
            cursor = page.get("next_cursor")
            if not cursor:
                return jobs


@dataclass(frozen=True)
class Sample:
    """Both processes at one instant."""

    t: float
    cpu: float  # gateway
    emulator_cpu: float
    requests: dict[str, int]  # served by the emulator, by kind
    vendor: dict[str, int]  # emulator jobs by state
    done: int  # jobs the gateway has finished

    @property
    def polls(self) -> int:
        """Status polls (the emulator counts fal's result fetches as polls too)."""
        return self.requests.get("poll", 0) - self.requests.get("result", 0)

    @property
    def in_flight(self) -> int:
        return self.vendor.get("queued", 0) + self.vendor.get("running", 0)

    def settled(self) -> tuple[int, ...]:
        """Everything that moves when a job finishes, anywhere."""
        finished = sum(self.vendor.get(s, 0) for s in _FINISHED)
        return (finished, self.done, *(self.requests.get(k, 0) for k in ("result", "download")))


class Sampler(threading.Thread):
    """Samples the gateway's CPU, the emulator's counters and the database every ``every`` s.

    The database is read directly (read-only): asking the API would cost gateway CPU.
    """

    def __init__(self, emu_url: str, gateway: int, emulator: int, db: Path, every: float) -> None:
        super().__init__(daemon=True)
        self.samples: list[Sample] = []
        self._halt = threading.Event()
        self._emu_url, self._pids, self._db, self._every = emu_url, (gateway, emulator), db, every

    def take(self, client: httpx.Client, db: sqlite3.Connection) -> Sample:
        stats = client.get(f"{self._emu_url}/_emulator/stats").json()
        (done,) = db.execute(
            "SELECT count(*) FROM job WHERE status IN ('succeeded', 'failed', 'canceled')"
        ).fetchone()
        sample = Sample(
            time.monotonic(), cpu_seconds(self._pids[0]), cpu_seconds(self._pids[1]),
            stats["requests"], stats["jobs"], done,
        )  # fmt: skip
        self.samples.append(sample)
        return sample

    def run(self) -> None:
        db = sqlite3.connect(f"file:{self._db}?mode=ro", uri=True)
        with httpx.Client(timeout=60) as client:
            while not self._halt.is_set():
                self.take(client, db)
                self._halt.wait(self._every)
        db.close()

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass(frozen=True)
class Window:
    seconds: float
    cpu: float
    emulator_cpu: float
    polls: int
    in_flight: int


def quiet_window(samples: list[Sample], jobs: int, settle_s: float) -> Window | None:
    """The sampling intervals in which the gateway only polled: every vendor create
    done at least ``settle_s`` before (first polls and their one state write done), and
    no job finishing at the vendor or the gateway, no result fetch, no download."""
    created = next((s.t for s in samples if s.requests.get("create", 0) >= jobs), None)
    if created is None:
        return None
    seconds = cpu = emulator_cpu = 0.0
    polls, held = 0, 0
    for a, b in itertools.pairwise(samples):
        if a.t < created + settle_s or a.settled() != b.settled():
            continue
        seconds, cpu, polls = seconds + b.t - a.t, cpu + b.cpu - a.cpu, polls + b.polls - a.polls
        emulator_cpu += b.emulator_cpu - a.emulator_cpu
        held = max(held, b.in_flight)
    return Window(seconds, cpu, emulator_cpu, polls, held) if polls else None


@dataclass(frozen=True)
class Run:
    jobs: int
    latency: float
    sigma: float
    scale: float
    callbacks: bool
    concurrency: int
    steady_only: bool
    timeout: float


def run(cfg: Run) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rg-inflight-"))
    emu_port, gw_port = free_port(), free_port()
    emu_url, gw_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(emu_port), "--latency",
         str(cfg.latency), "--sigma", str(cfg.sigma), "--time-scale", str(cfg.scale),
         "--seed", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {
        **os.environ,
        "REELGATE_FAL_API_KEY": "bench-key",
        "REELGATE_FAL_BASE_URL": f"{emu_url}/fal",
        "REELGATE_FAL_PRICING_URL": "",
        "REELGATE_POLL_SCALE": f"{1 / cfg.scale:g}",
        "REELGATE_MAX_CONCURRENT_SHOTS": str(cfg.jobs + 10),
        "REELGATE_POLL_INTERVAL_S": "5",
    }
    if cfg.callbacks:  # the emulator signs fal's callbacks; the gateway checks them
        env["REELGATE_PUBLIC_BASE_URL"] = gw_url
        env["REELGATE_FAL_JWKS_URL"] = f"{emu_url}/fal/.well-known/jwks.json"
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(gw_port),
         "--data-dir", str(tmp / "data"), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    settle_s = FAL_HINT_S / cfg.scale + 1.0
    try:
        wait_ready(f"{emu_url}/_emulator/stats", emulator)
        wait_ready(f"{gw_url}/readyz", gateway)
        key = (tmp / "data" / "api-key").read_text().strip()
        sampler = Sampler(emu_url, gateway.pid, emulator.pid, tmp / "data" / "reelgate.db", 1.0)
        sampler.start()
        t0 = time.monotonic()
        ids = asyncio.run(create_jobs(gw_url, key, cfg.jobs, cfg.concurrency))
        created_s = time.monotonic() - t0
        while (last := sampler.samples[-1]).done < len(ids):
            ended = any(last.vendor.get(s, 0) for s in _FINISHED) or last.t > t0 + cfg.timeout
            if cfg.steady_only and ended and last.t > t0 + created_s + settle_s + 2:
                break  # the quiet window is over (or as long as allowed)
            if time.monotonic() - t0 > cfg.timeout:
                raise RuntimeError(f"not done after {cfg.timeout:g} s: {last.done}/{len(ids)}")
            time.sleep(0.5)
        sampler.stop()
        wall = time.monotonic() - t0
        samples = sampler.samples
        done = [] if cfg.steady_only else asyncio.run(finished_jobs(gw_url, key))
        emulated = {j["id"]: j for j in httpx.get(f"{emu_url}/_emulator/jobs", timeout=60).json()}
    finally:
        for proc in (gateway, emulator):
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    report(cfg, samples, done, emulated, created_s, wall, settle_s)


def report(
    cfg: Run,
    samples: list[Sample],
    done: list[dict[str, Any]],
    emulated: dict[str, dict[str, Any]],
    created_s: float,
    wall: float,
    settle_s: float,
) -> None:
    first, last = samples[0], samples[-1]
    cpu = last.cpu - first.cpu
    mode = "callbacks + polling" if cfg.callbacks else "polling alone"
    ending = "stopped after the quiet window" if cfg.steady_only else "all done"
    print(f"{mode}: {cfg.jobs} jobs to fal on the emulator, latency median {cfg.latency:g} "
          f"vendor s (sigma {cfg.sigma:g}), time scale {cfg.scale:g}; created in "
          f"{created_s:.1f} s, {ending} in {wall:.1f} s")  # fmt: skip
    print(f"  in flight at once (max)   {max(s.in_flight for s in samples)} vendor jobs, "
          "each held by a task in the one gateway process")  # fmt: skip
    if not cfg.steady_only:
        polls = last.polls - first.polls
        print(f"  all-in gateway CPU        {cpu:.1f} s: {cpu / cfg.jobs * 1000:.1f} ms per job "
              "(POST, create, polls, result, download, store, finish); "
              f"{polls / cfg.jobs:.1f} status polls per job")  # fmt: skip
    window = quiet_window(samples, cfg.jobs, settle_s)
    if window is None:
        print("  marginal CPU per poll     no quiet window: jobs finished before the last one "
              "was created and polled; raise --latency or lower --jobs")  # fmt: skip
    else:
        print(f"  marginal CPU per poll     {window.cpu / window.polls * 1000:.2f} ms gateway, "
              f"{window.emulator_cpu / window.polls * 1000:.2f} ms emulator: "
              f"{window.polls} polls in a {window.seconds:.0f} s quiet window "
              f"({window.polls / window.seconds:.0f}/s, {window.in_flight} jobs held, "
              "nothing created or finished)")  # fmt: skip
    if done:
        seen = []
        for job in done:
            backend_id = job["shots"][0]["attempts"][-1]["backend_job_id"]
            vendor = emulated[backend_id.rpartition("#")[2]]
            finished = datetime.fromisoformat(job["updated_at"].replace("Z", "+00:00"))
            seen.append(finished.timestamp() - vendor["finished"])
        print(f"  visible after the vendor finished: p50 {pct(seen, 50):.2f} s, "
              f"p95 {pct(seen, 95):.2f} s (real seconds)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--latency", type=float, default=60.0, help="median vendor seconds")
    parser.add_argument("--sigma", type=float, default=0.25, help="log-normal spread")
    parser.add_argument("--time-scale", type=float, default=2.0)
    parser.add_argument("--mode", choices=["both", "polling", "callbacks"], default="both")
    parser.add_argument("--concurrency", type=int, default=64, help="client POSTs at once")
    parser.add_argument("--steady-only", action="store_true",
                        help="stop when the quiet window ends; no completion figures")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=900.0, help="real seconds")
    args = parser.parse_args()
    for callbacks in {"both": (False, True), "polling": (False,), "callbacks": (True,)}[args.mode]:
        run(Run(args.jobs, args.latency, args.sigma, args.time_scale, callbacks,
                args.concurrency, args.steady_only, args.timeout))  # fmt: skip


if __name__ == "__main__":
    main()
