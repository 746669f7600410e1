"""Stream a large object into a store and back, and report the peak RSS growth of doing so.

Run in its own process by the storage tests so the number is this put's alone:

    python tests/gateway/storage_memory.py file DIR --mb 200
    python tests/gateway/storage_memory.py s3 BUCKET --mb 200   # AWS_* settings in the env

Prints one JSON object: bytes, sha256 (of what was generated), the store's sha256 for the
put and for the read back, and for each the seconds taken and the peak RSS growth in MiB
(Linux: the kernel's peak, VmHWM, reset before each step, minus VmRSS at its start).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from gateway.storage import FileStore, ObjectStore, S3Store

MiB = 1 << 20
CHUNK = 256 * 1024  # what a vendor download hands over at a time


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakRss:
    """Peak RSS growth over a block, in MiB, from the kernel's own high-water mark."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.start_kib = _status_kib("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.growth_mib = (_status_kib("VmHWM") - self.start_kib) / 1024


async def generated(total: int, digest: hashlib._Hash) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for i in range(total // CHUNK):
        chunk = i.to_bytes(8, "big") + block[8:]  # every chunk differs
        digest.update(chunk)
        yield chunk


async def run(store: ObjectStore, total: int) -> dict[str, object]:
    await store.put_bytes("warm/up", b"x")  # lazy imports, connection pool, worker threads
    async for _ in store.get_stream("warm/up"):
        pass
    expected = hashlib.sha256()
    with PeakRss() as put:
        stored = await store.put_stream(
            "big/video.mp4", generated(total, expected), content_type="video/mp4"
        )
    readback, size = hashlib.sha256(), 0
    with PeakRss() as get:
        async for chunk in store.get_stream("big/video.mp4"):
            readback.update(chunk)
            size += len(chunk)
    await store.delete("big/video.mp4")
    return {
        "bytes": stored.bytes,
        "read_bytes": size,
        "sha256": expected.hexdigest(),
        "stored_sha256": stored.sha256,
        "read_sha256": readback.hexdigest(),
        "put_seconds": round(put.seconds, 2),
        "put_rss_growth_mib": round(put.growth_mib, 1),
        "get_seconds": round(get.seconds, 2),
        "get_rss_growth_mib": round(get.growth_mib, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["file", "s3"])
    parser.add_argument("where", help="a folder (file) or a bucket (s3)")
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    store: ObjectStore = FileStore(args.where) if args.kind == "file" else S3Store(args.where)
    print(json.dumps(asyncio.run(run(store, args.mb * MiB))))


if __name__ == "__main__":
    main()
