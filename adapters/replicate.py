"""The Replicate adapter: any model, by ``owner/name``, as a prediction.

- Create ``POST /v1/models/{owner}/{name}/predictions`` with ``{"input": …}`` (the official
  model's current version), or ``POST /v1/predictions`` with ``{"version", "input"}`` when the
  catalog pins ``owner/name:version``. Poll ``GET /v1/predictions/{id}``; cancel
  ``POST /v1/predictions/{id}/cancel``. Auth is ``Authorization: Bearer <token>``.
- States: ``starting`` (waiting for a worker: queued), ``processing``, ``succeeded``,
  ``failed``, ``canceled`` and ``aborted`` (a ``Cancel-After`` deadline passed before it
  started; missing from the SDK's enum) map one to one; anything else is an error.
- Replicate reports no progress field; like its SDK, we read the last tqdm line
  (``45%|████ | 9/20``) of the prediction's logs.
- The output (a URL, or a list of them) is deleted after one hour: the engine fetches as soon
  as a poll says ``succeeded``. Those URLs are public (``replicate.delivery``); the token is
  sent only to a URL on the API's own host (file URLs).
- Every model has its own input schema, which Replicate validates. :func:`to_payload` has a
  builder for a few video families (Veo, Kling, Wan, LTX; field names from their Replicate
  schemas, UNCONFIRMED in the shared reference) and a generic one for the rest.
- Cost: Replicate reports ``metrics.predict_time`` only and prices per model (UNCONFIRMED),
  so ``cost_usd_micros`` stays None and the gateway bills its quote.
- A create is never retried here (the SDK never retries POST either), and Replicate dedupes
  nothing: ``idempotent_submit`` is False.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from adapters._http import retry_after, stream_output, transport_error, vendor_client
from adapters._inputs import Mode, file_input, input_mode
from adapters.base import (
    AdapterError,
    BackendFailure,
    BackendJobLost,
    Failure,
    GenerationRequest,
    InvalidInput,
    JobState,
    JobStatus,
    RateLimited,
    RetryableError,
    Submission,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ReplicateAdapter",
    "classify",
    "output_url",
    "parse_progress",
    "parse_status",
    "to_payload",
]

DEFAULT_BASE_URL = "https://api.replicate.com"

_STATES: dict[str, JobState] = {
    "starting": "queued",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    "aborted": "canceled",
}
#: tqdm's ``NN%|bar| a/b`` (what Replicate's SDK parses from logs for progress).
_TQDM = re.compile(r"(\d{1,3})%\|[^|\n]*\|\s*(\d+)/(\d+)")
#: "Request was throttled. Your rate limit resets in ~30s."
_THROTTLE_WAIT = re.compile(r"resets in ~?(\d+(?:\.\d+)?)\s*s")
#: Markers of a safety refusal in a failed prediction's ``error`` (Replicate's E005
#: "flagged as sensitive", common NSFW checkers): UNCONFIRMED, none is in the reference.
_SAFETY_MARKERS = ("(E005)", "flagged as sensitive", "nsfw content")


# --- payloads -------------------------------------------------------------------------------


def _base(request: GenerationRequest, *, negative: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": request.prompt}
    if negative and request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def _frames(
    body: dict[str, Any], request: GenerationRequest, mode: Mode, first: str, last: str | None
) -> dict[str, Any]:
    if mode != "t2v":
        body[first] = file_input(request.image, "image")
    if mode == "flf":
        if last is None:
            raise InvalidInput(
                f"replicate model {request.model} takes no last frame", code="invalid_input"
            )
        body[last] = file_input(request.last_frame, "last_frame")
    return body


def _veo(request: GenerationRequest, mode: Mode) -> dict[str, Any]:
    """``google/veo-*``: whole seconds, resolution, audio toggle, ``image``/``last_frame``."""
    body = _base(request) | {
        "duration": round(request.duration_s),
        "aspect_ratio": request.aspect_ratio,
        "resolution": request.resolution,
        "generate_audio": request.audio,
    }
    return _frames(body, request, mode, "image", "last_frame")


def _kling(request: GenerationRequest, mode: Mode) -> dict[str, Any]:
    """``kwaivgi/kling-*``: ``start_image``/``end_image``; aspect ratio only without an image."""
    body = _base(request) | {"duration": round(request.duration_s)}
    body.pop("seed", None)
    if mode == "t2v":
        body["aspect_ratio"] = request.aspect_ratio
    return _frames(body, request, mode, "start_image", "end_image")


def _wan(request: GenerationRequest, mode: Mode) -> dict[str, Any]:
    """``wan-video/*``: length as ``num_frames`` (4k+1) at ``frames_per_second``."""
    body = _base(request, negative=False) | {
        "num_frames": round(request.duration_s * request.fps / 4) * 4 + 1,
        "frames_per_second": request.fps,
        "resolution": request.resolution,
    }
    if mode == "t2v":
        body["aspect_ratio"] = request.aspect_ratio
    return _frames(body, request, mode, "image", "last_image")


def _ltx(request: GenerationRequest, mode: Mode) -> dict[str, Any]:
    """``lightricks/ltx-*``: whole seconds, resolution, audio toggle, ``image``."""
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "duration": round(request.duration_s),
        "resolution": request.resolution,
        "generate_audio": request.audio,
    }
    return _frames(body, request, mode, "image", None)


def _generic(request: GenerationRequest, mode: Mode) -> dict[str, Any]:
    """Any other model: the names most Replicate video models share. A model whose schema
    lacks one of them answers 422 naming the field: give it a builder here."""
    body = _base(request) | {
        "duration": round(request.duration_s),
        "aspect_ratio": request.aspect_ratio,
    }
    if request.audio:
        body["generate_audio"] = True
    return _frames(body, request, mode, "image", None)


_BUILDERS: tuple[tuple[str, Callable[[GenerationRequest, Mode], dict[str, Any]]], ...] = (
    ("google/veo", _veo),
    ("kwaivgi/kling", _kling),
    ("wan-video/", _wan),
    ("lightricks/ltx", _ltx),
)


def _model(model: str) -> tuple[str, str, str]:
    """``owner/name[:version]`` → ``(owner, name, version)``."""
    ref, _, version = model.partition(":")
    owner, slash, name = ref.strip("/").partition("/")
    if not slash or not owner or not name or "/" in name:
        raise InvalidInput(
            f"replicate model must be 'owner/name' or 'owner/name:version', got {model!r}",
            code="invalid_input",
        )
    return owner, name, version


def to_payload(request: GenerationRequest) -> tuple[str, dict[str, Any]]:
    """``(path, body)`` for the create: by model, or by pinned version."""
    owner, name, version = _model(request.model)
    build = next((b for p, b in _BUILDERS if f"{owner}/{name}".startswith(p)), _generic)
    model_input = build(request, input_mode(request, "replicate"))
    if version:
        path, body = "v1/predictions", {"version": version, "input": model_input}
    else:
        path, body = f"v1/models/{owner}/{name}/predictions", {"input": model_input}
    if request.callback_url is not None:
        body["webhook"] = request.callback_url
        body["webhook_events_filter"] = ["start", "completed"]
    return path, body


# --- statuses and errors --------------------------------------------------------------------


def parse_progress(logs: Any) -> tuple[float, int, int] | None:
    """``(progress, step, total)`` from the last tqdm line in a prediction's logs."""
    if not isinstance(logs, str):
        return None
    matches = _TQDM.findall(logs)
    if not matches:
        return None
    percent, step, total = (int(v) for v in matches[-1])
    return min(percent, 100) / 100, step, total


def output_url(output: Any) -> str | None:
    """A video model's ``output``: a URL, or a list whose first item is one."""
    if isinstance(output, list):
        output = next((o for o in output if isinstance(o, str) and o), None)
    return output if isinstance(output, str) and output else None


def _failure(error: Any) -> Failure:
    message = str(error) if error else "the prediction failed"
    if any(marker in message.lower() for marker in (m.lower() for m in _SAFETY_MARKERS)):
        return Failure(code="content_rejected", message=message, failure_class="fatal")
    return Failure(code="prediction_failed", message=message, failure_class="fallback")


def parse_status(body: dict[str, Any], *, poll_s: float = 5.0) -> JobStatus:
    """A prediction → :class:`JobStatus`; an unknown status is an error, never "queued"."""
    raw = body.get("status")
    state = _STATES.get(raw) if isinstance(raw, str) else None
    if state is None:
        raise BackendFailure(f"replicate reported unknown status {raw!r}", code="unknown_state")
    if state == "running":
        seen = parse_progress(body.get("logs"))
        progress, step, total = seen if seen else (None, None, None)
        return JobStatus(
            state=state,
            progress=progress,
            step=step,
            total_steps=total,
            next_poll_s=poll_s,
            raw_state=raw,
        )
    if state == "succeeded":
        url = output_url(body.get("output"))
        if url is None:
            failure = Failure(
                code="no_output",
                message="the prediction succeeded without a video URL",
                failure_class="fallback",
            )
            return JobStatus(state="failed", failure=failure, next_poll_s=0.0, raw_state=raw)
        return JobStatus(state=state, progress=1.0, output_url=url, next_poll_s=0.0, raw_state=raw)
    if state == "failed":
        return JobStatus(
            state=state, failure=_failure(body.get("error")), next_poll_s=0.0, raw_state=raw
        )
    return JobStatus(state=state, next_poll_s=0.0 if state == "canceled" else poll_s, raw_state=raw)


def _problem(response: httpx.Response) -> str:
    """The ``detail`` (or ``title``) of an RFC 7807 body, else the text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        text = body.get("detail") or body.get("title")
        if text:
            return str(text)
    return response.text[:200] or response.reason_phrase


def _throttle_wait(response: httpx.Response, detail: str) -> float | None:
    found = retry_after(response)
    if found is not None:
        return found
    match = _THROTTLE_WAIT.search(detail)
    return float(match.group(1)) if match else None


def classify(response: httpx.Response, *, job: bool = False, submit: bool = False) -> AdapterError:
    """Map a non-2xx Replicate answer to the adapter error tree.

    ``job``: the URL named a prediction (404 means Replicate lost it). ``submit``: the
    answer was to a create, where a server error or a gateway timeout (500/502/504) may
    hide a created prediction.
    """
    detail = _problem(response)
    status = response.status_code
    if status == 404:
        if job:
            return BackendJobLost(
                f"replicate does not know the prediction: {detail}", code="not_found"
            )
        return BackendFailure(f"replicate model not found: {detail}", code="model_not_found")
    if status in (400, 413, 422):
        return InvalidInput(f"replicate rejected the input: {detail}", code="invalid_input")
    if status == 402:  # insufficient credit (UNCONFIRMED status): billing, not retryable
        return BackendFailure(f"replicate billing: {detail}", code="insufficient_credit")
    if status in (401, 403):
        return BackendFailure(f"replicate refused the token: {detail}", code="unauthorized")
    if status == 429:
        return RateLimited(
            detail, code="rate_limited", retry_after=_throttle_wait(response, detail)
        )
    if status in (408, 409) or status >= 500:
        return RetryableError(
            f"replicate HTTP {status}: {detail}",
            code=f"http_{status}",
            retry_after=retry_after(response),
            outcome_unknown=submit and status in (500, 502, 504),
        )
    return BackendFailure(f"replicate HTTP {status}: {detail}", code=f"http_{status}")


def _body(response: httpx.Response, *, submit: bool = False) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RetryableError(
            "replicate sent malformed JSON", code="malformed", outcome_unknown=submit
        ) from exc
    if not isinstance(body, dict):
        raise RetryableError(
            "replicate sent an unexpected body", code="malformed", outcome_unknown=submit
        )
    return body


# --- the adapter ----------------------------------------------------------------------------


class ReplicateAdapter:
    """Replicate predictions for any model. See the module docstring."""

    name = "replicate"
    idempotent_submit = False
    supports_cancel = True

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        poll_interval_s: float = 5.0,
    ) -> None:
        """``client`` (tests, emulators) comes with its own base URL."""
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._client = client or vendor_client(base_url, httpx.Timeout(60.0, connect=10.0))
        self._poll_s = poll_interval_s

    def configured_models(self) -> set[str] | None:
        return None

    async def _send(
        self, method: str, url: str, *, job: bool = True, submit: bool = False, **kw: Any
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, url, headers=self._auth, **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, "replicate") from exc
        if response.status_code >= 300:
            raise classify(response, job=job, submit=submit)
        return _body(response, submit=submit)

    async def submit(self, request: GenerationRequest) -> Submission:
        path, payload = to_payload(request)
        body = await self._send("POST", path, job=False, submit=True, json=payload)
        prediction_id = body.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise RetryableError(
                "replicate answered the create without a prediction id",
                code="malformed",
                outcome_unknown=True,
            )
        return Submission(backend_job_id=prediction_id, poll_after_s=self._poll_s)

    async def poll(self, backend_job_id: str) -> JobStatus:
        body = await self._send("GET", f"v1/predictions/{backend_job_id}")
        return parse_status(body, poll_s=self._poll_s)

    async def cancel(self, backend_job_id: str) -> None:
        await self._send("POST", f"v1/predictions/{backend_job_id}/cancel")

    def _download_headers(self, url: str) -> dict[str, str]:
        """The token only for the API's own host (file URLs); delivery URLs are public."""
        host = httpx.URL(url).host
        return self._auth if not host or host == self._client.base_url.host else {}

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """Stream the output (it is deleted an hour after the prediction finished)."""
        url = status.output_url or (await self.poll(backend_job_id)).output_url
        if url is None:
            raise BackendFailure(f"replicate has no output for {backend_job_id}", code="no_output")
        async for chunk in stream_output(
            self._client,
            url,
            backend="replicate",
            on_error=_download_error,
            headers=self._download_headers(url),
            follow_redirects=False,
        ):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _download_error(response: httpx.Response) -> AdapterError:
    """A missing output is one past Replicate's one-hour retention: generate it elsewhere."""
    if response.status_code in (404, 410):
        return BackendFailure(
            f"replicate output is gone (HTTP {response.status_code}); outputs expire after 1 h",
            code="output_expired",
        )
    return classify(response)
