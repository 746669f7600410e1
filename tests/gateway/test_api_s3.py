"""A gateway storing in S3 (``REELGATE_STORAGE_URL=s3://...``, moto's server over HTTP):
jobs render into the bucket with their manifests, content streams or redirects to a signed
URL, and an output changed in the bucket is caught."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_harness import Gateway, open_gateway

from gateway.storage import ChecksumMismatch, S3Store
from reelgate import types as t


def storyboard(n: int, *, assemble: bool) -> dict[str, Any]:
    return {
        "assemble": assemble,
        "defaults": {"resolution": "360p", "fps": 12, "aspect_ratio": "16:9"},
        "shots": [
            {"kind": "broll", "prompt": f"a red kite over dunes, take {i}", "duration_s": 1.0}
            for i in range(n)
        ],
    }


async def render(gw: Gateway, n: int = 1, *, assemble: bool = False) -> t.Job:
    job = await gw.client.jobs.create(storyboard(n, assemble=assemble))
    job = await gw.client.jobs.wait(job, timeout=60)
    assert job.status == "succeeded", [(s.status, s.error_message) for s in job.shots]
    return job


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def settings(aws_env: dict[str, str], bucket: str) -> dict[str, Any]:
    return {"storage_url": f"s3://{bucket}/gw"}


async def test_a_job_renders_into_the_bucket_with_its_manifests(
    tmp_path: Path, database_url: str, settings: dict[str, Any], s3_client: Any, bucket: str
) -> None:
    async with open_gateway(tmp_path / "data", database_url, **settings) as gw:
        assert isinstance(gw.runtime.store, S3Store)
        job = await render(gw, 2, assemble=True)
        final = await gw.client.jobs.download(job, tmp_path / "final.mp4")  # streamed
        assert job.final is not None and sha(final.read_bytes()) == job.final.sha256

        prov = await gw.client.jobs.provenance(job)
        listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="gw/")["Contents"]
        keys = sorted(o["Key"] for o in listed)
        base = f"gw/{prov['final']['tenant']}/{job.id}"
        assert keys == sorted(
            [f"{base}/final.mp4", f"{base}/final.provenance.json"]
            + [
                f"{base}/{s.id}/1/{name}"
                for s in job.shots
                for name in ("video.mp4", "provenance.json")
            ]
        )
        assert not (tmp_path / "data" / "objects").exists()

        for shot in job.shots:
            assert shot.output is not None
            video = s3_client.head_object(Bucket=bucket, Key=f"{base}/{shot.id}/1/video.mp4")
            meta = video["Metadata"]  # x-amz-meta-*
            assert video["ContentType"] == "video/mp4"
            assert meta["sha256"] == meta["reelgate-sha256"] == shot.output.sha256
            assert (meta["reelgate-job"], meta["reelgate-shot"]) == (job.id, shot.id)
            assert meta["reelgate-model"] == "local/preview"
            raw = s3_client.get_object(Bucket=bucket, Key=f"{base}/{shot.id}/1/provenance.json")
            manifest = json.loads(raw["Body"].read())  # the manifest, a sidecar object
            assert manifest["output"]["sha256"] == shot.output.sha256
            assert manifest["ids"]["shot"] == shot.id

        assert [m["output"]["sha256"] for m in prov["shots"]] == [
            s.output.sha256 for s in job.shots if s.output
        ]


async def test_content_streams_from_s3_with_ranges(
    tmp_path: Path, database_url: str, settings: dict[str, Any]
) -> None:
    async with open_gateway(tmp_path / "data", database_url, **settings) as gw:
        shot = (await render(gw)).shots[0]
        assert shot.output is not None
        url = f"/v1/shots/{shot.id}/content"

        whole = await gw.http.get(url, headers=gw.auth())
        part = await gw.http.get(url, headers={**gw.auth(), "Range": "bytes=10-19"})

    assert whole.status_code == 200 and sha(whole.content) == shot.output.sha256
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{shot.output.bytes}"


async def test_content_redirects_to_a_signed_url_when_configured(
    tmp_path: Path, database_url: str, settings: dict[str, Any], moto_endpoint: str
) -> None:
    async with open_gateway(
        tmp_path / "data", database_url, storage_redirect=True, storage_url_ttl_s=600, **settings
    ) as gw:
        job = await render(gw, 2, assemble=True)
        shot = job.shots[0]
        assert shot.output is not None and job.final is not None
        url = f"/v1/shots/{shot.id}/content"
        r = await gw.http.get(url, headers=gw.auth())
        final = await gw.http.get(f"/v1/jobs/{job.id}/final/content", headers=gw.auth())
        etag = f'"{shot.output.sha256}"'
        cached = await gw.http.get(url, headers={**gw.auth(), "If-None-Match": etag})
        anonymous = await gw.http.get(url)

    assert r.status_code == 307 and r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    assert location.startswith(moto_endpoint) and "X-Amz-Expires=600" in location
    assert cached.status_code == 304  # the client has it: no need to send it anywhere
    assert anonymous.status_code == 401  # the signed URL is only handed to the owner
    async with httpx.AsyncClient() as http:  # over the network, with no credentials
        video = await http.get(location)
        part = await http.get(location, headers={"Range": "bytes=0-99"})
        cut = await http.get(final.headers["location"])
    assert video.status_code == 200 and sha(video.content) == shot.output.sha256
    assert video.headers["content-disposition"] == f'inline; filename="{shot.id}.mp4"'
    assert part.status_code == 206 and part.content == video.content[:100]
    assert final.status_code == 307 and sha(cut.content) == job.final.sha256


async def test_an_output_changed_in_the_bucket_is_caught(
    tmp_path: Path, database_url: str, settings: dict[str, Any], s3_client: Any, bucket: str
) -> None:
    async with open_gateway(tmp_path / "data", database_url, **settings) as gw:
        job = await render(gw, 2)
        stored = await gw.runtime.store.list()
        keys = [
            f"gw/{next(k for k in stored if f'/{s.id}/' in k and k.endswith('.mp4'))}"
            for s in job.shots
        ]
        url = f"/v1/shots/{job.shots[0].id}/content"

        # Replaced by something that is not the store: the record no longer matches.
        s3_client.put_object(Bucket=bucket, Key=keys[0], Body=b"not the video")
        replaced = await gw.http.get(url, headers=gw.auth())

        # Changed in place, its record kept (bit rot, a bad copy): the read is cut short.
        raw = s3_client.get_object(Bucket=bucket, Key=keys[1])
        data = bytearray(raw["Body"].read())
        data[-1] ^= 0xFF
        s3_client.put_object(Bucket=bucket, Key=keys[1], Body=bytes(data), Metadata=raw["Metadata"])
        with pytest.raises(ChecksumMismatch):
            await gw.http.get(f"/v1/shots/{job.shots[1].id}/content", headers=gw.auth())

    assert replaced.status_code == 500
    assert replaced.json()["code"] == "output_corrupt"
    assert "changed in storage" in replaced.json()["detail"]
