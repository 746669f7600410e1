"""MiniMax Hailuo, video API v1: create, query, then retrieve the file for its URL.

Why it looks the way it does (vendor reference: ``vendors.md`` §8, from MiniMax's MCP server):

- **Three calls per job.** ``POST /v1/video_generation`` → ``task_id``; ``GET
  /v1/query/video_generation?task_id=`` until ``Success`` with a ``file_id``; then
  ``GET /v1/files/retrieve?file_id=`` for ``file.download_url``. :meth:`MiniMaxAdapter.poll`
  does the last step on success, so the status it returns carries the URL like any
  vendor's; the URL needs no key to download.
- **Errors hide in 200s.** MiniMax answers HTTP 200 with ``base_resp.status_code`` ≠ 0:
  1000/1001/1002 (unknown, timeout, rate limit) are retried, but a create answered
  1000/1001 or any HTTP 5xx may have made a task: its outcome is unknown, and it is never
  resent blindly; 1004 (auth), 1008 (balance, UNCONFIRMED) and 2038 (real-name
  verification) fall back to another vendor; 1026/1027 (sensitive input/output) are
  content refusals; 2013 (bad parameters, UNCONFIRMED) is bad input. A code not in that
  table falls back rather than retrying blindly. A ``Fail`` task's query is itself a
  success (``status_msg: "success"``): its failure message is the body's own reason where
  there is one, else a non-zero ``base_resp``'s, never "success".
- **Wire types**: ``duration`` is an integer (6 or 10), ``resolution`` is ``768P``/``1080P``
  (upper-case P), the first frame is a URL or a data URL as given. There is no negative
  prompt, seed, audio, aspect ratio or last frame in v1: the first four are dropped (the
  catalog declares none of them), a last frame is refused rather than silently ignored.
- ``callback_url`` is passed through when set; MiniMax's support for it is UNCONFIRMED, so a
  create refused as bad input while carrying it is sent once more without it.
- No cancel in v1 (v2 has one), no progress, no cost in any answer: the gateway settles at
  its catalog estimate.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx

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

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BASE_URL", "MiniMaxAdapter", "classify", "parse_status", "to_payload"]

DEFAULT_BASE_URL = "https://api.minimax.io"  # mainland China: https://api.minimaxi.com
_POLL_S = 5.0
_TIMEOUT = httpx.Timeout(30.0, connect=5.0)

_STATES: dict[str, JobState] = {
    "Preparing": "queued",
    "Queueing": "queued",
    "Processing": "running",
    "Success": "succeeded",
    "Fail": "failed",
}

_CONTENT_CODES = frozenset({1026, 1027})
#: Codes that, answering a create, leave open whether a task was made.
_UNKNOWN_ON_CREATE = frozenset({1000, 1001})

#: base_resp.status_code → (error class, our code).
_CODES: dict[int, tuple[type[AdapterError], str]] = {
    1000: (RetryableError, "server_error"),
    1001: (RetryableError, "timeout"),
    1002: (RateLimited, "rate_limited"),
    1004: (BackendFailure, "auth_failed"),
    1008: (BackendFailure, "billing"),  # insufficient balance: UNCONFIRMED code
    1026: (ContentRejected, "content_rejected"),  # prompt or image sensitive
    1027: (ContentRejected, "content_rejected"),  # generated video sensitive
    2013: (InvalidInput, "invalid_input"),  # UNCONFIRMED code
    2038: (BackendFailure, "account_unverified"),  # real-name verification required
}


# --- pure transforms ----------------------------------------------------------------------


def _first_frame(value: str) -> str:
    if value.startswith(("https://", "http://", "data:")):
        return value
    raise InvalidInput(
        f"image: MiniMax takes an http(s) URL or a data: URI, got {value[:40]!r}",
        code="invalid_image",
    )


def _seconds(value: float) -> int:
    if not float(value).is_integer():
        raise InvalidInput(f"duration_s {value} not supported by MiniMax: whole seconds only")
    return int(value)


def to_payload(
    request: GenerationRequest, *, prompt_optimizer: bool | None = None
) -> dict[str, Any]:
    """The create body. ``prompt_optimizer`` None leaves MiniMax's default (it rewrites)."""
    if request.last_frame is not None:
        raise InvalidInput("last_frame not supported by MiniMax video_generation v1")
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": request.prompt,
        "duration": _seconds(request.duration_s),
        "resolution": request.resolution.upper(),
    }
    if request.image is not None:
        body["first_frame_image"] = _first_frame(request.image)
    if prompt_optimizer is not None:
        body["prompt_optimizer"] = prompt_optimizer
    if request.callback_url is not None:
        body["callback_url"] = request.callback_url  # UNCONFIRMED field
    return body


def _base_resp(body: dict[str, Any]) -> tuple[int, str]:
    base = body.get("base_resp")
    if not isinstance(base, dict):
        return 0, ""
    code = base.get("status_code", 0)
    code = code if isinstance(code, int) and not isinstance(code, bool) else -1
    return code, str(base.get("status_msg") or "")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _failure_message(body: dict[str, Any], code: int, status_msg: str) -> str:
    """Why a ``Fail`` task failed, in MiniMax's words where the answer has any.

    The v1 query documents no reason field; ``error_message`` (seen in third-party
    clients) and ``error.message`` (the v2 shape) are read when present: UNCONFIRMED.
    ``base_resp.status_msg`` is the query's own outcome, only a reason when its
    ``status_code`` is not 0 (a query that worked says ``"success"`` for a failed task).
    """
    error = body.get("error")
    for candidate in (
        body.get("error_message"),
        error.get("message") if isinstance(error, dict) else error,
    ):
        if text := _text(candidate):
            return text
    if code != 0 and (text := _text(status_msg)):
        return text
    return "MiniMax reported the task failed"


def parse_status(body: dict[str, Any]) -> JobStatus:
    """A query answer → :class:`JobStatus` (no URL yet: that is the file step's)."""
    raw = body.get("status")
    code, message = _base_resp(body)
    if raw != "Fail" and code != 0:
        raise _from_code(code, message, polling=True)
    state = _STATES.get(raw) if isinstance(raw, str) else None
    if state is None:
        raise BackendFailure(f"MiniMax reported unknown status {raw!r}", code="unknown_state")
    failure = None
    if state == "failed":
        content = code in _CONTENT_CODES
        failure = Failure(
            code="content_rejected" if content else "generation_failed",
            message=_failure_message(body, code, message),
            failure_class="fatal" if content else "fallback",
        )
    return JobStatus(state=state, next_poll_s=_POLL_S, failure=failure, raw_state=raw)


# --- errors -------------------------------------------------------------------------------


def _from_code(
    code: int,
    message: str,
    *,
    polling: bool,
    submitting: bool = False,
    response: httpx.Response | None = None,
) -> AdapterError:
    kind, ours = _CODES.get(code, (BackendFailure, "vendor_error"))
    text = f"MiniMax status_code {code}: {message}"
    if polling and kind is InvalidInput:  # a query refused: the task id is not known
        return BackendJobLost(text, code="not_found")
    after = retry_after(response) if response is not None and kind is RateLimited else None
    # 1000 (unknown error) and 1001 (timeout) on a create do not say the task was not made.
    unknown = submitting and code in _UNKNOWN_ON_CREATE
    return kind(text, code=ours, retry_after=after, outcome_unknown=unknown)


def _by_status(
    response: httpx.Response, *, polling: bool, submitting: bool = False
) -> AdapterError:
    status = response.status_code
    trace = response.headers.get("trace-id")
    message = f"MiniMax HTTP {status}: {response.text[:200] or response.reason_phrase}"
    message += f" (Trace-Id {trace})" if trace else ""
    if status == 404 or (polling and status in (400, 422)):
        return (BackendJobLost if polling else BackendFailure)(message, code="not_found")
    if status in (400, 413, 422):
        return InvalidInput(message, code="invalid_input")
    if status == 429:
        return RateLimited(message, code="rate_limited", retry_after=retry_after(response))
    if status == 408 or status >= 500:
        # MiniMax documents no HTTP 5xx (its errors come in 200s): any 5xx on a create may
        # hide a task, and v1 has no dedup key, so the create is never resent blindly.
        return RetryableError(
            message,
            code="server_error",
            retry_after=retry_after(response),
            outcome_unknown=submitting and status >= 500,
        )
    return BackendFailure(message, code="auth_failed" if status in (401, 403) else "http_error")


def classify(
    response: httpx.Response, *, polling: bool = False, submitting: bool = False
) -> AdapterError:
    """Any error answer: a non-2xx, or a 200 whose ``base_resp.status_code`` is not 0.

    ``submitting``: the answer was to a create, where a server error may hide a task.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message = _base_resp(body) if isinstance(body, dict) else (0, "")
    if code != 0:
        return _from_code(code, message, polling=polling, submitting=submitting, response=response)
    return _by_status(response, polling=polling, submitting=submitting)


# --- the adapter --------------------------------------------------------------------------


class MiniMaxAdapter:
    name = "minimax"
    idempotent_submit = False  # no dedup key in v1
    supports_cancel = False  # v1 has no cancel

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        prompt_optimizer: bool | None = None,
    ) -> None:
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._client = client or vendor_client(base_url, _TIMEOUT)
        self._prompt_optimizer = prompt_optimizer

    def configured_models(self) -> set[str] | None:
        return None

    async def _send(
        self,
        method: str,
        url: str,
        *,
        polling: bool = False,
        submitting: bool = False,
        check_base_resp: bool = True,
        **kw: Any,
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(method, url, headers=self._auth, **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.name) from exc
        if response.status_code >= 300:
            raise classify(response, polling=polling, submitting=submitting)
        try:
            body = response.json()
        except ValueError as exc:
            raise _malformed(submitting) from exc
        if not isinstance(body, dict):
            raise _malformed(submitting)
        if check_base_resp and _base_resp(body)[0] != 0:
            raise classify(response, polling=polling, submitting=submitting)
        return body

    async def submit(self, request: GenerationRequest) -> Submission:
        payload = to_payload(request, prompt_optimizer=self._prompt_optimizer)
        try:
            body = await self._send("POST", "/v1/video_generation", json=payload, submitting=True)
        except InvalidInput as exc:
            if "callback_url" not in payload:
                raise
            # callback_url is UNCONFIRMED on v1. A refused create made no task, so one resend
            # without it is safe: the engine polls anyway, the callback only wakes it.
            log.warning("MiniMax refused a create carrying callback_url (%s); resending", exc)
            del payload["callback_url"]
            body = await self._send("POST", "/v1/video_generation", json=payload, submitting=True)
        task_id = body.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise _malformed(True)
        return Submission(backend_job_id=task_id, poll_after_s=_POLL_S)

    async def poll(self, backend_job_id: str) -> JobStatus:
        body = await self._send(
            "GET",
            "/v1/query/video_generation",
            params={"task_id": backend_job_id},
            polling=True,
            check_base_resp=False,  # a failed task carries its reason there: parse_status reads it
        )
        status = parse_status(body)
        if status.state != "succeeded":
            return status
        file_id = body.get("file_id")
        if not isinstance(file_id, str | int) or isinstance(file_id, bool) or file_id == "":
            raise RetryableError("MiniMax reported success without a file_id", code="malformed")
        return status.model_copy(update={"output_url": await self._download_url(file_id)})

    async def _download_url(self, file_id: str | int) -> str:
        body = await self._send(
            "GET", "/v1/files/retrieve", params={"file_id": file_id}, polling=True
        )
        file = body.get("file")
        url = file.get("download_url") if isinstance(file, dict) else None
        if not isinstance(url, str) or not url:
            raise RetryableError("MiniMax file has no download_url", code="malformed")
        return url

    async def cancel(self, backend_job_id: str) -> None:
        raise BackendFailure("MiniMax v1 has no cancel endpoint", code="cancel_unsupported")

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """The retrieved ``download_url`` is pre-signed: no key is sent."""
        url = status.output_url or (await self.poll(backend_job_id)).output_url
        if url is None:
            raise BackendFailure(f"MiniMax task {backend_job_id} has no output", code="no_output")
        async for chunk in stream_output(
            self._client, url, backend=self.name, on_error=partial(_by_status, polling=True)
        ):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _malformed(submitting: bool) -> RetryableError:
    return RetryableError(
        "MiniMax sent malformed JSON or an unexpected body",
        code="malformed",
        outcome_unknown=submitting,
    )
