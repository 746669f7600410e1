"""Vendor jobs in flight in one gateway process, CPU per job and per poll, and how soon
a finished vendor job is seen: with polling alone, then with callbacks.

Two processes on loopback: the vendor emulator (``python -m emulator``, fal's queue
wire, job latency log-normal around ``--latency`` vendor seconds compressed by
``--time-scale``) and the gateway (``reelgate serve``, embedded executor, SQLite,
polling hints scaled by the same factor). This script creates ``--jobs`` one-shot
jobs routed to fal, waits for all of them, and reads:

- in flight: the most vendor jobs running at once (from the emulator's timestamps);
- CPU: the gateway process's user+system seconds over the run, per job and per
  vendor request (polls and result fetches, counted by the emulator);
- visible after: gateway's job marked done minus the emulator's job finish, p50/p95.

    python benchmarks/vendor_inflight.py [--jobs 1000] [--latency 30] [--time-scale 10]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder leads sys.path, and benchmarks/local_backend.py would
# shadow the local_backend package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from typing import Any

import httpx

SHOT = {"kind": "stylized", "prompt": "paper birds fold themselves and fly", "duration_s": 5}


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


async def create_jobs(url: str, key: str, n: int, concurrency: int = 32) -> list[str]:
    ids: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            r = await client.post("/v1/jobs", json={"shots": [{**SHOT, "seed": i}]})
            r.raise_for_status()
            ids.append(r.json()["id"])

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
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


def max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    return peak


def run(jobs: int, latency: float, sigma: float, scale: float, callbacks: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="rg-inflight-"))
    emu_port, gw_port = free_port(), free_port()
    emu_url, gw_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{gw_port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", str(emu_port), "--latency", str(latency),
         "--sigma", str(sigma), "--time-scale", str(scale), "--seed", "7"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {
        **os.environ,
        "REELGATE_FAL_API_KEY": "bench-key",
        "REELGATE_FAL_BASE_URL": f"{emu_url}/fal",
        "REELGATE_FAL_PRICING_URL": "",
        "REELGATE_POLL_SCALE": f"{1 / scale:g}",
        "REELGATE_MAX_CONCURRENT_SHOTS": str(jobs + 10),
        "REELGATE_POLL_INTERVAL_S": "5",
    }
    if callbacks:
        env["REELGATE_PUBLIC_BASE_URL"] = gw_url
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(gw_port),
         "--data-dir", str(tmp / "data"), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(f"{emu_url}/_emulator/stats", emulator)
        wait_ready(f"{gw_url}/readyz", gateway)
        key = (tmp / "data" / "api-key").read_text().strip()
        cpu0, t0 = cpu_seconds(gateway.pid), time.monotonic()
        ids = asyncio.run(create_jobs(gw_url, key, jobs))
        created_s = time.monotonic() - t0
        db = sqlite3.connect(f"file:{tmp / 'data' / 'reelgate.db'}?mode=ro", uri=True)
        while True:  # read the database directly: asking the API would cost gateway CPU
            (finished,) = db.execute(
                "SELECT count(*) FROM job WHERE status IN ('succeeded', 'failed')"
            ).fetchone()
            if finished >= len(ids):
                break
            if time.monotonic() - t0 > 900:
                raise RuntimeError(f"not done after 900 s: {finished}/{len(ids)}")
            time.sleep(0.5)
        db.close()
        cpu = cpu_seconds(gateway.pid) - cpu0
        wall = time.monotonic() - t0
        requests = httpx.get(f"{emu_url}/_emulator/stats").json()["requests"]
        done = asyncio.run(finished_jobs(gw_url, key))
        emulated = {j["id"]: j for j in httpx.get(f"{emu_url}/_emulator/jobs").json()}
    finally:
        for proc in (gateway, emulator):
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    seen = []
    for job in done:
        backend_id = job["shots"][0]["attempts"][-1]["backend_job_id"]
        vendor = emulated[backend_id.rpartition("#")[2]]
        gateway_done = datetime.fromisoformat(job["updated_at"].replace("Z", "+00:00")).timestamp()
        seen.append(gateway_done - vendor["finished"])
    spans = [(j["created"], j["finished"]) for j in emulated.values()]
    polls = requests.get("poll", 0)
    mode = "callbacks + polling" if callbacks else "polling alone"
    print(f"{mode}: {jobs} jobs to fal on the emulator, latency median {latency:g} vendor s "
          f"(sigma {sigma:g}), time scale {scale:g}; created in {created_s:.1f} s, all done "
          f"in {wall:.1f} s")  # fmt: skip
    print(f"  in flight at once (max)   {max_overlap(spans)}")
    print(f"  gateway CPU               {cpu:.1f} s: {cpu / jobs * 1000:.1f} ms per job, "
          f"{cpu / max(polls, 1) * 1000:.2f} ms per vendor poll request ({polls} polls, "
          "job creation included)")  # fmt: skip
    print(f"  visible after the vendor finished: p50 {pct(seen, 50):.2f} s, "
          f"p95 {pct(seen, 95):.2f} s (real seconds)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=30.0, help="median vendor seconds")
    parser.add_argument("--sigma", type=float, default=0.5, help="log-normal spread")
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--mode", choices=["both", "polling", "callbacks"], default="both")
    args = parser.parse_args()
    for callbacks in {"both": (False, True), "polling": (False,), "callbacks": (True,)}[args.mode]:
        run(args.jobs, args.latency, args.sigma, args.time_scale, callbacks)


if __name__ == "__main__":
    main()
