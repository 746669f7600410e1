"""A client in its own process, as a gateway's users run one: the benchmarks time the
gateway, not an SDK sharing its interpreter (and its GIL) with the server.

    python benchmarks/_sdk_client.py URL API_KEY

Reads one job body (JSON) per line on stdin; for each, creates the job, waits for it
with the SDK and writes one JSON line: when the create started (``t0``, epoch seconds,
this machine's clock), the job as the server last sent it (``job``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from reelgate import AsyncClient


async def serve(url: str, api_key: str) -> None:
    async with AsyncClient(base_url=url, api_key=api_key) as client:
        for line in sys.stdin:  # blocking, on purpose: nothing else runs here meanwhile
            body = json.loads(line)
            t0 = time.time()
            job = await client.jobs.create(body)
            job = await client.jobs.wait(job, poll_interval=0.002)
            print(json.dumps({"t0": t0, "job": job.model_dump(mode="json")}), flush=True)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
