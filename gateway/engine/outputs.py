"""FETCH and STORE: spool a backend's output, check it, store it with its provenance.

The output is spooled to local disk first (hashed while streaming), probed, then
handed to the object store (a rename for a local folder on the same disk, an upload
otherwise) and the two hashes compared; the manifest goes next to it. Keys are
fixed per attempt, so a step redone after a crash overwrites the same object
instead of storing a second one.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import media, provenance
from gateway.mp4info import read_mp4_info
from gateway.storage import (
    ObjectStore,
    StorageError,
    final_output_key,
    final_provenance_key,
    shot_output_key,
    shot_provenance_key,
)
from gateway.tables import Attempt, Job, Shot
from reelgate import types as t

__all__ = ["OutputWriter", "StoredOutput"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredOutput:
    key: str
    info: dict[str, Any]  # the wire Output's fields, plus provenance_key


class OutputWriter:
    def __init__(
        self,
        store: ObjectStore,
        spool_dir: Path,
        models: Callable[[str], provenance.ModelRef],
        *,
        ffmpeg: str | None = None,
    ) -> None:
        self._store = store
        self._spool = spool_dir
        self._models = models
        self._ffmpeg = ffmpeg

    def recover(self) -> None:
        """Drop spool files a crash left; their attempts fetch again on resume."""
        if self._spool.is_dir():
            for path in self._spool.iterdir():
                path.unlink(missing_ok=True)

    async def store_shot(
        self,
        job: Job,
        shot: Shot,
        attempt: Attempt,
        attempts: list[Attempt],
        chunks: AsyncIterator[bytes],
        cost_micros: int,
    ) -> StoredOutput:
        spool = self._spool / f"{attempt.id}.mp4"
        try:
            digest, size = await _spool(chunks, spool)
            if size == 0:
                raise media.MediaError("the backend returned an empty output")
            info = read_mp4_info(spool) or await media.probe(spool, ffmpeg=self._ffmpeg)
            key = shot_output_key(job.tenant_id, job.id, shot.id, attempt.number)
            output = provenance.OutputRef(
                key, digest, size, info.duration_s, info.width, info.height, info.fps, info.codec
            )
            manifest = self._shot_manifest(job, shot, attempt, attempts, output, cost_micros)
            prov_key = shot_provenance_key(job.tenant_id, job.id, shot.id, attempt.number)
            await self._put_with_manifest(key, spool, digest, prov_key, manifest)
        finally:
            spool.unlink(missing_ok=True)
        return StoredOutput(key, {**_wire_output(output), "provenance_key": prov_key})

    async def _put_with_manifest(
        self, key: str, path: Path, digest: str, prov_key: str, manifest: dict[str, Any]
    ) -> None:
        """Store the video and its manifest side by side (concurrently: two fsyncs overlap)."""
        await asyncio.gather(
            self._put_file(key, path, digest, provenance.object_metadata(manifest)),
            self._store.put_bytes(
                prov_key, provenance.canonical_json(manifest), content_type="application/json"
            ),
        )

    async def store_final(self, job: Job, shots: list[Shot]) -> StoredOutput:
        """Join the succeeded shots in order into the final cut, with its manifest."""
        inputs: list[Path] = []
        temps: list[Path] = []
        out = self._spool / f"{job.id}-final.mp4"
        try:
            for shot in shots:
                assert shot.output_key is not None
                path = self._store.local_path(shot.output_key)
                if path is None:
                    path = self._spool / f"{job.id}-{shot.index}.mp4"
                    await _spool(self._store.get_stream(shot.output_key), path)
                    temps.append(path)
                inputs.append(path)
            result = await media.assemble(inputs, out, ffmpeg=self._ffmpeg)
            digest, size = await _spool(_read_file(out), None)
            key = final_output_key(job.tenant_id, job.id)
            i = result.info
            output = provenance.OutputRef(
                key, digest, size, i.duration_s, i.width, i.height, i.fps, i.codec
            )
            parents = [
                provenance.ParentRef(s.id, s.output_key or "", (s.output or {})["sha256"])
                for s in shots
            ]
            manifest = provenance.build_final_manifest(
                tenant=job.tenant_id,
                job_id=job.id,
                output=output,
                parents=parents,
                assemble_mode=result.mode,
            )
            prov_key = final_provenance_key(job.tenant_id, job.id)
            await self._put_with_manifest(key, out, digest, prov_key, manifest)
        finally:
            for path in (*temps, out):
                path.unlink(missing_ok=True)
        return StoredOutput(
            key, {**_wire_output(output), "provenance_key": prov_key, "assemble_mode": result.mode}
        )

    def _shot_manifest(
        self,
        job: Job,
        shot: Shot,
        attempt: Attempt,
        attempts: list[Attempt],
        output: provenance.OutputRef,
        cost_micros: int,
    ) -> dict[str, Any]:
        spec = t.ShotSpec.model_validate(shot.spec)
        plan = t.ShotPlan.model_validate(attempt.plan)
        inputs = [provenance.InputRef.from_uri(u) for u in (spec.image, spec.last_frame) if u]
        history = [
            provenance.AttemptRecord(
                a.number,
                a.model,
                "succeeded" if a.id == attempt.id else a.status,
                f"{a.error_code}: {a.error_message}" if a.error_code else None,
            )
            for a in sorted(attempts, key=lambda a: a.number)
        ]
        return provenance.build_shot_manifest(
            tenant=job.tenant_id,
            job_id=job.id,
            shot_id=shot.id,
            attempt_id=attempt.id,
            model=self._models(attempt.model),
            backend=provenance.BackendRef(attempt.adapter, attempt.backend_job_id),
            prompt=spec.prompt,
            prompt_sent=plan.prompt_sent,
            negative_sent=plan.negative_sent,
            output=output,
            requested=shot.spec,
            normalized=plan.params,
            adjustments=plan.adjustments,
            inputs=inputs,
            attempts=history,
            cost_micro_usd=cost_micros,
        )

    async def _put_file(self, key: str, path: Path, digest: str, metadata: dict[str, str]) -> None:
        stored = await self._store.put_file(
            key, path, sha256=digest, content_type="video/mp4", metadata=metadata
        )
        if stored.sha256 != digest:
            await self._store.delete(key)
            raise StorageError(
                f"checksum mismatch storing {key}: spooled {digest}, stored {stored.sha256}"
            )


def _wire_output(o: provenance.OutputRef) -> dict[str, Any]:
    return {
        "sha256": o.sha256,
        "bytes": o.bytes,
        "duration_s": o.duration_s,
        "width": o.width,
        "height": o.height,
        "fps": o.fps,
        "codec": o.codec,
    }


async def _spool(chunks: AsyncIterator[bytes], path: Path | None) -> tuple[str, int]:
    """Write ``chunks`` to ``path`` (or nowhere) and return their sha256 and size."""
    h, size = hashlib.sha256(), 0
    f = None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = path.open("wb")
    try:
        async for chunk in chunks:
            h.update(chunk)
            size += len(chunk)
            if f is not None:
                f.write(chunk)
    finally:
        if f is not None:
            f.close()
    return h.hexdigest(), size


async def _read_file(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk
