"""Object keys and metadata: validation (keys become file paths and S3 keys, metadata
becomes HTTP headers) and the layout of reelgate's objects."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._base import InvalidKey, InvalidMetadata

__all__ = [
    "final_output_key",
    "final_provenance_key",
    "shot_output_key",
    "shot_provenance_key",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]

MAX_KEY_LENGTH = 1024
SIDECAR_SUFFIX = ".meta.json"
#: The metadata name a store records an object's SHA-256 under (``x-amz-meta-sha256``).
HASH_METADATA = "sha256"
#: S3 allows 2 KB of user metadata (names + values); the store's own hash takes the rest.
MAX_METADATA_BYTES = 1900
_METADATA_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_METADATA_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative posix path, else raise :class:`InvalidKey`.

    Segments starting with ``.`` are refused: they are where temp files live, and they
    cover ``.`` and ``..``. Keys ending in ``.meta.json`` would clash with sidecars.
    """
    problem = _key_problem(key)
    if problem:
        raise InvalidKey(f"invalid object key {key!r}: {problem}")
    return key


def _key_problem(key: str) -> str | None:
    if not isinstance(key, str) or not key:
        return "must be a non-empty string"
    if len(key) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters"
    if "\\" in key:
        return "backslashes are not allowed; use '/'"
    if any(ord(c) < 32 or c == "\x7f" for c in key):
        return "control characters are not allowed"
    if key.startswith("/"):
        return "must be relative, not absolute"
    for segment in key.split("/"):
        if not segment:
            return "empty path segment"
        if segment.startswith("."):
            return "segments may not start with '.' (no '..' or hidden names)"
    if key.endswith(SIDECAR_SUFFIX):
        return f"the suffix {SIDECAR_SUFFIX!r} is reserved for metadata"
    if len(key) > 1 and key[1] == ":":
        return "drive letters are not allowed"
    return None


def validate_prefix(prefix: str) -> str:
    """A ``list`` prefix: like a key, but may be empty, partial, or end with ``/``."""
    if "\\" in prefix or prefix.startswith("/") or ".." in prefix.split("/"):
        raise InvalidKey(f"invalid key prefix {prefix!r}")
    return prefix


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """A copy of ``metadata`` if every store can keep it unchanged, else :class:`InvalidMetadata`.

    S3 sends metadata as ``x-amz-meta-<name>`` headers: names are lowercased on the way,
    values are trimmed and must be ASCII, and all of it must fit in 2 KB. Holding every
    store to those rules keeps a metadata round trip identical on each of them.
    """
    out = dict(metadata or {})
    for name, value in out.items():
        if not isinstance(name, str) or not _METADATA_NAME.fullmatch(name):
            raise InvalidMetadata(
                f"metadata name {name!r}: use 1-128 lowercase letters, digits, '.', '_' or '-'"
            )
        if name == HASH_METADATA:
            raise InvalidMetadata(f"metadata name {name!r} is reserved for the store's own hash")
        if not isinstance(value, str) or not _METADATA_VALUE.fullmatch(value):
            raise InvalidMetadata(
                f"metadata {name!r}: the value must be printable ASCII without leading or "
                f"trailing spaces, got {value!r}"
            )
    size = sum(len(k) + len(v) for k, v in out.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidMetadata(
            f"metadata takes {size} bytes (names + values); at most {MAX_METADATA_BYTES} fit"
        )
    return out


def _segment(value: str | int, what: str) -> str:
    text = str(value)
    if not text or "/" in text:
        raise InvalidKey(f"{what} {text!r} cannot be used in an object key")
    return text


def _shot_prefix(tenant: str, job: str, shot: str, attempt: str | int) -> str:
    parts = (
        _segment(tenant, "tenant"),
        _segment(job, "job"),
        _segment(shot, "shot"),
        _segment(attempt, "attempt"),
    )
    return "/".join(parts)


def shot_output_key(tenant: str, job: str, shot: str, attempt: str | int) -> str:
    return validate_key(f"{_shot_prefix(tenant, job, shot, attempt)}/video.mp4")


def shot_provenance_key(tenant: str, job: str, shot: str, attempt: str | int) -> str:
    return validate_key(f"{_shot_prefix(tenant, job, shot, attempt)}/provenance.json")


def final_output_key(tenant: str, job: str) -> str:
    return validate_key(f"{_segment(tenant, 'tenant')}/{_segment(job, 'job')}/final.mp4")


def final_provenance_key(tenant: str, job: str) -> str:
    return validate_key(
        f"{_segment(tenant, 'tenant')}/{_segment(job, 'job')}/final.provenance.json"
    )
