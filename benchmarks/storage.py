"""Storage throughput and C2PA signing cost.

1. Upload: the same file uploaded to the same S3 server (moto's, in a child process on
   loopback) through ``S3Store.put_file`` (the engine's path: SHA-256 while reading,
   per-part checksums, a HEAD to check what was stored) and through a plain boto3
   ``upload_file`` (default transfer settings). Runs alternate, N each; the ratio is
   S3Store's median throughput over boto3's (target >= 0.9).
2. Signing: ``C2paSigner.sign_shot`` on an H.264 MP4 of about 25 MB, with a dev
   certificate (the time includes hashing the signed file); the median per MB
   (target < 5 ms/MB).

    python benchmarks/storage.py [--mb 64] [--runs 7] [--sign-runs 7]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder leads sys.path, and benchmarks/local_backend.py would
# shadow the local_backend package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from gateway import media
from gateway.c2pa import C2paSigner, make_dev_cert
from gateway.storage import S3Store, make_s3_client

MiB = 1 << 20

_SERVER = """
import sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def start_moto() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        sys.exit("moto's S3 server did not start (pip install 'moto[server]')")
    return proc, f"http://127.0.0.1:{port}"


def upload(path: Path, mb: int, runs: int) -> None:
    proc, endpoint = start_moto()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    try:
        import boto3

        plain = boto3.client("s3")  # boto3 as anyone would use it
        plain.create_bucket(Bucket="bench")
        store = S3Store("bench", "store", client=make_s3_client())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()

        def via_boto3(i: int) -> float:
            t0 = time.perf_counter()
            plain.upload_file(str(path), "bench", f"boto3/{i}.mp4")
            return time.perf_counter() - t0

        def via_store(i: int) -> float:
            t0 = time.perf_counter()
            stored = asyncio.run(
                store.put_file(f"{i}.mp4", path, sha256=digest, content_type="video/mp4")
            )
            elapsed = time.perf_counter() - t0
            assert stored.sha256 == digest and stored.bytes == mb * MiB
            return elapsed

        via_boto3(-1), via_store(-1)  # warm-up: connections, imports
        boto_s: list[float] = []
        store_s: list[float] = []
        for i in range(runs):
            first, second = (via_boto3, via_store) if i % 2 == 0 else (via_store, via_boto3)
            for fn in (first, second):
                (boto_s if fn is via_boto3 else store_s).append(fn(i))
                plain.delete_object(Bucket="bench", Key=f"boto3/{i}.mp4")
                plain.delete_object(Bucket="bench", Key=f"store/{i}.mp4")
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)
    b, s = statistics.median(boto_s), statistics.median(store_s)
    print(f"upload of {mb} MiB to moto's S3 server on loopback, median of {runs} (interleaved):")
    print(f"  boto3 upload_file   {b * 1000:7.0f} ms  {mb / b:7.1f} MiB/s")
    print(
        f"  S3Store.put_file    {s * 1000:7.0f} ms  {mb / s:7.1f} MiB/s  (sha256, checksums, HEAD)"
    )
    print(f"  ratio S3Store/boto3 {b / s:7.2f}   (target >= 0.9)")


def make_mp4(path: Path, target_mb: int) -> Path:
    """An H.264 MP4 of about ``target_mb`` (noisy frames at a fixed quantizer)."""
    subprocess.run(
        [media.ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=1280x720:rate=24:duration=10,noise=alls=40:allf=t",
         "-c:v", "libx264", "-preset", "ultrafast", "-qp", "8",
         "-fs", str(target_mb * MiB), "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def signing(work: Path, runs: int) -> None:
    dev = make_dev_cert(work / "dev")
    signer = C2paSigner(dev.cert, dev.key, trust_anchors=dev.root)
    clip = make_mp4(work / "clip.mp4", 25)
    mb = clip.stat().st_size / MiB
    times = []
    for i in range(runs + 1):
        dst = work / f"signed-{i}.mp4"
        t0 = time.perf_counter()
        signer.sign_shot(clip, dst, job_id="job_b", shot_id="shot_b", model="runway/gen4.5")
        if i:  # the first: warm-up
            times.append(time.perf_counter() - t0)
        dst.unlink()
    med = statistics.median(times)
    print(f"C2PA signing of a {mb:.1f} MiB MP4 (sign_shot, incl. sha256), median of {runs}:")
    print(f"  {med * 1000:7.1f} ms  = {med * 1000 / mb:5.2f} ms/MiB   (target < 5 ms/MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=64, help="upload size in MiB")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sign-runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rg-bench-storage-"))
    try:
        payload = work / "payload.mp4"
        with payload.open("wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(MiB))
        upload(payload, args.mb, args.runs)
        signing(work, args.sign_runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
