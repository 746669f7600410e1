"""``S3Store``: objects in an S3 bucket (AWS, MinIO, R2: anything that speaks S3), via boto3.

boto3 is synchronous, so every call runs in a worker thread. Endpoint, region and
credentials come from boto3's standard chain (``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws``, instance roles); the storage URL says where and how objects
are written: ``s3://bucket/prefix?sse=aws:kms&storage_class=STANDARD_IA`` (see
:func:`s3_store_from_url`).

Writes. An object that fits in one part is one PutObject; a bigger one is a multipart
upload of ``part_size`` parts with ``max_concurrency`` in flight, so a put holds a few
parts in memory whatever the object's size. Each part carries its CRC32 (a conforming
server refuses a part that arrived damaged; CRC32 is the SDKs' default, a quarter of
SHA-256's cost), the object's SHA-256 is computed while streaming and recorded as
``x-amz-meta-sha256``, and a HEAD after the upload checks the stored size, that record,
and the server's own CRC32 (whole-object or composite): a mismatch deletes the object and
raises :class:`ChecksumMismatch`. A streamed put bigger
than one part learns its hash only at the end, and S3 metadata cannot change in place, so
that object is copied onto itself, server-side, with the hash added.

Reads. A whole-object read is hashed as it streams and checked against
``x-amz-meta-sha256`` before its last chunk is handed over. Byte ranges go to S3 as HTTP
Range requests.
"""

from __future__ import annotations

import asyncio
import base64
import builtins
import hashlib
import logging
import re
import zlib
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
)
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._base import (
    DEFAULT_CONTENT_TYPE,
    ChecksumMismatch,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    StorageConfigError,
    StorageError,
    StorageServiceError,
    StoredObject,
)
from ._keys import HASH_METADATA, validate_key, validate_metadata, validate_prefix
from ._threads import opened_in_thread

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, HeadObjectOutputTypeDef

__all__ = ["S3Store", "make_s3_client", "s3_store_from_url"]

log = logging.getLogger(__name__)

MiB = 1 << 20
MIN_PART_SIZE = 5 * MiB  # S3's floor for every part but the last
MAX_PARTS = 10_000
MAX_COPY_SIZE = 5 * 1024 * MiB  # CopyObject's ceiling; bigger objects are copied in parts
MAX_SIGNED_URL_S = 7 * 24 * 3600  # SigV4's ceiling
SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")
ADDRESSING_STYLES = ("auto", "path", "virtual")
_READ_CHUNK = MiB
_ABORT_WAIT_S = 10.0
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Errors that no retry fixes: the URL, the bucket or the credentials are wrong.
_CONFIG_CODES = frozenset(
    {
        "NoSuchBucket",
        "InvalidBucketName",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
        "InvalidToken",
        "ExpiredToken",
    }
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class S3Store:
    """An :class:`~gateway.storage.ObjectStore` in ``bucket`` under ``prefix``.

    ``client`` is a boto3 S3 client (default: :func:`make_s3_client`, the standard AWS
    chain). ``sse``, ``sse_kms_key_id`` and ``storage_class`` go with every write.
    ``recover`` aborts multipart uploads older than ``stale_upload_s``.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: S3Client | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        storage_class: str | None = None,
        part_size: int = 8 * MiB,
        max_concurrency: int = 4,
        stale_upload_s: float = 3600.0,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not bucket or "/" in bucket:
            raise StorageConfigError(f"invalid S3 bucket name {bucket!r}")
        if part_size < MIN_PART_SIZE:
            raise StorageConfigError(f"part_size {part_size} is below S3's minimum of 5 MiB")
        if max_concurrency < 1:
            raise StorageConfigError("max_concurrency must be at least 1")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            validate_key(self.prefix)
        self._client = client if client is not None else make_s3_client()
        self._write_args = _write_args(sse, sse_kms_key_id, storage_class)
        self._part_size = part_size
        self._concurrency = max_concurrency
        self._stale = timedelta(seconds=stale_upload_s)
        self._now = now

    def __repr__(self) -> str:
        return f"S3Store('s3://{self.bucket}/{self.prefix}')"

    def _s3key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- writes ---------------------------------------------------------------------------

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[builtins.bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        s3key, meta = self._s3key(key), validate_metadata(metadata)
        parts = _rechunk(chunks, self._part_size)
        return await self._upload(key, s3key, parts, content_type, meta, None)

    async def put_bytes(
        self,
        key: str,
        data: builtins.bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        s3key, meta = self._s3key(key), validate_metadata(metadata)
        if len(data) <= self._part_size:  # manifests: the whole put in one thread hop
            return await asyncio.to_thread(self._put_small, key, s3key, data, content_type, meta)
        sha = await asyncio.to_thread(_sha256_hex, data)
        parts = _slices(data, self._part_size)
        return await self._upload(key, s3key, parts, content_type, meta, sha)

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Upload the file at ``path`` (left in place), hashing it on the way: a file that
        does not hash to ``sha256`` raises :class:`ChecksumMismatch` and stores nothing."""
        s3key, meta = self._s3key(key), validate_metadata(metadata)
        size = (await asyncio.to_thread(Path(path).stat)).st_size
        if sha256 is None:  # recorded up front: metadata is fixed when an upload starts
            sha256 = await asyncio.to_thread(_hash_file, Path(path))
        part_size = _part_size_for(size, self._part_size)
        parts = _file_parts(Path(path), part_size)
        multipart = size > part_size
        return await self._upload(key, s3key, parts, content_type, meta, sha256, multipart)

    def _put_small(
        self, key: str, s3key: str, data: bytes, content_type: str, meta: dict[str, str]
    ) -> StoredObject:
        hashes = _Hashes()
        hashes.add(data)
        return self._put_one(key, s3key, data, hashes, hashes.sha256(), content_type, meta)

    def _put_one(
        self,
        key: str,
        s3key: str,
        data: bytes,
        hashes: _Hashes,
        sha: str,
        content_type: str,
        meta: dict[str, str],
    ) -> StoredObject:
        with _errors(key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=s3key,
                Body=data,
                ContentType=content_type,
                Metadata={**meta, HASH_METADATA: sha},
                ChecksumAlgorithm="CRC32",
                ChecksumCRC32=_crc_b64(hashes.parts[0]),
                **self._write_args,
            )
        self._verify(key, s3key, len(data), sha, hashes)
        return StoredObject(key, sha, len(data), content_type, meta)

    async def _upload(
        self,
        key: str,
        s3key: str,
        parts: AsyncGenerator[bytes, None],
        content_type: str,
        meta: dict[str, str],
        declared: str | None,
        multipart: bool = False,
    ) -> StoredObject:
        """One PutObject when ``parts`` has one part, else a multipart upload (at once when
        the caller knows it is ``multipart``)."""
        hashes = _Hashes(whole_crc=declared is None)  # None: copied onto itself at the end
        ahead: builtins.list[bytes] = []
        try:
            if not multipart:
                first = await anext(parts, b"")
                second = await anext(parts, None)
                if second is None:
                    await asyncio.to_thread(hashes.add, first)
                    sha = _check_declared(key, declared, hashes.sha256())
                    return await asyncio.to_thread(
                        self._put_one, key, s3key, first, hashes, sha, content_type, meta
                    )
                ahead += [first, second]
                del first, second  # from here the list owns them: sent parts can be freed
            upload = _Multipart(self, key, s3key, hashes)
            await self._send_parts(upload, ahead, parts, content_type, meta, declared)
        finally:
            await parts.aclose()
        sha = hashes.sha256()
        comparable: _Hashes | None = hashes
        if declared is None:
            await asyncio.to_thread(
                self._record_hash, key, s3key, upload.size, upload.etag, content_type, meta, sha
            )
            if upload.size > MAX_COPY_SIZE:  # copied in parts of its own: another composite
                comparable = None
        await asyncio.to_thread(self._verify, key, s3key, upload.size, sha, comparable)
        return StoredObject(key, sha, upload.size, content_type, meta)

    async def _send_parts(
        self,
        upload: _Multipart,
        ahead: builtins.list[bytes],
        rest: AsyncIterator[bytes],
        content_type: str,
        meta: dict[str, str],
        declared: str | None,
    ) -> None:
        """Upload ``ahead`` then ``rest``; completed only if the hash is the declared one."""
        upload.start(content_type, {**meta, HASH_METADATA: declared} if declared else meta)
        try:
            while ahead:
                await upload.add(ahead.pop(0))  # hold no more than the parts in flight
            async for part in rest:
                await upload.add(part)
            _check_declared(upload.key, declared, upload.hashes.sha256())
            await upload.complete()
        except BaseException:
            await upload.abort()
            raise

    def _record_hash(
        self,
        key: str,
        s3key: str,
        size: int,
        etag: str,
        content_type: str,
        meta: dict[str, str],
        sha: str,
    ) -> None:
        """Add ``x-amz-meta-sha256`` to a finished upload: a server-side copy onto itself."""
        extra: dict[str, Any] = {
            "MetadataDirective": "REPLACE",
            "Metadata": {**meta, HASH_METADATA: sha},
            "ContentType": content_type,
            "ChecksumAlgorithm": "CRC32",
            "CopySourceIfMatch": etag,  # never stamp our hash on someone else's object
            **self._write_args,
        }
        source: Any = {"Bucket": self.bucket, "Key": s3key}
        with _errors(key):
            if size <= MAX_COPY_SIZE:
                self._client.copy_object(Bucket=self.bucket, Key=s3key, CopySource=source, **extra)
            else:
                from boto3.s3.transfer import TransferConfig

                config = TransferConfig(
                    multipart_threshold=MAX_COPY_SIZE, multipart_chunksize=512 * MiB
                )
                self._client.copy(source, self.bucket, s3key, ExtraArgs=extra, Config=config)

    def _verify(self, key: str, s3key: str, size: int, sha: str, hashes: _Hashes | None) -> None:
        """Check what S3 holds against what was sent; delete it and raise if they differ.

        ``hashes``: what was sent, to check S3's own checksum (None: not comparable).
        """
        head = self._head_raw(key, s3key)
        problems = _differences(head, size, sha, hashes)
        if problems:
            with suppress(StorageError):
                self._delete(key, s3key)
            raise ChecksumMismatch(
                f"stored object {key!r} does not match what was sent ({'; '.join(problems)}); "
                "it was deleted"
            )

    # -- reads ----------------------------------------------------------------------------

    def get_stream(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[builtins.bytes]:
        s3key = self._s3key(key)
        span = _range_header(start, end)
        return self._stream(key, s3key, span, verify=span is None)

    async def _stream(
        self, key: str, s3key: str, span: str | None, *, verify: bool
    ) -> AsyncIterator[builtins.bytes]:
        response = await opened_in_thread(
            lambda: self._get_raw(key, s3key, span), lambda r: r["Body"].close()
        )
        body = response["Body"]
        try:
            expected = response["Metadata"].get(HASH_METADATA) if verify else None
            digest = hashlib.sha256() if expected else None
            remaining = response["ContentLength"]
            while remaining > 0:
                data = await asyncio.to_thread(
                    self._read, key, body, min(_READ_CHUNK, remaining), digest
                )
                if not data:
                    raise StorageServiceError(f"S3 ended the body of {key!r} early")
                remaining -= len(data)
                if remaining == 0 and digest is not None and digest.hexdigest() != expected:
                    raise ChecksumMismatch(
                        f"object {key!r} was changed in storage: it hashes to "
                        f"{digest.hexdigest()}, its recorded sha256 is {expected}"
                    )
                yield data
        finally:
            body.close()

    def _get_raw(self, key: str, s3key: str, span: str | None) -> Any:
        with _errors(key):
            if span is None:
                return self._client.get_object(Bucket=self.bucket, Key=s3key)
            return self._client.get_object(Bucket=self.bucket, Key=s3key, Range=span)

    @staticmethod
    def _read(key: str, body: Any, size: int, digest: hashlib._Hash | None) -> bytes:
        with _errors(key):
            data: bytes = body.read(size)
        if digest is not None:
            digest.update(data)
        return data

    async def head(self, key: str) -> StoredObject | None:
        s3key = self._s3key(key)
        try:
            head = await asyncio.to_thread(self._head_raw, key, s3key)
        except ObjectNotFound:
            return None
        meta = dict(head["Metadata"])
        sha = meta.pop(HASH_METADATA, "")
        size = head["ContentLength"]
        if not _SHA256_HEX.fullmatch(sha):  # not written by a store: hash what is there
            try:
                sha, size = await self._hash_object(key, s3key)
            except ObjectNotFound:
                return None
        content_type = head.get("ContentType") or DEFAULT_CONTENT_TYPE
        return StoredObject(key, sha, size, content_type, meta)

    def _head_raw(self, key: str, s3key: str) -> HeadObjectOutputTypeDef:
        with _errors(key):
            return self._client.head_object(Bucket=self.bucket, Key=s3key, ChecksumMode="ENABLED")

    async def _hash_object(self, key: str, s3key: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        async for chunk in self._stream(key, s3key, None, verify=False):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    async def signed_url(
        self, key: str, expires_s: int, *, filename: str | None = None
    ) -> str | None:
        """A presigned GET (SigV4, at most 7 days); Range works on it like on the object."""
        s3key = self._s3key(key)
        if not 1 <= expires_s <= MAX_SIGNED_URL_S:
            raise ValueError(f"expires_s {expires_s} is outside 1..{MAX_SIGNED_URL_S}")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": s3key}
        if filename:
            safe = "".join(
                c for c in filename if c.isascii() and c.isprintable() and c not in '"\\'
            )
            params["ResponseContentDisposition"] = f'inline; filename="{safe}"'
        with _errors(key):  # resolving credentials may do I/O (profiles, instance roles)
            return await asyncio.to_thread(
                self._client.generate_presigned_url,
                "get_object",
                Params=params,
                ExpiresIn=expires_s,
            )

    # -- housekeeping ---------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        s3key = self._s3key(key)
        await asyncio.to_thread(self._delete, key, s3key)

    def _delete(self, key: str, s3key: str) -> None:
        with _errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=s3key)

    async def list(self, prefix: str = "") -> builtins.list[str]:
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    def _list(self, prefix: str) -> builtins.list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        keys = []
        with _errors(prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root + prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(root) :]
                    with suppress(InvalidKey):  # something else's object under our prefix
                        keys.append(validate_key(key))
        return sorted(keys)

    async def recover(self) -> int:
        """Abort the multipart uploads under the prefix older than ``stale_upload_s``.

        Younger ones may belong to another live process sharing the bucket. A missing
        bucket or refused credentials raise; other failures are logged: this is cleanup,
        and a bucket lifecycle rule (AbortIncompleteMultipartUpload) is the backstop.
        """
        try:
            return await asyncio.to_thread(self._abort_stale)
        except StorageConfigError:
            raise
        except StorageError as exc:
            log.warning("could not clean up unfinished S3 uploads: %s", exc)
            return 0

    def _abort_stale(self) -> int:
        cutoff = self._now() - self._stale
        root = f"{self.prefix}/" if self.prefix else ""
        aborted = 0
        with _errors(root or "/"):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=root
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] > cutoff:
                        continue
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted += 1
        return aborted


class _Multipart:
    """One multipart upload: parts hashed in order, up to ``max_concurrency`` in flight."""

    def __init__(self, store: S3Store, key: str, s3key: str, hashes: _Hashes) -> None:
        self._store = store
        self._client = store._client
        self.key = key
        self._s3key = s3key
        self.hashes = hashes
        self._upload_id = ""
        self.etag = ""
        self._done: dict[int, CompletedPartTypeDef] = {}
        self._inflight: set[asyncio.Task[None]] = set()
        self._created: asyncio.Task[str] | None = None
        self.size = 0

    def start(self, content_type: str, metadata: dict[str, str]) -> None:
        """Create the upload in the background: the first part is read and hashed meanwhile."""
        self._created = asyncio.create_task(asyncio.to_thread(self._create, content_type, metadata))

    async def _upload_id_known(self) -> None:
        assert self._created is not None
        # Shielded: a cancel here must not lose the id of an upload S3 has created.
        self._upload_id = await asyncio.shield(self._created)

    def _create(self, content_type: str, metadata: dict[str, str]) -> str:
        s = self._store
        with _errors(self.key):
            return self._client.create_multipart_upload(
                Bucket=s.bucket,
                Key=self._s3key,
                ContentType=content_type,
                Metadata=metadata,
                ChecksumAlgorithm="CRC32",
                **s._write_args,
            )["UploadId"]

    async def add(self, data: bytes) -> None:
        number = len(self.hashes.parts) + 1
        if number > MAX_PARTS:
            raise StorageConfigError(
                f"{self.key!r} needs more than {MAX_PARTS} parts of "
                f"{self._store._part_size // MiB} MiB; raise part_size_mb in the storage URL"
            )
        while len(self._inflight) >= self._store._concurrency:
            await self._wait_one()
        checksum = await asyncio.to_thread(self.hashes.add, data)
        self.size += len(data)
        await self._upload_id_known()
        task = asyncio.create_task(asyncio.to_thread(self._upload_part, number, data, checksum))
        self._inflight.add(task)

    def _upload_part(self, number: int, data: bytes, checksum: str) -> None:
        with _errors(self.key):
            response = self._client.upload_part(
                Bucket=self._store.bucket,
                Key=self._s3key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="CRC32",
                ChecksumCRC32=checksum,
            )
        self._done[number] = {
            "PartNumber": number,
            "ETag": response["ETag"],
            "ChecksumCRC32": checksum,
        }

    async def _wait_one(self) -> None:
        done, _ = await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            self._inflight.discard(task)
            task.result()

    async def complete(self) -> None:
        await self._upload_id_known()
        while self._inflight:
            await self._wait_one()
        self.etag = await asyncio.to_thread(self._complete)

    def _complete(self) -> str:
        parts = [self._done[n] for n in sorted(self._done)]
        with _errors(self.key):
            response = self._client.complete_multipart_upload(
                Bucket=self._store.bucket,
                Key=self._s3key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        return response["ETag"]

    async def abort(self) -> None:
        """Drop the upload, after the parts being sent (a bounded wait): S3 may keep a part
        that lands after the abort."""
        created = self._created
        if created is None:
            return
        if not created.done():
            await asyncio.wait([created], timeout=_ABORT_WAIT_S)
        if not created.done() or created.cancelled() or created.exception() is not None:
            return  # no upload, or one recover() will find: nothing to abort now
        self._upload_id = created.result()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=_ABORT_WAIT_S)
            for task in self._inflight:
                if task.done() and not task.cancelled():
                    task.exception()  # seen: this failure is not the one being raised
        self._inflight.clear()
        try:
            await asyncio.to_thread(self._abort)
        except StorageError as exc:  # recover() retries stale uploads later
            log.warning("could not abort the S3 upload of %s: %s", self.key, exc)

    def _abort(self) -> None:
        with _errors(self.key):
            self._client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._s3key, UploadId=self._upload_id
            )


# -- configuration --------------------------------------------------------------------------


def make_s3_client(
    *, addressing_style: str | None = None, max_pool_connections: int = 16
) -> S3Client:
    """A boto3 S3 client from the standard AWS settings (env, profiles, instance roles).

    Retries: botocore's standard mode, 6 attempts unless ``AWS_MAX_ATTEMPTS`` (or a
    profile's ``max_attempts``) says otherwise.
    """
    try:
        import boto3
        import botocore.session
        from botocore.config import Config
    except ImportError as exc:
        raise StorageConfigError("S3 storage needs boto3: pip install 'reelgate[s3]'") from exc
    core = botocore.session.get_session()
    retries: dict[str, Any] = {"mode": "standard"}
    if core.get_config_variable("max_attempts") is None:
        retries["total_max_attempts"] = 6
    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "retries": retries,
        "max_pool_connections": max_pool_connections,
        # The store sends its own CRC32 per part and checks reads itself.
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    # No SHA-256 of each body for the signature (botocore's default over plain HTTP): the
    # signed x-amz-checksum-crc32 header already binds the body, and that pass cost more
    # than the upload's own hashing.
    s3: dict[str, Any] = {"payload_signing_enabled": False}
    if addressing_style:
        s3["addressing_style"] = addressing_style
    options["s3"] = s3
    session = boto3.session.Session(botocore_session=core)
    client: S3Client = session.client("s3", config=Config(**options))
    return client


_URL_OPTIONS = ("sse", "sse_kms_key_id", "storage_class", "addressing_style", "part_size_mb")


def s3_store_from_url(url: str) -> S3Store:
    """``s3://bucket[/prefix][?option=value&...]``; the options, all optional:

    - ``sse``: ``AES256``, ``aws:kms`` or ``aws:kms:dsse`` (server-side encryption)
    - ``sse_kms_key_id``: the KMS key for ``aws:kms``
    - ``storage_class``: ``STANDARD_IA``, ``INTELLIGENT_TIERING``, ... (passed through)
    - ``addressing_style``: ``path`` for MinIO and other hosts without bucket subdomains
    - ``part_size_mb``: multipart part size (default 8; 5..5120)
    """
    parts = urlsplit(url)
    bucket = parts.netloc
    if not bucket:
        raise StorageConfigError(f"{url!r} names no bucket; use s3://bucket/prefix")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_URL_OPTIONS))
    if unknown:
        raise StorageConfigError(
            f"unknown option(s) {', '.join(unknown)} in {url!r}; allowed: {', '.join(_URL_OPTIONS)}"
        )
    style = options.get("addressing_style") or None
    if style is not None and style not in ADDRESSING_STYLES:
        raise StorageConfigError(
            f"addressing_style {style!r}: use one of {', '.join(ADDRESSING_STYLES)}"
        )
    part_mb = options.get("part_size_mb") or "8"
    if not part_mb.isdigit() or not 5 <= int(part_mb) <= 5120:
        raise StorageConfigError(f"part_size_mb {part_mb!r}: use a whole number in 5..5120")
    try:
        return S3Store(
            bucket,
            unquote(parts.path),
            client=make_s3_client(addressing_style=style),
            sse=options.get("sse") or None,
            sse_kms_key_id=options.get("sse_kms_key_id") or None,
            storage_class=options.get("storage_class") or None,
            part_size=int(part_mb) * MiB,
        )
    except InvalidKey as exc:
        raise StorageConfigError(f"invalid prefix in {url!r}: {exc}") from exc


def _write_args(
    sse: str | None, kms_key_id: str | None, storage_class: str | None
) -> dict[str, Any]:
    if sse is not None and sse not in SSE_MODES:
        raise StorageConfigError(f"sse {sse!r}: use one of {', '.join(SSE_MODES)}")
    if kms_key_id and sse not in ("aws:kms", "aws:kms:dsse"):
        raise StorageConfigError("sse_kms_key_id needs sse=aws:kms (or aws:kms:dsse)")
    if storage_class is not None and not re.fullmatch(r"[A-Z_]+", storage_class):
        raise StorageConfigError(f"storage_class {storage_class!r}: e.g. STANDARD_IA")
    args: dict[str, Any] = {}
    if sse:
        args["ServerSideEncryption"] = sse
    if kms_key_id:
        args["SSEKMSKeyId"] = kms_key_id
    if storage_class:
        args["StorageClass"] = storage_class
    return args


# -- errors ---------------------------------------------------------------------------------


@contextmanager
def _errors(key: str) -> Iterator[None]:
    """Translate botocore's errors into the storage error tree, once, here."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error: Mapping[str, Any] = exc.response.get("Error") or {}
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(error.get("Message") or code)
        if code in ("NoSuchKey", "404", "NotFound"):
            raise ObjectNotFound(f"no object at key {key!r}") from None
        if code == "InvalidRange" or status == 416:
            size = error.get("ActualObjectSize", "?")
            raise InvalidRange(f"the range is outside object {key!r} of {size} bytes") from None
        if code in _CONFIG_CODES:
            raise StorageConfigError(
                f"S3 refused the request for {key!r}: {code}: {message}"
            ) from exc
        raise StorageServiceError(f"S3 answered {code or status} for {key!r}: {message}") from exc
    except BotoCoreError as exc:
        raise StorageServiceError(f"S3 request for {key!r} failed: {exc}") from exc


# -- helpers --------------------------------------------------------------------------------


def _differences(
    head: HeadObjectOutputTypeDef, size: int, sha: str, hashes: _Hashes | None
) -> list[str]:
    problems = []
    if head["ContentLength"] != size:
        problems.append(f"{head['ContentLength']} bytes stored, {size} sent")
    recorded = head["Metadata"].get(HASH_METADATA)
    if recorded != sha:
        problems.append(f"recorded sha256 {recorded}, sent {sha}")
    server = head.get("ChecksumCRC32")  # whole-object, or composite: "<crc of crcs>-<parts>"
    if server and hashes is not None and server.split("-")[0] not in hashes.accepted_crc32():
        problems.append(f"the server's CRC32 checksum is {server}")
    return problems


def _check_declared(key: str, declared: str | None, actual: str) -> str:
    if declared is not None and declared != actual:
        raise ChecksumMismatch(
            f"the bytes for {key!r} hash to {actual}, not the declared {declared}; nothing stored"
        )
    return actual


def _range_header(start: int | None, end: int | None) -> str | None:
    if start is None and end is None:
        return None
    first = 0 if start is None else start
    if first < 0 or (end is not None and end < first):
        raise InvalidRange(f"range {start}-{end} is not a valid byte range")
    return f"bytes={first}-{'' if end is None else end}"


def _part_size_for(size: int, part_size: int) -> int:
    """``part_size``, or the next MiB multiple that fits ``size`` in S3's 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(part_size, -(-needed // MiB) * MiB)


class _Hashes:
    """What an upload computes as it reads: the object's SHA-256 (its identity, recorded in
    metadata) and CRC32s (S3's own check): each part's, and with ``whole_crc`` the whole
    object's, which S3 reports after a multipart object is copied onto itself."""

    def __init__(self, *, whole_crc: bool = False) -> None:
        self._sha = hashlib.sha256()
        self._crc: int | None = 0 if whole_crc else None
        self.parts: list[int] = []

    def add(self, part: bytes) -> str:
        """Hash the next part; its CRC32 as S3 wants it (base64 of 4 big-endian bytes)."""
        self._sha.update(part)
        crc = zlib.crc32(part)
        self.parts.append(crc)
        if self._crc is not None:
            self._crc = zlib.crc32(part, self._crc)
        return _crc_b64(crc)

    def sha256(self) -> str:
        return self._sha.hexdigest()

    def whole_crc32(self) -> str | None:
        if len(self.parts) == 1:
            return _crc_b64(self.parts[0])
        return None if self._crc is None else _crc_b64(self._crc)

    def accepted_crc32(self) -> set[str]:
        """The whole object's CRC32 where known, and (multipart) the CRC32 of the parts'."""
        accepted = {crc for crc in [self.whole_crc32()] if crc}
        if len(self.parts) > 1:
            joined = b"".join(crc.to_bytes(4, "big") for crc in self.parts)
            accepted.add(_crc_b64(zlib.crc32(joined)))
        return accepted


def _crc_b64(crc: int) -> str:
    return _b64(crc.to_bytes(4, "big"))


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


async def _rechunk(chunks: AsyncIterable[bytes], size: int) -> AsyncGenerator[bytes, None]:
    """``chunks`` regrouped into parts of exactly ``size`` bytes (the last one shorter)."""
    buffer = bytearray()
    sent = False
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            with memoryview(buffer) as view:
                part = bytes(view[:size])
            del buffer[:size]
            sent = True
            yield part
    if buffer or not sent:
        yield bytes(buffer)


async def _slices(data: bytes, size: int) -> AsyncGenerator[bytes, None]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def _file_parts(path: Path, size: int) -> AsyncGenerator[bytes, None]:
    # Opened on the loop, not in a thread: a cancel during a threaded open would
    # drop the file object the thread still creates, leaving it for the GC to close.
    file = open(path, "rb")  # noqa: SIM115 - closed below
    try:
        sent = False
        while data := await asyncio.to_thread(file.read, size):
            sent = True
            yield data
        if not sent:
            yield b""
    finally:
        file.close()
