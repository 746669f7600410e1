"""Object keys: validation (keys become file paths) and the layout of reelgate's objects."""

from __future__ import annotations

from ._base import InvalidKey

__all__ = [
    "final_output_key",
    "final_provenance_key",
    "shot_output_key",
    "shot_provenance_key",
    "validate_key",
]

MAX_KEY_LENGTH = 1024
SIDECAR_SUFFIX = ".meta.json"


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
