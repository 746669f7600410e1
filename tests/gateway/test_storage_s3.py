"""What only S3Store does: storage URLs, x-amz-* headers, checksums, multipart bookkeeping,
and the translation of S3's errors. Against moto's S3 server over HTTP (``storage_harness``).

The ObjectStore contract it shares with FileStore is in ``test_storage.py``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import sys
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from storage_harness import Backend, MiB, s3_backend

from gateway import provenance
from gateway.storage import (
    ChecksumMismatch,
    S3Store,
    StorageConfigError,
    StorageServiceError,
    _s3,
    open_store,
)

KEY = "t1/job_1/shot_1/1/video.mp4"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def crc32_of(data: bytes) -> str:
    """A CRC32 as S3 reports it: base64 of its 4 big-endian bytes."""
    return b64(crc32(data))


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read(store: S3Store, key: str) -> bytes:
    return b"".join([c async for c in store.get_stream(key)])


@pytest.fixture
def s3(s3_client: Any, bucket: str) -> Backend:
    return s3_backend(s3_client, bucket)


# -- storage URLs ---------------------------------------------------------------------------


async def test_open_store_reads_the_url_and_the_standard_aws_settings(
    aws_env: dict[str, str], s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    url = f"s3://{bucket}/reel/gate?sse=AES256&storage_class=STANDARD_IA&addressing_style=path&part_size_mb=16"
    store = open_store(url, data_dir=tmp_path)
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == (bucket, "reel/gate")

    await store.put_bytes(KEY, b"video", content_type="video/mp4")

    raw = s3_client.head_object(Bucket=bucket, Key=f"reel/gate/{KEY}")
    assert raw["ServerSideEncryption"] == "AES256"
    assert raw["StorageClass"] == "STANDARD_IA"
    assert raw["ContentType"] == "video/mp4"
    assert not tmp_path.joinpath("objects").exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
        ("s3://bkt/p?sse=des", "sse 'des'"),
        ("s3://bkt/p?sse_kms_key_id=k1", "needs sse=aws:kms"),
        ("s3://bkt/p?storage_class=cold", "storage_class"),
        ("s3://bkt/p?part_size_mb=4", "5..5120"),
        ("s3://bkt/p?part_size_mb=big", "5..5120"),
        ("s3://bkt/p?addressing_style=dns", "addressing_style"),
        ("s3://bkt/p?colour=blue", "unknown option"),
        ("s3://bkt/a/../b", "invalid prefix"),
    ],
)
def test_bad_storage_urls_say_what_is_wrong(
    aws_env: dict[str, str], tmp_path: Path, url: str, problem: str
) -> None:
    with pytest.raises(StorageConfigError, match=problem.replace("?", r"\?").replace(".", r"\.")):
        open_store(url, data_dir=tmp_path)


def test_without_boto3_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an install without it sees
    with pytest.raises(StorageConfigError, match=r"pip install 'reelgate\[s3\]'"):
        open_store("s3://bucket/prefix", data_dir=tmp_path)


# -- what S3 holds -------------------------------------------------------------------------


async def test_objects_carry_their_hash_and_provenance_in_amz_meta_headers(s3: Backend) -> None:
    manifest = {
        "schema": "reelgate.provenance/v1",
        "tenant": "t1",
        "ids": {"job": "job_1", "shot": "shot_1", "attempt": "att_1"},
        "model": {"id": "runway/gen4.5"},
        "seed": 7,
    }
    data = os.urandom(20_000)
    await s3.store.put_bytes(
        KEY, data, content_type="video/mp4", metadata=provenance.object_metadata(manifest)
    )
    url = await s3.store.signed_url(KEY, 60)
    async with httpx.AsyncClient() as http:
        r = await http.get(url)
    assert r.headers["x-amz-meta-sha256"] == sha(data)
    assert r.headers["x-amz-meta-reelgate-tenant"] == "t1"
    assert r.headers["x-amz-meta-reelgate-shot"] == "shot_1"
    assert r.headers["x-amz-meta-reelgate-model"] == "runway/gen4.5"
    assert r.headers["x-amz-meta-reelgate-seed"] == "7"


@pytest.mark.parametrize("how", ["put_bytes", "put_stream", "put_file"])
async def test_encryption_storage_class_and_type_survive_every_kind_of_put(
    s3_client: Any, bucket: str, tmp_path: Path, how: str
) -> None:
    """A streamed multipart put is copied onto itself to record its hash: the copy must
    keep what the upload set."""
    b = s3_backend(s3_client, bucket, sse="AES256", storage_class="STANDARD_IA")
    data = os.urandom(11 * MiB) if how != "put_bytes" else b"small"
    if how == "put_bytes":
        stored = await b.store.put_bytes(KEY, data, content_type="video/mp4", metadata={"a": "1"})
    elif how == "put_stream":
        stored = await b.store.put_stream(
            KEY, chunks(data), content_type="video/mp4", metadata={"a": "1"}
        )
    else:
        src = tmp_path / "spool.mp4"
        src.write_bytes(data)
        stored = await b.store.put_file(KEY, src, content_type="video/mp4", metadata={"a": "1"})
        assert src.exists()  # uploaded, not moved: the caller cleans up its spool

    raw = s3_client.head_object(Bucket=bucket, Key=b.raw_key(KEY))
    assert raw["ServerSideEncryption"] == "AES256"
    assert raw["StorageClass"] == "STANDARD_IA"
    assert raw["ContentType"] == "video/mp4"
    assert raw["Metadata"] == {"a": "1", "sha256": sha(data)}
    assert await b.store.head(KEY) == stored
    assert b.leftovers() == 0


async def test_parts_carry_crc32_checksums(s3: Backend, s3_client: Any, tmp_path: Path) -> None:
    """S3 refuses a part whose x-amz-checksum-crc32 does not match (moto records it)."""
    data = os.urandom(11 * MiB)
    src = tmp_path / "spool.mp4"
    src.write_bytes(data)
    await s3.store.put_file(KEY, src, sha256=sha(data))

    raw = s3_client.head_object(Bucket=s3.store.bucket, Key=s3.raw_key(KEY), ChecksumMode="ENABLED")
    parts = [data[i : i + 5 * MiB] for i in range(0, len(data), 5 * MiB)]
    composite = crc32_of(b"".join(crc32(p) for p in parts))
    assert raw["ChecksumCRC32"].split("-")[0] == composite  # S3 adds "-3"; moto does not

    await s3.store.put_bytes("t/small", b"abc")
    raw = s3_client.head_object(
        Bucket=s3.store.bucket, Key=s3.raw_key("t/small"), ChecksumMode="ENABLED"
    )
    assert raw["ChecksumCRC32"] == crc32_of(b"abc")


async def test_a_streamed_multipart_put_reads_back_its_whole_crc32(
    s3: Backend, s3_client: Any
) -> None:
    """Copied onto itself to record its hash, the object gets a whole-object CRC32 from S3,
    and the store checks it against the one it computed while streaming."""
    data = os.urandom(11 * MiB)
    await s3.store.put_stream(KEY, chunks(data))
    raw = s3_client.head_object(Bucket=s3.store.bucket, Key=s3.raw_key(KEY), ChecksumMode="ENABLED")
    assert raw["ChecksumCRC32"] == crc32_of(data)
    assert raw["Metadata"]["sha256"] == sha(data)


@pytest.mark.parametrize("size", [1000, 11 * MiB])
async def test_put_file_refuses_bytes_that_are_not_the_declared_ones(
    s3: Backend, tmp_path: Path, size: int
) -> None:
    src = tmp_path / "spool.mp4"
    src.write_bytes(os.urandom(size))
    with pytest.raises(ChecksumMismatch, match="not the declared"):
        await s3.store.put_file(KEY, src, sha256="0" * 64)
    assert await s3.store.head(KEY) is None
    assert s3.leftovers() == 0


def test_what_the_check_after_an_upload_catches() -> None:
    data = b"x" * 100
    hashes = _s3._Hashes(whole_crc=True)
    hashes.add(data[:60])
    hashes.add(data[60:])
    composite = crc32_of(crc32(data[:60]) + crc32(data[60:]))
    good: dict[str, Any] = {
        "ContentLength": 100,
        "Metadata": {"sha256": sha(data)},
        "ChecksumCRC32": f"{composite}-2",
    }
    assert _s3._differences(good, 100, sha(data), hashes) == []
    whole = {**good, "ChecksumCRC32": crc32_of(data)}  # after a copy
    assert _s3._differences(whole, 100, sha(data), hashes) == []

    assert _s3._differences({**good, "ContentLength": 99}, 100, sha(data), hashes) == [
        "99 bytes stored, 100 sent"
    ]
    wrong = {**good, "Metadata": {"sha256": "0" * 64}}
    assert "recorded sha256" in _s3._differences(wrong, 100, sha(data), hashes)[0]
    damaged = {**good, "ChecksumCRC32": b64(b"\0" * 4) + "-2"}
    assert "checksum" in _s3._differences(damaged, 100, sha(data), hashes)[0]
    declared = _s3._Hashes()  # put_file: no whole CRC, so only the composite is accepted
    declared.add(data[:60])
    declared.add(data[60:])
    assert _s3._differences(good, 100, sha(data), declared) == []
    assert "checksum" in _s3._differences(whole, 100, sha(data), declared)[0]


async def test_a_streamed_put_bigger_than_one_copy(
    s3: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past CopyObject's 5 GiB the hash is recorded by a multipart copy (here: past 6 MiB)."""
    monkeypatch.setattr(_s3, "MAX_COPY_SIZE", 6 * MiB)
    data = os.urandom(11 * MiB)
    stored = await s3.store.put_stream(KEY, chunks(data), content_type="video/mp4")
    assert stored.sha256 == sha(data)
    head = await s3.store.head(KEY)
    assert head == stored
    assert await read(s3.store, KEY) == data


# -- prefixes, housekeeping ------------------------------------------------------------------


async def test_a_store_sees_only_its_prefix(s3_client: Any, bucket: str) -> None:
    mine = S3Store(bucket, "reelgate/prod", client=s3_client)
    other = S3Store(bucket, "reelgate/staging", client=s3_client)
    await mine.put_bytes("t1/a.mp4", b"a")
    await other.put_bytes("t1/b.mp4", b"b")
    s3_client.put_object(Bucket=bucket, Key="reelgate/prod/t1/.hidden", Body=b"?")
    s3_client.put_object(Bucket=bucket, Key="reelgate/production/t1/c.mp4", Body=b"c")

    assert await mine.list() == ["t1/a.mp4"]  # no sibling prefix, no foreign odd names
    assert await mine.head("t1/b.mp4") is None
    await mine.delete("t1/b.mp4")
    assert await read(other, "t1/b.mp4") == b"b"


async def test_recover_leaves_young_uploads_to_their_owners(s3: Backend, s3_client: Any) -> None:
    s3.leave_unfinished_put(KEY)
    uploads = s3_client.list_multipart_uploads(Bucket=s3.store.bucket)["Uploads"]
    started = uploads[0]["Initiated"]

    young = S3Store(
        s3.store.bucket, "objects", client=s3_client, now=lambda: started + timedelta(minutes=10)
    )
    assert await young.recover() == 0
    assert s3.leftovers() == 1
    old = S3Store(
        s3.store.bucket, "objects", client=s3_client, now=lambda: started + timedelta(hours=2)
    )
    assert await old.recover() == 1
    assert s3.leftovers() == 0


# -- errors ---------------------------------------------------------------------------------


async def test_a_missing_bucket_is_a_configuration_error(s3_client: Any) -> None:
    store = S3Store("rg-no-such-bucket", client=s3_client)
    with pytest.raises(StorageConfigError, match="NoSuchBucket"):
        await store.put_bytes(KEY, b"x")
    with pytest.raises(StorageConfigError, match="NoSuchBucket"):
        await read(store, KEY)
    with pytest.raises(StorageConfigError, match="NoSuchBucket"):
        await store.recover()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_an_unreachable_service_is_a_service_error(aws_env: dict[str, str]) -> None:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{_closed_port()}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    store = S3Store("bkt", client=client)
    with pytest.raises(StorageServiceError, match="failed"):
        await store.put_bytes(KEY, b"x")
    with pytest.raises(StorageServiceError):
        await store.head(KEY)
    assert await store.recover() == 0  # cleanup is best effort: logged, not fatal


async def test_signed_urls_live_at_most_seven_days(s3: Backend) -> None:
    await s3.store.put_bytes(KEY, b"x")
    with pytest.raises(ValueError, match="expires_s"):
        await s3.store.signed_url(KEY, 0)
    with pytest.raises(ValueError, match="expires_s"):
        await s3.store.signed_url(KEY, 8 * 24 * 3600)
