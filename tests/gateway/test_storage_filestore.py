from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.storage import (
    FileStore,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    ObjectStore,
    StorageConfigError,
    final_output_key,
    final_provenance_key,
    open_store,
    shot_output_key,
    shot_provenance_key,
)

KEY = "t1/job_1/shot_1/1/video.mp4"


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "objects", chunk_size=1000)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def read(store: FileStore, key: str, **kw: int | None) -> bytes:
    return b"".join([c async for c in store.get_stream(key, **kw)])


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_streamed_put_hashes_and_heads(store: FileStore) -> None:
    parts = [os.urandom(700) for _ in range(5)]  # crosses the 1000-byte write batches
    data = b"".join(parts)

    stored = await store.put_stream(
        KEY, chunks(*parts), content_type="video/mp4", metadata={"reelgate-job": "job_1"}
    )

    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.bytes == len(data)
    assert await read(store, KEY) == data
    head = await store.head(KEY)
    assert head == stored
    assert head.content_type == "video/mp4"
    assert head.metadata == {"reelgate-job": "job_1"}
    assert all_files(store.root) == [KEY, KEY + ".meta.json"]


async def test_empty_object(store: FileStore) -> None:
    stored = await store.put_bytes("t/empty.bin", b"")
    assert stored.bytes == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read(store, "t/empty.bin") == b""


async def test_overwrite_is_atomic(store: FileStore) -> None:
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
    assert all_files(store.root) == [KEY, KEY + ".meta.json"]


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
    store: FileStore, start: int | None, end: int | None, expected: bytes
) -> None:
    await store.put_bytes("t/digits", b"0123456789")
    assert await read(store, "t/digits", start=start, end=end) == expected


@pytest.mark.parametrize(("start", "end"), [(10, None), (10, 12), (5, 4), (-1, 3)])
async def test_unsatisfiable_ranges(store: FileStore, start: int, end: int | None) -> None:
    await store.put_bytes("t/digits", b"0123456789")
    with pytest.raises(InvalidRange):
        await read(store, "t/digits", start=start, end=end)


async def test_range_reads_span_chunks(store: FileStore) -> None:
    data = os.urandom(5000)
    await store.put_bytes("t/big", data)
    assert await read(store, "t/big", start=999, end=3001) == data[999:3002]


async def test_missing_object(store: FileStore) -> None:
    assert await store.head("t/nope") is None
    assert store.local_path("t/nope") is None
    with pytest.raises(ObjectNotFound):
        await read(store, "t/nope")
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
async def test_unsafe_keys_are_rejected(store: FileStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put_bytes(key, b"x")
    with pytest.raises(ValueError):
        await store.head(key)
    with pytest.raises(ValueError):
        store.local_path(key)
    with pytest.raises(ValueError):
        await store.delete(key)
    assert not store.root.exists() or all_files(store.root) == []


async def test_list_head_delete(store: FileStore) -> None:
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
    assert not (store.root / "t1/j1/final.mp4.meta.json").exists()


async def test_local_path_and_signed_url(store: FileStore) -> None:
    await store.put_bytes(KEY, b"video")
    path = store.local_path(KEY)
    assert path is not None and path.read_bytes() == b"video"
    assert await store.signed_url(KEY, 300) is None


async def test_failed_put_leaves_nothing(store: FileStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 3000  # enough to have been written to the temp file
        raise ConnectionError("vendor hung up")

    with pytest.raises(ConnectionError):
        await store.put_stream(KEY, broken())

    assert await store.head(KEY) is None
    assert all_files(store.root) == []  # no object, no temp file, no sidecar


async def test_failed_overwrite_keeps_the_old_object(store: FileStore) -> None:
    old = await store.put_bytes(KEY, b"old")

    async def broken() -> AsyncIterator[bytes]:
        yield b"new" * 1000
        raise ConnectionError("vendor hung up")

    with pytest.raises(ConnectionError):
        await store.put_stream(KEY, broken())

    assert await store.head(KEY) == old
    assert await read(store, KEY) == b"old"
    assert all_files(store.root) == [KEY, KEY + ".meta.json"]


async def test_canceled_put_leaves_nothing(store: FileStore) -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 4000
            await asyncio.sleep(0.001)

    put = asyncio.create_task(store.put_stream(KEY, endless()))
    await asyncio.sleep(0.05)
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put

    assert all_files(store.root) == []


async def test_stale_sidecar_is_not_trusted(store: FileStore) -> None:
    """A crash between the data rename and the sidecar rename: head must rehash."""
    await store.put_bytes(KEY, b"first")
    path = store.root / KEY
    replacement = path.with_name(".replacement")
    replacement.write_bytes(b"other")  # same size, different content and inode
    os.replace(replacement, path)

    head = await store.head(KEY)
    assert head is not None
    assert head.sha256 == hashlib.sha256(b"other").hexdigest()


def test_file_store_is_an_object_store(store: FileStore) -> None:
    assert isinstance(store, ObjectStore)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///srv/objects", "/srv/objects"),
        ("file://localhost/srv/my%20objects", "/srv/my objects"),
        ("file://objects", "DATA/objects"),
        ("file://nested/objects", "DATA/nested/objects"),
        ("objects", "DATA/objects"),
        ("/srv/objects", "/srv/objects"),
    ],
)
def test_open_store_urls(tmp_path: Path, url: str, expected: str) -> None:
    store = open_store(url, data_dir=tmp_path)
    assert isinstance(store, FileStore)
    assert store.root == Path(expected.replace("DATA", str(tmp_path)))
    assert not store.root.exists()  # nothing is created until the first put


def test_open_store_s3_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StorageConfigError, match=r"reelgate\[s3\]"):
        open_store("s3://bucket/prefix", data_dir=tmp_path)


@pytest.mark.parametrize("url", ["", "ftp://host/x", "gs://bucket"])
def test_open_store_rejects_unknown_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(StorageConfigError):
        open_store(url, data_dir=tmp_path)


def test_key_layout() -> None:
    assert shot_output_key("t1", "job_1", "shot_1", 2) == "t1/job_1/shot_1/2/video.mp4"
    assert shot_provenance_key("t1", "job_1", "shot_1", 2) == "t1/job_1/shot_1/2/provenance.json"
    assert final_output_key("t1", "job_1") == "t1/job_1/final.mp4"
    assert final_provenance_key("t1", "job_1") == "t1/job_1/final.provenance.json"
    with pytest.raises(InvalidKey):
        shot_output_key("t1", "../x", "s", 1)
    with pytest.raises(InvalidKey):
        final_output_key("t1/t2", "j")


async def test_recover_removes_temp_files_of_interrupted_puts(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    await store.put_bytes("t/j/s/1/video.mp4", b"done")
    leftover = tmp_path / "t/j/s/1/.video.mp4.abc123.tmp"
    leftover.write_bytes(b"half")
    assert await store.recover() == 1
    assert not leftover.exists()
    assert await store.list("t/") == ["t/j/s/1/video.mp4"]


async def test_put_file_moves_the_file_in(store: FileStore, tmp_path: Path) -> None:
    src = tmp_path / "spooled.mp4"
    data = os.urandom(5000)
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    stored = await store.put_file(KEY, src, sha256=digest, metadata={"job": "job_1"})
    assert (stored.sha256, stored.bytes) == (digest, len(data))
    assert not src.exists()  # renamed, not copied
    assert await read(store, KEY) == data
    head = await store.head(KEY)
    assert head is not None and head.sha256 == digest and head.metadata == {"job": "job_1"}


async def test_put_file_without_a_hash_computes_it(store: FileStore, tmp_path: Path) -> None:
    src = tmp_path / "spooled.mp4"
    src.write_bytes(b"abc" * 1000)
    stored = await store.put_file(KEY, src)
    assert stored.sha256 == hashlib.sha256(b"abc" * 1000).hexdigest()


async def test_put_file_across_filesystems_copies(store: FileStore) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == store.root.parent.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    src = shm / f"reelgate-test-{os.getpid()}.mp4"
    src.write_bytes(b"x" * 2500)
    try:
        stored = await store.put_file(KEY, src, sha256="ignored-when-copying")
        # A copy is hashed as it is written: the caller can compare the two hashes.
        assert stored.sha256 == hashlib.sha256(b"x" * 2500).hexdigest()
        assert await read(store, KEY) == b"x" * 2500
    finally:
        src.unlink(missing_ok=True)
