"""Gateway overhead per shot, and jobs accepted per second.

1. Overhead: N single-shot preview jobs run one after another through the embedded
   gateway (SDK → API → engine → local backend → storage). For each, the gateway's own
   overhead is the end-to-end time (the POST starts → the gateway records the job as
   succeeded) minus the time the local backend spent rendering (its generation's
   started → finished). What a polling client sees is printed too.
2. Accept rate: a real server (`reelgate serve`, `REELGATE_EXECUTOR=none`, uvicorn on
   loopback; on PostgreSQL with `--workers 2`) answers concurrent `POST /v1/jobs` from a
   minimal keep-alive HTTP/1.1 client, on SQLite and on PostgreSQL.

    python benchmarks/embedded_overhead.py [--shots 40] [--posts 1500] [--pg URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder leads sys.path, and benchmarks/local_backend.py would
# shadow the local_backend package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import datetime

import httpx

from gateway.app import create_app
from gateway.settings import Settings
from reelgate import AsyncClient

SHOT = {
    "kind": "broll",
    "prompt": {"subject": "a paper boat", "action": "drifts down a gutter", "camera": "static"},
    "duration_s": 0.5,
    "fps": 12,
    "resolution": "360p",
}


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def overhead(n: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    app = create_app(Settings(data_dir=data, poll_interval_s=0.01), announce_key=False)
    async with app.router.lifespan_context(app):
        rt = app.state.runtime
        backend = rt.registry.get("local")
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
            AsyncClient(base_url="http://gw", api_key=rt.bootstrap_key, http_client=http) as client,
        ):
            overheads, totals, seen = [], [], []
            for i in range(n + 3):
                t0 = time.time()
                job = await client.jobs.create({"shots": [{**SHOT, "seed": i}]})
                job = await client.jobs.wait(job, poll_interval=0.002)
                t_seen = time.time()
                assert job.status == "succeeded", job
                # The gateway's clock: the POST started (t0) → the job recorded as done.
                total = job.updated_at.timestamp() - t0
                record = await backend.generation(job.shots[0].attempts[-1].backend_job_id)
                started = datetime.fromisoformat(record["started_at"])
                render = (datetime.fromisoformat(record["finished_at"]) - started).total_seconds()
                if i >= 3:  # warm-up: imports, first ffmpeg spawn, caches
                    overheads.append((total - render) * 1000)
                    totals.append(total * 1000)
                    seen.append((t_seen - t0) * 1000)
    shutil.rmtree(data, ignore_errors=True)
    print(f"overhead per shot over {n} preview shots (POST → job done, minus backend render):")
    print(
        f"  p50 {pct(overheads, 50):.1f} ms   p95 {pct(overheads, 95):.1f} ms"
        f"   (end-to-end p50 {pct(totals, 50):.1f} ms; render p50 "
        f"{pct(totals, 50) - pct(overheads, 50):.1f} ms)   target p50 <= 25 ms"
    )
    print(
        f"  seen by an SDK client polling GET /v1/jobs/{{id}}: p50 {pct(seen, 50):.1f} ms"
        " (adds the polling interval; the SDK waits at least 0.1 s between polls)"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    start = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}"
    return f"{start}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
    length = None
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError("response without Content-Length")
    return status, await reader.readexactly(length)


async def post_loop(
    port: int, request: bytes, queue: asyncio.Queue[int], codes: dict[int, int]
) -> None:
    """Send ``request`` over one keep-alive HTTP/1.1 connection until ``queue`` is empty.

    A minimal client on purpose: it shares this machine's cores with the server, and
    httpx spends about 2 ms of CPU per request, as much as the server's whole work, so
    with it the number measured the client as much as the gateway. Every response is
    still read in full, and every 201 must carry a job.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not queue.empty():
            queue.get_nowait()
            writer.write(request)
            status, body = await read_response(reader)
            if status == 201 and not json.loads(body)["id"].startswith("job_"):
                raise RuntimeError(f"201 without a job: {body[:200]!r}")
            codes[status] = codes.get(status, 0) + 1
    finally:
        writer.close()
        await writer.wait_closed()


async def post_all(port: int, request: bytes, posts: int, concurrency: int) -> dict[int, int]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(posts):
        queue.put_nowait(i)
    codes: dict[int, int] = {}
    await asyncio.gather(*(post_loop(port, request, queue, codes) for _ in range(concurrency)))
    return codes


async def accept_rate(
    label: str, database_url: str | None, posts: int, concurrency: int, workers: int = 1
) -> None:
    data = Path(tempfile.mkdtemp(prefix="rg-bench-"))
    port = free_port()
    env = {**os.environ, "REELGATE_EXECUTOR": "none", "REELGATE_DATA_DIR": str(data)}
    if database_url:
        env["REELGATE_DATABASE_URL"] = database_url
    serve = ["serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *serve],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(200):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        key = (data / "api-key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        # Serialized once: the server still parses and validates every request.
        body = json.dumps({"shots": [SHOT, {**SHOT, "kind": "action"}]}).encode()
        request = post_request(port, "/v1/jobs", body, headers)
        warm = await post_all(port, request, 4 * concurrency, concurrency)
        assert warm == {201: 4 * concurrency}, warm
        t0 = time.perf_counter()
        codes = await post_all(port, request, posts, concurrency)
        elapsed = time.perf_counter() - t0
        server = f"{workers} worker{'s' if workers > 1 else ''}"
        print(
            f"  {label:<10} {posts / elapsed:7.0f} jobs/s accepted  ({posts} POSTs, "
            f"{concurrency} concurrent, {server}, statuses {codes})   target >= 300/s"
        )
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def fresh_pg_database(url: str) -> str:
    from sqlalchemy import create_engine, text

    name = f"rg_bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shots", type=int, default=40)
    ap.add_argument("--posts", type=int, default=1500)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument(
        "--pg",
        default=os.environ.get(
            "REELGATE_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = ap.parse_args()
    asyncio.run(overhead(args.shots))
    print("POST /v1/jobs accepted per second against a running server (2 shots per job):")
    asyncio.run(accept_rate("SQLite", None, args.posts, args.concurrency))
    pg = fresh_pg_database(args.pg)
    asyncio.run(accept_rate("PostgreSQL", pg, args.posts, args.concurrency, workers=2))


if __name__ == "__main__":
    main()
