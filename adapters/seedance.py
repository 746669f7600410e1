"""ByteDance Seedance on BytePlus ModelArk: content-generation tasks.

Why it looks the way it does (vendor reference: ``vendors.md`` §8, from the Vercel AI SDK's
ByteDance provider):

- **Parameters are body fields.** Older Seedance releases read ``--ratio``, ``--duration``,
  ``--resolution``, ``--seed`` as text flags appended to the prompt; the reference's API
  takes them as top-level fields (``ratio``, ``duration`` as an integer, ``resolution``,
  ``seed``, ``generate_audio``), which is what is sent. The prompt goes out untouched.
- **Frames are content items**: ``{"type": "image_url", "image_url": {"url": ...}}``, a
  URL or a data: URI. A lone image is the first frame without a role (as the SDK sends
  it); with a last frame both carry their role (``first_frame``/``last_frame``).
- **Audio** is asked for only when wanted (``generate_audio: true``): the 1.0 models have
  no audio. Models that default to audio (1.5 and later) may add a track to a shot that
  did not ask; the catalog's ``audio`` capability is the place to gate that.
- **States** ``queued``, ``running``, ``succeeded``, ``failed`` are sourced; ``cancelled``
  is third-party and ``expired`` UNCONFIRMED: both are mapped (to canceled, and to a
  failure that falls back), anything else is an ``unknown_state`` error.
- **Errors** are ``{"error": {"code", "message"}}``. ModelArk's codes (its public error
  table; not in the reference, so UNCONFIRMED here) name content refusals
  ``…SensitiveContentDetected…`` (and ``…RiskDetection`` on Volcengine): those are
  content rejections, on submit and in a failed task's ``error``. A 429 whose code is a
  quota or arrears code (``QuotaExceeded``, ``SetLimitExceeded``, ``AccountOverdueError``)
  is not retried; other 429s are rate limits.
- **Cancel** is ``DELETE …/tasks/{id}``; it cancels a *queued* task only (third-party
  source). Output URLs last 24 h and need no key.
- **Cost**: ModelArk bills per token and a task reports ``usage.completion_tokens`` (and
  ``total_tokens``); both go out as ``vendor_usage``. The cost is ``completion_tokens`` x
  the model's USD price per million tokens (``token_prices_usd``, else
  :data:`DEFAULT_TOKEN_PRICES`); a model without a price reports no cost and the gateway
  settles at its catalog estimate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from functools import partial
from typing import Any
from urllib.parse import quote

import httpx

from adapters._cost import MILLION, usd_micros, usd_price
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
    "DEFAULT_TOKEN_PRICES",
    "SeedanceAdapter",
    "classify",
    "parse_status",
    "to_payload",
]

DEFAULT_BASE_URL = "https://ark.ap-southeast.bytepluses.com/api/v3"  # CN: ark.cn-beijing.volces.com
_TASKS = "/contents/generations/tasks"
_POLL_S = 3.0  # the SDK's own interval; 1.0 Pro clips take tens of seconds
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

_STATES: dict[str, JobState] = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "canceled",
    "expired": "failed",  # UNCONFIRMED: not run before execution_expires_after
}

#: USD per million completion tokens, by model id. The reference says only that billing is
#: per token (vendors.md §8) and gives no price, so every figure here is UNCONFIRMED: the
#: one below is the rate the shipped catalog already quotes seedance/seedance-1-0-pro at
#: (gateway/catalog.toml), so the reported tokens are priced as the estimate was. Other
#: models (and ``ep-…`` endpoint ids) have no price until the operator configures one.
DEFAULT_TOKEN_PRICES: Mapping[str, Decimal] = {
    "seedance-1-0-pro-250528": Decimal("2.50"),  # UNCONFIRMED
}

_BILLING_CODES = frozenset({"QuotaExceeded", "SetLimitExceeded", "AccountOverdueError"})


def _is_content_code(code: str) -> bool:
    return "SensitiveContent" in code or code.endswith("RiskDetection")


# --- pure transforms ----------------------------------------------------------------------


def _image(url: str, field: str, role: str | None) -> dict[str, Any]:
    if not url.startswith(("https://", "http://", "data:")):
        raise InvalidInput(
            f"{field}: Seedance takes an http(s) URL or a data: URI, got {url[:40]!r}",
            code="invalid_image",
        )
    item: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    return {**item, "role": role} if role else item


def _content(request: GenerationRequest) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": request.prompt}]
    if request.image is None:
        if request.last_frame is not None:
            raise InvalidInput("last_frame needs a first frame (image) on Seedance")
        return content
    if request.last_frame is None:
        return [*content, _image(request.image, "image", None)]
    first = _image(request.image, "image", "first_frame")
    return [*content, first, _image(request.last_frame, "last_frame", "last_frame")]


def to_payload(request: GenerationRequest) -> dict[str, Any]:
    """The create body, with every parameter as a top-level field (see the docstring)."""
    if not float(request.duration_s).is_integer():
        raise InvalidInput(f"duration_s {request.duration_s} not supported by Seedance: whole s")
    body: dict[str, Any] = {
        "model": request.model,
        "content": _content(request),
        "ratio": request.aspect_ratio,
        "duration": int(request.duration_s),
        "resolution": request.resolution.lower(),
    }
    if request.seed is not None:
        body["seed"] = request.seed
    if request.audio:
        body["generate_audio"] = True
    return body


def _failure(body: dict[str, Any], raw: str) -> Failure:
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    code = str(error.get("code") or ("expired" if raw == "expired" else "generation_failed"))
    message = str(error.get("message") or f"Seedance reported the task {raw}")
    if _is_content_code(code):
        return Failure(code="content_rejected", message=f"{code}: {message}", failure_class="fatal")
    return Failure(code=code, message=message, failure_class="fallback")


def _usage(body: dict[str, Any]) -> dict[str, int]:
    """``usage.completion_tokens`` (what is billed) and ``total_tokens``, where reported."""
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return {
        key: value
        for key in ("completion_tokens", "total_tokens")
        if isinstance(value := usage.get(key), int) and not isinstance(value, bool) and value >= 0
    }


def parse_status(
    body: dict[str, Any], prices: Mapping[str, Decimal] = DEFAULT_TOKEN_PRICES
) -> JobStatus:
    """A task record → :class:`JobStatus`; an unknown ``status`` is an error. ``usage``
    becomes ``vendor_usage``, and a cost where ``prices`` (USD per 1M tokens) has the model."""
    raw = body.get("status")
    if not isinstance(raw, str) or raw not in _STATES:
        raise BackendFailure(f"Seedance reported unknown status {raw!r}", code="unknown_state")
    state = _STATES[raw]
    output_url = None
    if state == "succeeded":
        content = body.get("content")
        output_url = content.get("video_url") if isinstance(content, dict) else None
        if not isinstance(output_url, str) or not output_url:
            raise RetryableError("Seedance reported success without a video_url", code="malformed")
    usage = _usage(body)
    price = prices.get(str(body.get("model") or ""))
    return JobStatus(
        state=state,
        next_poll_s=_POLL_S,
        output_url=output_url,
        failure=_failure(body, raw) if state == "failed" else None,
        raw_state=raw,
        cost_usd_micros=usd_micros(
            usage.get("completion_tokens"), None if price is None else price / MILLION
        ),
        vendor_usage=usage or None,
    )


# --- errors -------------------------------------------------------------------------------


def _error_body(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return "", response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", response.reason_phrase
    return str(error.get("code") or ""), str(error.get("message") or response.reason_phrase)


def classify(
    response: httpx.Response, *, polling: bool = False, submitting: bool = False
) -> AdapterError:
    """A non-2xx answer → the error tree.

    ``submitting``: the answer was to a create. ModelArk documents no 5xx as "not
    accepted", and it dedupes no creates, so any 5xx on a create may hide a task.
    """
    code, text = _error_body(response)
    status = response.status_code
    message = f"Seedance HTTP {status}{' ' + code if code else ''}: {text}"
    if _is_content_code(code):
        return ContentRejected(message, code="content_rejected")
    if status == 404 or (polling and status in (400, 422)):
        return (BackendJobLost if polling else BackendFailure)(message, code="not_found")
    if status in (400, 413, 422):
        return InvalidInput(message, code="invalid_input")
    if status == 429 and code in _BILLING_CODES:
        return BackendFailure(message, code="billing")
    if status == 429:
        return RateLimited(message, code="rate_limited", retry_after=retry_after(response))
    if status == 408 or status >= 500:
        return RetryableError(
            message,
            code="server_error",
            retry_after=retry_after(response),
            outcome_unknown=submitting and status >= 500,
        )
    if code == "AccountOverdueError":
        return BackendFailure(message, code="billing")
    return BackendFailure(message, code="auth_failed" if status in (401, 403) else "http_error")


# --- the adapter --------------------------------------------------------------------------


class SeedanceAdapter:
    name = "seedance"
    idempotent_submit = False  # no dedup key documented
    supports_cancel = True  # queued tasks only

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        token_prices_usd: Mapping[str, Decimal | str] | None = None,
    ) -> None:
        """``token_prices_usd``: model id → USD per million completion tokens, over
        :data:`DEFAULT_TOKEN_PRICES` (all UNCONFIRMED)."""
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._client = client or vendor_client(base_url, _TIMEOUT)
        configured = {k: usd_price(v) for k, v in (token_prices_usd or {}).items()}
        self._prices = {**DEFAULT_TOKEN_PRICES, **configured}

    def configured_models(self) -> set[str] | None:
        return None

    async def _send(
        self, method: str, url: str, *, polling: bool = False, submitting: bool = False, **kw: Any
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, url, headers=self._auth, **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.name) from exc
        if response.status_code >= 300:
            raise classify(response, polling=polling, submitting=submitting)
        if method == "DELETE" and not response.content:
            return {}
        try:
            body = response.json()
        except ValueError as exc:
            raise _malformed(submitting) from exc
        if not isinstance(body, dict):
            raise _malformed(submitting)
        return body

    async def submit(self, request: GenerationRequest) -> Submission:
        body = await self._send("POST", _TASKS, json=to_payload(request), submitting=True)
        task_id = body.get("id")
        if not isinstance(task_id, str) or not task_id:
            raise _malformed(True)
        return Submission(backend_job_id=task_id, poll_after_s=_POLL_S)

    async def poll(self, backend_job_id: str) -> JobStatus:
        body = await self._send("GET", _task(backend_job_id), polling=True)
        return parse_status(body, self._prices)

    async def cancel(self, backend_job_id: str) -> None:
        await self._send("DELETE", _task(backend_job_id), polling=True)

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """The ``video_url`` is pre-signed (24 h): no key is sent."""
        url = status.output_url or (await self.poll(backend_job_id)).output_url
        if url is None:
            raise BackendFailure(f"Seedance task {backend_job_id} has no output", code="no_output")
        async for chunk in stream_output(
            self._client, url, backend=self.name, on_error=partial(classify, polling=True)
        ):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _task(task_id: str) -> str:
    return f"{_TASKS}/{quote(task_id, safe='')}"


def _malformed(submitting: bool) -> RetryableError:
    return RetryableError(
        "Seedance sent malformed JSON or an unexpected body",
        code="malformed",
        outcome_unknown=submitting,
    )
