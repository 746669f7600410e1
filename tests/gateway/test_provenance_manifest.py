from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from gateway.media import VideoInfo
from gateway.provenance import (
    SCHEMA,
    AttemptRecord,
    BackendRef,
    InputRef,
    ModelRef,
    OutputRef,
    ParentRef,
    build_final_manifest,
    build_shot_manifest,
    canonical_json,
    gateway_version,
    manifest_sha256,
    object_metadata,
    redact_uri,
)
from gateway.storage import StoredObject
from reelgate.types import Adjustment, ShotParams, StructuredPrompt

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PNG_URI = "data:image/png;base64," + base64.b64encode(PNG).decode()
PNG_SHA = hashlib.sha256(PNG).hexdigest()
WHEN = datetime(2025, 3, 1, 12, 30, 5, 123456, tzinfo=UTC)


def shot_manifest(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "tenant": "t1",
        "job_id": "job_1",
        "shot_id": "shot_1",
        "attempt_id": "att_2",
        "model": ModelRef("runway/gen4.5", adapter="runway", vendor_model="gen4.5"),
        "backend": BackendRef("runway", job_id="rw-123"),
        "prompt": StructuredPrompt(subject="a red fox", action="runs through snow"),
        "prompt_sent": "A red fox runs through snow.",
        "negative_sent": "blurry",
        "requested": {"duration_s": 7, "image": PNG_URI, "max_cost_usd": Decimal("1.5")},
        "normalized": ShotParams(
            duration_s=5,
            aspect_ratio="16:9",
            resolution="720p",
            fps=24,
            seed=42,
            width=1280,
            height=720,
        ),
        "adjustments": [
            Adjustment(field="duration_s", requested=7, applied=5, message="snapped to 5")
        ],
        "seed": 42,
        "inputs": [InputRef.from_uri(PNG_URI)],
        "output": OutputRef("t1/job_1/shot_1/2/video.mp4", "ab" * 32, 1234, 5.0, 1280, 720, 24.0),
        "attempts": [
            AttemptRecord(1, "luma/ray2", "failed", "backend_error: 503"),
            AttemptRecord(2, "runway/gen4.5", "succeeded"),
        ],
        "cost_micro_usd": 400_000,
        "created_at": WHEN,
        "version": "1.2.3",
    }
    return build_shot_manifest(**{**args, **overrides})


def test_shot_manifest_fields() -> None:
    m = shot_manifest()

    assert m["schema"] == SCHEMA == "reelgate.provenance/v1"
    assert m["kind"] == "shot" and m["tenant"] == "t1"
    assert m["ids"] == {"job": "job_1", "shot": "shot_1", "attempt": "att_2"}
    assert m["created_at"] == "2025-03-01T12:30:05.123Z"
    assert m["model"] == {
        "id": "runway/gen4.5",
        "vendor": "runway",
        "adapter": "runway",
        "vendor_model": "gen4.5",
        "version": None,
    }
    assert m["backend"] == {"adapter": "runway", "job_id": "rw-123"}
    assert m["prompt"]["given"]["subject"] == "a red fox"
    assert m["prompt"]["sent"] == "A red fox runs through snow."
    assert m["prompt"]["sent_sha256"] == hashlib.sha256(b"A red fox runs through snow.").hexdigest()
    assert m["prompt"]["negative"] == "blurry"
    assert m["parameters"]["normalized"]["duration_s"] == 5
    assert m["parameters"]["requested"]["max_cost_usd"] == "1.5"
    assert m["parameters"]["adjustments"] == [
        {"field": "duration_s", "requested": 7, "applied": 5, "message": "snapped to 5"}
    ]
    assert m["seed"] == 42
    assert m["output"]["sha256"] == "ab" * 32 and m["output"]["bytes"] == 1234
    assert [a["status"] for a in m["attempts"]] == ["failed", "succeeded"]
    assert m["attempts"][0]["error"] == "backend_error: 503"
    assert m["cost"] == {"micro_usd": 400_000, "usd": "0.4"}
    assert m["gateway"] == {"name": "reelgate", "version": "1.2.3"}
    assert m["parents"] == []
    json.loads(canonical_json(m))  # serializable as it stands


def test_data_uris_are_never_embedded() -> None:
    m = shot_manifest()
    redacted = f"data:image/png;sha256={PNG_SHA}"

    assert m["inputs"] == [{"uri": redacted, "sha256": PNG_SHA}]
    assert m["parameters"]["requested"]["image"] == redacted
    assert PNG_URI.split(",")[1][:40] not in canonical_json(m).decode()
    raw = shot_manifest(inputs=[InputRef(PNG_URI)])  # built without from_uri
    assert raw["inputs"] == [{"uri": redacted, "sha256": PNG_SHA}]


def test_seed_defaults_to_the_normalized_one() -> None:
    assert shot_manifest(seed=None)["seed"] == 42
    assert shot_manifest(seed=7)["seed"] == 7


def test_redact_uri() -> None:
    assert (
        redact_uri("data:,hello")
        == f"data:text/plain;sha256={hashlib.sha256(b'hello').hexdigest()}"
    )
    assert redact_uri(redact_uri(PNG_URI)) == redact_uri(PNG_URI)  # idempotent
    signed = "https://user:pw@bucket.example.com/in.png?X-Amz-Signature=abc&X-Amz-Credential=k&v=2"
    clean = redact_uri(signed)
    assert clean.startswith("https://bucket.example.com/in.png?")
    assert "abc" not in clean and "user" not in clean and "pw" not in clean and "v=2" in clean
    assert redact_uri("s3://bucket/key.png") == "s3://bucket/key.png"


def test_input_ref_keeps_a_given_hash_for_urls() -> None:
    ref = InputRef.from_uri("https://example.com/a.png?token=secret", sha256="cd" * 32)
    assert ref == InputRef("https://example.com/a.png?token=REDACTED", "cd" * 32)


def test_manifest_hash_is_stable() -> None:
    first, second = shot_manifest(), shot_manifest()
    reordered = json.loads(json.dumps(second))
    reordered = dict(reversed(list(reordered.items())))

    assert canonical_json(first) == canonical_json(reordered)
    assert manifest_sha256(first) == manifest_sha256(second) == manifest_sha256(reordered)
    assert manifest_sha256(first) != manifest_sha256(shot_manifest(prompt_sent="A blue fox."))


def test_canonical_json_is_compact_sorted_utf8() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"fps": float("nan")})


def test_created_at_is_utc() -> None:
    paris = timezone(timedelta(hours=1))
    m = shot_manifest(created_at=datetime(2025, 3, 1, 13, 30, tzinfo=paris))
    assert m["created_at"] == "2025-03-01T12:30:00.000Z"
    assert shot_manifest(created_at=None)["created_at"].endswith("Z")


def test_unknown_cost_and_version() -> None:
    m = shot_manifest(cost_micro_usd=None, version=None)
    assert m["cost"] is None
    assert m["gateway"]["version"] == gateway_version() != ""


def test_final_manifest_lists_parents() -> None:
    parents = [ParentRef("shot_1", "t1/job_1/shot_1/2/video.mp4", "aa" * 32)]
    parents.append(ParentRef("shot_2", "t1/job_1/shot_2/1/video.mp4", "bb" * 32))
    stored = StoredObject("t1/job_1/final.mp4", "cc" * 32, 999)
    info = VideoInfo(10.0, 240, 1280, 720, 24.0, "h264", "yuv420p", False)

    m = build_final_manifest(
        tenant="t1",
        job_id="job_1",
        output=OutputRef.from_stored(stored, info),
        parents=parents,
        assemble_mode="copy",
        created_at=WHEN,
    )

    assert m["schema"] == SCHEMA and m["kind"] == "final"
    assert m["ids"] == {"job": "job_1"}
    assert [p["shot_id"] for p in m["parents"]] == ["shot_1", "shot_2"]
    assert m["parents"][1] == {"shot_id": "shot_2", "key": parents[1].key, "sha256": "bb" * 32}
    assert m["output"] == {
        "key": "t1/job_1/final.mp4",
        "sha256": "cc" * 32,
        "bytes": 999,
        "duration_s": 10.0,
        "width": 1280,
        "height": 720,
        "fps": 24.0,
        "codec": "h264",
    }
    assert m["assemble"] == {"mode": "copy"}


def test_object_metadata() -> None:
    meta = object_metadata(shot_manifest())
    assert meta["reelgate-job"] == "job_1"
    assert meta["reelgate-shot"] == "shot_1"
    assert meta["reelgate-attempt"] == "att_2"
    assert meta["reelgate-model"] == "runway/gen4.5"
    assert meta["reelgate-sha256"] == "ab" * 32
    assert meta["reelgate-seed"] == "42"
    assert all(isinstance(v, str) and v.isascii() for v in meta.values())

    final = object_metadata(
        build_final_manifest(
            tenant="tenant-é",
            job_id="job_1",
            output=OutputRef("k", "dd" * 32, 1),
            parents=[],
            created_at=WHEN,
        )
    )
    assert "reelgate-shot" not in final and "reelgate-model" not in final
    assert final["reelgate-tenant"].isascii()
