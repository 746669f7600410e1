"""Google's video models on the Gemini API: Veo 3.1 and Gemini Omni Flash.

One adapter (catalog name ``google``, one API key) speaks two wires, picked by the
backend model name (:func:`wire_for`), because Google serves the two families through
different APIs and rejects each family's ids on the other's endpoint:

* **Veo** (``veo-*``): a long-running operation. ``POST /v1beta/models/{m}:predictLongRunning``
  answers ``{"name": "models/{m}/operations/{id}"}``; ``GET /v1beta/{name}`` until
  ``done``. A done operation whose samples were all filtered by safety
  (``raiMediaFilteredCount``/``Reasons``, or no samples at all) is a content refusal:
  fatal, never retried. The Gemini API has no cancel for these operations, reports no
  progress and no cost.
* **Gemini Omni Flash** (any other id, e.g. ``gemini-omni-1.1-flash``): the Interactions
  API with ``background: true``. ``POST /v1beta/interactions`` answers ``{"id": "v1_…"}``;
  ``GET /v1beta/interactions/{id}`` until terminal; ``POST …/{id}/cancel`` cancels. Usage
  comes back in tokens (``vendor_usage``); it becomes ``cost_usd_micros`` for models with a
  per-token price (:data:`DEFAULT_OMNI_PRICES`, or the adapter's ``omni_prices``).

The backend job id is the vendor's own handle (an operation name or an interaction id),
so :meth:`GoogleAdapter.poll` knows the wire from the id alone after a restart.

Wire rules the SDK (googleapis/python-genai) enforces client-side in Gemini-API mode are
kept here: Veo gets no ``seed``, ``generateAudio``, ``fps``, GCS URIs or labels (the API
rejects them; Veo 3.x always renders audio). Images go inline as base64, so an http(s)
image is fetched first, *without* the API key. The key travels per request, never as a
client default, and only to the configured Google origin: a download redirected to
another host loses it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import mimetypes
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeGuard
from urllib.parse import quote, urljoin, urlsplit

import httpx

from adapters._http import retry_after, transport_error, vendor_client
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

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_OMNI_PRICES",
    "GoogleAdapter",
    "TokenPrice",
    "classify",
    "interaction_cost",
    "interaction_payload",
    "interaction_usage",
    "parse_interaction",
    "parse_operation",
    "parse_status",
    "to_payload",
    "veo_payload",
    "wire_for",
]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API = "/v1beta"
Wire = Literal["veo", "interactions"]

VEO_POLL_S = 10.0  # Google's docs poll Veo operations every 10 s; clips take minutes
OMNI_POLL_S = 5.0  # Omni clips take ~24-90 s
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # inline request budget of the Gemini API
_CHUNK = 1 << 20
_MAX_REDIRECTS = 5

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # one path segment, never "." or ".."
_OPERATION_NAME = re.compile(rf"models/{_SEGMENT}/operations/{_SEGMENT}")
_INTERACTION_ID = re.compile(_SEGMENT)


@dataclass(frozen=True)
class TokenPrice:
    """USD per million tokens, which is also micro-USD per token."""

    input: Decimal
    output_video: Decimal
    output_other: Decimal  # text and thinking output


#: Omni prices per token. Only the preview has one, and its source is third-party
#: (runware, OpenMontage, LiteLLM's cost map; vendors-2026-11.md §1): $1.50/1M input,
#: $17.50/1M video output, $9/1M text and thinking output. 1.1's prices are UNCONFIRMED:
#: it is billed at the preview's rates, as the catalog quotes it (gateway/catalog.toml);
#: ``omni_prices`` replaces the table. 1.2 has no price (cost None) until configured.
_PREVIEW_PRICE = TokenPrice(Decimal("1.50"), Decimal("17.50"), Decimal("9"))
DEFAULT_OMNI_PRICES: Mapping[str, TokenPrice] = {
    "gemini-omni-flash-preview": _PREVIEW_PRICE,
    "gemini-omni-1.1-flash": _PREVIEW_PRICE,  # UNCONFIRMED: the preview's rates
}


def wire_for(model: str) -> Wire:
    """Veo ids use long-running operations; every other id (Omni) the Interactions API."""
    return "veo" if model.startswith("veo") else "interactions"


# --- errors ----------------------------------------------------------------------------

#: google.rpc.Code names in number order (the ``code`` of an operation's or a step's error).
_GRPC_CODES = (
    "OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS "
    "PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE "
    "UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED"
)
_GRPC_NAMES = dict(enumerate(_GRPC_CODES.split()))
_RETRYABLE_NAMES = {"DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNAVAILABLE"}
_FATAL_NAMES = {"INVALID_ARGUMENT", "OUT_OF_RANGE"}
#: google.rpc.ErrorInfo reasons that mean "no money", not "slow down" (UNCONFIRMED for 429s).
_BILLING_REASONS = {"BILLING_DISABLED", "BILLING_NOT_ACTIVE", "BILLING_ACCOUNT_CLOSED"}


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _details(error: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    """The google.rpc detail messages of one ``@type`` (e.g. ``QuotaFailure``)."""
    details = error.get("details")
    if not isinstance(details, list):
        return []
    suffix = f"google.rpc.{kind}"
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(suffix)]


def _retry_delay(error: Mapping[str, Any]) -> float | None:
    """``google.rpc.RetryInfo.retryDelay`` ("37s" or "1.5s") in seconds."""
    for info in _details(error, "RetryInfo"):
        delay = str(info.get("retryDelay", ""))
        try:
            return float(delay.removesuffix("s"))
        except ValueError:
            continue
    return None


def _quota_exhausted(error: Mapping[str, Any]) -> bool:
    """A 429 that waiting minutes will not clear: a daily quota, or billing off.

    Google sends ``RESOURCE_EXHAUSTED`` for both per-minute and per-day quotas; the
    ``QuotaFailure`` detail names which (``GenerateRequestsPerDayPerProjectPerModel``).
    """
    for failure in _details(error, "QuotaFailure"):
        for violation in failure.get("violations") or []:
            if isinstance(violation, dict) and "PerDay" in str(violation.get("quotaId", "")):
                return True
    return any(info.get("reason") in _BILLING_REASONS for info in _details(error, "ErrorInfo"))


def classify(
    response: httpx.Response, *, polling: bool = False, submitting: bool = False
) -> AdapterError:
    """Map a non-2xx Gemini API answer (``{"error": {code, message, status}}``) to the tree.

    ``submitting``: the answer was to a create. Neither API dedupes creates and Google
    documents no 5xx as "not accepted" (gRPC: retrying UNAVAILABLE is not always safe for a
    non-idempotent call), so every 5xx but 501 on a create may hide a job: outcome unknown.
    """
    error = _error_body(response)
    status = response.status_code
    name = str(error.get("status") or "")
    detail = str(error.get("message") or response.text[:200] or response.reason_phrase)
    message = f"google HTTP {status}{f' {name}' if name else ''}: {detail}"
    code = name.lower() or f"http_{status}"
    if status == 429:
        if _quota_exhausted(error):
            return BackendFailure(message, code="quota_exhausted")
        wait = retry_after(response)
        return RateLimited(message, code=code, retry_after=wait or _retry_delay(error))
    if status == 400 and name == "FAILED_PRECONDITION":
        # "User location is not supported", "enable billing": this key cannot, another vendor can.
        return BackendFailure(message, code=code)
    if status in (400, 413, 422):
        return InvalidInput(message, code=code)
    if status == 404 and polling:
        return BackendJobLost(message, code=code)
    if status in (408, 409) or (status >= 500 and status != 501):
        return RetryableError(
            message,
            code=code,
            retry_after=retry_after(response),
            outcome_unknown=submitting and status >= 500,
        )
    return BackendFailure(message, code=code)  # 401/403 (key), 404 on submit (model), 501


def _failure_class(code: Any, status: Any = None) -> tuple[str, FailureClass]:
    """A job-level error (gRPC int, HTTP int, status name or type URI) → (code, class)."""
    if isinstance(status, str) and status:
        name = status.upper()
    elif isinstance(code, int) and not isinstance(code, bool) and code >= 100:
        if code == 429 or code >= 500:
            return f"http_{code}", "retryable"
        return f"http_{code}", "fatal" if code in (400, 422) else "fallback"
    elif isinstance(code, int):
        name = _GRPC_NAMES.get(code, f"CODE_{code}")
    else:
        name = str(code or "UNKNOWN").rstrip("/").rsplit("/", 1)[-1].upper().replace("-", "_")
    if name in _RETRYABLE_NAMES:
        return name.lower(), "retryable"
    return name.lower(), "fatal" if name in _FATAL_NAMES else "fallback"


# --- payloads --------------------------------------------------------------------------


def _data_uri(uri: str, field: str) -> tuple[str, str]:
    """``data:image/png;base64,XXXX`` → (mime type, base64 without the prefix)."""
    head, sep, data = uri.partition(",")
    mime, _, encoding = head.removeprefix("data:").partition(";")
    if not uri.startswith("data:") or not sep or encoding != "base64" or not data:
        raise InvalidInput(
            f"{field}: Google takes images inline; expected an http(s) URL or a base64 "
            f"data: URI (data:image/png;base64,...), got {uri[:40]!r}",
            code="invalid_image",
        )
    return mime or "image/png", data


def _veo_image(uri: str, field: str) -> dict[str, str]:
    mime, data = _data_uri(uri, field)
    return {"bytesBase64Encoded": data, "mimeType": mime}


def veo_payload(request: GenerationRequest) -> dict[str, Any]:
    """The ``predictLongRunning`` body (python-genai ``_GenerateVideosParameters_to_mldev``).

    Not sent, because the Gemini API rejects them: seed, generateAudio, fps (and
    personGeneration, whose per-mode allowed values are contradictory in Google's docs).
    """
    instance: dict[str, Any] = {"prompt": request.prompt}
    if request.image:
        instance["image"] = _veo_image(request.image, "image")
    if request.last_frame:
        if not request.image:
            raise InvalidInput(
                "last_frame needs image (the first frame) on Veo", code="invalid_image"
            )
        instance["lastFrame"] = _veo_image(request.last_frame, "last_frame")
    parameters: dict[str, Any] = {
        "aspectRatio": request.aspect_ratio,
        "durationSeconds": round(request.duration_s),
        "resolution": request.resolution,
        "sampleCount": 1,
    }
    if request.negative_prompt:
        parameters["negativePrompt"] = request.negative_prompt
    body: dict[str, Any] = {"instances": [instance], "parameters": parameters}
    if request.callback_url is not None:
        # Key casing of user_metadata on the wire is UNCONFIRMED; "uris" is the same in both.
        body["webhookConfig"] = {"uris": [request.callback_url]}
    return body


def _omni_prompt(request: GenerationRequest) -> str:
    """Bind image roles with Omni's prompt tags; fold the negative prompt into the text.

    ``<FIRST_FRAME>`` is documented (gemini-skills); the ``[# Sources …@ImageN]`` form for
    first + last frame follows the same skill's syntax and is UNCONFIRMED for ``<LAST_FRAME>``.
    Omni has no negative-prompt field; plain negatives in the prompt are the documented way.
    """
    prompt = request.prompt
    if request.image and request.last_frame:
        prompt = f"[# Sources <FIRST_FRAME>@Image1 <LAST_FRAME>@Image2] {prompt}"
    elif request.image:
        prompt = f"<FIRST_FRAME> {prompt}"
    if request.negative_prompt:
        prompt = f"{prompt}\nAvoid: {request.negative_prompt}"
    return prompt


def interaction_payload(request: GenerationRequest) -> dict[str, Any]:
    """The ``POST /v1beta/interactions`` body for an Omni clip, run in the background.

    No audio switch exists (Omni always renders sound); ``seed`` goes in
    ``generation_config`` although its effect on Omni is UNCONFIRMED.
    """
    if request.last_frame and not request.image:
        raise InvalidInput("last_frame needs image (the first frame) on Omni", code="invalid_image")
    text = _omni_prompt(request)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
    for uri, field in ((request.image, "image"), (request.last_frame, "last_frame")):
        if uri:
            mime, data = _data_uri(uri, field)
            blocks.append({"type": "image", "data": data, "mime_type": mime})
    generation: dict[str, Any] = {
        "video_config": {"task": "image_to_video" if request.image else "text_to_video"}
    }
    if request.seed is not None:
        generation["seed"] = request.seed
    body: dict[str, Any] = {
        "model": request.model,
        "input": text if len(blocks) == 1 else blocks,
        "response_format": {
            "type": "video",
            "aspect_ratio": request.aspect_ratio,
            "duration": f"{round(request.duration_s)}s",
            "resolution": request.resolution,
        },
        "generation_config": generation,
        "background": True,
    }
    if request.callback_url is not None:
        body["webhook_config"] = {"uris": [request.callback_url]}
    return body


def to_payload(request: GenerationRequest) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of the create call; images must already be data: URIs."""
    if wire_for(request.model) == "veo":
        model = quote(request.model, safe="-._~")
        return f"{API}/models/{model}:predictLongRunning", veo_payload(request)
    return f"{API}/interactions", interaction_payload(request)


# --- statuses --------------------------------------------------------------------------


def _failed(code: str, message: str, failure_class: FailureClass, raw: str) -> JobStatus:
    failure = Failure(code=code, message=message, failure_class=failure_class)
    return JobStatus(state="failed", failure=failure, raw_state=raw, next_poll_s=0.0)


def _operation_error(error: Mapping[str, Any]) -> JobStatus:
    code, failure_class = _failure_class(error.get("code"), error.get("status"))
    message = str(error.get("message") or "Veo operation failed")
    if code == "cancelled":
        return JobStatus(state="canceled", raw_state="done:error:CANCELLED", next_poll_s=0.0)
    return _failed(code, message, failure_class, f"done:error:{code.upper()}")


def parse_operation(body: Mapping[str, Any]) -> JobStatus:
    """A Veo operation → :class:`JobStatus` (no progress or cost: Google reports none).

    ``done`` is omitted while false (proto3 JSON). Done with an error is a failure
    classified by its gRPC code; done with no playable sample is a safety refusal.
    """
    done = body.get("done", False)
    if done is False:
        return JobStatus(state="running", raw_state="running", next_poll_s=VEO_POLL_S)
    if done is not True:
        raise BackendFailure(f"Veo operation has done={done!r}", code="unknown_state")
    error = body.get("error")
    if isinstance(error, dict):
        return _operation_error(error)
    response = body.get("response")
    result = response.get("generateVideoResponse") if isinstance(response, dict) else None
    if not isinstance(result, dict):
        raise BackendFailure(
            "Veo operation is done with neither an error nor a video response",
            code="unknown_state",
        )
    for sample in result.get("generatedSamples") or []:
        video = sample.get("video") if isinstance(sample, dict) else None
        if isinstance(video, dict) and (video.get("uri") or video.get("encodedVideo")):
            url = video.get("uri")
            return JobStatus(
                state="succeeded",
                progress=1.0,
                output_url=str(url) if url else None,
                raw_state="done",
                next_poll_s=0.0,
            )
    reasons = [str(r) for r in result.get("raiMediaFilteredReasons") or []]
    count = result.get("raiMediaFilteredCount", 0)
    message = "; ".join(reasons) or f"Veo returned no video ({count} filtered by safety)"
    return _failed("content_rejected", message, "fatal", "done:filtered")


_INTERACTION_STATES: dict[str, JobState] = {
    "queued": "queued",
    "in_progress": "running",
    "completed": "succeeded",  # only with a video; see parse_interaction
    "cancelled": "canceled",
    "failed": "failed",
    "incomplete": "failed",
    "budget_exceeded": "failed",
    # We declare no tools and send no continuation, so nothing would ever move these on.
    "requires_action": "failed",
    "continuation_required": "failed",  # seen in SDK versions after 2026-08-21
}


def _interaction_video(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The last ``video`` block of the last ``model_output`` step (or ``output_video``)."""
    for step in reversed(body.get("steps") or []):
        if not isinstance(step, dict) or step.get("type") != "model_output":
            continue
        for block in reversed(step.get("content") or []):
            if _is_video(block):
                return dict(block)
    video = body.get("output_video")  # an SDK shortcut; on the wire UNCONFIRMED
    return dict(video) if _is_video(video) else None


def _is_video(block: Any) -> TypeGuard[dict[str, Any]]:
    return (
        isinstance(block, dict)
        and block.get("type", "video") == "video"
        and bool(block.get("uri") or block.get("data"))
    )


def _interaction_error(body: Mapping[str, Any]) -> dict[str, Any] | None:
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    for step in body.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("error"), dict):
            return dict(step["error"])
    return None


def _token(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def interaction_usage(body: Mapping[str, Any]) -> dict[str, int] | None:
    """The token counts of ``usage`` (video output apart), or None when it has none."""
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return None
    video = sum(
        _token(m.get("tokens"))
        for m in usage.get("output_tokens_by_modality") or []
        if isinstance(m, dict) and m.get("modality") == "video"
    )
    totals = ("total_input_tokens", "total_output_tokens", "total_thought_tokens")
    return {key: _token(usage.get(key)) for key in totals} | {"video_output_tokens": video}


def interaction_cost(body: Mapping[str, Any], prices: Mapping[str, TokenPrice]) -> int | None:
    """micro-USD from ``usage`` at the model's per-token price; None without a price."""
    price = prices.get(str(body.get("model") or ""))
    usage = interaction_usage(body)
    if price is None or usage is None:
        return None
    video = usage["video_output_tokens"]
    other = max(usage["total_output_tokens"] - video, 0) + usage["total_thought_tokens"]
    cost = (
        usage["total_input_tokens"] * price.input
        + video * price.output_video
        + other * price.output_other
    )
    return int(cost.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_interaction(
    body: Mapping[str, Any], prices: Mapping[str, TokenPrice] = DEFAULT_OMNI_PRICES
) -> JobStatus:
    """An Omni interaction → :class:`JobStatus`; unknown statuses are errors."""
    raw = body.get("status")
    if not isinstance(raw, str) or raw not in _INTERACTION_STATES:
        raise BackendFailure(f"Omni interaction has unknown status {raw!r}", code="unknown_state")
    state = _INTERACTION_STATES[raw]
    if state in ("queued", "running"):
        return JobStatus(state=state, raw_state=raw, next_poll_s=OMNI_POLL_S)
    cost, usage = interaction_cost(body, prices), interaction_usage(body)
    if state == "canceled":
        return JobStatus(
            state=state, raw_state=raw, next_poll_s=0.0, cost_usd_micros=cost, vendor_usage=usage
        )
    video = _interaction_video(body) if state == "succeeded" else None
    if video is not None:
        url = video.get("uri")
        return JobStatus(
            state="succeeded",
            progress=1.0,
            output_url=str(url) if url else None,
            raw_state=raw,
            next_poll_s=0.0,
            cost_usd_micros=cost,
            vendor_usage=usage,
        )
    status = _interaction_failure(body, raw)
    return status.model_copy(update={"cost_usd_micros": cost, "vendor_usage": usage})


def _interaction_failure(body: Mapping[str, Any], raw: str) -> JobStatus:
    error = _interaction_error(body)
    if error is not None:
        code, failure_class = _failure_class(error.get("code"), error.get("status"))
        return _failed(code, str(error.get("message") or raw), failure_class, raw)
    if raw == "completed":
        # Omni documents no safety signal; an empty completion (e.g. a regional block)
        # may well succeed elsewhere.
        return _failed("no_video", "Omni completed without a video", "fallback", raw)
    return _failed(raw, f"Omni interaction ended {raw}", "fallback", raw)


def parse_status(
    body: Mapping[str, Any], prices: Mapping[str, TokenPrice] = DEFAULT_OMNI_PRICES
) -> JobStatus:
    """Either wire's job body → :class:`JobStatus` (an operation carries ``name``)."""
    if "/operations/" in str(body.get("name", "")):
        return parse_operation(body)
    return parse_interaction(body, prices)


def _inline_video(body: Mapping[str, Any]) -> str | None:
    """The base64 video of a finished job that returned bytes instead of a URI."""
    if "/operations/" in str(body.get("name", "")):
        response = body.get("response") or {}
        result = response.get("generateVideoResponse") if isinstance(response, dict) else None
        for sample in (result or {}).get("generatedSamples") or []:
            video = sample.get("video") if isinstance(sample, dict) else None
            if isinstance(video, dict) and isinstance(video.get("encodedVideo"), str):
                return str(video["encodedVideo"])
        return None
    block = _interaction_video(body)
    data = block.get("data") if block else None
    return data if isinstance(data, str) else None


# --- the adapter -----------------------------------------------------------------------


class GoogleAdapter:
    """Veo (operations) and Gemini Omni Flash (interactions) behind one Gemini API key."""

    name = "google"
    idempotent_submit = False  # neither API takes an idempotency key
    supports_cancel = True  # Omni only; a Veo cancel raises BackendFailure (no such call)

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        omni_prices: Mapping[str, TokenPrice] | None = None,
        fetch_image_urls: bool = True,
        api_revision: str | None = None,
    ) -> None:
        self._key = api_key
        self._client = client or vendor_client(base_url, httpx.Timeout(60.0, connect=10.0))
        self._origin = _origin(str(self._client.base_url) or base_url)
        self._prices = DEFAULT_OMNI_PRICES if omni_prices is None else omni_prices
        self._fetch_images = fetch_image_urls
        self._api_revision = api_revision

    def configured_models(self) -> set[str] | None:
        return None

    def _headers(self, url: str | None = None) -> dict[str, str]:
        """The key, only for the configured Google origin (relative URLs are)."""
        if url is not None and _origin(url) != self._origin:
            return {}
        headers = {"x-goog-api-key": self._key}
        if self._api_revision:
            headers["Api-Revision"] = self._api_revision
        return headers

    async def _send(
        self, method: str, url: str, *, submitting: bool = False, polling: bool = False, **kw: Any
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, url, headers=self._headers(), **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.name) from exc
        if response.status_code >= 300:
            raise classify(response, polling=polling, submitting=submitting)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _malformed("malformed JSON", submitting) from exc
        if not isinstance(body, dict):
            raise _malformed("an unexpected body", submitting)
        return body

    async def submit(self, request: GenerationRequest) -> Submission:
        request = await self._inline_images(request)
        path, payload = to_payload(request)
        try:
            body = await self._send("POST", path, json=payload, submitting=True)
        except InvalidInput as exc:
            if request.callback_url is None:
                raise
            # The webhook field's wire shape is UNCONFIRMED. A 4xx created nothing, so one
            # resend without it is safe: the engine polls anyway, the webhook only wakes it.
            field = "webhookConfig" if wire_for(request.model) == "veo" else "webhook_config"
            log.warning(
                "google refused a create carrying %s (%s); resending it once without", field, exc
            )
            path, payload = to_payload(request.model_copy(update={"callback_url": None}))
            body = await self._send("POST", path, json=payload, submitting=True)
        if wire_for(request.model) == "veo":
            job_id, poll_after = body.get("name"), VEO_POLL_S
            valid = isinstance(job_id, str) and _OPERATION_NAME.fullmatch(job_id)
        else:
            job_id, poll_after = body.get("id"), OMNI_POLL_S
            valid = isinstance(job_id, str) and _INTERACTION_ID.fullmatch(job_id)
        if not valid:
            raise _malformed(f"a create answer without a usable job id ({job_id!r})", True)
        return Submission(backend_job_id=str(job_id), poll_after_s=poll_after)

    def _job_path(self, backend_job_id: str) -> str:
        if _OPERATION_NAME.fullmatch(backend_job_id):
            return f"{API}/{backend_job_id}"
        if _INTERACTION_ID.fullmatch(backend_job_id):
            return f"{API}/interactions/{backend_job_id}"
        raise BackendJobLost(f"not a Google job id: {backend_job_id!r}", code="bad_job_id")

    async def poll(self, backend_job_id: str) -> JobStatus:
        body = await self._send("GET", self._job_path(backend_job_id), polling=True)
        return parse_status(body, self._prices)

    async def cancel(self, backend_job_id: str) -> None:
        path = self._job_path(backend_job_id)
        if _OPERATION_NAME.fullmatch(backend_job_id):
            raise BackendFailure(
                "the Gemini API cannot cancel a Veo operation; it runs to the end",
                code="cancel_unsupported",
            )
        await self._send("POST", f"{path}/cancel", polling=True)

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """Stream the clip from its URI (keyed, redirects followed keylessly off-origin),
        or decode it when the job returned the bytes inline."""
        if status.output_url:
            async for chunk in self._stream(status.output_url):
                yield chunk
            return
        body = await self._send("GET", self._job_path(backend_job_id), polling=True)
        data = _inline_video(body)
        if data is None:
            raise BackendFailure("the finished Google job holds no video", code="no_output")
        try:
            video = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RetryableError("google sent undecodable video data", code="malformed") from exc
        for start in range(0, len(video), _CHUNK):
            yield video[start : start + _CHUNK]

    async def _stream(self, url: str) -> AsyncIterator[bytes]:
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                headers = self._headers(url)
                async with self._client.stream(
                    "GET", url, headers=headers, follow_redirects=False
                ) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code >= 300:
                        await response.aread()
                        raise classify(response, polling=True)
                    async for chunk in response.aiter_bytes():
                        yield chunk
                    return
            except httpx.TransportError as exc:
                raise transport_error(exc, self.name) from exc
        raise BackendFailure(f"google download redirected more than {_MAX_REDIRECTS} times")

    async def _inline_images(self, request: GenerationRequest) -> GenerationRequest:
        """Fetch http(s) images (without the API key) into data: URIs."""
        update: dict[str, str] = {}
        for field in ("image", "last_frame"):
            uri = getattr(request, field)
            if isinstance(uri, str) and uri.startswith(("http://", "https://")):
                if not self._fetch_images:
                    raise InvalidInput(
                        f"{field}: Google takes images inline; pass a data: URI "
                        "(fetching image URLs is off for this gateway)",
                        code="invalid_image",
                    )
                update[field] = await self._fetch_image(uri, field)
        return request.model_copy(update=update) if update else request

    async def _fetch_image(self, url: str, field: str) -> str:
        try:
            async with self._client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code >= 300:
                    error: type[AdapterError] = (
                        RetryableError if response.status_code >= 500 else InvalidInput
                    )
                    raise error(
                        f"{field}: {url} answered HTTP {response.status_code}", code="image_fetch"
                    )
                mime = _image_mime(response, url, field)
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_IMAGE_BYTES:
                        raise InvalidInput(
                            f"{field}: image larger than {MAX_IMAGE_BYTES // 2**20} MiB",
                            code="invalid_image",
                        )
        except httpx.TransportError as exc:
            # Nothing reached Google yet: a plain retry is safe.
            raise RetryableError(
                f"{field}: fetching {url} failed: {exc}", code="image_fetch"
            ) from exc
        return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode()}"

    async def aclose(self) -> None:
        await self._client.aclose()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def _image_mime(response: httpx.Response, url: str, field: str) -> str:
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not mime.startswith("image/"):
        mime = mimetypes.guess_type(urlsplit(url).path)[0] or ""
    if not mime.startswith("image/"):
        raise InvalidInput(f"{field}: {url} is not an image ({mime or 'unknown type'})")
    return str(mime)


def _malformed(what: str, submitting: bool) -> RetryableError:
    return RetryableError(f"google sent {what}", code="malformed", outcome_unknown=submitting)
