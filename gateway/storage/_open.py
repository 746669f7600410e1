"""``open_store``: a storage URL from the settings becomes an :class:`ObjectStore`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import url2pathname

from ._base import ObjectStore, StorageConfigError
from ._file import FileStore
from ._s3 import s3_store_from_url

__all__ = ["open_store"]


def open_store(url: str, *, data_dir: Path) -> ObjectStore:
    """Open ``file:///abs``, ``file://rel`` (under ``data_dir``), a plain path,
    ``s3://bucket/prefix?options`` (see :func:`~gateway.storage._s3.s3_store_from_url`),
    or fail clearly. A file URL takes ``?xattrs=false``: each object's record in a
    sidecar file, not on the file (see :class:`FileStore`).

    Nothing is created on disk and nothing is sent to S3 until the first call.
    """
    text = url.strip()
    if not text:
        raise StorageConfigError("the storage URL is empty; use file:///path or a folder path")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        return s3_store_from_url(text)
    if scheme == "file":
        path = _under(data_dir, _file_url_path(parts.netloc, parts.path))
        return FileStore(path, xattrs=_xattrs_option(parts.query))
    if not scheme or len(scheme) == 1:  # a plain path, or a Windows drive letter
        return FileStore(_under(data_dir, Path(text)))
    raise StorageConfigError(
        f"unsupported storage URL {url!r}: use file:///absolute/path, file://relative/path, "
        "a folder path, or s3://bucket/prefix"
    )


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _xattrs_option(query: str) -> bool:
    """A file URL's options: only ``xattrs`` (true by default)."""
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"xattrs"})
    if unknown:
        raise StorageConfigError(
            f"unknown file store option {', '.join(unknown)}: the only one is xattrs=true|false"
        )
    value = options.get("xattrs", ["true"])[-1].strip().lower()
    if value not in _BOOLEANS:
        raise StorageConfigError(f"xattrs={value!r} in the storage URL: use true or false")
    return _BOOLEANS[value]


def _file_url_path(netloc: str, path: str) -> Path:
    """RFC 8089 plus the common ``file://relative`` shorthand."""
    if netloc in ("", "localhost"):
        return Path(url2pathname(path)) if path else Path(".")
    return Path(unquote(netloc + path))


def _under(data_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else Path(data_dir) / path
