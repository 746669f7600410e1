"""Kling, Kuaishou's official API: text2video and image2video, signed with a JWT.

Why it looks the way it does (vendor reference: ``vendors.md`` §5, a copy of Kling's docs):

- **Auth** is a short-lived HS256 JWT (``iss`` = access key, 30 min) signed with the secret
  key; the stdlib does that in a dozen lines. The token is cached and re-signed five
  minutes before it expires, by an injectable clock. A 401 with code 1004 (token expired,
  e.g. after clock skew) drops it: the engine's retry goes out with a fresh one.
- **Keys.** The constructor keeps the shared convention (one ``api_key``) so the gateway
  can read ``REELGATE_KLING_API_KEY`` like every other vendor's: it holds
  ``ACCESS_KEY:SECRET_KEY``. A caller holding the two apart passes ``secret_key=``.
- **Job ids** carry the endpoint, ``text2video/<task_id>``: the two endpoints are queried on
  separate paths.
- **Errors** pair an HTTP status with an envelope ``code``. Kling answers 429 both for
  billing (1100-1102: arrears, resource pack spent; 1304: IP whitelist), which must not be
  retried, and for rate and concurrency limits (1302, 1303), which must: :func:`classify`
  reads the code first and falls back to the status only when the code is unknown.
- **Creates are deduplicated** with ``external_task_id`` = the attempt's ``request_id``,
  which Kling documents as unique per account. A resubmit after a lost answer is refused
  by Kling as a duplicate; :meth:`KlingAdapter.submit` then looks the task up by that id
  (queries are free) and returns it, so resubmitting cannot start a second job. What a
  duplicate's refusal looks like is UNCONFIRMED: any bad-request refusal is checked this way.
- **Cost**: a task reports ``data.final_unit_deduction``, the units it took from the
  account's resource pack (addendum §8). The units always go out as ``vendor_usage``; they
  become ``cost_usd_micros`` only with ``unit_price_usd`` (USD per unit, what the
  operator's pack cost): the reference documents no USD price per unit (UNCONFIRMED), so
  there is no default and the gateway settles at its catalog estimate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from adapters._cost import amount, usd_micros, usd_price
from adapters._http import retry_after, stream_output, transport_error, vendor_client
from adapters.base import (
    AdapterError,
    BackendFailure,
    BackendJobLost,
    ContentRejected,
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
    "KlingAdapter",
    "classify",
    "parse_status",
    "sign_jwt",
    "to_payload",
]

DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
TOKEN_TTL_S = 1800
_RESIGN_BEFORE_S = 300
_NOT_BEFORE_SKEW_S = 5
_POLL_S = 5.0
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
_ENDPOINTS = ("text2video", "image2video")

_STATES: dict[str, JobState] = {
    "submitted": "queued",
    "processing": "running",
    "succeed": "succeeded",
    "failed": "failed",
}

#: Envelope code → (error class, our code). 1202/1203 (not found) depend on the call.
_CODES: dict[int, tuple[type[AdapterError], str]] = {
    1000: (BackendFailure, "auth_failed"),
    1001: (BackendFailure, "auth_failed"),
    1002: (BackendFailure, "auth_failed"),
    1003: (BackendFailure, "auth_failed"),
    1004: (RetryableError, "token_expired"),
    1100: (BackendFailure, "billing"),
    1101: (BackendFailure, "billing"),
    1102: (BackendFailure, "billing"),
    1103: (BackendFailure, "no_permission"),
    1200: (InvalidInput, "invalid_input"),
    1201: (InvalidInput, "invalid_input"),
    1300: (ContentRejected, "content_rejected"),
    1301: (ContentRejected, "content_rejected"),
    1302: (RateLimited, "rate_limited"),
    1303: (RateLimited, "concurrency_limited"),
    1304: (BackendFailure, "ip_not_allowed"),
    5000: (RetryableError, "server_error"),
    5001: (RetryableError, "server_error"),
    5002: (RetryableError, "server_error"),
}


# --- auth ---------------------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def sign_jwt(access_key: str, secret_key: str, now: float, ttl_s: int = TOKEN_TTL_S) -> str:
    """Kling's bearer token: HS256 over ``{iss, exp, nbf}``, as its docs sign it."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": access_key, "exp": int(now) + ttl_s, "nbf": int(now) - _NOT_BEFORE_SKEW_S}
    signing_input = f"{_b64json(header)}.{_b64json(claims)}"
    digest = hmac.new(secret_key.encode(), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{_b64url(digest.digest())}"


def _split_keys(api_key: str, secret_key: str | None) -> tuple[str, str]:
    if secret_key:
        access, secret = api_key, secret_key
    else:
        access, _, secret = api_key.partition(":")
    if not access or not secret:
        raise ValueError("Kling needs an access key and a secret key: 'ACCESS_KEY:SECRET_KEY'")
    return access, secret


# --- pure transforms ----------------------------------------------------------------------


def _image(value: str, field: str) -> str:
    """A URL as is; a data: URI as the raw base64 Kling wants (it rejects the prefix)."""
    if value.startswith(("https://", "http://")):
        return value
    if value.startswith("data:"):
        meta, sep, data = value.partition(",")
        if sep and meta.endswith(";base64") and data:
            return data
    raise InvalidInput(
        f"{field}: Kling takes an http(s) URL or a base64 data: URI, got {value[:40]!r}",
        code="invalid_image",
    )


def _duration(seconds: float) -> str:
    if not float(seconds).is_integer():
        raise InvalidInput(f"duration_s {seconds} not supported by Kling: whole seconds only")
    return str(int(seconds))


def _mode(model: str, resolution: str) -> str | None:
    """``std`` renders 720p, ``pro`` 1080p; master models have one fixed mode and take none.
    (From the capability map in the copy of Kling's docs; per-model limits UNCONFIRMED.)"""
    if "master" in model:
        return None
    return {"720p": "std", "1080p": "pro"}.get(resolution.lower())


def to_payload(request: GenerationRequest) -> tuple[str, dict[str, Any]]:
    """The endpoint (``text2video`` or ``image2video``) and its JSON body."""
    body: dict[str, Any] = {
        "model_name": request.model,
        "prompt": request.prompt,
        "duration": _duration(request.duration_s),
        "external_task_id": request.request_id,
    }
    mode = _mode(request.model, request.resolution)
    if mode is not None:
        body["mode"] = mode
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if request.audio:  # only sent when asked: models before v2.6 have no ``sound``
        body["sound"] = "on"
    if request.callback_url is not None:
        body["callback_url"] = request.callback_url
    if request.image is None:
        if request.last_frame is not None:
            raise InvalidInput("last_frame needs a first frame (image) on Kling")
        return "text2video", {**body, "aspect_ratio": request.aspect_ratio}
    body["image"] = _image(request.image, "image")
    if request.last_frame is not None:
        body["image_tail"] = _image(request.last_frame, "last_frame")
    return "image2video", body  # image2video takes no aspect_ratio: the image sets it


def _data(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise RetryableError("Kling answered without a data object", code="malformed")
    return data


def _video_url(data: dict[str, Any]) -> str:
    result = data.get("task_result") or {}
    videos = result.get("videos") if isinstance(result, dict) else None
    url = videos[0].get("url") if isinstance(videos, list) and videos else None
    if not isinstance(url, str) or not url:
        raise RetryableError("Kling reported success without a video url", code="malformed")
    return url


def parse_status(body: dict[str, Any], unit_price_usd: Decimal | None = None) -> JobStatus:
    """A query answer → :class:`JobStatus`; an unknown ``task_status`` is an error.
    ``final_unit_deduction`` becomes ``vendor_usage``, and a cost at ``unit_price_usd``."""
    data = _data(body)
    raw = data.get("task_status")
    state = _STATES.get(raw) if isinstance(raw, str) else None
    if state is None:
        raise BackendFailure(f"Kling reported unknown task_status {raw!r}", code="unknown_state")
    failure = None
    if state == "failed":
        message = str(data.get("task_status_msg") or "Kling reported the task failed")
        failure = Failure(code="generation_failed", message=message, failure_class="fallback")
    units = amount(data.get("final_unit_deduction"))
    return JobStatus(
        state=state,
        next_poll_s=_POLL_S,
        output_url=_video_url(data) if state == "succeeded" else None,
        failure=failure,
        raw_state=raw,
        cost_usd_micros=usd_micros(units, unit_price_usd),
        vendor_usage=None if units is None else {"final_unit_deduction": str(units)},
    )


# --- errors -------------------------------------------------------------------------------


def _envelope(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    if not isinstance(body, dict):
        return None, response.reason_phrase
    code = body.get("code")
    message = str(body.get("message") or response.reason_phrase)
    return (code if isinstance(code, int) and not isinstance(code, bool) else None), message


def _by_status(status: int, message: str, response: httpx.Response) -> AdapterError:
    if status in (400, 422):
        return InvalidInput(message, code="invalid_input")
    if status == 429:
        return RateLimited(message, code="rate_limited", retry_after=retry_after(response))
    if status == 408 or status >= 500:
        return RetryableError(message, code="server_error", retry_after=retry_after(response))
    return BackendFailure(message, code="auth_failed" if status in (401, 403) else "http_error")


def classify(response: httpx.Response, *, polling: bool = False) -> AdapterError:
    """An error answer (non-2xx, or a 2xx whose envelope code is not 0) → the error tree."""
    code, text = _envelope(response)
    message = f"Kling HTTP {response.status_code}, code {code}: {text}"
    if code in (1202, 1203) or (code is None and response.status_code == 404):
        return (BackendJobLost if polling else BackendFailure)(message, code="not_found")
    known = _CODES.get(code) if code is not None else None
    if known is None:
        error = _by_status(response.status_code, message, response)
    else:
        kind, ours = known
        after = retry_after(response) if kind is RateLimited else None
        if code == 1303:  # parallel tasks over the pack's limit: back off at least 1 s
            after = max(after or 0.0, 1.0)
        error = kind(message, code=ours, retry_after=after)
    if polling and isinstance(error, InvalidInput):  # a query refused: the id is not known
        return BackendJobLost(message, code="not_found")
    return error


# --- the adapter --------------------------------------------------------------------------


class KlingAdapter:
    name = "kling"
    #: external_task_id makes a resubmit find the first job (see the module docstring).
    idempotent_submit = True
    supports_cancel = False  # Kling has no cancel endpoint

    def __init__(
        self,
        api_key: str,
        *,
        secret_key: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        unit_price_usd: Decimal | str | None = None,
    ) -> None:
        """``unit_price_usd``: USD per unit of ``final_unit_deduction`` (no default: the
        reference has no figure); without it the cost is None, the units still reported."""
        self._access_key, self._secret_key = _split_keys(api_key, secret_key)
        self._unit_price = None if unit_price_usd is None else usd_price(unit_price_usd)
        self._client = client or vendor_client(base_url, _TIMEOUT)
        self._clock = clock
        self._token: tuple[str, float] | None = None  # (jwt, its exp)

    def configured_models(self) -> set[str] | None:
        return None

    def _bearer(self) -> str:
        now = self._clock()
        if self._token is None or now >= self._token[1] - _RESIGN_BEFORE_S:
            token = sign_jwt(self._access_key, self._secret_key, now)
            self._token = (token, int(now) + TOKEN_TTL_S)
        return f"Bearer {self._token[0]}"

    async def _send(
        self, method: str, url: str, *, polling: bool = False, submitting: bool = False, **kw: Any
    ) -> dict[str, Any]:
        headers = {"Authorization": self._bearer()}
        try:
            response = await self._client.request(method, url, headers=headers, **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.name) from exc
        if response.status_code < 300:
            try:
                body = response.json()
            except ValueError as exc:
                raise _malformed(submitting) from exc
            if not isinstance(body, dict):
                raise _malformed(submitting)
            if body.get("code", 0) == 0:
                return body
        error = classify(response, polling=polling)
        if error.code == "token_expired":
            self._token = None
        raise error

    async def submit(self, request: GenerationRequest) -> Submission:
        endpoint, payload = to_payload(request)
        try:
            body = await self._send("POST", f"/v1/videos/{endpoint}", json=payload, submitting=True)
        except InvalidInput:
            task_id = await self._find(endpoint, request.request_id)
            if task_id is None:
                raise
            return Submission(backend_job_id=f"{endpoint}/{task_id}", poll_after_s=_POLL_S)
        data = body.get("data")
        task_id = data.get("task_id") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise _malformed(True)
        return Submission(backend_job_id=f"{endpoint}/{task_id}", poll_after_s=_POLL_S)

    async def _find(self, endpoint: str, external_task_id: str) -> str | None:
        """The task an earlier create made under this external_task_id, if there is one."""
        try:
            body = await self._send("GET", _query_path(endpoint, external_task_id), polling=True)
        except AdapterError:
            return None
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("task_id"):
            return None
        info = data.get("task_info") or {}
        if isinstance(info, dict) and info.get("external_task_id") not in (None, external_task_id):
            return None
        return str(data["task_id"])

    async def poll(self, backend_job_id: str) -> JobStatus:
        endpoint, task_id = _split(backend_job_id)
        body = await self._send("GET", _query_path(endpoint, task_id), polling=True)
        return parse_status(body, self._unit_price)

    async def cancel(self, backend_job_id: str) -> None:
        raise BackendFailure("Kling has no cancel endpoint", code="cancel_unsupported")

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """Kling's CDN URL needs no key: none is sent."""
        url = status.output_url or (await self.poll(backend_job_id)).output_url
        if url is None:
            raise BackendFailure(f"Kling job {backend_job_id} has no output", code="no_output")
        async for chunk in stream_output(
            self._client, url, backend=self.name, on_error=partial(classify, polling=True)
        ):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _malformed(submitting: bool) -> RetryableError:
    return RetryableError(
        "Kling sent malformed JSON or an unexpected body",
        code="malformed",
        outcome_unknown=submitting,
    )


def _query_path(endpoint: str, task_id: str) -> str:
    return f"/v1/videos/{endpoint}/{quote(task_id, safe='')}"


def _split(backend_job_id: str) -> tuple[str, str]:
    endpoint, _, task_id = backend_job_id.partition("/")
    if endpoint not in _ENDPOINTS or not task_id:
        raise BackendJobLost(f"not a Kling job id: {backend_job_id!r}", code="not_found")
    return endpoint, task_id
