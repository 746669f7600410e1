"""``FileStore``: objects as files under one folder, each with a record of its facts.

A put streams into a hidden temp file next to its destination, hashing as it goes,
then fsyncs and renames it into place, so a reader or a crash never sees half an
object. The record (sha256, size, content type, metadata, inode) is an extended
attribute of the file where the filesystem has them (Linux): the one fsync that makes
the bytes durable makes their record durable, and there is no second file to flush
and rename (a shot's video and manifest: 4 journal commits instead of 6, ≈1 ms of a
tiny shot). Elsewhere (macOS, filesystems without user xattrs, or ``xattrs=False``)
it is a JSON sidecar file next to the object, the layout older stores have, which
is always read too. Either names the inode it describes; one that does not match
(a crash between the two renames, a copy that dropped xattrs) is ignored and
:meth:`FileStore.head` rehashes the file. A whole-file read is hashed and checked
against the record before its last chunk is handed over, so bytes changed in place
(bit rot, a stray write) are caught. All file I/O runs in worker threads, one hop
per chunk batch.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from ._base import (
    DEFAULT_CONTENT_TYPE,
    ChecksumMismatch,
    InvalidRange,
    ObjectNotFound,
    StoredObject,
)
from ._keys import SIDECAR_SUFFIX, validate_key, validate_metadata, validate_prefix
from ._threads import finished_in_thread, opened_in_thread

__all__ = ["FileStore"]

_CHUNK = 1 << 20
#: The extended attribute holding an object's record.
_XATTR = "user.reelgate.object"
#: What a filesystem without (room for) user xattrs answers, or a file we may not tag
#: (not ours): fall back to a sidecar. ext4 says ENOSPC for a value over its ≈4 KB room
#: (metadata may take that), E2BIG past 64 KB.
_NO_XATTRS = {
    errno.ENOTSUP,
    errno.EOPNOTSUPP,
    errno.EPERM,
    errno.EACCES,
    errno.E2BIG,
    errno.ERANGE,
    errno.ENOSPC,
}


class FileStore:
    """An :class:`~gateway.storage.ObjectStore` on the local filesystem.

    ``xattrs=False`` keeps every record in a sidecar file. Copy a store with its xattrs
    (``rsync -X``, ``cp --preserve=xattr``): one that lost them still reads, each
    object's hash recomputed, its content type and metadata gone.
    """

    def __init__(self, root: Path | str, *, chunk_size: int = _CHUNK, xattrs: bool = True) -> None:
        self.root = Path(root).absolute()
        self._chunk = chunk_size
        self._xattrs = xattrs and hasattr(os, "setxattr")

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[builtins.bytes],
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        path = self._path(key)
        meta = validate_metadata(metadata)
        pending = await opened_in_thread(lambda: _Pending(path, self._xattrs), _Pending.abort)
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= self._chunk:
                    batch, buffer = buffer, bytearray()
                    await asyncio.to_thread(pending.write, batch)
            if buffer:
                await asyncio.to_thread(pending.write, buffer)
            return await asyncio.to_thread(pending.commit, key, content_type, meta)
        except BaseException:
            pending.abort()
            raise

    async def put_bytes(
        self,
        key: str,
        data: builtins.bytes,
        *,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        return await asyncio.to_thread(
            self._put_bytes, key, data, content_type, validate_metadata(metadata)
        )

    def _put_bytes(
        self, key: str, data: builtins.bytes, content_type: str, metadata: dict[str, str]
    ) -> StoredObject:
        """The whole put in one thread hop: small objects (manifests) are latency-bound."""
        pending = _Pending(self._path(key), self._xattrs)
        try:
            pending.write(data)
            return pending.commit(key, content_type, metadata)
        except BaseException:
            pending.abort()
            raise

    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        sha256: str | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
        metadata: Mapping[str, str] | None = None,
    ) -> StoredObject:
        """Move ``path`` into the store (a rename: no copy, no rehash when ``sha256`` is
        given); across filesystems, copy it like :meth:`put_stream`."""
        meta = validate_metadata(metadata)
        try:
            return await finished_in_thread(
                self._move_in, key, Path(path), sha256, content_type, meta
            )
        except _CrossDevice:
            return await self.put_stream(
                key, _read_file(Path(path), self._chunk), content_type=content_type, metadata=meta
            )

    def _move_in(
        self,
        key: str,
        src: Path,
        sha256: str | None,
        content_type: str,
        metadata: dict[str, str],
    ) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_dev != path.parent.stat().st_dev:
                raise _CrossDevice
            if sha256 is None:
                sha256, _ = _hash_file(src)
            record = _record(sha256, st, content_type, metadata)
            recorded = self._xattrs and _set_record(f.fileno(), record)
            os.fsync(f.fileno())  # durable (its record too) before it shows under its key
        _publish(src, path, None if recorded else record)
        return StoredObject(key, sha256, st.st_size, content_type, metadata)

    async def get_stream(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> AsyncIterator[builtins.bytes]:
        path = self._path(key)
        whole = start is None and end is None
        file, expected = await opened_in_thread(
            lambda: _open_object(path, key, whole), lambda opened: opened[0].close()
        )
        try:
            first, last = _resolve_range(start, end, os.fstat(file.fileno()).st_size)
            if first:
                await asyncio.to_thread(file.seek, first)
            digest = hashlib.sha256() if expected else None
            remaining = last - first + 1
            while remaining > 0:
                data = await asyncio.to_thread(
                    _read_hashed, file, min(self._chunk, remaining), digest
                )
                if not data:
                    break
                remaining -= len(data)
                if remaining == 0 and digest is not None and digest.hexdigest() != expected:
                    raise ChecksumMismatch(
                        f"object {key!r} was changed on disk: it hashes to {digest.hexdigest()}, "
                        f"its recorded sha256 is {expected}"
                    )
                yield data
        finally:
            file.close()

    async def head(self, key: str) -> StoredObject | None:
        return await asyncio.to_thread(self._head, key)

    def _head(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        side = _read_record(path)
        sha, size = side.get("sha256"), st.st_size
        if not sha or side.get("ino") != st.st_ino or side.get("bytes") != size:
            try:  # no sidecar, or one left by a crash between the two renames
                sha, size = _hash_file(path)
            except FileNotFoundError:
                return None
        return StoredObject(
            key=key,
            sha256=sha,
            bytes=size,
            content_type=str(side.get("content_type") or DEFAULT_CONTENT_TYPE),
            metadata=dict(side.get("metadata") or {}),
        )

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None

    async def signed_url(
        self, key: str, expires_s: int, *, filename: str | None = None
    ) -> str | None:
        validate_key(key)
        return None

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(_unlink_all, path, _sidecar(path))

    async def list(self, prefix: str = "") -> builtins.list[str]:
        return await asyncio.to_thread(self._list, prefix)

    async def recover(self) -> int:
        """Remove the temp files of puts a crash interrupted; returns how many.

        Call it at start-up, before any put: a FileStore belongs to one process.
        """
        return await asyncio.to_thread(self._remove_temps)

    def _remove_temps(self) -> int:
        removed = 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(".") and name.endswith(".tmp"):
                    Path(dirpath, name).unlink(missing_ok=True)
                    removed += 1
        return removed

    def _list(self, prefix: str) -> builtins.list[str]:
        validate_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0]
        keys = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)


class _Pending:
    """A temp file being filled; :meth:`commit` renames it into place."""

    def __init__(self, path: Path, xattrs: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.xattrs = xattrs
        self.tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        self.file: BinaryIO = open(self.tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
        self.file.write(data)
        self.hash.update(data)
        self.size += len(data)

    def commit(self, key: str, content_type: str, metadata: dict[str, str]) -> StoredObject:
        self.file.flush()
        fd = self.file.fileno()
        sha = self.hash.hexdigest()
        record = _record(sha, os.fstat(fd), content_type, metadata)
        recorded = self.xattrs and _set_record(fd, record)
        os.fsync(fd)
        self.file.close()
        _publish(self.tmp, self.path, None if recorded else record)
        return StoredObject(key, sha, self.size, content_type, metadata)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        _unlink_all(self.tmp)


class _CrossDevice(Exception):
    """The file to move in lives on another filesystem: it must be copied."""


def _record(
    sha256: str, st: os.stat_result, content_type: str, metadata: dict[str, str]
) -> dict[str, Any]:
    return {
        "sha256": sha256,
        "bytes": st.st_size,
        "content_type": content_type,
        "metadata": metadata,
        "ino": st.st_ino,
    }


def _set_record(fd: int, record: dict[str, Any]) -> bool:
    """Attach ``record`` to the open file as an extended attribute (before its fsync);
    False where the filesystem takes none, and the record goes to a sidecar."""
    try:
        os.setxattr(fd, _XATTR, json.dumps(record, sort_keys=True).encode())
    except OSError as exc:
        if exc.errno not in _NO_XATTRS:
            raise
        with contextlib.suppress(OSError):  # an earlier try's record would outrank the sidecar
            os.removexattr(fd, _XATTR)
        return False
    return True


def _publish(src: Path, path: Path, sidecar: dict[str, Any] | None) -> None:
    """Rename the synced ``src`` to ``path``, with its ``sidecar`` where the record is not
    on the file; a sidecar an earlier object left at ``path`` goes, and one fsync of
    the folder makes it all durable."""
    meta_tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.meta.tmp")
    try:
        if sidecar is not None:
            _write_synced(meta_tmp, json.dumps(sidecar, sort_keys=True).encode())
        os.replace(src, path)
        if sidecar is not None:
            os.replace(meta_tmp, _sidecar(path))
        else:
            _sidecar(path).unlink(missing_ok=True)
    finally:
        meta_tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


async def _read_file(path: Path, chunk: int) -> AsyncIterator[builtins.bytes]:
    with open(path, "rb") as f:
        while data := await asyncio.to_thread(f.read, chunk):
            yield data


def _resolve_range(start: int | None, end: int | None, size: int) -> tuple[int, int]:
    """Inclusive ``(first, last)`` like HTTP Range; ``last = first - 1`` means empty."""
    if start is None and end is None:
        return 0, size - 1
    first = 0 if start is None else start
    last = size - 1 if end is None else min(end, size - 1)
    if first < 0 or (end is not None and end < first) or first >= size:
        raise InvalidRange(f"range {start}-{end} is outside an object of {size} bytes")
    return first, last


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _open_object(path: Path, key: str, whole: bool) -> tuple[BinaryIO, str | None]:
    """The open file, and for a whole read the sha256 its record gives for this inode."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ObjectNotFound(f"no object at key {key!r}") from None
    if not whole:
        return file, None
    st = os.fstat(file.fileno())
    side = _read_record(path, file.fileno())
    if side.get("ino") != st.st_ino or side.get("bytes") != st.st_size:
        return file, None  # no sidecar, or one for another inode: nothing recorded to check
    sha = side.get("sha256")
    return file, sha if isinstance(sha, str) else None


def _read_hashed(file: BinaryIO, size: int, digest: hashlib._Hash | None) -> bytes:
    data = file.read(size)
    if digest is not None:
        digest.update(data)
    return data


def _read_record(path: Path, fd: int | None = None) -> dict[str, Any]:
    """The object's record: its extended attribute (of the open file ``fd`` when given,
    so record and bytes come from one inode), else its sidecar, else nothing."""
    try:
        raw = os.getxattr(path if fd is None else fd, _XATTR)
    except (OSError, AttributeError):  # none on the file, or no xattrs here at all
        try:
            raw = _sidecar(path).read_bytes()
        except OSError:
            return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest(), size


def _unlink_all(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    """Make the renames durable; Windows cannot open a directory, and needs not."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
