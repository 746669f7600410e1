"""Provenance manifests: what made each stored video, as canonical JSON.

A manifest answers "where did this file come from?" without the database: ids,
model and backend, the prompt as given and as sent, every parameter adjustment, the
inputs (by hash: ``data:`` URIs are never embedded), the output, the attempts and
the cost. Builders are pure: they take plain values and a ``created_at`` and return
a dict, so the same facts always give the same bytes from :func:`canonical_json`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import importlib.metadata
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode, urlsplit, urlunsplit

from pydantic_core import to_jsonable_python

from gateway.media import VideoInfo
from gateway.storage import StoredObject

__all__ = [
    "SCHEMA",
    "AttemptRecord",
    "BackendRef",
    "InputRef",
    "ModelRef",
    "OutputRef",
    "ParentRef",
    "build_final_manifest",
    "build_shot_manifest",
    "canonical_json",
    "gateway_version",
    "manifest_sha256",
    "object_metadata",
    "redact_uri",
]

SCHEMA = "reelgate.provenance/v1"
_SECRET_PARAM = re.compile(r"sig|signature|token|key|secret|credential|auth|password", re.I)


@dataclass(frozen=True, slots=True)
class ModelRef:
    id: str  # catalog id, e.g. "runway/gen4.5"
    adapter: str
    vendor_model: str
    vendor: str | None = None  # default: the catalog id's prefix
    version: str | None = None


@dataclass(frozen=True, slots=True)
class BackendRef:
    adapter: str
    job_id: str | None = None


@dataclass(frozen=True, slots=True)
class InputRef:
    uri: str
    sha256: str | None = None

    @classmethod
    def from_uri(cls, uri: str, sha256: str | None = None) -> InputRef:
        """Redact ``uri``; a ``data:`` URI's hash is computed from its payload."""
        digest = _data_uri_sha256(uri)
        return cls(redact_uri(uri), digest or sha256)


@dataclass(frozen=True, slots=True)
class OutputRef:
    key: str
    sha256: str
    bytes: int
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    codec: str | None = None

    @classmethod
    def from_stored(cls, stored: StoredObject, info: VideoInfo | None = None) -> OutputRef:
        if info is None:
            return cls(stored.key, stored.sha256, stored.bytes)
        return cls(
            stored.key, stored.sha256, stored.bytes,
            info.duration_s, info.width, info.height, info.fps, info.codec,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    model: str
    status: str
    error: str | None = None  # "code: message" of a failed attempt


@dataclass(frozen=True, slots=True)
class ParentRef:
    shot_id: str
    key: str
    sha256: str


@functools.cache
def gateway_version() -> str:
    try:
        return importlib.metadata.version("reelgate")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def build_shot_manifest(
    *,
    tenant: str,
    job_id: str,
    shot_id: str,
    attempt_id: str,
    model: ModelRef,
    backend: BackendRef,
    prompt: Any,
    prompt_sent: str,
    output: OutputRef,
    negative_sent: str | None = None,
    requested: Mapping[str, Any] | None = None,
    normalized: Any = None,
    adjustments: Sequence[Any] = (),
    seed: int | None = None,
    inputs: Sequence[InputRef] = (),
    attempts: Sequence[AttemptRecord] = (),
    cost_micro_usd: int | None = None,
    parents: Sequence[ParentRef] = (),
    created_at: datetime | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The manifest of one shot's output. ``prompt`` is the prompt as given (str or
    structured); ``normalized`` and ``adjustments`` may be wire models or plain dicts;
    ``seed`` defaults to the normalized parameters' seed."""
    params = _jsonable(normalized)
    if seed is None and isinstance(params, dict):
        seed = params.get("seed")
    return {
        **_envelope("shot", tenant, created_at, version),
        "ids": {"job": job_id, "shot": shot_id, "attempt": attempt_id},
        "model": {
            "id": model.id,
            "vendor": model.vendor or model.id.partition("/")[0],
            "adapter": model.adapter,
            "vendor_model": model.vendor_model,
            "version": model.version,
        },
        "backend": {"adapter": backend.adapter, "job_id": backend.job_id},
        "prompt": {
            "given": _jsonable(prompt),
            "sent": prompt_sent,
            "sent_sha256": _sha256_text(prompt_sent),
            "negative": negative_sent,
        },
        "parameters": {
            "requested": _redact(_jsonable(dict(requested or {}))),
            "normalized": params,
            "adjustments": _redact(_jsonable(list(adjustments))),
        },
        "seed": seed,
        "inputs": [_input(i) for i in inputs],
        "output": _output(output),
        "attempts": [_attempt(a) for a in attempts],
        "cost": _cost(cost_micro_usd),
        "parents": [_parent(p) for p in parents],
    }


def build_final_manifest(
    *,
    tenant: str,
    job_id: str,
    output: OutputRef,
    parents: Sequence[ParentRef],
    assemble_mode: str | None = None,
    created_at: datetime | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The manifest of a job's final cut: its parents are the shots, in order."""
    return {
        **_envelope("final", tenant, created_at, version),
        "ids": {"job": job_id},
        "assemble": {"mode": assemble_mode},
        "output": _output(output),
        "parents": [_parent(p) for p in parents],
    }


def _envelope(
    kind: str, tenant: str, created: datetime | None, version: str | None
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "kind": kind,
        "tenant": tenant,
        "created_at": _iso_utc(created or datetime.now(UTC)),
        "gateway": {"name": "reelgate", "version": version or gateway_version()},
    }


def _output(o: OutputRef) -> dict[str, Any]:
    return {
        "key": o.key, "sha256": o.sha256, "bytes": o.bytes, "duration_s": o.duration_s,
        "width": o.width, "height": o.height, "fps": o.fps, "codec": o.codec,
    }  # fmt: skip


def _input(ref: InputRef) -> dict[str, Any]:
    clean = InputRef.from_uri(ref.uri, ref.sha256)  # also when built without from_uri
    return {"uri": clean.uri, "sha256": clean.sha256}


def _attempt(a: AttemptRecord) -> dict[str, Any]:
    return {"number": a.number, "model": a.model, "status": a.status, "error": a.error}


def _parent(p: ParentRef) -> dict[str, Any]:
    return {"shot_id": p.shot_id, "key": p.key, "sha256": p.sha256}


def _cost(micro_usd: int | None) -> dict[str, Any] | None:
    if micro_usd is None:
        return None
    usd = format((Decimal(micro_usd) / 1_000_000).normalize(), "f")
    return {"micro_usd": micro_usd, "usd": usd}


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, exclude_none=False)


def _redact(value: Any) -> Any:
    """Redact every URI-looking string in a JSON tree (requested params carry images)."""
    if isinstance(value, str):
        return redact_uri(value) if value.startswith(("data:", "http://", "https://")) else value
    if isinstance(value, list):
        return [_redact(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    return value


# --- URIs -------------------------------------------------------------------------------


def redact_uri(uri: str) -> str:
    """``data:`` → ``data:<mime>;sha256=<hex>``; URLs lose userinfo and secret query values."""
    if uri.startswith("data:"):
        if "," not in uri:  # already redacted, or not a data URI we could hash
            return uri
        return f"data:{_data_uri_mime(uri)};sha256={_data_uri_sha256(uri)}"
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https"):
        return uri
    netloc = parts.netloc.rpartition("@")[2]
    query = [
        (k, "REDACTED" if _SECRET_PARAM.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def _data_uri_mime(uri: str) -> str:
    header = uri[5:].partition(",")[0]
    return header.split(";")[0] or "text/plain"


def _data_uri_sha256(uri: str) -> str | None:
    """Hash of the decoded payload of a ``data:`` URI (of its raw text if it is malformed)."""
    if not uri.startswith("data:") or "," not in uri:
        return None
    header, _, payload = uri[5:].partition(",")
    try:
        if header.endswith(";base64"):
            data = base64.b64decode(payload, validate=False)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        data = payload.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


# --- serialization ----------------------------------------------------------------------


def canonical_json(manifest: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN: equal manifests give equal bytes."""
    text = json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def manifest_sha256(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(manifest)).hexdigest()


def object_metadata(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Key facts as ``reelgate-*`` object metadata (ASCII strings, as S3 requires)."""
    ids = manifest.get("ids") or {}
    fields = {
        "reelgate-schema": manifest.get("schema"),
        "reelgate-kind": manifest.get("kind"),
        "reelgate-tenant": manifest.get("tenant"),
        "reelgate-job": ids.get("job"),
        "reelgate-shot": ids.get("shot"),
        "reelgate-attempt": ids.get("attempt"),
        "reelgate-model": (manifest.get("model") or {}).get("id"),
        "reelgate-sha256": (manifest.get("output") or {}).get("sha256"),
        "reelgate-prompt-sha256": (manifest.get("prompt") or {}).get("sent_sha256"),
        "reelgate-seed": manifest.get("seed"),
        "reelgate-created": manifest.get("created_at"),
        "reelgate-version": (manifest.get("gateway") or {}).get("version"),
    }
    return {k: _ascii(str(v)) for k, v in fields.items() if v is not None}


def _ascii(text: str) -> str:
    return text if text.isascii() else text.encode("ascii", "backslashreplace").decode()
