"""The adapter for Luma: the Agents API (current) and the legacy Dream Machine API.

Which API a request goes to follows its model (:func:`wire_for`, ``api="auto"``, the
default): the Dream Machine models (``ray-2``, ``ray-flash-2``, ``ray-1-6``) go to Dream
Machine, every other id (``ray-3.2``, ...) to the Agents API, so one adapter (one key)
serves both. An Agents job id then carries an ``agents:`` prefix, so a poll after a
restart asks the right API; a bare id is Dream Machine's, as every id was under the old
``dream-machine`` default (jobs in flight across an upgrade stay readable).
``api="agents"`` or ``api="dream-machine"`` sends every model to that one API instead
(bare job ids). A ``base_url`` (an emulator, a proxy) serves both.

**Agents API** (``agents.lumalabs.ai/v1``): ``POST /generations`` with
``type: "video"`` answers 201 and the generation, ``GET /generations/{id}`` reports it
(``queued → processing → completed | failed``), a finished one lists ``output[{type,url}]``
with URLs presigned for one hour. It has no cancel, no seed, no negative prompt, no audio
switch and no webhook field, so those request fields are not sent. Image inputs go as
``video.start_frame`` / ``video.end_frame``, each ``{url}`` or ``{data, media_type}``
(a ``data:`` URI is split into those two, since Luma wants bare base64).

**Dream Machine API** (``api.lumalabs.ai/dream-machine/v1``):
the ``ray-2`` / ``ray-flash-2`` / ``ray-1-6`` models. ``POST /generations/video``, the
same GET, states ``queued → dreaming → completed | failed``, the video at
``assets.video``; keyframes take URLs only, and ``callback_url`` is passed through. Its
``DELETE /generations/{id}`` deletes a generation; it is not documented as a cancel, so
this adapter does not claim one.

Why the error choices: Luma's synchronous errors are keyed by HTTP status with a
``detail`` message ([D] guides/error-handling): 400/413/422 are the request's fault,
401/403 a bad key or account (try another vendor), 402 an empty balance (another vendor),
429 the per-minute or concurrent-job limit with ``Retry-After`` (retry), 502/503 retry.
A failed generation's ``failure_code`` says whether the same request is worth running
again. Neither API reports a cost per generation, so ``cost_usd_micros`` stays None.
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
    "DEFAULT_BASE_URL",
    "DREAM_MACHINE_BASE_URL",
    "DREAM_MACHINE_MODELS",
    "Api",
    "ApiChoice",
    "LumaAdapter",
    "classify",
    "parse_status",
    "to_dream_machine_payload",
    "to_payload",
    "wire_for",
]

Api = Literal["agents", "dream-machine"]
#: ``auto``: each model's own API (:func:`wire_for`); otherwise every model to that API.
ApiChoice = Literal["auto", "agents", "dream-machine"]
Op = Literal["submit", "poll", "download"]

DEFAULT_BASE_URL = "https://agents.lumalabs.ai/v1"
DREAM_MACHINE_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"

_NAME = "luma"
_POLL_S = 5.0  # video generations take minutes; Luma gives no polling hint
_BASE_URLS: dict[Api, str] = {"agents": DEFAULT_BASE_URL, "dream-machine": DREAM_MACHINE_BASE_URL}
_CREATE_PATHS: dict[Api, str] = {"agents": "/generations", "dream-machine": "/generations/video"}
#: The Dream Machine API's models ([S LU]); every other id is an Agents API model.
DREAM_MACHINE_MODELS = frozenset({"ray-2", "ray-flash-2", "ray-1-6"})
_AGENTS_PREFIX = "agents:"  # an Agents job id under api="auto"; a bare id is Dream Machine's

_STATES: dict[Api, dict[str, JobState]] = {
    "agents": {
        "queued": "queued",
        "processing": "running",
        "completed": "succeeded",
        "failed": "failed",
    },
    "dream-machine": {
        "queued": "queued",
        "dreaming": "running",
        "completed": "succeeded",
        "failed": "failed",
    },
}

#: Agents ``failure_code`` → what the next attempt should do ([D] guides/error-handling).
_FAILURE_CLASSES: dict[str, FailureClass] = {
    "content_moderated": "fatal",  # the prompt or an input image broke the guidelines
    "generation_failed": "retryable",  # internal model error: the same request may pass
    "output_not_found": "retryable",
    "rate_limited": "retryable",
    "budget_exhausted": "fallback",  # the account ran dry mid-generation: another vendor
    "image_too_large": "fatal",
    "unsupported_format": "fatal",
    "corrupt_input": "fatal",
    "invalid_request": "fatal",
}


# --- pure transforms ----------------------------------------------------------------------


def wire_for(model: str) -> Api:
    """The API that serves ``model``: Dream Machine for its own models, else Agents."""
    return "dream-machine" if model in DREAM_MACHINE_MODELS else "agents"


def to_payload(request: GenerationRequest) -> dict[str, Any]:
    """The Agents API create body (``POST /generations``) for ``request``."""
    video: dict[str, Any] = {
        "duration": _duration(request),
        "resolution": request.resolution,
    }
    if request.image is not None:
        video["start_frame"] = _media_ref(request.image)
    if request.last_frame is not None:
        video["end_frame"] = _media_ref(request.last_frame)
    return {
        "type": "video",
        "model": request.model,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "video": video,
    }


def to_dream_machine_payload(request: GenerationRequest) -> dict[str, Any]:
    """The legacy Dream Machine create body (``POST /generations/video``)."""
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": request.prompt,
        "aspect_ratio": request.aspect_ratio,
        "duration": _duration(request),
        "resolution": request.resolution,
    }
    keyframes = {
        name: {"type": "image", "url": _url_only(value)}
        for name, value in (("frame0", request.image), ("frame1", request.last_frame))
        if value is not None
    }
    if keyframes:
        body["keyframes"] = keyframes
    if request.callback_url is not None:
        body["callback_url"] = request.callback_url
    return body


def _duration(request: GenerationRequest) -> str:
    return f"{round(request.duration_s)}s"  # Luma durations are strings: "5s", "10s"


def _media_ref(value: str) -> dict[str, str]:
    """A URL as ``{url}``; a base64 ``data:`` URI as ``{data, media_type}``."""
    if value.startswith(("https://", "http://")):
        return {"url": value}
    if not value.startswith("data:"):
        raise InvalidInput(
            f"luma takes images as http(s) URLs or base64 data: URIs; got {value[:40]!r}",
            code="invalid_image",
        )
    header, _, data = value.partition(",")
    media_type, *params = header.removeprefix("data:").split(";")
    if not media_type or "base64" not in params or not data:
        raise InvalidInput(
            "luma needs data: URIs with a media type and base64 data "
            f"(data:image/png;base64,...); got {header[:40]!r}",
            code="invalid_image",
        )
    return {"data": data, "media_type": media_type}


def _url_only(value: str) -> str:
    if value.startswith(("https://", "http://")):
        return value
    raise InvalidInput(
        "luma's Dream Machine API takes keyframe images by URL only; upload the image and "
        f"pass its https URL (got {value[:40]!r})",
        code="invalid_image",
    )


def parse_status(body: Any, *, api: Api = "agents") -> JobStatus:
    """A generation from ``GET /generations/{id}`` → :class:`JobStatus`."""
    raw = body.get("state") if isinstance(body, dict) else None
    if not isinstance(raw, str):
        raise RetryableError("luma sent a generation without a state", code="malformed")
    state = _STATES[api].get(raw)
    if state is None:
        raise BackendFailure(f"luma reported unknown state {raw!r}", code="unknown_state")
    return JobStatus(
        state=state,
        progress=1.0 if state == "succeeded" else None,
        next_poll_s=_POLL_S,
        output_url=_output_url(body, api) if state == "succeeded" else None,
        failure=_failure(body) if state == "failed" else None,
        raw_state=raw,
    )


def _output_url(body: dict[str, Any], api: Api) -> str:
    if api == "dream-machine":
        assets = body.get("assets")
        url = assets.get("video") if isinstance(assets, dict) else None
    else:
        outputs = body.get("output")
        videos = [
            o.get("url")
            for o in (outputs if isinstance(outputs, list) else [])
            if isinstance(o, dict) and o.get("type") == "video"
        ]
        url = videos[0] if videos else None
    if isinstance(url, str) and url:
        return url
    raise RetryableError("luma reported completion without a video URL", code="malformed")


def _failure(body: dict[str, Any]) -> Failure:
    code = body.get("failure_code")  # Agents only; Dream Machine gives just a reason
    code = code if isinstance(code, str) and code else None
    return Failure(
        code=code or "generation_failed",
        message=str(body.get("failure_reason") or "luma reported the generation failed"),
        failure_class=_FAILURE_CLASSES.get(code or "", "fallback"),
    )


def classify(response: httpx.Response, *, op: Op = "poll", api: Api = "agents") -> AdapterError:
    """Map a non-2xx answer to the adapter error tree."""
    status, detail = response.status_code, _error_detail(response)
    if status == 404 and op != "submit":
        return BackendJobLost(f"luma does not know the generation: {detail}", code="not_found")
    if status in (400, 413, 422):
        return InvalidInput(f"luma rejected the request: {detail}", code="invalid_input")
    if status == 429:
        return RateLimited(
            f"luma is rate limiting: {detail}",
            code="rate_limited",
            retry_after=retry_after(response),
        )
    if status == 408 or status >= 500:
        # Luma's Agents API documents 503 as "image ingestion unavailable": the inputs could
        # not be fetched, so no generation was made and a plain retry is safe. Any other
        # 5xx on a create (502 "upstream service unavailable", any Dream Machine 5xx) may
        # hide one.
        refused = api == "agents" and status == 503
        return RetryableError(
            f"luma is unavailable (HTTP {status}): {detail}",
            code="unavailable",
            retry_after=retry_after(response),
            outcome_unknown=op == "submit" and status >= 500 and not refused,
        )
    if status in (401, 403):
        return BackendFailure(
            f"luma refused the API key (HTTP {status}): {detail}", code="unauthorized"
        )
    if status == 402:
        return BackendFailure(f"luma balance exhausted: {detail}", code="insufficient_balance")
    return BackendFailure(f"luma answered HTTP {status}: {detail}", code=f"http_{status}")


def _error_detail(response: httpx.Response) -> str:
    """Luma's errors carry ``detail``: a message, or a list of validation problems."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list):
        return "; ".join(_problem(item) for item in detail) or response.reason_phrase
    return json.dumps(body)[:200]


def _problem(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc") or [])
    return f"{where}: {item.get('msg')}" if where else str(item.get("msg"))


# --- the adapter --------------------------------------------------------------------------


class LumaAdapter:
    """Luma behind the :class:`~adapters.base.Adapter` contract.

    ``api`` is ``"auto"`` (default: each model's API, see :func:`wire_for`), ``"agents"``
    or ``"dream-machine"`` (every model to that API); each API has its default base URL,
    and a ``base_url`` given serves both. A ``client`` passed in is used as given (its own
    base URL, when it has one, wins) and closed by :meth:`aclose`.
    """

    name = _NAME
    idempotent_submit = False  # neither Luma API dedupes creates
    supports_cancel = False  # no cancel in the Agents API; Dream Machine only deletes

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        api: ApiChoice = "auto",
    ) -> None:
        if api != "auto" and api not in _BASE_URLS:
            raise ValueError(f"unknown luma api {api!r}; use 'auto', 'agents' or 'dream-machine'")
        self._api: ApiChoice = api
        # A given client that has its own base URL is used as configured.
        root = (str(client.base_url) if client is not None else "") or base_url or ""
        self._base_urls: dict[Api, str] = {
            wire: (root or default).rstrip("/") for wire, default in _BASE_URLS.items()
        }
        # Per request, never on the client: output URLs live on other hosts.
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._client = client or vendor_client(
            self._base_urls["agents" if api == "auto" else api], httpx.Timeout(60.0, connect=10.0)
        )

    @property
    def api(self) -> ApiChoice:
        return self._api

    def _wire(self, model: str) -> Api:
        return wire_for(model) if self._api == "auto" else self._api

    def _job(self, backend_job_id: str) -> tuple[Api, str]:
        """The API a job id belongs to, and the generation id within it."""
        if self._api != "auto":
            return self._api, backend_job_id
        if backend_job_id.startswith(_AGENTS_PREFIX):
            return "agents", backend_job_id.removeprefix(_AGENTS_PREFIX)
        return "dream-machine", backend_job_id

    def configured_models(self) -> set[str] | None:
        return None

    def payload(self, request: GenerationRequest) -> dict[str, Any]:
        """The create body the request's API takes."""
        if self._wire(request.model) == "dream-machine":
            return to_dream_machine_payload(request)
        return to_payload(request)

    async def _json(
        self,
        method: str,
        wire: Api,
        path: str,
        *,
        op: Op,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        try:
            response = await self._client.request(
                method,
                self._base_urls[wire] + path,
                headers={**self._headers, **(headers or {})},
                **kw,
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, _NAME) from exc
        if response.status_code >= 300:
            raise classify(response, op=op, api=wire)
        try:
            body = response.json()
        except ValueError as exc:
            raise _malformed("malformed JSON", op) from exc
        if not isinstance(body, dict):
            raise _malformed("an unexpected body", op)
        return body

    async def submit(self, request: GenerationRequest) -> Submission:
        wire = self._wire(request.model)
        # X-Request-Id is echoed back and shows in Luma's logs; it does not dedupe.
        headers = {"X-Request-Id": request.request_id} if wire == "agents" else None
        body = await self._json(
            "POST",
            wire,
            _CREATE_PATHS[wire],
            op="submit",
            json=self.payload(request),
            headers=headers,
        )
        generation_id = body.get("id")
        if not isinstance(generation_id, str) or not generation_id:
            raise _malformed("a create answer without a generation id", "submit")
        prefix = _AGENTS_PREFIX if self._api == "auto" and wire == "agents" else ""
        return Submission(backend_job_id=prefix + generation_id, poll_after_s=_POLL_S)

    async def poll(self, backend_job_id: str) -> JobStatus:
        wire, generation_id = self._job(backend_job_id)
        body = await self._json("GET", wire, f"/generations/{generation_id}", op="poll")
        return parse_status(body, api=wire)

    async def cancel(self, backend_job_id: str) -> None:
        raise BackendFailure("luma cannot cancel a generation", code="cancel_unsupported")

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """Stream the video; a link past its hour is swapped for a fresh one, once."""
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
    return RetryableError(f"luma sent {what}", code="malformed", outcome_unknown=op == "submit")
