"""C2PA content credentials: a dev CA chain, signed shots and final cuts that read back
Trusted against its root and Invalid after a one-byte change, clear errors for a bad
certificate or key, and `reelgate verify` / `reelgate admin c2pa-dev-cert`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from gateway import media
from gateway.c2pa import (
    C2paSigner,
    CredentialConfigError,
    CredentialReadError,
    DevCert,
    Ingredient,
    SignedFile,
    SigningError,
    make_dev_cert,
    read_credential,
)
from gateway.c2pa._certs import load_signing_credentials
from gateway.cli import app
from gateway.settings import ConfigError, Settings

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def make_clip(path: Path, source: str = "testsrc") -> Path:
    subprocess.run(
        [media.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"{source}=size=64x64:rate=8", "-t", "1",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def boxes(data: bytes) -> dict[bytes, tuple[int, int]]:
    """Top-level MP4 boxes: type -> (offset of the payload, payload length)."""
    out, pos = {}, 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        out.setdefault(kind, (pos + header, size - header))
        pos += size
    return out


def flip_inside_mdat(src: Path, dst: Path) -> None:
    data = bytearray(src.read_bytes())
    start, length = boxes(bytes(data))[b"mdat"]
    data[start + length // 2] ^= 0x01
    dst.write_bytes(data)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _no_c2pa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CERT", "KEY", "TRUST_ANCHORS"):
        monkeypatch.delenv(f"REELGATE_C2PA_{name}", raising=False)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevCert:
    return make_dev_cert(tmp_path_factory.mktemp("c2pa-dev"))


@pytest.fixture(scope="module")
def signer(dev: DevCert) -> C2paSigner:
    return C2paSigner(dev.cert, dev.key, trust_anchors=dev.root, gateway_version="9.9.9")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("c2pa-clips")
    return {"a": make_clip(root / "a.mp4"), "b": make_clip(root / "b.mp4", "testsrc2")}


@pytest.fixture(scope="module")
def shot(
    signer: C2paSigner, clips: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> SignedFile:
    dst = tmp_path_factory.mktemp("c2pa-shot") / "video.mp4"
    return signer.sign_shot(
        clips["a"], dst, job_id="job_1", shot_id="shot_a", model="runway/gen4.5",
        vendor="runway", model_version="2025-11",
    )  # fmt: skip


# --- the dev chain -------------------------------------------------------------------------


def test_dev_chain_has_the_key_usage_c2pa_requires(dev: DevCert) -> None:
    leaf, intermediate = x509.load_pem_x509_certificates(dev.cert.read_bytes())
    root = x509.load_pem_x509_certificate(dev.root.read_bytes())
    ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36") in ekus  # documentSigning
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in ekus
    assert ExtendedKeyUsageOID.SERVER_AUTH not in ekus
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.issuer == intermediate.subject and intermediate.issuer == root.subject
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert dev.key.stat().st_mode & 0o777 == 0o600


# --- signing and reading back ----------------------------------------------------------------


def test_shot_reads_back_trusted_against_the_dev_root(
    shot: SignedFile, dev: DevCert, clips: dict[str, Path]
) -> None:
    cred = read_credential(shot.path, trust_anchors=dev.root)
    assert cred is not None
    assert cred.state == "Trusted" and cred.trusted and cred.failures == ()
    assert cred.action == "c2pa.created"
    assert cred.digital_source_type == TRAINED
    assert cred.software_agents == ("runway/gen4.5 2025-11 (runway)", "reelgate 9.9.9")
    assert cred.claim_generator == "reelgate 9.9.9"
    assert (cred.job_id, cred.shot_id) == ("job_1", "shot_a")
    assert cred.signer == "reelgate dev signer (reelgate dev)"
    # the hash and size to record are the signed file's; the source is untouched
    assert (shot.sha256, shot.bytes) == (sha256(shot.path), shot.path.stat().st_size)
    assert shot.sha256 != sha256(clips["a"])
    assert read_credential(clips["a"]) is None


def test_without_the_root_it_is_valid_not_trusted(shot: SignedFile) -> None:
    cred = read_credential(shot.path)
    assert cred is not None and cred.state == "Valid" and not cred.trusted
    assert any(f.startswith("signingCredential.untrusted") for f in cred.failures)


def test_one_byte_changed_in_the_video_data_is_invalid(
    shot: SignedFile, dev: DevCert, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered.mp4"
    flip_inside_mdat(shot.path, tampered)
    cred = read_credential(tampered, trust_anchors=dev.root)
    assert cred is not None and cred.state == "Invalid"
    assert any("bmffHash.mismatch" in f for f in cred.failures)


def test_final_cut_lists_its_shot_ingredients(
    signer: C2paSigner, dev: DevCert, clips: dict[str, Path], tmp_path: Path
) -> None:
    a = signer.sign_shot(clips["a"], tmp_path / "a.mp4", job_id="job_2", shot_id="shot_a",
                         model="runway/gen4.5")  # fmt: skip
    b = signer.sign_shot(clips["b"], tmp_path / "b.mp4", job_id="job_2", shot_id="shot_b",
                         model="local/preview")  # fmt: skip
    ingredients = [
        Ingredient(a.path, "shot_a", a.sha256, "runway/gen4.5"),
        Ingredient(b.path, "shot_b", b.sha256, "local/preview"),
    ]
    final = signer.sign_final(clips["b"], tmp_path / "final.mp4", job_id="job_2",
                              ingredients=ingredients)  # fmt: skip
    cred = read_credential(final.path, trust_anchors=dev.root)
    assert cred is not None and cred.state == "Trusted", cred.failures
    assert (cred.action, cred.digital_source_type) == ("c2pa.created", TRAINED)
    assert [(i.title, i.relationship, i.has_credential) for i in cred.ingredients] == [
        ("shot_a.mp4", "componentOf", True),
        ("shot_b.mp4", "componentOf", True),
    ]
    assert cred.software_agents == (
        "reelgate 9.9.9", "runway/gen4.5 (runway)", "local/preview (local)",
    )  # fmt: skip
    ids = next(a["data"] for a in cred.manifest["assertions"] if a["label"] == "org.reelgate.ids")
    assert ids == {
        "job": "job_2",
        "shots": [
            {"shot": "shot_a", "sha256": a.sha256, "model": "runway/gen4.5"},
            {"shot": "shot_b", "sha256": b.sha256, "model": "local/preview"},
        ],
    }
    actions = next(
        a["data"]["actions"] for a in cred.manifest["assertions"] if a["label"] == "c2pa.actions.v2"
    )
    assert [x["action"] for x in actions] == ["c2pa.created", "c2pa.placed", "c2pa.placed"]


def test_a_source_already_signed_keeps_its_credential_as_an_ingredient(
    signer: C2paSigner, shot: SignedFile, dev: DevCert, tmp_path: Path
) -> None:
    """Some vendors sign their outputs; signing again must not silently drop that."""
    again = signer.sign_shot(shot.path, tmp_path / "again.mp4", job_id="job_3", shot_id="shot_c",
                             model="google/veo-3")  # fmt: skip
    cred = read_credential(again.path, trust_anchors=dev.root)
    assert cred is not None and cred.state == "Trusted"
    assert (cred.job_id, cred.shot_id) == ("job_3", "shot_c")
    assert [(i.title, i.has_credential) for i in cred.ingredients] == [("backend output", True)]


def test_a_file_that_is_not_a_video_cannot_be_signed(signer: C2paSigner, tmp_path: Path) -> None:
    junk, dst = tmp_path / "junk.mp4", tmp_path / "out.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(SigningError, match=r"junk\.mp4"):
        signer.sign_shot(junk, dst, job_id="j", shot_id="s", model="m/x")
    assert not dst.exists()
    with pytest.raises(ValueError, match="another file"):
        signer.sign_shot(junk, junk, job_id="j", shot_id="s", model="m/x")


def test_reading_a_missing_or_unknown_file(tmp_path: Path) -> None:
    with pytest.raises(CredentialReadError, match="cannot read"):
        read_credential(tmp_path / "missing.mp4")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CredentialReadError):
        read_credential(text)


# --- configuration errors --------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _server_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A TLS server certificate: a fine X.509 v3 leaf, but not one C2PA signs with."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "tls.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(_pem_key(key))
    return tmp_path / "tls.pem", tmp_path / "tls.key"


def test_missing_files_name_the_setting(dev: DevCert, tmp_path: Path) -> None:
    with pytest.raises(CredentialConfigError, match=r"REELGATE_C2PA_CERT.*nope\.pem: no such file"):
        C2paSigner(tmp_path / "nope.pem", dev.key)
    with pytest.raises(CredentialConfigError, match=r"REELGATE_C2PA_KEY.*nope\.key: no such file"):
        C2paSigner(dev.cert, tmp_path / "nope.key")
    with pytest.raises(CredentialConfigError, match=r"trust anchors.*no such file"):
        C2paSigner(dev.cert, dev.key, trust_anchors=tmp_path / "nope-root.pem")


def test_bad_files_say_what_is_wrong(dev: DevCert, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(CredentialConfigError, match="not a PEM certificate chain"):
        C2paSigner(garbage, dev.key)
    with pytest.raises(CredentialConfigError, match="not a PEM private key"):
        C2paSigner(dev.cert, garbage)
    locked = tmp_path / "locked.key"
    locked.write_bytes(_pem_key(ec.generate_private_key(ec.SECP256R1()), b"secret"))
    with pytest.raises(CredentialConfigError, match="encrypted"):
        C2paSigner(dev.cert, locked)


def test_a_key_of_another_chain_is_refused(dev: DevCert, tmp_path: Path) -> None:
    other = make_dev_cert(tmp_path / "other")
    with pytest.raises(CredentialConfigError, match="is not the key of the first certificate"):
        C2paSigner(dev.cert, other.key)


def test_a_server_auth_certificate_is_refused_with_the_usages_c2pa_needs(tmp_path: Path) -> None:
    cert, key = _server_cert(tmp_path)
    with pytest.raises(
        CredentialConfigError, match=r"\(serverAuth\).*emailProtection.*documentSigning"
    ):
        C2paSigner(cert, key)


def test_a_ca_or_an_expired_certificate_is_refused(dev: DevCert, tmp_path: Path) -> None:
    with pytest.raises(CredentialConfigError, match="is a CA"):
        load_signing_credentials(dev.root, dev.key)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    with pytest.raises(CredentialConfigError, match="not now"):
        load_signing_credentials(dev.cert, dev.key, now=later)


def test_errors_are_config_errors_the_cli_prints() -> None:
    assert issubclass(CredentialConfigError, ConfigError)


def test_from_settings(dev: DevCert, monkeypatch: pytest.MonkeyPatch) -> None:
    assert C2paSigner.from_settings(Settings()) is None
    monkeypatch.setenv("REELGATE_C2PA_CERT", "")
    assert C2paSigner.from_settings(Settings()) is None  # empty is unset
    monkeypatch.setenv("REELGATE_C2PA_CERT", str(dev.cert))
    with pytest.raises(CredentialConfigError, match="REELGATE_C2PA_KEY is not set"):
        C2paSigner.from_settings(Settings())
    monkeypatch.setenv("REELGATE_C2PA_KEY", str(dev.key))
    monkeypatch.setenv("REELGATE_C2PA_TRUST_ANCHORS", str(dev.root))
    settings = Settings()
    assert settings.c2pa_trust_anchors == dev.root
    signer = C2paSigner.from_settings(settings)
    assert signer is not None and signer.subject == "reelgate dev signer"


# --- the CLI ---------------------------------------------------------------------------------

runner = CliRunner()


def test_admin_c2pa_dev_cert(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    done = runner.invoke(app, ["admin", "c2pa-dev-cert", str(folder)])
    assert done.exit_code == 0, done.output
    assert f"REELGATE_C2PA_CERT={(folder / 'signer.pem').resolve()}" in done.stdout
    C2paSigner(folder / "signer.pem", folder / "signer.key")  # a usable pair
    again = runner.invoke(app, ["admin", "c2pa-dev-cert", str(folder)])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert runner.invoke(app, ["admin", "c2pa-dev-cert", str(folder), "--force"]).exit_code == 0


def _manifest(path: Path, video: Path, **ids: str) -> Path:
    kind = "final" if "shot" not in ids else "shot"
    doc = {"kind": kind, "ids": ids, "output": {"sha256": sha256(video), "bytes": 1}}
    path.write_text(json.dumps(doc))
    return path


def test_verify_trusted_with_its_sidecar_manifest(shot: SignedFile, dev: DevCert) -> None:
    sidecar = _manifest(shot.path.with_name("provenance.json"), shot.path, job="job_1", shot="s")
    try:
        done = runner.invoke(app, ["verify", str(shot.path), "--trust", str(dev.root)])
    finally:
        sidecar.unlink()
    assert done.exit_code == 0, done.output
    assert "matches provenance.json: shot s of job job_1" in done.stdout
    assert "Trusted" in done.stdout and "verified" in done.stdout


def test_verify_fails_on_a_changed_byte(shot: SignedFile, dev: DevCert, tmp_path: Path) -> None:
    manifest = _manifest(tmp_path / "m.json", shot.path, job="job_1", shot="shot_a")
    tampered = tmp_path / "tampered.mp4"
    flip_inside_mdat(shot.path, tampered)
    done = runner.invoke(
        app, ["verify", str(tampered), "--manifest", str(manifest), "--trust", str(dev.root)]
    )
    assert done.exit_code == 1
    assert "does not match m.json" in done.stdout
    assert "Invalid" in done.stdout and "not verified" in done.stdout


def test_verify_against_a_job_provenance_document(shot: SignedFile, tmp_path: Path) -> None:
    other = {"kind": "shot", "ids": {"job": "j", "shot": "x"}, "output": {"sha256": "0" * 64}}
    final = {"kind": "final", "ids": {"job": "j"}, "output": {"sha256": sha256(shot.path)}}
    doc = tmp_path / "job.json"
    doc.write_text(
        json.dumps({"job": "j", "status": "succeeded", "shots": [other], "final": final})
    )
    done = runner.invoke(app, ["verify", str(shot.path), "--manifest", str(doc)])
    assert done.exit_code == 0, done.output
    assert "final cut of job j" in done.stdout
    assert "Valid" in done.stdout  # no trust anchor given: intact, signer not checked


def test_verify_a_signer_outside_the_given_root_fails(shot: SignedFile, tmp_path: Path) -> None:
    stranger = make_dev_cert(tmp_path / "stranger")
    done = runner.invoke(app, ["verify", str(shot.path), "--trust", str(stranger.root)])
    assert done.exit_code == 1 and "not Trusted" in done.stdout


def test_verify_with_nothing_to_check_against_fails(clips: dict[str, Path]) -> None:
    done = runner.invoke(app, ["verify", str(clips["a"])])
    assert done.exit_code == 1
    assert "no C2PA credential" in done.stdout and "not verified" in done.stdout


def test_verify_usage_errors(tmp_path: Path, clips: dict[str, Path]) -> None:
    missing = runner.invoke(app, ["verify", str(tmp_path / "missing.mp4")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    done = runner.invoke(app, ["verify", str(clips["a"]), "--manifest", str(bad)])
    assert done.exit_code == 2 and "not a JSON provenance manifest" in done.stderr


def test_verify_without_the_c2pa_extra_still_checks_the_hash(
    shot: SignedFile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "c2pa", None)  # as if c2pa-python were not installed
    manifest = _manifest(tmp_path / "m.json", shot.path, job="job_1", shot="shot_a")
    done = runner.invoke(app, ["verify", str(shot.path), "--manifest", str(manifest)])
    assert done.exit_code == 0, done.output
    assert "pip install 'reelgate[c2pa]'" in done.stdout
