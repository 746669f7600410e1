"""The ObjectStore contract, run twice with the same assertions: against FileStore (a folder)
and against S3Store talking HTTP to moto's S3 server on loopback (``storage_harness``).

What only one store does (FileStore's renames and sidecars, S3's URL options, headers and
multipart bookkeeping) is in ``test_storage_filestore.py`` and ``test_storage_s3.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from storage_harness import Backend, MiB, aws_settings

from gateway import provenance
from gateway.storage import (
    ChecksumMismatch,
    InvalidKey,
    InvalidMetadata,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    shot_output_key,
    shot_provenance_key,
)

KEY = "t1/job_1/shot_1/1/video.mp4"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def read(store: ObjectStore, key: str, **kw: int | None) -> bytes:
    return b"".join([c async for c in store.get_stream(key, **kw)])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_is_an_object_store(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


async def test_streamed_put_hashes_and_heads(store: ObjectStore) -> None:
    parts = [os.urandom(70_000) for _ in range(5)]  # crosses FileStore's 64 KiB batches
    data = b"".join(parts)

    stored = await store.put_stream(
        KEY, chunks(*parts), content_type="video/mp4", metadata={"reelgate-job": "job_1"}
    )

    assert (stored.sha256, stored.bytes) == (sha(data), len(data))
    assert await read(store, KEY) == data
    head = await store.head(KEY)
    assert head == stored
    assert head.content_type == "video/mp4"
    assert head.metadata == {"reelgate-job": "job_1"}
    assert await store.list() == [KEY]


async def test_a_streamed_put_bigger_than_a_part(store: ObjectStore, backend: Backend) -> None:
    """11 MiB: three 5 MiB S3 parts (the last one short), in uneven chunks."""
    data = os.urandom(11 * MiB + 12_345)
    pieces = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]

    stored = await store.put_stream(KEY, chunks(*pieces), metadata={"reelgate-shot": "s1"})

    assert (stored.sha256, stored.bytes) == (sha(data), len(data))
    assert await store.head(KEY) == stored
    assert await read(store, KEY) == data
    assert (
        await read(store, KEY, start=5 * MiB - 3, end=5 * MiB + 3)
        == data[5 * MiB - 3 : 5 * MiB + 4]
    )
    assert backend.leftovers() == 0


async def test_empty_object(store: ObjectStore) -> None:
    stored = await store.put_bytes("t/empty.bin", b"")
    assert (stored.bytes, stored.sha256) == (0, sha(b""))
    assert await read(store, "t/empty.bin") == b""
    assert await store.head("t/empty.bin") == stored
    stored = await store.put_stream("t/empty2.bin", chunks())
    assert (stored.bytes, stored.sha256) == (0, sha(b""))


async def test_put_bytes_bigger_than_a_part(store: ObjectStore) -> None:
    data = os.urandom(6 * MiB)
    stored = await store.put_bytes(KEY, data, content_type="video/mp4")
    assert (stored.sha256, stored.bytes) == (sha(data), len(data))
    assert await store.head(KEY) == stored
    assert await read(store, KEY) == data


async def test_overwrite_is_atomic(store: ObjectStore) -> None:
    await store.put_bytes(KEY, b"old" * 1000)
    release = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"new" * 500
        await release.wait()
        yield b"new" * 500

    put = asyncio.create_task(store.put_stream(KEY, slow()))
    await asyncio.sleep(0.05)
    assert await read(store, KEY) == b"old" * 1000  # a reader never sees half of the new one
    release.set()
    stored = await put

    assert await read(store, KEY) == b"new" * 1000
    assert (await store.head(KEY)) == stored
    assert await store.list() == [KEY]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, b"0123456789"),
        (2, 5, b"2345"),
        (7, None, b"789"),  # open-ended
        (9, 9, b"9"),  # last byte
        (0, 0, b"0"),
        (5, 100, b"56789"),  # end past the object is clamped, like HTTP
        (None, 3, b"0123"),
    ],
)
async def test_range_reads(
    store: ObjectStore, start: int | None, end: int | None, expected: bytes
) -> None:
    await store.put_bytes("t/digits", b"0123456789")
    assert await read(store, "t/digits", start=start, end=end) == expected


@pytest.mark.parametrize(("start", "end"), [(10, None), (10, 12), (5, 4), (-1, 3)])
async def test_unsatisfiable_ranges(store: ObjectStore, start: int, end: int | None) -> None:
    await store.put_bytes("t/digits", b"0123456789")
    with pytest.raises(InvalidRange):
        await read(store, "t/digits", start=start, end=end)


async def test_range_reads_span_chunks(store: ObjectStore) -> None:
    data = os.urandom(300_000)
    await store.put_bytes("t/big", data)
    assert await read(store, "t/big", start=65_535, end=200_001) == data[65_535:200_002]


async def test_missing_object(store: ObjectStore) -> None:
    assert await store.head("t/nope") is None
    assert store.local_path("t/nope") is None
    with pytest.raises(ObjectNotFound):
        await read(store, "t/nope")
    with pytest.raises(ObjectNotFound):
        await read(store, "t/nope", start=0, end=3)
    await store.delete("t/nope")  # deleting what is not there is fine


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../b",
        "a/./b",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "",
        "a//b",
        "a/",
        ".hidden",
        "a/.b.tmp",
        "a/b.meta.json",
        "C:/windows",
        "a\x00b",
    ],
)
async def test_unsafe_keys_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put_bytes(key, b"x")
    with pytest.raises(InvalidKey):
        await store.put_stream(key, chunks(b"x"))
    with pytest.raises(ValueError):
        await store.head(key)
    with pytest.raises(ValueError):
        store.local_path(key)
    with pytest.raises(ValueError):
        await store.delete(key)
    with pytest.raises(ValueError):
        await store.signed_url(key, 60)
    assert await store.list() == []


async def test_list_head_delete(store: ObjectStore) -> None:
    for key in ["t1/j1/a/1/video.mp4", "t1/j1/final.mp4", "t1/j2/final.mp4", "t2/j1/final.mp4"]:
        await store.put_bytes(key, key.encode())

    assert await store.list("t1/") == ["t1/j1/a/1/video.mp4", "t1/j1/final.mp4", "t1/j2/final.mp4"]
    assert await store.list("t1/j1") == ["t1/j1/a/1/video.mp4", "t1/j1/final.mp4"]
    assert await store.list("t1/j1/f") == ["t1/j1/final.mp4"]
    assert len(await store.list()) == 4
    assert await store.list("t9/") == []
    with pytest.raises(InvalidKey):
        await store.list("../")

    await store.delete("t1/j1/final.mp4")
    assert await store.head("t1/j1/final.mp4") is None
    assert await store.list("t1/j1") == ["t1/j1/a/1/video.mp4"]


async def test_failed_put_leaves_nothing(store: ObjectStore, backend: Backend) -> None:
    async def broken() -> AsyncIterator[bytes]:
        for _ in range(3):  # 12 MiB: S3 has sent two parts of a multipart upload
            yield os.urandom(4 * MiB)
        raise ConnectionError("vendor hung up")

    with pytest.raises(ConnectionError):
        await store.put_stream(KEY, broken())

    assert await store.head(KEY) is None
    assert await store.list() == []
    assert backend.leftovers() == 0  # no temp file, no unfinished upload


async def test_failed_overwrite_keeps_the_old_object(store: ObjectStore) -> None:
    old = await store.put_bytes(KEY, b"old")

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MiB)
        yield os.urandom(6 * MiB)
        raise ConnectionError("vendor hung up")

    with pytest.raises(ConnectionError):
        await store.put_stream(KEY, broken())

    assert await store.head(KEY) == old
    assert await read(store, KEY) == b"old"
    assert await store.list() == [KEY]


async def test_canceled_put_leaves_nothing(store: ObjectStore, backend: Backend) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield b"x" * MiB
            await asyncio.sleep(0.001)

    put = asyncio.create_task(store.put_stream(KEY, endless()))
    while sent < 12:  # past two 5 MiB parts
        await asyncio.sleep(0.01)
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put

    assert await store.head(KEY) is None
    assert backend.leftovers() == 0


@pytest.mark.parametrize("after_ms", [0, 1, 3, 10, 30])
async def test_put_file_canceled_at_any_point_leaves_nothing(
    store: ObjectStore, backend: Backend, tmp_path: Path, after_ms: int
) -> None:
    """Nothing, or the whole object; no temp file, no upload left unfinished. Including
    while S3's multipart upload is still being created in the background."""
    src, data = tmp_path / "spooled.mp4", os.urandom(11 * MiB)
    src.write_bytes(data)
    put = asyncio.create_task(store.put_file(KEY, src))
    await asyncio.sleep(after_ms / 1000)
    put.cancel()
    [outcome] = await asyncio.gather(put, return_exceptions=True)

    if isinstance(outcome, asyncio.CancelledError) and await store.head(KEY) is None:
        assert await store.list() == []
    else:  # it finished first, or a rename or a complete was under way: then it is whole
        assert await read(store, KEY) == data
    assert backend.leftovers() == 0


async def test_recover_cleans_up_interrupted_puts(store: ObjectStore, backend: Backend) -> None:
    await store.put_bytes("t/j/s/1/video.mp4", b"done")
    backend.leave_unfinished_put("t/j/s/2/video.mp4")
    assert backend.leftovers() == 1

    assert await store.recover() == 1

    assert backend.leftovers() == 0
    assert await store.list("t/") == ["t/j/s/1/video.mp4"]
    assert await read(store, "t/j/s/1/video.mp4") == b"done"


async def test_put_file(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "spooled.mp4"
    data = os.urandom(11 * MiB)  # several S3 parts
    src.write_bytes(data)
    digest = sha(data)

    stored = await store.put_file(
        KEY, src, sha256=digest, content_type="video/mp4", metadata={"job": "job_1"}
    )

    assert (stored.sha256, stored.bytes) == (digest, len(data))
    assert await read(store, KEY) == data
    assert await store.head(KEY) == stored


async def test_put_file_without_a_hash_computes_it(store: ObjectStore, tmp_path: Path) -> None:
    src = tmp_path / "spooled.mp4"
    src.write_bytes(b"abc" * 1000)
    stored = await store.put_file(KEY, src)
    assert stored.sha256 == sha(b"abc" * 1000)
    assert (await store.head(KEY)) == stored


# -- metadata and the provenance manifest next to the video -------------------------------

MANIFEST = {
    "schema": "reelgate.provenance/v1",
    "kind": "shot",
    "tenant": "t1",
    "ids": {"job": "job_1", "shot": "shot_1", "attempt": "att_1"},
    "model": {"id": "runway/gen4.5"},
    "prompt": {"sent_sha256": "ab" * 32},
    "seed": 42,
    "created_at": "2025-01-01T00:00:00Z",
    "gateway": {"version": "0.1.0"},
}


async def test_metadata_round_trips(store: ObjectStore) -> None:
    metadata = provenance.object_metadata(MANIFEST)
    assert metadata["reelgate-seed"] == "42" and len(metadata) > 8

    await store.put_bytes(KEY, b"video", content_type="video/mp4", metadata=metadata)

    head = await store.head(KEY)
    assert head is not None and head.metadata == metadata and head.content_type == "video/mp4"


@pytest.mark.parametrize(
    "metadata",
    [
        {"Reelgate-Job": "j"},  # S3 would lowercase the name
        {"reelgate job": "j"},
        {"reelgate-job": "caf\u00e9"},  # headers carry ASCII
        {"reelgate-job": " j"},  # HTTP trims values
        {"reelgate-job": "a\nb"},
        {"sha256": "x"},  # the store's own
        {f"k{i}": "v" * 100 for i in range(20)},  # S3 keeps 2 KB
    ],
)
async def test_metadata_every_store_can_keep(store: ObjectStore, metadata: dict[str, str]) -> None:
    with pytest.raises(InvalidMetadata):
        await store.put_bytes(KEY, b"x", metadata=metadata)
    with pytest.raises(InvalidMetadata):
        await store.put_stream(KEY, chunks(b"x"), metadata=metadata)
    assert await store.list() == []


async def test_manifest_is_stored_beside_the_video(store: ObjectStore) -> None:
    """What the engine stores per shot: the video with key facts as metadata, and the
    manifest as its own object next to it."""
    video = os.urandom(50_000)
    manifest = {**MANIFEST, "output": {"sha256": sha(video), "bytes": len(video)}}
    key = shot_output_key("t1", "job_1", "shot_1", 1)
    prov_key = shot_provenance_key("t1", "job_1", "shot_1", 1)

    stored, _ = await asyncio.gather(
        store.put_stream(
            key,
            chunks(video),
            content_type="video/mp4",
            metadata=provenance.object_metadata(manifest),
        ),
        store.put_bytes(
            prov_key, provenance.canonical_json(manifest), content_type="application/json"
        ),
    )

    assert await store.list("t1/job_1/") == [
        "t1/job_1/shot_1/1/provenance.json",
        "t1/job_1/shot_1/1/video.mp4",
    ]
    sidecar = json.loads(await read(store, prov_key))
    assert sidecar["output"]["sha256"] == stored.sha256 == sha(video)
    head = await store.head(key)
    assert head is not None and head.metadata["reelgate-sha256"] == stored.sha256
    prov_head = await store.head(prov_key)
    assert prov_head is not None and prov_head.content_type == "application/json"


# -- signed URLs --------------------------------------------------------------------------


async def test_signed_url_downloads(store: ObjectStore, backend: Backend) -> None:
    data = os.urandom(100_000)
    await store.put_bytes(KEY, data, content_type="video/mp4")

    url = await store.signed_url(KEY, 300, filename="shot_1.mp4")

    if backend.kind == "file":
        assert url is None  # a folder has no URLs: the gateway streams it
        return
    assert url is not None
    async with httpx.AsyncClient() as http:  # no credentials: the URL is the permission
        whole = await http.get(url)
        part = await http.get(url, headers={"Range": "bytes=10-19"})
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["content-disposition"] == 'inline; filename="shot_1.mp4"'
    assert part.status_code == 206 and part.content == data[10:20]


# -- integrity ------------------------------------------------------------------------------


async def test_an_object_altered_behind_the_store_fails_its_read(
    store: ObjectStore, backend: Backend
) -> None:
    data = os.urandom(3 * MiB + 5)  # several read chunks
    stored = await store.put_bytes(KEY, data, content_type="video/mp4")
    backend.tamper(KEY, offset=MiB + 7)

    head = await store.head(KEY)
    assert head is not None and head.sha256 == stored.sha256  # the record is unchanged...
    received = 0
    with pytest.raises(ChecksumMismatch, match="changed"):
        async for chunk in store.get_stream(KEY):
            received += len(chunk)
    assert received < len(data)  # ...and a reader never gets the whole altered object
    part = await read(store, KEY, start=MiB, end=MiB + 9)  # ranges are not hashed
    assert part != data[MiB : MiB + 10]


async def test_an_object_replaced_behind_the_store_reports_its_real_hash(
    store: ObjectStore, backend: Backend
) -> None:
    await store.put_bytes(KEY, b"first", metadata={"reelgate-job": "j"})
    backend.replace(KEY, b"other")  # same size, no record of these bytes

    head = await store.head(KEY)
    assert head is not None and head.sha256 == sha(b"other")  # never the stale record
    assert await read(store, KEY) == b"other"


# -- a big output: streamed with bounded memory -------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="reads the kernel's peak RSS")
async def test_a_200mb_output_streams_in_bounded_memory(
    backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """In a fresh process: 200 MiB put as a stream of 256 KiB chunks, then read back."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if backend.kind == "s3":
        env |= aws_settings(request.getfixturevalue("moto_endpoint"))
        where = backend.store.bucket
    else:
        where = str(tmp_path / "big")
    script = Path(__file__).with_name("storage_memory.py")
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(script), backend.kind, where, "--mb", "200"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n{backend.kind}: 200 MiB {result}")

    assert result["bytes"] == result["read_bytes"] == 200 * MiB
    assert result["stored_sha256"] == result["read_sha256"] == result["sha256"]
    assert result["put_rss_growth_mib"] < 100
    assert result["get_rss_growth_mib"] < 100
