"""Outputs and their provenance, for the tenant that owns them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from gateway.db import Database
from gateway.services.errors import ServiceError
from gateway.storage import ObjectNotFound, ObjectStore
from gateway.tables import Job, Shot

__all__ = ["ContentObject", "ContentService"]


@dataclass(frozen=True)
class ContentObject:
    key: str
    sha256: str
    bytes: int
    content_type: str = "video/mp4"


def _object(output: dict[str, Any] | None, key: str | None, what: str) -> ContentObject:
    if not output or not key:
        raise ServiceError(409, "output_not_ready", f"{what} has no stored output yet.")
    return ContentObject(key=key, sha256=output["sha256"], bytes=output["bytes"])


class ContentService:
    def __init__(self, db: Database, store: ObjectStore) -> None:
        self._db = db
        self._store = store

    def shot_object(self, tenant_id: str, shot_id: str) -> ContentObject:
        with self._db.session() as s:
            shot = s.get(Shot, shot_id)
        if shot is None or shot.tenant_id != tenant_id:
            raise ServiceError(404, "shot_not_found", f"No shot {shot_id!r}.")
        return _object(shot.output, shot.output_key, f"Shot {shot_id} ({shot.status})")

    def final_object(self, tenant_id: str, job_id: str) -> ContentObject:
        job = self._job(tenant_id, job_id)
        if not job.assemble:
            raise ServiceError(
                404, "final_cut_not_requested", f"Job {job_id} was not created with assemble: true."
            )
        return _object(job.final_output, job.final_key, f"Job {job_id} ({job.status})")

    async def job_provenance(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        job = self._job(tenant_id, job_id)
        with self._db.session() as s:
            shots = list(s.exec(select(Shot).where(Shot.job_id == job_id).order_by(Shot.index)))  # type: ignore[arg-type]
        manifests = []
        for shot in shots:
            if shot.output and shot.output.get("provenance_key"):
                manifests.append(await self._read_json(shot.output["provenance_key"]))
        final = None
        if job.final_output and job.final_output.get("provenance_key"):
            final = await self._read_json(job.final_output["provenance_key"])
        return {"job": job_id, "status": job.status, "shots": manifests, "final": final}

    def _job(self, tenant_id: str, job_id: str) -> Job:
        with self._db.session() as s:
            job = s.get(Job, job_id)
        if job is None or job.tenant_id != tenant_id:
            raise ServiceError(404, "job_not_found", f"No job {job_id!r}.")
        return job

    async def _read_json(self, key: str) -> dict[str, Any]:
        try:
            data = b"".join([chunk async for chunk in self._store.get_stream(key)])
        except ObjectNotFound as exc:
            raise ServiceError(
                500, "provenance_missing", f"The provenance manifest {key} is missing from storage."
            ) from exc
        manifest: dict[str, Any] = json.loads(data)
        return manifest
