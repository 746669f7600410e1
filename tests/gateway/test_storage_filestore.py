"""What only FileStore does: files and their records (xattrs or sidecars) on disk,
renames, ``file://`` URLs.

The ObjectStore contract it shares with S3Store is in ``test_storage.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.storage import (
    ChecksumMismatch,
    FileStore,
    InvalidKey,
    StorageConfigError,
    final_output_key,
    final_provenance_key,
    open_store,
    shot_output_key,
    shot_provenance_key,
)

KEY = "t1/job_1/shot_1/1/video.mp4"


def xattrs_work(folder: Path) -> bool:
    """Whether this filesystem takes user extended attributes (ext4, xfs, btrfs do)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()
    return True


@pytest.fixture(params=["xattr", "sidecar"])
def store(tmp_path: Path, request: pytest.FixtureRequest) -> FileStore:
    return FileStore(tmp_path / "objects", chunk_size=1000, xattrs=request.param == "xattr")


def object_files(store: FileStore, key: str) -> list[str]:
    """What one object is on disk: its file, and its sidecar where the record is not on it."""
    on_file = store._xattrs and xattrs_work(store.root)
    return [key] if on_file else [key, key + ".meta.json"]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def read(store: FileStore, key: str, **kw: int | None) -> bytes:
    return b"".join([c async for c in store.get_stream(key, **kw)])


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_an_object_is_a_file_and_its_record(store: FileStore) -> None:
    parts = [os.urandom(700) for _ in range(5)]  # crosses the 1000-byte write batches
    stored = await store.put_stream(KEY, chunks(*parts), metadata={"reelgate-job": "job_1"})
    assert stored.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()
    assert all_files(store.root) == object_files(store, KEY)
    await store.delete(KEY)
    assert all_files(store.root) == []  # a sidecar goes with it


async def test_the_record_rides_on_the_file_where_the_filesystem_allows(tmp_path: Path) -> None:
    """One fsync makes the bytes and their record durable: no sidecar to write, flush
    and rename (a moved-in file and a written one alike)."""
    store = FileStore(tmp_path / "objects")
    if not xattrs_work(store.root):
        pytest.skip("this filesystem takes no user extended attributes")
    spooled = tmp_path / "objects" / ".spooled.mp4"
    spooled.write_bytes(b"video")
    await store.put_file(KEY, spooled, content_type="video/mp4", metadata={"a": "b"})
    await store.put_bytes("t1/doc.json", b"{}", content_type="application/json")
    assert all_files(store.root) == sorted([KEY, "t1/doc.json"])
    record = json.loads(os.getxattr(store.root / KEY, "user.reelgate.object"))
    assert record["sha256"] == hashlib.sha256(b"video").hexdigest()
    assert (record["content_type"], record["metadata"]) == ("video/mp4", {"a": "b"})
    assert record["ino"] == (store.root / KEY).stat().st_ino
    head = await store.head("t1/doc.json")
    assert head is not None and head.content_type == "application/json"


async def test_a_record_too_big_for_the_filesystems_xattrs_goes_to_a_sidecar(
    tmp_path: Path,
) -> None:
    """Metadata within S3's 2 KB can still outgrow ext4's ≈4 KB of xattr room once in
    JSON (ENOSPC): the put falls back to a sidecar instead of failing."""
    store = FileStore(tmp_path / "objects")
    metadata = {f"k{i:03d}": "x" for i in range(370)}  # 1,850 bytes; ≈4.8 KB as JSON
    await store.put_bytes(KEY, b"video", metadata=metadata)
    head = await store.head(KEY)
    assert head is not None and head.metadata == metadata
    on_file = True
    try:
        os.getxattr(store.root / KEY, "user.reelgate.object")
    except OSError:
        on_file = False
    sidecar = (store.root / (KEY + ".meta.json")).exists()
    assert on_file != sidecar  # one record, wherever it fitted


async def test_a_sidecar_store_stays_readable_and_an_overwrite_drops_its_sidecar(
    tmp_path: Path,
) -> None:
    """Stores written before records moved onto the files (or with xattrs=False) keep
    working: their sidecars are read, and replaced by the file's record on overwrite."""
    old = FileStore(tmp_path / "objects", xattrs=False)
    await old.put_bytes(KEY, b"old", content_type="video/mp4", metadata={"v": "1"})
    assert all_files(old.root) == [KEY, KEY + ".meta.json"]
    store = FileStore(tmp_path / "objects")
    head = await store.head(KEY)
    assert head is not None and (head.content_type, head.metadata) == ("video/mp4", {"v": "1"})
    assert await read(store, KEY) == b"old"  # checked against the sidecar's sha256
    await store.put_bytes(KEY, b"new", metadata={"v": "2"})
    assert all_files(store.root) == object_files(store, KEY)
    head = await store.head(KEY)
    assert head is not None and head.metadata == {"v": "2"}
    assert head.sha256 == hashlib.sha256(b"new").hexdigest()


async def test_bytes_changed_in_place_are_caught_whatever_holds_the_record(
    store: FileStore,
) -> None:
    await store.put_bytes(KEY, b"abcdef")
    with open(store.root / KEY, "r+b") as f:  # a stray write: same inode, same size
        f.write(b"X")
    with pytest.raises(ChecksumMismatch):
        await read(store, KEY)


async def test_local_path(store: FileStore) -> None:
    await store.put_bytes(KEY, b"video")
    path = store.local_path(KEY)
    assert path is not None and path.read_bytes() == b"video"


async def test_failed_and_canceled_puts_leave_no_file(store: FileStore) -> None:
    old = await store.put_bytes(KEY, b"old")

    async def broken() -> AsyncIterator[bytes]:
        yield b"new" * 1000  # enough to have been written to the temp file
        raise ConnectionError("vendor hung up")

    with pytest.raises(ConnectionError):
        await store.put_stream(KEY, broken())

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * 4000
            await asyncio.sleep(0.001)

    put = asyncio.create_task(store.put_stream("t/other.mp4", endless()))
    await asyncio.sleep(0.05)
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put

    assert await store.head(KEY) == old
    assert all_files(store.root) == object_files(store, KEY)  # no temp file, no stray record


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
    assert await read(store, KEY) == b"other"  # no record of this inode: nothing to check


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


def test_a_file_url_can_keep_records_in_sidecars(tmp_path: Path) -> None:
    assert open_store("file:///srv/objects", data_dir=tmp_path)._xattrs == hasattr(os, "setxattr")
    store = open_store("file:///srv/objects?xattrs=false", data_dir=tmp_path)
    assert isinstance(store, FileStore) and store.root == Path("/srv/objects")
    assert not store._xattrs
    with pytest.raises(StorageConfigError, match="the only one is xattrs"):
        open_store("file:///srv/objects?sidecars=1", data_dir=tmp_path)
    with pytest.raises(StorageConfigError, match="use true or false"):
        open_store("file:///srv/objects?xattrs=maybe", data_dir=tmp_path)


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


async def test_put_file_trusts_the_hash_of_a_file_it_renames(
    store: FileStore, tmp_path: Path
) -> None:
    """A rename reads no bytes, so it cannot check them: the engine compares the hash it
    spooled with the one ``put_file`` reports (S3Store reads and checks; see its tests)."""
    src = tmp_path / "spooled.mp4"
    src.write_bytes(b"abc")
    stored = await store.put_file(KEY, src, sha256="0" * 64)
    assert stored.sha256 == "0" * 64


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
