"""Submits accepted per second with billing on, and the ratio to billing off.

One real server (`reelgate serve`, `REELGATE_EXECUTOR=none` so the rate measures
submits, not generation; PostgreSQL, `--workers 2`) and two tenants made through the
admin API: a prepaid one with ample credits (billing on: every job holds its quote and
moves the tenant's counters in the conditional UPDATE) and an unlimited one (billing
off: no holds, no counters). Rounds alternate between them (and which goes first), so
both see the same machine; the medians and their ratio are printed. Target: >= 0.8.

    python benchmarks/billing_submit.py [--rounds 6] [--posts 600] [--pg URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/local_backend.py would shadow the local_backend package (see embedded_overhead).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.append(str(Path(__file__).parent))

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import httpx
from embedded_overhead import free_port, fresh_pg_database, post_all, post_request

ADMIN = "bench-admin-key"
# Priced shots (the vendors are "configured" with dummy keys; nothing is ever sent to
# them): one pinned to Runway, one routed with Kling as its fallback, so each job holds.
SHOTS = [
    {"kind": "broll", "prompt": "a paper boat in a gutter", "duration_s": 5,
     "model": "runway/gen4.5"},
    {"kind": "character", "prompt": "a tailor threads a needle", "duration_s": 5},
]  # fmt: skip


async def make_tenant(http: httpx.AsyncClient, name: str, prepaid: bool) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = await http.post("/v1/admin/tenants", json={"name": name, "prepaid": prepaid}, headers=admin)
    r.raise_for_status()
    tenant = r.json()["id"]
    if prepaid:
        r = await http.post(
            f"/v1/admin/tenants/{tenant}/credits",
            json={"amount_usd": "100000", "note": "benchmark"},
            headers={**admin, "Idempotency-Key": "bench"},
        )
        r.raise_for_status()
    r = await http.post(f"/v1/admin/tenants/{tenant}/keys", json={}, headers=admin)
    r.raise_for_status()
    return str(r.json()["key"])


def start_server(data: Path, port: int, database_url: str, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REELGATE_EXECUTOR": "none",
        "REELGATE_DATA_DIR": str(data),
        "REELGATE_DATABASE_URL": database_url,
        "REELGATE_ADMIN_KEY": ADMIN,
        "REELGATE_RUNWAY_API_KEY": "bench",
        "REELGATE_KLING_API_KEY": "bench:bench",
    }
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *serve],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def run(database_url: str, rounds: int, posts: int, concurrency: int, workers: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    port = free_port()
    proc = start_server(data, port, database_url, workers)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(200):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            keys = {
                "billing on": await make_tenant(http, "billed", prepaid=True),
                "billing off": await make_tenant(http, "unlimited", prepaid=False),
            }
        body = json.dumps({"shots": SHOTS}).encode()
        requests = {
            mode: post_request(
                port,
                "/v1/jobs",
                body,
                {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            for mode, key in keys.items()
        }
        for mode, request in requests.items():  # warm-up: imports, pools, caches
            warm = await post_all(port, request, 4 * concurrency, concurrency)
            assert warm == {201: 4 * concurrency}, (mode, warm)
        rates: dict[str, list[float]] = {mode: [] for mode in requests}
        modes = list(requests)
        for n in range(rounds):
            for mode in modes if n % 2 == 0 else modes[::-1]:
                t0 = time.perf_counter()
                codes = await post_all(port, requests[mode], posts, concurrency)
                rate = posts / (time.perf_counter() - t0)
                assert codes == {201: posts}, (mode, codes)
                rates[mode].append(rate)
                print(f"  round {n + 1} {mode:<11} {rate:7.0f} jobs/s")
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)
    on, off = statistics.median(rates["billing on"]), statistics.median(rates["billing off"])
    print(
        f"POST /v1/jobs accepted per second, median of {rounds} rounds x {posts} POSTs "
        f"({concurrency} concurrent, {workers} workers, PostgreSQL, 2 priced shots per job):"
    )
    print(f"  billing on (prepaid, holds) {on:7.0f} jobs/s")
    print(f"  billing off (unlimited)     {off:7.0f} jobs/s")
    print(f"  ratio on/off {on / off:.2f}   target >= 0.8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--posts", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--pg",
        default=os.environ.get(
            "REELGATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = ap.parse_args()
    pg = fresh_pg_database(args.pg)
    asyncio.run(run(pg, args.rounds, args.posts, args.concurrency, args.workers))


if __name__ == "__main__":
    main()
