"""Object stores under test: a folder, and a bucket on moto's S3 server over real HTTP.

The S3 server is moto's, in its own process on a free loopback port (one per session);
boto3 reaches it through the standard AWS settings, set per test. Each test gets a new
bucket. ``Backend`` wraps a store with what only a test does behind its back: alter an
object, or leave what a crashed put leaves.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.storage import FileStore, ObjectStore, S3Store, make_s3_client

MiB = 1 << 20

_SERVER = """
import sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # serve until the tests close the pipe
server.stop()
"""


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server in a child process."""
    pytest.importorskip("moto.moto_server.threaded_moto_server", reason="needs moto[server]")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        pytest.fail(f"moto's S3 server did not start (exit code {proc.wait()})")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def aws_settings(endpoint: str) -> dict[str, str]:
    """The standard AWS variables pointing boto3 at ``endpoint``, and at nothing else."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> dict[str, str]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    env = aws_settings(moto_endpoint)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str) -> Any:
    """A client of the server, made like ``open_store`` makes one (from the standard AWS
    settings), once: building a boto3 client costs ~0.5 s. Stores under test share it;
    tests look (and tamper) behind them with it."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in aws_settings(moto_endpoint).items():
            env.setenv(name, value)
        return make_s3_client()


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"rg-{secrets.token_hex(6)}"
    s3_client.create_bucket(Bucket=name)
    return name


@dataclass
class Backend:
    """A store and its raw side: ``tmp`` for FileStore, the bucket and client for S3."""

    kind: str
    store: Any  # FileStore | S3Store
    client: Any = None

    def raw_key(self, key: str) -> str:
        return f"{self.store.prefix}/{key}" if self.kind == "s3" else key

    def tamper(self, key: str, offset: int = 0) -> None:
        """Flip one byte of the object, keeping its store record (bit rot, a stray write)."""
        if self.kind == "file":
            with open(self.store.root / key, "r+b") as f:
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ 0xFF]))
            return
        raw = self.client.get_object(Bucket=self.store.bucket, Key=self.raw_key(key))
        data = bytearray(raw["Body"].read())
        data[offset] ^= 0xFF
        self.client.put_object(
            Bucket=self.store.bucket,
            Key=self.raw_key(key),
            Body=bytes(data),
            Metadata=raw["Metadata"],
            ContentType=raw["ContentType"],
        )

    def replace(self, key: str, data: bytes) -> None:
        """Put other bytes at ``key`` without the store (so without its record of them)."""
        if self.kind == "file":
            path = self.store.root / key
            other = path.with_name("replacement")
            other.write_bytes(data)
            os.replace(other, path)  # a new inode: the sidecar no longer describes it
            return
        self.client.put_object(Bucket=self.store.bucket, Key=self.raw_key(key), Body=data)

    def leave_unfinished_put(self, key: str) -> None:
        """What a put that a crash interrupted leaves behind."""
        if self.kind == "file":
            path = self.store.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_name(f".{path.name}.abc123.tmp").write_bytes(b"half")
            return
        upload = self.client.create_multipart_upload(
            Bucket=self.store.bucket, Key=self.raw_key(key)
        )
        self.client.upload_part(
            Bucket=self.store.bucket,
            Key=self.raw_key(key),
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * MiB,
        )

    def leftovers(self) -> int:
        """Unfinished puts still taking space: temp files, or multipart uploads."""
        if self.kind == "file":
            if not self.store.root.exists():
                return 0
            return sum(1 for p in self.store.root.rglob(".*.tmp"))
        uploads = self.client.list_multipart_uploads(Bucket=self.store.bucket)
        return len(uploads.get("Uploads", []))


def file_backend(tmp_path: Path) -> Backend:
    return Backend("file", FileStore(tmp_path / "objects", chunk_size=64 * 1024))


def s3_backend(client: Any, bucket: str, **options: Any) -> Backend:
    options.setdefault("part_size", 5 * MiB)  # S3's smallest: multipart at small sizes
    return Backend("s3", S3Store(bucket, "objects", client=client, **options), client)


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        return file_backend(tmp_path)
    client = request.getfixturevalue("s3_client")
    return s3_backend(client, request.getfixturevalue("bucket"))


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    s: ObjectStore = backend.store
    return s
