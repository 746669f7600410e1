"""jobs.download: the final cut or one shot, streamed to a temp name, then renamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sdk_fakes import FakeAPI, job_json, job_response, output_json, problem, resolve, shot_json

from reelgate import APIConnectionError, Job, NotFoundError, ReelgateError

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4096  # ~1 MiB, several chunks
FINAL_URL = "/v1/jobs/job_1/final/content"


def finished_job(*, final: bool = True, size: int = len(VIDEO)) -> dict[str, Any]:
    shots = [
        shot_json(i, status="succeeded", output=output_json(f"/v1/shots/shot_{i}/content", size))
        for i in range(2)
    ]
    final_output = output_json(FINAL_URL, size) if final else None
    return job_json(status="succeeded", shots=shots, final=final_output)


def video(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=VIDEO, headers={"content-type": "video/mp4"})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


async def test_download_final_cut_by_job_id(client: Any, api: FakeAPI, tmp_path: Path) -> None:
    api.add("GET", "/v1/jobs/job_1", httpx.Response(200, json=finished_job()))
    api.add("GET", FINAL_URL, video)

    path = await resolve(client.jobs.download("job_1", tmp_path / "out" / "cut.mp4"))

    assert path == tmp_path / "out" / "cut.mp4"
    assert path.read_bytes() == VIDEO
    assert leftovers(path.parent) == []
    (content,) = api.sent("GET", FINAL_URL)
    assert content.headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize("shot", [1, "shot_1"])
async def test_download_one_shot_by_index_or_id(
    client: Any, api: FakeAPI, tmp_path: Path, shot: int | str
) -> None:
    api.add("GET", "/v1/shots/shot_1/content", video)
    job = Job.model_validate(finished_job())

    path = await resolve(client.jobs.download(job, tmp_path, shot=shot))

    assert path == tmp_path / "job_1-shot01.mp4"  # a folder gets a default name
    assert path.read_bytes() == VIDEO
    assert [r.url.path for r in api.requests] == ["/v1/shots/shot_1/content"]


async def test_a_one_shot_job_without_final_downloads_its_shot(
    client: Any, api: FakeAPI, tmp_path: Path
) -> None:
    out = output_json("/v1/shots/shot_0/content", len(VIDEO))
    job = Job.model_validate(job_json(status="succeeded", shots=[shot_json(output=out)]))
    api.add("GET", "/v1/shots/shot_0/content", video)

    path = await resolve(client.jobs.download(job, tmp_path / "a.mp4"))

    assert path.read_bytes() == VIDEO


async def test_a_truncated_stream_leaves_no_file_behind(
    client: Any, api: FakeAPI, tmp_path: Path
) -> None:
    api.add("GET", FINAL_URL, httpx.Response(200, content=VIDEO[:1000]))
    target = tmp_path / "cut.mp4"
    target.write_bytes(b"previous good copy")

    with pytest.raises(APIConnectionError, match=f"got 1000 of {len(VIDEO)} bytes"):
        await resolve(client.jobs.download(Job.model_validate(finished_job()), target))

    assert target.read_bytes() == b"previous good copy"  # not clobbered by a partial file
    assert leftovers(tmp_path) == []


async def test_a_missing_output_is_a_status_error(
    client: Any, api: FakeAPI, tmp_path: Path
) -> None:
    api.add("GET", FINAL_URL, problem(404, "not_found", "object is gone"))

    with pytest.raises(NotFoundError, match="object is gone"):
        await resolve(client.jobs.download(Job.model_validate(finished_job()), tmp_path / "x.mp4"))
    assert list(tmp_path.iterdir()) == []


async def test_absolute_content_urls_on_other_hosts_get_no_api_key(
    client: Any, api: FakeAPI, tmp_path: Path
) -> None:
    signed = "https://bucket.s3.example/job_1/final.mp4?X-Amz-Signature=abc"
    data = finished_job()
    data["final"]["content_url"] = signed
    api.add("GET", "/job_1/final.mp4", video)

    await resolve(client.jobs.download(Job.model_validate(data), tmp_path / "cut.mp4"))

    (request,) = api.requests
    assert request.url.host == "bucket.s3.example"
    assert "authorization" not in request.headers


async def test_redirects_are_followed_without_leaking_the_key(
    client: Any, api: FakeAPI, tmp_path: Path
) -> None:
    signed = "https://cdn.example/final.mp4"
    api.add("GET", FINAL_URL, httpx.Response(302, headers={"location": signed}))
    api.add("GET", "/final.mp4", video)

    path = await resolve(client.jobs.download(Job.model_validate(finished_job()), tmp_path))

    assert path.read_bytes() == VIDEO
    first, second = api.requests
    assert "authorization" in first.headers and "authorization" not in second.headers


@pytest.mark.parametrize(
    ("job", "shot", "message"),
    [
        (finished_job(final=False), None, "has no final cut; pass shot="),
        (finished_job(), 5, "has no shot 5"),
        (job_json(shots=[shot_json(), shot_json(1)]), 1, r"shot 1 .* has no output: running"),
    ],
)
async def test_nothing_to_download_says_why(
    client: Any, tmp_path: Path, job: dict[str, Any], shot: int | None, message: str
) -> None:
    with pytest.raises(ReelgateError, match=message):
        await resolve(client.jobs.download(Job.model_validate(job), tmp_path, shot=shot))


async def test_download_by_id_reads_the_latest_job_first(
    client: Any, api: FakeAPI, tmp_path: Path
) -> None:
    api.add("GET", "/v1/jobs/job_1", job_response(status="running"))

    with pytest.raises(ReelgateError, match=r"shot 0 .* has no output: running"):
        await resolve(client.jobs.download("job_1", tmp_path))
    assert [r.url.path for r in api.requests] == ["/v1/jobs/job_1"]


async def test_bytes_stream_into_a_part_file_that_is_renamed_at_the_end(
    client: Any, api: FakeAPI, tmp_path: Path, flavour: str
) -> None:
    target = tmp_path / "cut.mp4"
    chunks = [VIDEO[:1000], VIDEO[1000:]]
    seen_mid_stream: list[tuple[list[str], bool]] = []

    def observe() -> None:
        seen_mid_stream.append((leftovers(tmp_path), target.exists()))

    def sync_body() -> Any:
        for chunk in chunks:
            yield chunk
            observe()

    async def async_body() -> Any:
        for chunk in chunks:
            yield chunk
            observe()

    stream = sync_body() if flavour == "sync" else async_body()
    api.add("GET", FINAL_URL, lambda request: httpx.Response(200, content=stream))

    await resolve(client.jobs.download(Job.model_validate(finished_job()), target))

    assert target.read_bytes() == VIDEO
    assert len(seen_mid_stream) == 2
    for parts, target_existed in seen_mid_stream:
        assert len(parts) == 1 and parts[0].startswith(".cut.mp4.")
        assert not target_existed
    assert leftovers(tmp_path) == []
