"""FETCH and STORE: spool a backend's output, check it, sign it, store it with its provenance.

The output is spooled to local disk first (hashed while streaming), probed, signed
with a C2PA credential when a certificate is configured, then handed to the object
store (a rename for a local folder on the same disk, an upload otherwise) and the two
hashes compared; the manifest goes next to it. Keys are fixed per attempt, so a step
redone after a crash overwrites the same object instead of storing a second one.

Once spooled, an output no longer needs the backend: while the store is unreachable
it waits in the spool (:mod:`gateway.engine.spool`) and only the upload is retried,
with backoff, until the store answers; a restart finds it there.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import media, provenance
from gateway.c2pa import C2paSigner, Ingredient, SignedFile, SigningError
from gateway.engine.policy import Backoff, Clock, SystemClock
from gateway.engine.spool import Pending, Spool, store_unreachable
from gateway.mp4info import read_mp4_info
from gateway.storage import (
    ChecksumMismatch,
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

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
#: Called once when an output starts waiting for an unreachable store (with the reason).
OnOutage = Callable[[str], None]


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
        signer: C2paSigner | None = None,
        clock: Clock | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._store = store
        self._spool = Spool(spool_dir)
        self._models = models
        self._ffmpeg = ffmpeg
        self._signer = signer
        self._clock = clock or SystemClock()
        self._backoff = backoff or Backoff(base_s=1.0, cap_s=30.0)

    def recover(self, keep: Collection[str] = ()) -> list[str]:
        """On start: keep the spooled outputs of the attempts in ``keep`` (still live:
        they store them when they resume), drop what a crash left of the rest."""
        return self._spool.recover(keep)

    def spooled(self, attempt_id: str) -> Pending | None:
        """The attempt's output if it is already spooled (then the backend need not be
        asked for it again), else None."""
        return self._spool.load(attempt_id)

    def waiting(self) -> list[str]:
        """Names (attempt ids, ``{job}-final``) of the outputs waiting for the store."""
        return self._spool.names()

    async def store_shot(
        self,
        job: Job,
        shot: Shot,
        attempt: Attempt,
        attempts: list[Attempt],
        chunks: AsyncIterator[bytes],
        cost_micros: int,
        *,
        vendor_cost_micros: int | None = None,
        on_outage: OnOutage | None = None,
    ) -> StoredOutput:
        """Fetch ``chunks`` into the spool and store them, waiting out store outages.

        An output an earlier try (or process) already spooled is stored from the spool:
        ``chunks`` is then never read, so the backend is not asked for it twice.
        """
        pending = self._spool.load(attempt.id)
        if pending is None:
            pending = await self._spool_shot(
                job, shot, attempt, attempts, chunks, cost_micros, vendor_cost_micros
            )
        await self._store_pending(pending, on_outage, keep=True)
        return StoredOutput(pending.key, pending.info)

    async def _spool_shot(
        self,
        job: Job,
        shot: Shot,
        attempt: Attempt,
        attempts: list[Attempt],
        chunks: AsyncIterator[bytes],
        cost_micros: int,
        vendor_cost_micros: int | None,
    ) -> Pending:
        raw = self._spool.path(attempt.id)
        try:
            digest, size = await _write_chunks(chunks, raw)
            if size == 0:
                raise media.MediaError("the backend returned an empty output")
            info = read_mp4_info(raw) or await media.probe(raw, ffmpeg=self._ffmpeg)
            video = raw
            if self._signer is not None:
                model = self._models(attempt.model)
                signed = await _signed(
                    self._signer.sign_shot,
                    raw,
                    self._spool.path(attempt.id, ".signed.mp4"),
                    job_id=job.id,
                    shot_id=shot.id,
                    model=model.id,
                    vendor=model.vendor,
                    model_version=model.version,
                )
                video, digest, size = signed.path, signed.sha256, signed.bytes
            key = shot_output_key(job.tenant_id, job.id, shot.id, attempt.number)
            output = provenance.OutputRef(
                key, digest, size, info.duration_s, info.width, info.height, info.fps, info.codec
            )
            manifest = self._shot_manifest(job, shot, attempt, attempts, output, cost_micros)
            prov_key = shot_provenance_key(job.tenant_id, job.id, shot.id, attempt.number)
            wire = {**_wire_output(output), "provenance_key": prov_key}
            pending = _pending(
                attempt.id, video, output, manifest, prov_key, wire, vendor_cost_micros
            )
        except BaseException:
            self._spool.discard(attempt.id)
            raise
        return pending

    async def store_final(self, job: Job, shots: list[Shot]) -> StoredOutput:
        """Join the succeeded shots in order into the final cut, with its manifest; signed,
        with the shots as its ingredients, when a certificate is configured."""
        name = f"{job.id}-final"
        inputs: list[Path] = []
        temps: list[Path] = []
        out = self._spool.path(name)
        try:
            for shot in shots:
                assert shot.output_key is not None
                path = self._store.local_path(shot.output_key)
                if path is None:
                    path = self._spool.path(f"{job.id}-{shot.index}")
                    await _write_chunks(self._store.get_stream(shot.output_key), path)
                    temps.append(path)
                inputs.append(path)
            result = await media.assemble(inputs, out, ffmpeg=self._ffmpeg)
            if self._signer is not None:
                ingredients = [
                    Ingredient(path, s.id, (s.output or {}).get("sha256"), s.model)
                    for s, path in zip(shots, inputs, strict=True)
                ]
                signed = await _signed(
                    self._signer.sign_final,
                    out,
                    self._spool.path(name, ".signed.mp4"),
                    job_id=job.id,
                    ingredients=ingredients,
                )
                video, digest, size = signed.path, signed.sha256, signed.bytes
            else:
                video, (digest, size) = out, await _write_chunks(_read_file(out), None)
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
            wire = {
                **_wire_output(output),
                "provenance_key": prov_key,
                "assemble_mode": result.mode,
            }
            pending = _pending(name, video, output, manifest, prov_key, wire)
        except BaseException:
            self._spool.discard(name)
            raise
        finally:
            for path in temps:
                path.unlink(missing_ok=True)
        await self._store_pending(pending, None)  # not saved: a restart assembles it again
        return StoredOutput(key, wire)

    async def _store_pending(
        self, pending: Pending, on_outage: OnOutage | None, *, keep: bool = False
    ) -> None:
        """Store the spooled output and its manifest, then drop it from the spool.

        While the store is unreachable the output stays spooled and the upload is
        retried with backoff, for as long as it takes (a cancel or shutdown stops the
        wait). With ``keep``, the first such failure saves its record, so the next start
        stores it from here; a store that answers at once needs no record (a crash in
        between fetches again: the key is fixed). Any other failure drops it: the caller
        fetches again.
        """
        failures = 0
        while True:
            try:
                await self._put(pending)
            except (StorageError, OSError) as exc:
                if not store_unreachable(exc):
                    self._spool.discard(pending.name)
                    raise
                failures += 1
                if failures == 1 and keep:
                    self._spool.save(pending)
                delay = self._backoff.delay(failures)
                log.warning(
                    "store unreachable, %s waits in the spool (try %d, next in %.1f s): %s",
                    pending.key, failures, delay, exc,
                )  # fmt: skip
                if failures == 1 and on_outage is not None:
                    on_outage(str(exc))
                await self._clock.sleep(delay)
            else:
                self._spool.discard(pending.name)
                return

    async def _put(self, p: Pending) -> None:
        """The video and its manifest side by side (concurrently: two fsyncs overlap).
        Both finish before a failure is raised, so a retry never races the try before it."""
        results = await asyncio.gather(
            self._put_video(p),
            self._store.put_bytes(
                p.manifest_key, p.manifest_bytes, content_type="application/json"
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _put_video(self, p: Pending) -> None:
        if not p.video.exists():  # a local store took the file on an earlier try
            there = await self._store.head(p.key)
            if there is None or there.sha256 != p.sha256:
                raise StorageError(f"the spooled {p.video.name} is gone and {p.key} not stored")
            return
        stored = await self._store.put_file(
            p.key, p.video, sha256=p.sha256, content_type="video/mp4", metadata=p.metadata
        )
        if stored.sha256 != p.sha256:
            await self._store.delete(p.key)
            raise ChecksumMismatch(
                f"checksum mismatch storing {p.key}: spooled {p.sha256}, stored {stored.sha256}"
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


def _pending(
    name: str,
    video: Path,
    output: provenance.OutputRef,
    manifest: dict[str, Any],
    manifest_key: str,
    wire: dict[str, Any],
    vendor_cost_micros: int | None = None,
) -> Pending:
    metadata = provenance.object_metadata(manifest)
    return Pending(
        name,
        video,
        output.key,
        output.sha256,
        output.bytes,
        metadata,
        manifest_key,
        manifest,
        wire,
        vendor_cost_micros,
    )


async def _signed(
    sign: Callable[..., SignedFile], src: Path, dst: Path, **facts: Any
) -> SignedFile:
    """Sign ``src`` into ``dst`` on a worker thread (CPU work), then drop ``src``."""
    try:
        signed = await asyncio.to_thread(sign, src, dst, **facts)
    except SigningError as exc:  # c2pa cannot read it as an MP4: not a usable output
        raise media.MediaError(str(exc)) from exc
    src.unlink(missing_ok=True)
    return signed


async def _write_chunks(chunks: AsyncIterator[bytes], path: Path | None) -> tuple[str, int]:
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
