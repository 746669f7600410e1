"""fal's queue API, from the vendor reference (§6, addendum §5). Base URL ``{emulator}/fal``
(fal's ``queue.fal.run``).

- Submit ``POST /{owner}/{app}[/{path}]`` (``?fal_webhook=<url>``), body = the model's
  input → ``{request_id, gateway_request_id, status: "IN_QUEUE", queue_position,
  response_url, status_url, cancel_url}``.
- The request URLs drop the endpoint's subpath: ``/{owner}/{app}/requests/{id}`` (a
  ``workflows``/``comfy`` namespace keeps a third segment, as fal's client computes it).
  ``GET …/status[?logs=1]``: 202 ``IN_QUEUE`` (+ ``queue_position``) or ``IN_PROGRESS``,
  200 ``COMPLETED`` (+ ``metrics``; ``error``/``error_type`` when it failed: fal has no
  failed state). ``GET …/requests/{id}``: the result ``{"video": {url, content_type,
  file_name, file_size}, "seed"}`` with ``x-fal-billable-units``; for a failed request the
  model's error response. ``PUT …/cancel``: 202 ``CANCELLATION_REQUESTED`` (only a queued
  request is removed: a running one goes on, as the reference says cancel acts only before
  processing starts), 400 ``ALREADY_COMPLETED``, 404 ``NOT_FOUND``.
- Auth ``Authorization: Key <FAL_KEY>``; errors ``{"detail": …}`` (+ ``error_type``,
  ``x-fal-error-type``); fal's own answers carry ``x-fal-request-id``.
- Webhook body ``{request_id, gateway_request_id, status: "OK" | "ERROR", payload,
  error?}``, signed as fal signs (its webhooks page, "Verifying Your Webhook"): headers
  ``X-Fal-Webhook-Request-Id``, ``-User-Id``, ``-Timestamp`` (unix seconds) and
  ``-Signature``, the hex Ed25519 signature of ``request_id\nuser_id\ntimestamp\n`` +
  the body's SHA-256 hex digest. The key pair is made when the app is built; its public
  half is served as a JWKS at ``GET /.well-known/jwks.json`` (fal's is on
  ``rest.fal.ai``; here on this vendor's prefix). :func:`webhook_headers` signs.

UNCONFIRMED in the reference, chosen here: the result of a request still running (400
``Request is still in progress``), a canceled request's status (``COMPLETED`` with
``error``), and the failed result (500 ``detail`` message, or 422 with a
``content_policy_violation`` detail item when the ``fail_code`` knob names it).

The ``create_error`` knob's refusals (:data:`CREATE_ERRORS`): bad_input is the documented
422 validation ``detail``; content the 422 ``content_policy_violation`` item above
(UNCONFIRMED); unavailable an ingress 503 (no ``x-fal-request-id``). The reference documents
no billing refusal, and fal never refuses a submission for concurrency: billing and quota
are the generic answers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import time
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from emulator.app import VendorError, VendorRoutes, chaos_response, file_url
from emulator.core import CreateError, EmJob, Emulator, sample_mp4

__all__ = ["CREATE_ERRORS", "USER_ID", "app_id", "jwks", "routes", "webhook_headers"]

NAME = "fal"
#: The account id fal names in webhook headers.
USER_ID = "emulator-user"
_NAMESPACES = ("workflows", "comfy")
_CONTENT_POLICY = "content_policy_violation"
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")
_FLAGGED = "The content could not be processed because it contained material flagged by a "
CREATE_ERRORS: dict[CreateError, VendorError] = {
    "bad_input": VendorError(
        422, {"detail": [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing"}]}
    ),
    "content": VendorError(
        422,
        {
            "detail": [
                {
                    "loc": ["body", "prompt"],
                    "msg": _FLAGGED + "content checker.",
                    "type": _CONTENT_POLICY,
                }
            ]
        },
        headers={"x-fal-error-type": _CONTENT_POLICY},
    ),
    "unavailable": VendorError(503, {"detail": "Service Unavailable"}),
}


def app_id(endpoint: str) -> str | None:
    """``fal-ai/kling-video/v2.1/master/text-to-video`` → ``fal-ai/kling-video``."""
    parts = endpoint.strip("/").split("/")
    size = 3 if parts[0] in _NAMESPACES else 2
    if len(parts) < size or not all(parts[:size]):
        return None
    return "/".join(parts[:size])


def webhook_headers(
    job: EmJob, body: bytes, *, key: Ed25519PrivateKey, timestamp: int | None = None
) -> dict[str, str]:
    """fal's signed webhook headers for ``job``'s raw JSON ``body`` (see the module doc)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    message = "\n".join([job.id, USER_ID, ts, hashlib.sha256(body).hexdigest()]).encode()
    return {
        "X-Fal-Webhook-Request-Id": job.id,
        "X-Fal-Webhook-User-Id": USER_ID,
        "X-Fal-Webhook-Timestamp": ts,
        "X-Fal-Webhook-Signature": key.sign(message).hex(),
    }


def jwks(key: Ed25519PrivateKey, kid: str) -> dict[str, Any]:
    """The JWKS (RFC 8037 OKP key, ``x`` unpadded base64url) holding ``key``'s public half."""
    x = base64.urlsafe_b64encode(key.public_key().public_bytes_raw()).rstrip(b"=").decode()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}
    return {"keys": [jwk]}


def _detail(status: int, detail: Any, error_type: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    headers = {"x-fal-request-id": uuid.uuid4().hex}
    if error_type:
        body["error_type"] = error_type
        headers["x-fal-error-type"] = error_type
    return JSONResponse(body, status_code=status, headers=headers)


def _billable_units(payload: dict[str, Any]) -> str:
    """Seconds of video asked for (fal prices video per second); 1 when unknown."""
    match = _SECONDS.match(str(payload.get("duration", "")))
    if match:
        return match.group(1)
    frames, fps = payload.get("num_frames"), payload.get("frames_per_second")
    if isinstance(frames, int) and isinstance(fps, int) and fps > 0:
        return f"{frames / fps:.2f}"
    return "1"


def result(job: EmJob, video_url: str) -> dict[str, Any]:
    return {
        "video": {
            "url": video_url,
            "content_type": "video/mp4",
            "file_name": f"{job.id}.mp4",
            "file_size": len(sample_mp4()),
        },
        "seed": job.payload.get("seed", 42),
    }


def _failure(job: EmJob, now: float, fail_code: str) -> tuple[int, dict[str, Any], str]:
    """``(HTTP status, body, error_type)`` of a failed or canceled request's result."""
    if job.state(now) == "canceled":
        return 400, {"detail": "Request was cancelled"}, "request_cancelled"
    if fail_code == _CONTENT_POLICY:
        item = {
            "loc": ["body", "prompt"],
            "msg": "The content could not be processed because it contained material "
            "flagged by a content checker.",
            "type": _CONTENT_POLICY,
        }
        return 422, {"detail": [item]}, _CONTENT_POLICY
    return 500, {"detail": "The model failed to generate the video."}, fail_code


def routes(em: Emulator) -> VendorRoutes:
    router = APIRouter()
    signing_key = Ed25519PrivateKey.generate()
    key_set = jwks(signing_key, kid=uuid.uuid4().hex[:16])

    @router.get("/.well-known/jwks.json")
    async def signing_keys() -> dict[str, Any]:
        return key_set

    def check(request: Request) -> JSONResponse | None:
        if not request.headers.get("authorization", "").startswith("Key "):
            return _detail(401, "Missing or invalid Authorization header: use 'Key <FAL_KEY>'")
        return None

    def rate_limited() -> dict[str, Any]:
        return {"detail": "Rate limit exceeded", "error_type": "rate_limited"}

    def find(app: str, request_id: str) -> EmJob | None:
        job = em.get(request_id)
        if job is None or job.vendor != NAME or job.extra.get("app") != app.strip("/"):
            return None
        return job

    def queue_url(request: Request, app: str, request_id: str) -> str:
        return f"{str(request.base_url).rstrip('/')}/{NAME}/{app}/requests/{request_id}"

    queues: dict[str, list[EmJob]] = {}  # each app's jobs in creation order

    def queue_position(job: EmJob, now: float) -> int:
        """Jobs of the same app created earlier and still queued. Start times grow with
        creation (the queue time is one knob), so they are the latest few: walk back."""
        queue = queues.get(job.extra["app"], [])
        position = 0
        for other in reversed(queue[: job.extra["seq"]]):
            if other.started <= now:
                break
            position += other.state(now) == "queued"
        return position

    def answer(job: EmJob, body: dict[str, Any], status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers={"x-fal-request-id": job.id})

    @router.get("/{app:path}/requests/{request_id}/status")
    async def status(app: str, request_id: str, request: Request, logs: int = 0) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "poll", rate_limit_body=rate_limited())) is not None:
            return failure
        job = find(app, request_id)
        if job is None:
            return _detail(404, "Request not found")
        now = em.clock()
        state = job.state(now)
        body: dict[str, Any] = {"response_url": queue_url(request, job.extra["app"], job.id)}
        lines: list[dict[str, str]] | None = [] if logs else None
        if state == "queued":
            body |= {"status": "IN_QUEUE", "queue_position": queue_position(job, now)}
            return answer(job, body, 202)
        if lines is not None:
            lines.append({"message": "Generating", "level": "INFO", "source": "user"})
        if state == "running":
            return answer(job, body | {"status": "IN_PROGRESS", "logs": lines}, 202)
        body |= {"status": "COMPLETED", "logs": lines, "metrics": {}}
        if state == "succeeded":
            body["metrics"] = {"inference_time": round(job.finished - job.started, 3)}
        else:
            _, error, error_type = _failure(job, now, em.knobs.fail_code)
            detail = error["detail"]
            body["error"] = detail if isinstance(detail, str) else detail[0]["msg"]
            body["error_type"] = error_type
        return answer(job, body)

    @router.get("/{app:path}/requests/{request_id}")
    async def response(app: str, request_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        em.requests["result"] = em.requests.get("result", 0) + 1  # also counted as a poll
        if (failure := chaos_response(em, "poll", rate_limit_body=rate_limited())) is not None:
            return failure
        job = find(app, request_id)
        if job is None:
            return _detail(404, "Request not found")
        now = em.clock()
        state = job.state(now)
        if state in ("queued", "running"):
            return _detail(400, "Request is still in progress")
        if state == "succeeded":
            reply = answer(job, result(job, file_url(request, job)))
            reply.headers["x-fal-billable-units"] = _billable_units(job.payload)
            return reply
        code, error, error_type = _failure(job, now, em.knobs.fail_code)
        return _detail(code, error["detail"], error_type)

    @router.put("/{app:path}/requests/{request_id}/cancel")
    async def cancel(app: str, request_id: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        if (failure := chaos_response(em, "cancel", rate_limit_body=rate_limited())) is not None:
            return failure
        job = find(app, request_id)
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        state = job.state(em.clock())
        if state == "queued":
            em.cancel(job)
        elif state != "running":
            return answer(job, {"status": "ALREADY_COMPLETED"}, 400)
        return answer(job, {"status": "CANCELLATION_REQUESTED"}, 202)

    @router.post("/{endpoint:path}")
    async def submit(endpoint: str, request: Request) -> Response:
        if (bad := check(request)) is not None:
            return bad
        failure = chaos_response(
            em,
            "create",
            rate_limit_body=rate_limited(),
            vendor=NAME,
            create_errors=CREATE_ERRORS,
        )
        if failure is not None:
            return failure
        app = app_id(endpoint)
        if app is None:
            return _detail(404, f"Application {endpoint!r} not found")
        try:
            body = await request.json()
        except ValueError:
            return _detail(400, "The request body is not valid JSON")
        if not isinstance(body, dict):
            item = {"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict"}
            return _detail(422, [item])
        webhook = request.query_params.get("fal_webhook")
        job = em.create(NAME, endpoint.strip("/"), body, callback_url=webhook)
        queue = queues.setdefault(app, [])
        job.extra |= {"app": app, "seq": len(queue)}
        queue.append(job)
        base = queue_url(request, app, job.id)
        return answer(
            job,
            {
                "request_id": job.id,
                "gateway_request_id": job.id,
                "status": "IN_QUEUE",
                "queue_position": queue_position(job, em.clock()),
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
            },
        )

    def callback_body(job: EmJob, base_url: str) -> dict[str, Any]:
        """The webhook: the result as ``payload`` (``OK``), or the error (``ERROR``)."""
        body: dict[str, Any] = {"request_id": job.id, "gateway_request_id": job.id}
        now = em.clock()
        if job.state(now) == "succeeded":
            video_url = f"{base_url.rstrip('/')}/_emulator/files/{job.id}.mp4"
            return body | {"status": "OK", "payload": result(job, video_url)}
        code, error, _ = _failure(job, now, em.knobs.fail_code)
        return body | {"status": "ERROR", "error": f"Invalid status code: {code}", "payload": error}

    headers = functools.partial(webhook_headers, key=signing_key)
    return VendorRoutes(NAME, router, callback_body, headers)
