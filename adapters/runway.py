"""The adapter for Runway's developer API (``api.dev.runwayml.com``).

Runway runs every generation as a *task*: ``POST /v1/text_to_video`` or
``POST /v1/image_to_video`` answers ``{"id": ...}``, ``GET /v1/tasks/{id}`` reports it,
``DELETE /v1/tasks/{id}`` cancels it (or deletes a finished one). Each request carries the
key as a Bearer token and the pinned ``X-Runway-Version``.

Why the choices below:

* The body's fields depend on the model (Runway's create params are a union keyed by
  ``model``): ``negativePrompt`` and ``audio`` exist only for the models that take them,
  so sending them elsewhere would be a 400. Model ids stay in the catalog; only the fields
  each known family accepts are listed here.
* ``ratio`` is Runway's pixel size (``1280:720``), not an aspect ratio. The documented
  sizes are looked up from the normalized aspect and resolution; anything else falls back
  to the gateway's own ``width:height``.
* Runway documents no per-minute limit: a 429 on a create means the daily generation
  quota is spent ([D] usage/tiers). Without a ``Retry-After`` that is not worth retrying
  soon, so it is a fallback; with one, the vendor said when, so it is a rate limit.
* Output URLs expire (24-48 h) and a re-GET of the task hands out fresh ones, so a
  download whose URL has gone stale asks the task once more. The download goes straight
  to the URL without the Runway key: it is a presigned CDN link.
* Runway reports no cost per task (only daily credit totals), so ``cost_usd_micros`` stays
  None and the engine charges the catalog estimate.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, Literal

import httpx

from adapters._http import retry_after, stream_finished_output, transport_error, vendor_client
from adapters.base import (
    AdapterError,
    BackendFailure,
    BackendJobLost,
    Failure,
    FailureClass,
    GenerationRequest,
    InvalidInput,
    JobState,
    JobStatus,
    RateLimited,
    RetryableError,
    Submission,
)

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "RunwayAdapter",
    "classify",
    "failure_class",
    "parse_status",
    "to_payload",
]

DEFAULT_BASE_URL = "https://api.dev.runwayml.com"
API_VERSION = "2024-11-06"

Op = Literal["submit", "poll", "cancel", "download"]

_NAME = "runway"
_POLL_S = 5.0  # the SDK's poller waits 6 s ± 3 s; tasks take a minute or more
_THROTTLED_POLL_S = 10.0  # waiting for a free concurrency slot: no hurry

_STATES: dict[str, JobState] = {
    "PENDING": "queued",
    "THROTTLED": "queued",  # over the org's concurrency limit, stored but not enqueued
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELLED": "canceled",  # also reported for a deleted task
}

#: ``failureCode`` prefixes, first match wins ([D] errors/task-failures).
_FAILURE_CLASSES: tuple[tuple[str, FailureClass], ...] = (
    ("SAFETY.", "fatal"),  # content moderation of inputs or output: never retry
    ("INPUT_PREPROCESSING.SAFETY", "fatal"),
    ("ASSET.INVALID", "fatal"),  # an input asset Runway cannot use
    ("INTERNAL.BAD_OUTPUT", "fallback"),  # quality reject: the same input fails again
    ("INPUT_PREPROCESSING.INTERNAL", "retryable"),
    ("INTERNAL", "retryable"),
    ("THIRD_PARTY.UNAVAILABLE", "retryable"),
)

#: Models whose create params have ``negativePrompt`` / ``audio`` (runwayml SDK 5.13.0).
_NEGATIVE_PROMPT_MODELS = frozenset({"veo3", "veo3.1", "veo3.1_fast"})
_AUDIO_MODELS = frozenset(
    {"veo3.1", "veo3.1_fast", "seedance2", "seedance2_fast", "seedance2_mini"}
)

#: (resolution, aspect ratio) → Runway ``ratio`` (gen4.5 / gen4_turbo / veo sizes).
_RATIOS: dict[tuple[str, str], str] = {
    ("720p", "16:9"): "1280:720",
    ("720p", "9:16"): "720:1280",
    ("720p", "4:3"): "1104:832",
    ("720p", "1:1"): "960:960",
    ("720p", "3:4"): "832:1104",
    ("720p", "21:9"): "1584:672",
    ("1080p", "16:9"): "1920:1080",
    ("1080p", "9:16"): "1080:1920",
}

_IMAGE_SCHEMES = ("https://", "data:", "runway://")


# --- pure transforms ----------------------------------------------------------------------


def to_payload(request: GenerationRequest) -> tuple[str, dict[str, Any]]:
    """The create call for ``request``: its path and JSON body."""
    body: dict[str, Any] = {
        "model": request.model,
        "ratio": _ratio(request),
        "duration": round(request.duration_s),
    }
    if request.prompt:
        body["promptText"] = request.prompt
    if request.seed is not None:
        body["seed"] = request.seed
    if request.negative_prompt and request.model in _NEGATIVE_PROMPT_MODELS:
        body["negativePrompt"] = request.negative_prompt
    if request.model in _AUDIO_MODELS:
        body["audio"] = request.audio
    image = _prompt_image(request)
    if image is None:
        return "/v1/text_to_video", body
    body["promptImage"] = image
    return "/v1/image_to_video", body


def _ratio(request: GenerationRequest) -> str:
    return _RATIOS.get(
        (request.resolution, request.aspect_ratio), f"{request.width}:{request.height}"
    )


def _prompt_image(request: GenerationRequest) -> str | list[dict[str, str]] | None:
    """One first frame as a plain URI; with a last frame, the positioned list."""
    if request.last_frame is None:
        return None if request.image is None else _image_uri(request.image)
    frames = (
        [] if request.image is None else [{"uri": _image_uri(request.image), "position": "first"}]
    )
    frames.append({"uri": _image_uri(request.last_frame), "position": "last"})
    return frames


def _image_uri(value: str) -> str:
    if value.startswith(_IMAGE_SCHEMES):
        return value
    raise InvalidInput(
        f"runway takes images as https URLs, data: URIs (up to 5 MB) or runway:// upload "
        f"URIs; got {value[:40]!r}",
        code="invalid_image",
    )


def failure_class(failure_code: str | None) -> FailureClass:
    """What a failed task's ``failureCode`` means for the next attempt."""
    for prefix, klass in _FAILURE_CLASSES:
        if failure_code and failure_code.startswith(prefix):
            return klass
    return "fallback"


def parse_status(body: Any) -> JobStatus:
    """A task from ``GET /v1/tasks/{id}`` → :class:`JobStatus`; unknown states are errors."""
    raw = body.get("status") if isinstance(body, dict) else None
    if not isinstance(raw, str):
        raise RetryableError("runway sent a task without a status", code="malformed")
    state = _STATES.get(raw)
    if state is None:
        raise BackendFailure(f"runway reported unknown task status {raw!r}", code="unknown_state")
    return JobStatus(
        state=state,
        progress=_progress(body, state),
        next_poll_s=_THROTTLED_POLL_S if raw == "THROTTLED" else _POLL_S,
        output_url=_output_url(body) if state == "succeeded" else None,
        failure=_failure(body) if state == "failed" else None,
        raw_state=raw,
    )


def _progress(body: dict[str, Any], state: JobState) -> float | None:
    if state == "succeeded":
        return 1.0
    value = body.get("progress")
    if state != "running" or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    return min(1.0, max(0.0, float(value)))


def _output_url(body: dict[str, Any]) -> str:
    output = body.get("output")
    if isinstance(output, list) and output and isinstance(output[0], str):
        return output[0]
    raise RetryableError("runway reported success without an output URL", code="malformed")


def _failure(body: dict[str, Any]) -> Failure:
    code = body.get("failureCode")
    code = code if isinstance(code, str) and code else None
    return Failure(
        code=code or "generation_failed",
        message=str(body.get("failure") or "runway reported the task failed"),
        failure_class=failure_class(code),
    )


def classify(response: httpx.Response, *, op: Op = "poll") -> AdapterError:
    """Map a non-2xx answer to the adapter error tree ([D] errors/errors)."""
    status, detail, wait = response.status_code, _error_detail(response), retry_after(response)
    if status == 404 and op != "submit":
        return BackendJobLost(f"runway does not know the task: {detail}", code="task_not_found")
    if status in (400, 413, 422):
        return InvalidInput(f"runway rejected the request: {detail}", code="invalid_input")
    if status == 429 and op == "submit" and wait is None:
        return BackendFailure(
            f"runway's daily generation quota is spent: {detail}", code="quota_exceeded"
        )
    if status == 429:
        return RateLimited(
            f"runway is rate limiting: {detail}", code="rate_limited", retry_after=wait
        )
    if status == 408 or status >= 500:
        # Runway documents 502/503 as load shedding (refused before any work: a plain
        # retry is safe); a 500 or a 504 ("not able to satisfy the request") on a create
        # may hide a task, and a resent create would be a second one.
        return RetryableError(
            f"runway is unavailable (HTTP {status}): {detail}",
            code="unavailable",
            retry_after=wait,
            outcome_unknown=op == "submit" and status >= 500 and status not in (502, 503),
        )
    if status in (401, 403):
        return BackendFailure(
            f"runway refused the API key (HTTP {status}): {detail}", code="unauthorized"
        )
    if status == 402:  # UNCONFIRMED: Runway documents no status for an empty credit balance
        return BackendFailure(f"runway credits exhausted: {detail}", code="insufficient_credits")
    return BackendFailure(f"runway answered HTTP {status}: {detail}", code=f"http_{status}")


def _error_detail(response: httpx.Response) -> str:
    """Runway's 4xx bodies carry a human-readable ``error`` member (plus ``issues``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        issues = body.get("issues")
        return f"{body['error']} {json.dumps(issues)}" if issues else str(body["error"])
    return json.dumps(body)[:200]


# --- the adapter --------------------------------------------------------------------------


class RunwayAdapter:
    """Runway behind the :class:`~adapters.base.Adapter` contract.

    ``base_url`` points it at an emulator; a ``client`` passed in is used as given (its
    own base URL, when it has one, wins) and closed by :meth:`aclose`.
    """

    name = _NAME
    idempotent_submit = False  # Runway has no idempotency key: a resent create is a new task
    supports_cancel = True

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        # A given client that has its own base URL is used as configured.
        root = str(client.base_url) if client is not None else ""
        self._base_url = (root or base_url).rstrip("/")
        # Per request, never on the client: output URLs live on other hosts.
        self._headers = {"Authorization": f"Bearer {api_key}", "X-Runway-Version": api_version}
        self._client = client or vendor_client(self._base_url, httpx.Timeout(60.0, connect=10.0))

    def configured_models(self) -> set[str] | None:
        return None

    async def _call(self, method: str, path: str, *, op: Op, **kw: Any) -> httpx.Response:
        try:
            response = await self._client.request(
                method, self._base_url + path, headers=self._headers, **kw
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, _NAME) from exc
        if response.status_code >= 300:
            raise classify(response, op=op)
        return response

    async def _json(self, method: str, path: str, *, op: Op, **kw: Any) -> dict[str, Any]:
        response = await self._call(method, path, op=op, **kw)
        try:
            body = response.json()
        except ValueError as exc:
            raise _malformed("malformed JSON", op) from exc
        if not isinstance(body, dict):
            raise _malformed("an unexpected body", op)
        return body

    async def submit(self, request: GenerationRequest) -> Submission:
        path, payload = to_payload(request)
        body = await self._json("POST", path, op="submit", json=payload)
        task_id = body.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise _malformed("a create answer without a task id", "submit")
        return Submission(backend_job_id=task_id, poll_after_s=_POLL_S)

    async def poll(self, backend_job_id: str) -> JobStatus:
        return parse_status(await self._json("GET", f"/v1/tasks/{backend_job_id}", op="poll"))

    async def cancel(self, backend_job_id: str) -> None:
        await self._call("DELETE", f"/v1/tasks/{backend_job_id}", op="cancel")

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        async for chunk in stream_finished_output(
            self._client,
            status,
            backend=_NAME,
            poll=partial(self.poll, backend_job_id),
            classify_download=partial(classify, op="download"),
        ):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _malformed(what: str, op: Op) -> RetryableError:
    return RetryableError(f"runway sent {what}", code="malformed", outcome_unknown=op == "submit")
