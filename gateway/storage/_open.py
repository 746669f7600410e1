"""``open_store``: a storage URL from the settings becomes an :class:`ObjectStore`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from ._base import ObjectStore, StorageConfigError
from ._file import FileStore

__all__ = ["open_store"]


def open_store(url: str, *, data_dir: Path) -> ObjectStore:
    """Open ``file:///abs``, ``file://rel`` (under ``data_dir``), a plain path, or fail clearly.

    Nothing is created on disk until the first put.
    """
    text = url.strip()
    if not text:
        raise StorageConfigError("the storage URL is empty; use file:///path or a folder path")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "s3":
        raise StorageConfigError(
            f"cannot open {url!r}: S3 storage is not available in this version of reelgate yet; "
            "it will ship with the 's3' extra (pip install 'reelgate[s3]'). "
            "For now set REELGATE_STORAGE_URL to a file:// URL or a folder path."
        )
    if scheme == "file":
        return FileStore(_under(data_dir, _file_url_path(parts.netloc, parts.path)))
    if not scheme or len(scheme) == 1:  # a plain path, or a Windows drive letter
        return FileStore(_under(data_dir, Path(text)))
    raise StorageConfigError(
        f"unsupported storage URL {url!r}: use file:///absolute/path, file://relative/path, "
        "or a folder path"
    )


def _file_url_path(netloc: str, path: str) -> Path:
    """RFC 8089 plus the common ``file://relative`` shorthand."""
    if netloc in ("", "localhost"):
        return Path(url2pathname(path)) if path else Path(".")
    return Path(unquote(netloc + path))


def _under(data_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else Path(data_dir) / path
