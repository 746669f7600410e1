"""``/v1/jobs``: create, list, read, cancel, provenance, final cut."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from gateway.api.deps import ReadPrincipal, RuntimeDep, WritePrincipal
from gateway.api.problems import responses
from gateway.api.streaming import stream_object
from reelgate.types import Job, JobCreate, JobStatus, Page

router = APIRouter(prefix="/v1", tags=["jobs"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Retrying with the same key and body returns the first answer.",
    ),
]


@router.post(
    "/jobs",
    status_code=201,
    response_model=Job,
    responses={
        200: {
            "model": Job,
            "description": "Replayed: the job an earlier identical request created",
        },
        **responses(400, 401, 402, 403, 422, 429),
    },
)
async def create_job(
    body: JobCreate,
    runtime: RuntimeDep,
    principal: WritePrincipal,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    job, replayed = await runtime.jobs.create(principal, body, idempotency_key)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if not job.terminal:  # when to look at it first (the SDK's wait sleeps this, then polls)
        response.headers["Retry-After"] = f"{runtime.settings.poll_interval_s:g}"
    return job


@router.get("/jobs", response_model=Page[Job], responses=responses(401, 403, 422))
async def list_jobs(
    runtime: RuntimeDep,
    principal: ReadPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    status: JobStatus | None = None,
) -> Page[Job]:
    return runtime.jobs.list(principal.tenant_id, limit=limit, cursor=cursor, status=status)


@router.get("/jobs/{job_id}", response_model=Job, responses=responses(401, 403, 404))
async def get_job(
    job_id: str, runtime: RuntimeDep, principal: ReadPrincipal, response: Response
) -> Job:
    job = runtime.jobs.get(principal.tenant_id, job_id)
    if not job.terminal:
        response.headers["Retry-After"] = f"{runtime.settings.poll_interval_s:g}"
    return job


@router.post("/jobs/{job_id}/cancel", response_model=Job, responses=responses(401, 403, 404))
async def cancel_job(job_id: str, runtime: RuntimeDep, principal: WritePrincipal) -> Job:
    return await runtime.jobs.cancel(principal.tenant_id, job_id)


@router.get("/jobs/{job_id}/provenance", responses=responses(401, 403, 404))
async def job_provenance(
    job_id: str, runtime: RuntimeDep, principal: ReadPrincipal
) -> dict[str, Any]:
    return await runtime.content.job_provenance(principal.tenant_id, job_id)


@router.get(
    "/jobs/{job_id}/final/content",
    response_class=Response,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The final cut"},
        206: {"content": {"video/mp4": {}}, "description": "A byte range of it"},
        307: {"description": "Fetch it from signed storage URL (REELGATE_STORAGE_REDIRECT)"},
        **responses(401, 403, 404, 409, 410, 416, 503),
    },
)
async def final_content(
    job_id: str, request: Request, runtime: RuntimeDep, principal: ReadPrincipal
) -> Response:
    obj = runtime.content.final_object(principal.tenant_id, job_id)
    return await stream_object(
        runtime.store,
        obj,
        request,
        filename=f"{job_id}.mp4",
        redirect_ttl_s=runtime.redirect_ttl_s(),
    )
