"""Google's Gemini API video wires, from the vendor reference (vendors.md §2, the Veo
long-running operation; vendors-2026-11.md §1, Gemini Omni Flash on the Interactions API).

Mounted at ``{emulator}/google``, which stands for ``https://generativelanguage.googleapis.com``
(the client appends ``/v1beta``). Every call needs ``x-goog-api-key``.

- **Veo**: ``POST /v1beta/models/{model}:predictLongRunning`` (``instances``/``parameters``)
  → ``{"name": "models/{model}/operations/{id}"}``; ``GET /v1beta/models/{model}/operations/{id}``
  → the operation: ``done`` is omitted while false (proto3 JSON); when done it carries
  ``response.generateVideoResponse.generatedSamples[].video.uri`` or ``error{code,message,
  status}``. No progress, no cancel (the Gemini API has none for these operations). Omni ids
  are refused here (400), as Google does. Parameters the Gemini API does not take (the SDK
  refuses them client-side in Gemini-API mode: ``seed``, ``generateAudio``, ``fps``, …) are
  refused with 400 ``INVALID_ARGUMENT``.
- **Omni**: ``POST /v1beta/interactions``; with ``background: true`` it answers ``{id, status}``
  at once, without it the POST blocks until the clip is done. ``GET /v1beta/interactions/{id}``
  → ``{id, status, model, created, updated, steps[], usage, errors[]?}`` with status
  ``queued → in_progress → completed | failed | cancelled``; the video is the
  ``model_output`` step's ``{type: "video", mime_type: "video/mp4", data | uri}``: base64
  ``data`` unless ``response_format.delivery`` is ``"uri"`` (the reference implies inline is
  the default: large inline answers "need delivery: uri"). ``POST …/{id}/cancel`` cancels and
  answers the interaction. ``usage`` reports 5,792 video tokens per second (the preview's
  720p rate; other resolutions UNCONFIRMED, the same rate is used). Streaming is not emulated
  (501); ``background`` with ``stream`` is refused (400) as documented.
- **Files**: a video ``uri`` is ``…/google/v1beta/files/{id}:download?alt=media``; it needs the
  key and redirects (302) to the emulator's keyless file URL, as Google's redirects to storage.

Errors are ``{"error": {"code": <http>, "message", "status": <google.rpc name>}}``. A request
without a key gets 401 ``UNAUTHENTICATED``: the reference documents no auth-failure shape
(Google is known to answer a missing key with 403 ``PERMISSION_DENIED``; UNCONFIRMED here).

Failures follow the ``fail_code`` knob: ``rai_filtered`` makes a Veo operation finish with no
samples and ``raiMediaFilteredCount: 1`` (the documented safety block); a google.rpc code name
(``INTERNAL``, ``RESOURCE_EXHAUSTED``, ``INVALID_ARGUMENT``, …, any case) is used as the error's
status; anything else is ``INTERNAL``.

The ``create_error`` knob's refusals (:data:`CREATE_ERRORS`, on both creates) are in that
error shape: quota is the daily quota's 429 ``RESOURCE_EXHAUSTED`` with google.rpc
``QuotaFailure`` (``quotaId`` ``GenerateRequestsPerDayPerProjectPerModel``) and
``RetryInfo`` details (the reference documents the code, message and status; the details are
the standard google.rpc ones, UNCONFIRMED there); bad_input 400 ``INVALID_ARGUMENT``;
unavailable 503 ``UNAVAILABLE``. Billing and content refusals of a create are not
documented: those are the generic ones.
"""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator, State, sample_mp4

__all__ = ["CREATE_ERRORS", "NAME", "routes"]

NAME = "google"
API = "/v1beta"

_INTERACTION_STATUS: dict[State, str] = {
    "queued": "queued",
    "running": "in_progress",
    "succeeded": "completed",
    "failed": "failed",
    "canceled": "cancelled",
}
#: google.rpc.Code names by number (an operation error carries the number and the name).
_GRPC = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]
_HTTP_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
}
RAI_FILTERED = "rai_filtered"
_RESPONSE_TYPE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)
#: ``parameters`` the Gemini API does not take for Veo (the SDK refuses them client-side).
_VEO_REFUSED = frozenset(
    {
        "seed",
        "generateAudio",
        "fps",
        "outputGcsUri",
        "pubsubTopic",
        "compressionQuality",
        "labels",
        "resizeMode",
    }
)
_VEO_RATIOS = frozenset({"16:9", "9:16"})
_VEO_RESOLUTIONS = frozenset({"720p", "1080p", "4k"})
_VEO_DURATIONS = frozenset({4, 6, 8})
_OMNI_RATIOS = frozenset({"16:9", "9:16"})
_OMNI_RESOLUTIONS = frozenset({"360p", "720p", "1080p", "4k"})
_OMNI_DURATION = re.compile(r"([0-9]+)s")
VIDEO_TOKENS_PER_S = 5792  # preview rate at 720p (vendors-2026-11.md §1)


def _error(status: int, message: str, name: str | None = None) -> JSONResponse:
    error = {"code": status, "message": message, "status": name or _HTTP_NAMES[status]}
    return JSONResponse({"error": error}, status_code=status)


_RATE_LIMITED = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
    }
}


_RPC = "type.googleapis.com/google.rpc."
_DAILY_METRIC = "generativelanguage.googleapis.com/generate_requests_per_model_per_day"
CREATE_ERRORS: dict[CreateError, VendorError] = {
    "quota": VendorError(
        429,
        {
            "error": {
                "code": 429,
                "message": "You exceeded your current quota, please check your plan and "
                f"billing details. Quota exceeded for metric: {_DAILY_METRIC}, limit: 0",
                "status": "RESOURCE_EXHAUSTED",
                "details": [
                    {
                        "@type": _RPC + "QuotaFailure",
                        "violations": [
                            {
                                "quotaMetric": _DAILY_METRIC,
                                "quotaId": "GenerateRequestsPerDayPerProjectPerModel",
                            }
                        ],
                    },
                    {"@type": _RPC + "RetryInfo", "retryDelay": "37s"},
                ],
            }
        },
    ),
    "bad_input": VendorError(
        400,
        {
            "error": {
                "code": 400,
                "message": "Request contains an invalid argument.",
                "status": "INVALID_ARGUMENT",
            }
        },
    ),
    "unavailable": VendorError(
        503,
        {
            "error": {
                "code": 503,
                "message": "The model is overloaded. Please try again later.",
                "status": "UNAVAILABLE",
            }
        },
    ),
}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _failure(em: Emulator) -> dict[str, Any]:
    """The ``fail_code`` knob as a google.rpc status (a code name, else INTERNAL)."""
    name = em.knobs.fail_code.upper()
    name = name if name in _GRPC and name != "OK" else "INTERNAL"
    return {"code": _GRPC.index(name), "message": "Video generation failed.", "status": name}


def _veo_invalid(body: Any) -> str | None:
    """Why a ``predictLongRunning`` body is refused, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload: expected an object."
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return "instances must hold exactly one instance."
    instance = instances[0]
    if not isinstance(instance.get("prompt"), str) and not instance.get("image"):
        return "instances[0].prompt is required."
    for field in ("image", "lastFrame"):
        image = instance.get(field)
        if image is not None and not (
            isinstance(image, dict)
            and isinstance(image.get("bytesBase64Encoded"), str)
            and isinstance(image.get("mimeType"), str)
        ):
            return f"instances[0].{field} needs bytesBase64Encoded and mimeType."
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        return "parameters must be an object."
    if refused := sorted(_VEO_REFUSED & params.keys()):
        return f"{refused[0]} isn't supported by the Gemini API."
    if params.get("aspectRatio", "16:9") not in _VEO_RATIOS:
        return f"aspectRatio {params['aspectRatio']!r} is not supported."
    if params.get("resolution", "720p") not in _VEO_RESOLUTIONS:
        return f"resolution {params['resolution']!r} is not supported."
    duration = params.get("durationSeconds", 8)
    try:
        seconds = int(duration)  # the docs send "8", the SDK 8
    except (TypeError, ValueError):
        return f"durationSeconds {duration!r} is not a number."
    if seconds not in _VEO_DURATIONS:
        return f"durationSeconds {seconds} is out of range: 4, 6 or 8."
    if params.get("resolution", "720p") != "720p" and seconds != 8:
        return "1080p and 4k need durationSeconds 8."
    if params.get("sampleCount", 1) not in (1, 2, 3, 4):
        return "sampleCount must be 1 to 4."
    return None


def _video_format(body: dict[str, Any]) -> dict[str, Any] | None:
    formats = body.get("response_format")
    entries = formats if isinstance(formats, list) else [formats]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("type") == "video":
            return entry
    return None


def _omni_invalid(body: Any) -> str | None:
    """Why an interaction create body is refused, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload: expected an object."
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model is required."
    source = body.get("input")
    if not (isinstance(source, str) and source) and not (isinstance(source, list) and source):
        return "input is required."
    if isinstance(source, list):
        for block in source:
            if not isinstance(block, dict) or block.get("type") not in (
                "text",
                "image",
                "video",
                "audio",
            ):
                return "input blocks need a type: text, image, video or audio."
            if block["type"] != "text" and not (block.get("data") or block.get("uri")):
                return f"an {block['type']} block needs data or uri."
    if body.get("background") and body.get("stream"):
        return "background and stream cannot be combined."
    if body.get("store") is False and (
        body.get("background") or body.get("previous_interaction_id")
    ):
        return "store: false disables background and previous_interaction_id."
    video = _video_format(body) or {}
    if video.get("aspect_ratio", "16:9") not in _OMNI_RATIOS:
        return f"aspect_ratio {video['aspect_ratio']!r} is not supported."
    if video.get("resolution", "720p") not in _OMNI_RESOLUTIONS:
        return f"resolution {video['resolution']!r} is not supported."
    if video.get("delivery", "inline") not in ("inline", "uri"):
        return "delivery must be inline or uri."
    match = _OMNI_DURATION.fullmatch(str(video.get("duration", "8s")))
    if match is None or not 3 <= int(match.group(1)) <= 10:
        return f"duration {video.get('duration')!r}: a string of 3s to 10s."
    return None


def _omni_seconds(job: EmJob) -> int:
    video = _video_format(job.payload) or {}
    match = _OMNI_DURATION.fullmatch(str(video.get("duration", "8s")))
    return int(match.group(1)) if match else 8


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()

    def check(request: Request) -> JSONResponse | None:
        if not request.headers.get("x-goog-api-key"):
            return _error(
                401,
                "Request is missing required authentication credential. Expected an API key "
                "in the x-goog-api-key header.",
            )
        return None

    def find(job_id: str, kind: str) -> EmJob | None:
        job = em.get(job_id)
        return job if job is not None and job.extra.get("kind") == kind else None

    def video_uri(request: Request, job: EmJob) -> str:
        root = str(request.base_url).rstrip("/")
        return f"{root}/{NAME}{API}/files/{job.id}:download?alt=media"

    async def json_body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    # --- Veo: long-running operations ----------------------------------------------------

    @router.post(API + "/models/{model}:predictLongRunning")
    async def predict_long_running(model: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        failure = chaos_response(
            em,
            "create",
            rate_limit_body=_RATE_LIMITED,
            vendor=NAME,
            create_errors=CREATE_ERRORS,
        )
        if failure is not None:
            return failure
        if not model.startswith("veo"):
            return _error(400, f"models/{model} is not supported for predictLongRunning.")
        body = await json_body(request)
        if (problem := _veo_invalid(body)) is not None:
            return _error(400, problem)
        job = em.create(NAME, model, body)
        job.extra["kind"] = "operation"
        return JSONResponse({"name": f"models/{model}/operations/{job.id}"})

    @router.get(API + "/models/{model}/operations/{operation_id}")
    async def operation(model: str, operation_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(operation_id, "operation")
        if job is None or job.model != model:
            return _error(404, f"Operation models/{model}/operations/{operation_id} not found.")
        return JSONResponse(operation_body(job, request))

    def operation_body(job: EmJob, request: Request) -> dict[str, Any]:
        name = f"models/{job.model}/operations/{job.id}"
        state = job.state(em.clock())
        if state in ("queued", "running"):
            return {"name": name}
        if state == "canceled":
            error = {"code": 1, "message": "Operation cancelled.", "status": "CANCELLED"}
            return {"name": name, "done": True, "error": error}
        if state == "failed" and em.knobs.fail_code != RAI_FILTERED:
            return {"name": name, "done": True, "error": _failure(em)}
        result: dict[str, Any]
        if state == "failed":
            result = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [
                    "Your video couldn't be generated because it may violate our policies."
                ],
            }
        else:
            result = {"generatedSamples": [{"video": {"uri": video_uri(request, job)}}]}
        response = {
            "@type": _RESPONSE_TYPE,
            "generateVideoResponse": result,
        }
        return {"name": name, "done": True, "response": response}

    # --- Omni: the Interactions API ------------------------------------------------------

    @router.post(API + "/interactions")
    async def create_interaction(request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        failure = chaos_response(
            em,
            "create",
            rate_limit_body=_RATE_LIMITED,
            vendor=NAME,
            create_errors=CREATE_ERRORS,
        )
        if failure is not None:
            return failure
        body = await json_body(request)
        if (problem := _omni_invalid(body)) is not None:
            return _error(400, problem)
        if body.get("stream"):
            return _error(501, "The emulator does not stream interactions (SSE).")
        if str(body["model"]).startswith("veo"):
            return _error(400, f"models/{body['model']} does not support interactions.")
        job = em.create(NAME, body["model"], body, job_id=f"v1_{uuid.uuid4().hex}")
        job.extra["kind"] = "interaction"
        if body.get("background"):
            return JSONResponse(
                {"id": job.id, "status": _INTERACTION_STATUS[job.state(em.clock())]}
            )
        # Without background the POST holds until the clip is done (bounded, in real time).
        await asyncio.sleep(min(max(job.finished - em.clock(), 0.0), 120.0))
        return JSONResponse(interaction_body(job, request))

    @router.get(API + "/interactions/{interaction_id}")
    async def interaction(interaction_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if request.query_params.get("stream") == "true":
            return _error(501, "The emulator does not stream interactions (SSE).")
        if (failure := chaos_response(em, "poll", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(interaction_id, "interaction")
        if job is None:
            return _error(404, f"Interaction {interaction_id} not found.")
        include_input = request.query_params.get("include_input") == "true"
        return JSONResponse(interaction_body(job, request, include_input=include_input))

    @router.post(API + "/interactions/{interaction_id}/cancel")
    async def cancel_interaction(interaction_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "cancel", rate_limit_body=_RATE_LIMITED)) is not None:
            return failure
        job = find(interaction_id, "interaction")
        if job is None:
            return _error(404, f"Interaction {interaction_id} not found.")
        em.cancel(job)
        return JSONResponse(interaction_body(job, request))

    def interaction_body(
        job: EmJob, request: Request, *, include_input: bool = False
    ) -> dict[str, Any]:
        now = em.clock()
        state = job.state(now)
        changed = max(t for t in (job.created, job.started, job.finished) if t <= now)
        if job.canceled_at is not None:
            changed = job.canceled_at
        body: dict[str, Any] = {
            "id": job.id,
            "status": _INTERACTION_STATUS[state],
            "model": job.model,
            "created": _iso(job.created),
            "updated": _iso(max(changed, job.created)),
        }
        if include_input:
            body["input"] = job.payload.get("input")
        if state in ("queued", "running"):
            return body
        text = job.payload.get("input")
        prompt_chars = len(text) if isinstance(text, str) else 256
        video_tokens = VIDEO_TOKENS_PER_S * _omni_seconds(job) if state == "succeeded" else 0
        body["usage"] = {
            "total_input_tokens": max(1, prompt_chars // 4),
            "total_output_tokens": video_tokens,
            "total_thought_tokens": 0,
            "output_tokens_by_modality": [{"modality": "video", "tokens": video_tokens}],
        }
        if state == "succeeded":
            video: dict[str, Any] = {"type": "video", "mime_type": "video/mp4"}
            if (_video_format(job.payload) or {}).get("delivery") == "uri":
                video["uri"] = video_uri(request, job)
            else:
                video["data"] = base64.b64encode(sample_mp4()).decode("ascii")
            body["steps"] = [{"type": "model_output", "content": [video]}]
        elif state == "failed":
            error = _failure(em)
            body["errors"] = [{"code": error["status"].lower(), "message": error["message"]}]
            body["steps"] = []
        else:
            body["steps"] = []
        return body

    # --- Files: keyed download ------------------------------------------------------------

    @router.get(API + "/files/{name}")
    async def file(name: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        job_id = name.removesuffix(":download")
        job = em.get(job_id)
        if job is None or job.vendor != NAME or job.state(em.clock()) != "succeeded":
            return _error(404, f"File files/{job_id} not found.")
        if name.endswith(":download") and request.query_params.get("alt") == "media":
            # Google answers with a redirect to storage; here, the emulator's file URL.
            return RedirectResponse(file_url(request, job), status_code=302)
        return JSONResponse(
            {
                "name": f"files/{job.id}",
                "mimeType": "video/mp4",
                "sizeBytes": str(len(sample_mp4())),
                "uri": video_uri(request, job),
                "state": "ACTIVE",
            }
        )

    return VendorRoutes(NAME, router)
