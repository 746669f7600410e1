"""The object-store contract and its error tree.

Every store (a local folder, an S3 bucket) speaks this protocol, so the engine and the
API never know where bytes live::

    StorageError                 (never raised itself)
    ├── InvalidKey               a key that could escape the store or clash with its files
    ├── InvalidMetadata          metadata that would not survive every store (S3 headers)
    ├── InvalidRange             a byte range outside the object
    ├── ObjectNotFound           no object at that key
    ├── ChecksumMismatch         stored bytes differ from what was sent or recorded
    ├── StorageConfigError       a storage URL this build cannot open, a missing bucket,
    │                            credentials the service refuses
    └── StorageServiceError      the storage service failed or refused a request (network,
                                 5xx, throttling, access denied): usually worth a retry
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "ChecksumMismatch",
    "InvalidKey",
    "InvalidMetadata",
    "InvalidRange",
    "ObjectNotFound",
    "ObjectStore",
    "StorageConfigError",
    "StorageError",
    "StorageServiceError",
    "StoredObject",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"


class StorageError(Exception):
    """Base of the storage error tree; see the module docstring."""


class InvalidKey(StorageError, ValueError):
    pass


class InvalidMetadata(StorageError, ValueError):
    pass


class InvalidRange(StorageError, ValueError):
    pass


class ObjectNotFound(StorageError, LookupError):
    pass


class ChecksumMismatch(StorageError):
    pass


class StorageConfigError(StorageError, ValueError):
    pass


class StorageServiceError(StorageError):
    pass


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What a store knows about one object: its hash travels with it, never recomputed."""

    key: str
    sha256: str
    bytes: int
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class ObjectStore(Protocol):
    """Async object storage. Byte ranges follow HTTP: ``end`` is inclusive."""

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[builtins.bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Store all of ``chunks`` at ``key`` atomically: all or nothing, even on a crash.

        ``metadata``: lowercase keys, printable ASCII values (see ``validate_metadata``),
        so what one store accepts every store accepts; ``head`` returns it unchanged.
        """
        ...

    async def put_bytes(
        self,
        key: str,
        data: builtins.bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject: ...

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Store the finished file at ``path``, atomically; the file may be moved, not copied.

        ``sha256`` is the caller's hash of the file, when it has one. A store that moves
        the file (same inode, same bytes) reports it; a store that copies the bytes
        hashes them on the way and raises :class:`ChecksumMismatch` (storing nothing) when
        they differ, or reports the hash of what it stored, so the caller can compare.
        """
        ...

    def get_stream(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[builtins.bytes]:
        """Bytes ``start..end`` (inclusive, like HTTP Range); raises on first iteration.

        A whole-object read is hashed as it streams and checked against the hash recorded
        at put time: on a mismatch it raises :class:`ChecksumMismatch` instead of handing
        over the last chunk, so a reader never receives a complete but altered object.
        """
        ...

    async def head(self, key: str) -> StoredObject | None: ...

    def local_path(self, key: str) -> Path | None:
        """The object's file when the store is a local folder (for zero-copy responses)."""
        ...

    async def signed_url(
        self, key: str, expires_s: int, *, filename: str | None = None
    ) -> str | None:
        """A URL a client can fetch without credentials, or None when the store has none.

        ``filename`` makes the response ``Content-Disposition: inline; filename="..."``.
        """
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    async def list(self, prefix: str = "") -> builtins.list[str]:
        """Keys starting with ``prefix`` (a string prefix, like S3), sorted."""
        ...

    async def recover(self) -> int:
        """Clean up what a crash left behind (temp files, unfinished uploads)."""
        ...
