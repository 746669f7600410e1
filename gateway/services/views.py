"""Table rows → wire types, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.catalog import usd
from gateway.db import as_utc
from gateway.tables import Attempt as AttemptRow
from gateway.tables import Job as JobRow
from gateway.tables import Shot as ShotRow
from reelgate import types as t

__all__ = ["job_view", "micros_to_usd", "new_job_view", "shot_view"]


def micros_to_usd(micros: int | None) -> Decimal | None:
    return None if micros is None else usd(micros)


def _output(data: dict[str, object] | None, url: str) -> t.Output | None:
    if not data:
        return None
    return t.Output.model_validate({**data, "content_url": url})


def attempt_view(row: AttemptRow) -> t.Attempt:
    return t.Attempt(
        id=row.id,
        number=row.number,
        model=row.model,
        status=row.status,  # type: ignore[arg-type]
        backend_job_id=row.backend_job_id,
        progress=row.progress,
        step=row.step,
        total_steps=row.total_steps,
        queue_position=row.queue_position,
        error_code=row.error_code,
        error_message=row.error_message,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def shot_view(row: ShotRow, attempts: list[AttemptRow]) -> t.Shot:
    spec = t.ShotSpec.model_validate(row.spec)
    latest = max(attempts, key=lambda a: a.number) if attempts else None
    running = latest is not None and row.status == "running" and latest.status == "running"
    return t.Shot(
        id=row.id,
        job_id=row.job_id,
        index=row.index,
        name=row.name,
        kind=row.kind,
        status=row.status,  # type: ignore[arg-type]
        model=row.model,
        prompt=spec.prompt,
        plan=t.ShotPlan.model_validate(row.plan),
        progress=row.progress,
        step=latest.step if running and latest else None,
        total_steps=latest.total_steps if running and latest else None,
        attempts=[attempt_view(a) for a in sorted(attempts, key=lambda a: a.number)],
        output=_output(row.output, f"/v1/shots/{row.id}/content"),
        error_code=row.error_code,
        error_message=row.error_message,
        estimate_usd=micros_to_usd(row.estimate_micros) or Decimal(0),
        cost_usd=micros_to_usd(row.cost_micros),
    )


def job_view(row: JobRow, shots: list[ShotRow], attempts: dict[str, list[AttemptRow]]) -> t.Job:
    return t.Job(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        shots=[shot_view(s, attempts.get(s.id, [])) for s in sorted(shots, key=lambda s: s.index)],
        assemble=row.assemble,
        final=_output(row.final_output, f"/v1/jobs/{row.id}/final/content"),
        final_error=row.final_error,
        metadata=dict(row.request.get("metadata") or {}),
        estimate_usd=micros_to_usd(row.estimate_micros) or Decimal(0),
        cost_usd=micros_to_usd(row.cost_micros),
    )


def new_job_view(
    job: Mapping[str, Any],
    shots: Sequence[Mapping[str, Any]],
    specs: Sequence[t.ShotSpec],
    plans: Sequence[t.ShotPlan],
    first_attempts: Sequence[AttemptRow] | None = None,
) -> t.Job:
    """What ``job_view`` answers for a job just inserted with these column values.

    Built from the values written and the already-validated specs and plans, so creating
    a job neither reads its rows back nor re-validates their JSON. A new job and its
    shots are queued, with their first attempt pending (where the engine made one with
    the job), and no outputs, errors or cost yet.
    """
    firsts: Sequence[AttemptRow | None] = first_attempts or [None] * len(shots)
    return t.Job(
        id=job["id"],
        status="queued",
        created_at=job["created_at"],
        updated_at=job["updated_at"],
        shots=[
            t.Shot(
                id=row["id"],
                job_id=row["job_id"],
                index=row["index"],
                name=row["name"],
                kind=row["kind"],
                status="queued",
                model=row["model"],
                prompt=spec.prompt,
                plan=plan,
                estimate_usd=micros_to_usd(row["estimate_micros"]) or Decimal(0),
                attempts=[attempt_view(first)] if first is not None else [],
            )
            for row, spec, plan, first in zip(shots, specs, plans, firsts, strict=True)
        ],
        assemble=job["assemble"],
        metadata=dict(job["request"].get("metadata") or {}),
        estimate_usd=micros_to_usd(job["estimate_micros"]) or Decimal(0),
    )
