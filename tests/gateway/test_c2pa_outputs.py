"""C2PA in the storage path: with a certificate configured, every stored MP4 (each shot
and the final cut, in a folder or in S3) carries a credential that reads back Trusted
against the dev root and Invalid after a one-byte change in its video data; the hashes
the gateway records are the signed files'; `reelgate verify` checks a downloaded output
against its job's provenance; a bad certificate stops the gateway at startup."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import open_gateway
from typer.testing import CliRunner

from gateway.c2pa import CredentialConfigError, DevCert, make_dev_cert, read_credential
from gateway.cli import app
from gateway.settings import ConfigError
from reelgate import types as t

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
STORYBOARD = {
    "assemble": True,
    "defaults": {"resolution": "360p", "fps": 12, "aspect_ratio": "16:9"},
    "shots": [
        {"kind": "broll", "prompt": f"a red kite over dunes, take {i}", "duration_s": 1.0}
        for i in range(2)
    ],
}


@pytest.fixture(autouse=True)
def _no_c2pa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERT", "KEY", "TRUST_ANCHORS"):
        monkeypatch.delenv(f"REELGATE_C2PA_{name}", raising=False)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevCert:
    return make_dev_cert(tmp_path_factory.mktemp("c2pa-dev"))


def signing(dev: DevCert) -> dict[str, Any]:
    return {"c2pa_cert": dev.cert, "c2pa_key": dev.key, "c2pa_trust_anchors": dev.root}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_inside_mdat(src: Path, dst: Path) -> None:
    data, pos = bytearray(src.read_bytes()), 0
    while pos + 8 <= len(data):  # top-level boxes, to the mdat
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        if kind == b"mdat":
            data[pos + header + (size - header) // 2] ^= 0x01
            dst.write_bytes(data)
            return
        pos += size
    raise AssertionError(f"{src} has no mdat box")


async def render_signed(
    tmp_path: Path, database_url: str, dev: DevCert, **settings: Any
) -> tuple[t.Job, dict[str, Any], dict[str, Path]]:
    """Render the storyboard; download every output as a client would."""
    async with open_gateway(tmp_path / "data", database_url, **signing(dev), **settings) as gw:
        job = await gw.client.jobs.create(STORYBOARD)
        job = await gw.client.jobs.wait(job, timeout=60)
        assert job.status == "succeeded", [(s.status, s.error_message) for s in job.shots]
        prov = await gw.client.jobs.provenance(job)
        files = {"final": await gw.client.jobs.download(job, tmp_path / "final.mp4")}
        for shot in job.shots:
            files[shot.id] = await gw.client.jobs.download(
                job, tmp_path / f"{shot.id}.mp4", shot=shot.id
            )
    return job, prov, files


@pytest.mark.parametrize("where", ["file", "s3"])
async def test_every_stored_output_carries_a_trusted_credential(
    tmp_path: Path, database_url: str, dev: DevCert, where: str, request: pytest.FixtureRequest
) -> None:
    settings = {}
    if where == "s3":
        request.getfixturevalue("aws_env")
        settings["storage_url"] = f"s3://{request.getfixturevalue('bucket')}/gw"
    job, prov, files = await render_signed(tmp_path, database_url, dev, **settings)
    assert job.final is not None

    manifests = {m["ids"]["shot"]: m for m in prov["shots"]}
    for shot in job.shots:
        assert shot.output is not None
        path = files[shot.id]
        cred = read_credential(path, trust_anchors=dev.root)
        assert cred is not None, f"shot {shot.id} was stored without a credential"
        assert cred.state == "Trusted", cred.failures
        assert (cred.job_id, cred.shot_id) == (job.id, shot.id)
        assert cred.action == "c2pa.created" and cred.digital_source_type == TRAINED
        assert any(a.startswith("local/preview") for a in cred.software_agents)
        # what the gateway recorded describes the signed file
        assert sha256(path) == shot.output.sha256 == manifests[shot.id]["output"]["sha256"]
        assert path.stat().st_size == shot.output.bytes

    final = read_credential(files["final"], trust_anchors=dev.root)
    assert final is not None, "the final cut was stored without a credential"
    assert final.state == "Trusted", final.failures
    assert final.job_id == job.id
    assert [i.title for i in final.ingredients] == [f"{s.id}.mp4" for s in job.shots]
    assert all(i.has_credential and i.relationship == "componentOf" for i in final.ingredients)
    assert sha256(files["final"]) == job.final.sha256 == prov["final"]["output"]["sha256"]
    # the final cut's parents: each shot's stored output, in order
    assert [(p["shot_id"], p["sha256"]) for p in prov["final"]["parents"]] == [
        (s.id, s.output.sha256) for s in job.shots if s.output
    ]

    for name, path in files.items():
        tampered = tmp_path / f"tampered-{name}.mp4"
        flip_inside_mdat(path, tampered)
        cred = read_credential(tampered, trust_anchors=dev.root)
        assert cred is not None and cred.state == "Invalid", name


async def test_verify_a_downloaded_output_against_its_job_provenance(
    tmp_path: Path, database_url: str, dev: DevCert
) -> None:
    job, prov, files = await render_signed(tmp_path, database_url, dev)
    manifest = tmp_path / "provenance.json"
    manifest.write_text(json.dumps(prov))  # as `GET /v1/jobs/{id}/provenance` returned it
    runner = CliRunner()

    def verify(path: Path) -> Any:
        args = ["verify", str(path), "--manifest", str(manifest), "--trust", str(dev.root)]
        return runner.invoke(app, args)

    final = verify(files["final"])
    assert final.exit_code == 0, final.output
    assert f"final cut of job {job.id}" in final.stdout and "Trusted" in final.stdout
    shot = verify(files[job.shots[1].id])
    assert shot.exit_code == 0, shot.output
    assert f"shot {job.shots[1].id} of job {job.id}" in shot.stdout

    flip_inside_mdat(files["final"], tmp_path / "tampered.mp4")
    tampered = verify(tmp_path / "tampered.mp4")
    assert tampered.exit_code == 1
    assert "matches none of the 3 outputs" in tampered.stdout and "Invalid" in tampered.stdout


async def test_a_bad_certificate_stops_the_gateway_at_startup(
    tmp_path: Path, database_url: str, dev: DevCert
) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="REELGATE_C2PA_CERT") as raised:
        async with open_gateway(tmp_path / "data", database_url, c2pa_cert=bad, c2pa_key=dev.key):
            pass
    assert isinstance(raised.value, CredentialConfigError)
    with pytest.raises(ConfigError, match="REELGATE_C2PA_KEY"):  # one without the other
        async with open_gateway(tmp_path / "data", database_url, c2pa_cert=dev.cert):
            pass
    async with open_gateway(tmp_path / "data", database_url, **signing(dev)) as gw:
        assert (await gw.client.jobs.list()) is not None  # the refused starts held nothing
