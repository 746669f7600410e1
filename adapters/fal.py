"""The fal.ai adapter: any fal video endpoint, through fal's queue API.

fal hosts hundreds of models behind one queue protocol, so this adapter is one wire
format plus a small table of input builders:

- Submit ``POST https://queue.fal.run/{endpoint}`` with the model's own input as the body
  (``?fal_webhook=`` when a callback is wanted) → ``{request_id, status_url, ...}``. Poll
  ``GET …/requests/{id}/status`` (``IN_QUEUE`` with ``queue_position``, ``IN_PROGRESS``,
  ``COMPLETED``), then ``GET …/requests/{id}`` for the result (``{"video": {"url": …}}``).
- Status and result URLs drop the endpoint's subpath (``fal-ai/kling-video/v2.1/master/
  text-to-video`` → ``fal-ai/kling-video/requests/{id}``). The job id we persist is
  ``{endpoint}#{request_id}``; :func:`queue_path` rebuilds the queue path with the rule fal's
  own client uses to resume a stored request id (owner/alias, plus a ``workflows``/``comfy``
  namespace), so a restarted gateway polls the right URL.
- Families name their inputs differently (Veo ``duration: "8s"``, Kling ``"5"``, Wan and LTX
  frame counts). A catalog ``vendor_model`` may be a family id (``fal-ai/wan/v2.2-a14b``):
  :func:`endpoint_for` appends the mode path the request needs (``/text-to-video``,
  ``/image-to-video``, ``/first-last-frame-to-video``). An id that already ends in a mode
  path is used verbatim. Unknown endpoints get a best-effort generic input.
- fal has no failed state: a failed request is ``COMPLETED`` with ``error``. The result fetch
  then answers with the model's error response, which tells bad input and content policy
  (fatal) from a model crash (fall back to another vendor).
- Cost: the result fetch carries ``x-fal-billable-units``; times the endpoint's unit price
  (given to the constructor, or read once per endpoint from fal's pricing API) it is the
  vendor-reported cost. Without a price the cost stays None (the gateway uses its quote).
- Creates are never retried here and fal dedupes nothing: ``idempotent_submit`` is False.
  Cancel exists but only takes effect before a runner starts the request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from adapters._cost import amount, usd_micros
from adapters._http import retry_after, stream_output, transport_error, vendor_client
from adapters._inputs import Mode, file_input, input_mode
from adapters.base import (
    AdapterError,
    BackendFailure,
    BackendJobLost,
    ContentRejected,
    Failure,
    FatalError,
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
    "DEFAULT_PRICING_URL",
    "FalAdapter",
    "classify",
    "endpoint_for",
    "output_url",
    "parse_status",
    "parse_unit_price",
    "queue_path",
    "to_payload",
]

DEFAULT_BASE_URL = "https://queue.fal.run"
#: fal's platform API: unit price per endpoint (``?endpoint_id=``). Its response shape is
#: taken from fal's platform API docs; the reference only cites it third-hand (UNCONFIRMED).
DEFAULT_PRICING_URL = "https://api.fal.ai/v1/models/pricing"


_STATES: dict[str, JobState] = {
    "IN_QUEUE": "queued",
    "IN_PROGRESS": "running",
    "COMPLETED": "succeeded",  # or "failed" when the body carries ``error``
}
_NAMESPACES = ("workflows", "comfy")
_MODE_SEGMENTS = frozenset(
    {"text-to-video", "image-to-video", "first-last-frame-to-video", "reference-to-video"}
)
_CONTENT_POLICY = "content_policy_violation"


# --- payloads -------------------------------------------------------------------------------


def _seconds(request: GenerationRequest) -> int:
    return round(request.duration_s)


def _frames(request: GenerationRequest, multiple: int) -> int:
    """Frames for the clip, as ``multiple·k + 1`` (what Wan and LTX latents need)."""
    return round(request.duration_s * request.fps / multiple) * multiple + 1


def _base(request: GenerationRequest, *, seed: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"prompt": request.prompt}
    if request.negative_prompt:
        body["negative_prompt"] = request.negative_prompt
    if seed and request.seed is not None:
        body["seed"] = request.seed
    return body


def _veo(request: GenerationRequest, mode: Mode, endpoint: str) -> dict[str, Any]:
    """``fal-ai/veo3``, ``fal-ai/veo3.1`` (+ ``/fast``): duration ``"4s"``, ``"6s"``, ``"8s"``."""
    body = _base(request) | {
        "aspect_ratio": request.aspect_ratio,
        "duration": f"{_seconds(request)}s",
        "resolution": request.resolution,
        "generate_audio": request.audio,
    }
    if mode == "i2v":
        body["image_url"] = file_input(request.image, "image")
    elif mode == "flf":
        body["first_frame_url"] = file_input(request.image, "image")
        body["last_frame_url"] = file_input(request.last_frame, "last_frame")
    return body


def _kling(request: GenerationRequest, mode: Mode, endpoint: str) -> dict[str, Any]:
    """``fal-ai/kling-video/...``: duration is a string; v3 names its frames start/end and
    has audio; earlier versions take ``image_url`` (``tail_image_url``: UNCONFIRMED)."""
    body = _base(request, seed=False) | {"duration": str(_seconds(request))}
    v3 = "/v3/" in endpoint
    if mode == "t2v":
        body["aspect_ratio"] = request.aspect_ratio
    else:
        first, last = (
            ("start_image_url", "end_image_url") if v3 else ("image_url", "tail_image_url")
        )
        body[first] = file_input(request.image, "image")
        if mode == "flf":
            body[last] = file_input(request.last_frame, "last_frame")
    if v3:
        body["generate_audio"] = request.audio
    return body


def _wan(request: GenerationRequest, mode: Mode, endpoint: str) -> dict[str, Any]:
    """``fal-ai/wan/v2.2-a14b/...``: ``num_frames`` (17 to 161) at ``frames_per_second``."""
    body = _base(request) | {
        "num_frames": _frames(request, 4),
        "frames_per_second": request.fps,
        "resolution": request.resolution,
        "aspect_ratio": request.aspect_ratio,
    }
    if mode == "i2v":
        body["image_url"] = file_input(request.image, "image")
    return body


def _ltx_video(request: GenerationRequest, mode: Mode, endpoint: str) -> dict[str, Any]:
    """``fal-ai/ltx-video-13b-dev`` and kin: ``num_frames`` (8k+1); ``frame_rate`` UNCONFIRMED."""
    body = _base(request) | {
        "resolution": request.resolution,
        "aspect_ratio": request.aspect_ratio,
        "num_frames": _frames(request, 8),
        "frame_rate": request.fps,
    }
    if mode == "i2v":
        body["image_url"] = file_input(request.image, "image")
    return body


def _ltx2(request: GenerationRequest, mode: Mode, endpoint: str) -> dict[str, Any]:
    """``fal-ai/ltx-2/...``: whole seconds, ``fps``, audio (field names UNCONFIRMED)."""
    body = _base(request, seed=False) | {
        "duration": _seconds(request),
        "resolution": request.resolution,
        "aspect_ratio": request.aspect_ratio,
        "fps": request.fps,
        "generate_audio": request.audio,
    }
    if mode == "i2v":
        body["image_url"] = file_input(request.image, "image")
    return body


def _generic(request: GenerationRequest, mode: Mode, endpoint: str) -> dict[str, Any]:
    """Any other endpoint: the names most fal video models share. ``duration`` is sent as a
    string of whole seconds, which fal's validators accept for string enums and ints alike."""
    body = _base(request) | {
        "duration": str(_seconds(request)),
        "aspect_ratio": request.aspect_ratio,
        "resolution": request.resolution,
    }
    if request.audio:
        body["generate_audio"] = True
    if mode != "t2v":
        body["image_url"] = file_input(request.image, "image")
    if mode == "flf":
        body["end_image_url"] = file_input(request.last_frame, "last_frame")
    return body


Builder = Callable[[GenerationRequest, Mode, str], dict[str, Any]]


@dataclass(frozen=True)
class _Family:
    prefix: str
    paths: Mapping[Mode, str]  # what a family id needs appended, per mode
    build: Builder


_FAMILIES = (
    _Family(
        "fal-ai/veo3",
        {"t2v": "", "i2v": "/image-to-video", "flf": "/first-last-frame-to-video"},
        _veo,
    ),
    _Family(
        "fal-ai/kling-video/",
        {"t2v": "/text-to-video", "i2v": "/image-to-video", "flf": "/image-to-video"},
        _kling,
    ),
    _Family("fal-ai/wan/", {"t2v": "/text-to-video", "i2v": "/image-to-video"}, _wan),
    _Family("fal-ai/ltx-2", {"t2v": "/text-to-video", "i2v": "/image-to-video"}, _ltx2),
    _Family("fal-ai/ltx", {"t2v": "", "i2v": "/image-to-video"}, _ltx_video),
)
_GENERIC = _Family("", {"t2v": "", "i2v": "", "flf": ""}, _generic)


def _family(model: str) -> _Family:
    return next((f for f in _FAMILIES if model.startswith(f.prefix)), _GENERIC)


def endpoint_for(request: GenerationRequest) -> str:
    """The fal endpoint id for this request: verbatim, or the family id plus its mode path."""
    model = request.model.strip("/")
    mode = input_mode(request, "fal")
    if model.rsplit("/", 1)[-1] in _MODE_SEGMENTS:
        return model
    path = _family(model).paths.get(mode)
    if path is None:
        wanted = {"t2v": "text-to-video", "i2v": "image-to-video", "flf": "first+last frame"}
        raise InvalidInput(f"{model} on fal has no {wanted[mode]} endpoint", code="invalid_input")
    return model + path


def to_payload(request: GenerationRequest) -> tuple[str, dict[str, Any]]:
    """``(endpoint id, model input)`` for the queue submit."""
    endpoint = endpoint_for(request)
    return endpoint, _family(request.model.strip("/")).build(
        request, input_mode(request, "fal"), endpoint
    )


def queue_path(endpoint: str) -> str:
    """``fal-ai/kling-video/v2.1/master/text-to-video`` → ``fal-ai/kling-video``."""
    parts = endpoint.strip("/").split("/")
    size = 3 if parts[0] in _NAMESPACES else 2
    if len(parts) < size or not all(parts[:size]):
        raise ValueError(f"not a fal endpoint id: {endpoint!r}")
    return "/".join(parts[:size])


def _job_id(endpoint: str, request_id: str) -> str:
    return f"{endpoint}#{request_id}"


def _locate(backend_job_id: str) -> tuple[str, str]:
    """``endpoint#request_id`` → ``(endpoint, "owner/app/requests/{request_id}")``."""
    endpoint, sep, request_id = backend_job_id.rpartition("#")
    try:
        if not sep or not request_id:
            raise ValueError(backend_job_id)
        return endpoint, f"{queue_path(endpoint)}/requests/{request_id}"
    except ValueError:
        raise BackendJobLost(f"not a fal job id: {backend_job_id!r}", code="bad_job_id") from None


# --- statuses, results, errors -----------------------------------------------------------------


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def parse_status(body: dict[str, Any], *, poll_s: float = 5.0) -> JobStatus:
    """A queue status body → :class:`JobStatus`. ``COMPLETED`` is "succeeded" (the result
    fetch adds the URL) unless it carries ``error``; an unknown status is an error."""
    raw = body.get("status")
    state = _STATES.get(raw) if isinstance(raw, str) else None
    if state is None:
        raise BackendFailure(f"fal reported unknown status {raw!r}", code="unknown_state")
    error = body.get("error")
    if state == "succeeded" and error:
        failure = Failure(
            code=str(body.get("error_type") or "generation_failed"),
            message=str(error),
            failure_class="fallback",  # fal already retried infrastructure failures
        )
        return JobStatus(state="failed", failure=failure, next_poll_s=0.0, raw_state=raw)
    position = _count(body.get("queue_position")) if state == "queued" else None
    return JobStatus(state=state, queue_position=position, next_poll_s=poll_s, raw_state=raw)


def output_url(result: Any) -> str | None:
    """The video's URL in a fal result: ``{"video": {"url"}}`` (fal File; per-model shapes
    are UNCONFIRMED, so ``{"videos": [{"url"}]}`` and a bare URL string are accepted too)."""
    if not isinstance(result, dict):
        return None
    video = result.get("video")
    if video is None and isinstance(result.get("videos"), list) and result["videos"]:
        video = result["videos"][0]
    if isinstance(video, dict):
        video = video.get("url")
    return video if isinstance(video, str) and video else None


def parse_unit_price(body: Any, endpoint: str) -> Decimal | None:
    """USD per billable unit from ``{"prices": [{"endpoint_id", "unit_price", "currency"}]}``."""
    prices = body.get("prices") if isinstance(body, dict) else None
    for item in prices if isinstance(prices, list) else []:
        if not isinstance(item, dict) or item.get("endpoint_id") != endpoint:
            continue
        if str(item.get("currency") or "USD").upper() != "USD":
            return None
        try:
            price = Decimal(str(item.get("unit_price")))
        except InvalidOperation:
            return None
        return price if price.is_finite() and price >= 0 else None
    return None


def _error_info(response: httpx.Response) -> tuple[str, list[str], str | None]:
    """``(message, detail types, error_type)`` from fal's two error shapes: model errors
    (``detail`` = list of ``{loc, msg, type}``) and request errors (``detail`` string +
    ``error_type``, also in the ``x-fal-error-type`` header)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    body = body if isinstance(body, dict) else {}
    detail = body.get("detail")
    types: list[str] = []
    if isinstance(detail, list):
        items = [d for d in detail if isinstance(d, dict)]
        types = [str(d.get("type")) for d in items if d.get("type")]
        message = "; ".join(_describe(d) for d in items)
    else:
        message = str(detail) if detail else ""
    error_type = body.get("error_type") or response.headers.get("x-fal-error-type")
    message = message or response.text[:200] or response.reason_phrase
    return message, types, str(error_type) if error_type else None


def _describe(item: dict[str, Any]) -> str:
    """``{"loc": ["body", "num_frames"], "msg": "…"}`` → ``"num_frames: …"``."""
    loc = item.get("loc")
    where = ".".join(str(p) for p in loc if p != "body") if isinstance(loc, list) else ""
    msg = str(item.get("msg") or item.get("type") or "invalid")
    return f"{where}: {msg}" if where else msg


def classify(response: httpx.Response, *, job: bool = False, submit: bool = False) -> AdapterError:
    """Map a non-2xx fal answer to the adapter error tree.

    ``job``: the URL named an existing request (404 means fal lost it). ``submit``: the
    answer was to a create, where a server error or a gateway timeout (500/502/504) may
    hide an accepted request.
    """
    message, types, error_type = _error_info(response)
    status = response.status_code
    code = error_type or (types[0] if types else f"http_{status}")
    if _CONTENT_POLICY in types:
        return ContentRejected(f"fal refused the content: {message}", code=_CONTENT_POLICY)
    if status == 404:
        if job:
            return BackendJobLost(f"fal does not know the request: {message}", code="not_found")
        return BackendFailure(f"fal endpoint not found: {message}", code="not_found")
    if status in (400, 413, 422):
        return InvalidInput(f"fal rejected the input: {message}", code=code)
    if status in (401, 402, 403):
        # A bad key, or fal's "user is locked (exhausted balance)": not retryable here.
        return BackendFailure(f"fal refused the request (HTTP {status}): {message}", code=code)
    if status == 429:
        return RateLimited(
            message, code=error_type or "rate_limited", retry_after=retry_after(response)
        )
    if status in (408, 409) or status >= 500:
        return RetryableError(
            f"fal HTTP {status}: {message}",
            code=code,
            retry_after=retry_after(response),
            outcome_unknown=submit and status in (500, 502, 504),
        )
    return BackendFailure(f"fal HTTP {status}: {message}", code=code)


def _body(response: httpx.Response, *, submit: bool = False) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RetryableError(
            "fal sent malformed JSON", code="malformed", outcome_unknown=submit
        ) from exc
    if not isinstance(body, dict):
        raise RetryableError(
            "fal sent an unexpected body", code="malformed", outcome_unknown=submit
        )
    return body


# --- the adapter ----------------------------------------------------------------------------


class FalAdapter:
    """fal's queue API for any video endpoint. See the module docstring."""

    name = "fal"
    idempotent_submit = False
    supports_cancel = True

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        client: httpx.AsyncClient | None = None,
        poll_interval_s: float = 5.0,
        pricing_url: str | None = DEFAULT_PRICING_URL,
        unit_prices_usd: Mapping[str, Decimal | str] | None = None,
        pricing_timeout_s: float = 5.0,
    ) -> None:
        """``client`` (tests, emulators) comes with its own base URL. ``unit_prices_usd``
        (endpoint id → USD per billable unit) takes precedence over ``pricing_url``, which
        is asked once per endpoint; ``pricing_url=None`` asks nobody."""
        self._auth = {"Authorization": f"Key {api_key}"}
        self._client = client or vendor_client(base_url, httpx.Timeout(60.0, connect=10.0))
        self._poll_s = poll_interval_s
        self._pricing_url = pricing_url
        self._pricing_timeout_s = pricing_timeout_s
        self._prices = {k: Decimal(str(v)) for k, v in (unit_prices_usd or {}).items()}

    def configured_models(self) -> set[str] | None:
        return None

    async def _call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return await self._client.request(method, url, headers=self._auth, **kw)
        except httpx.TransportError as exc:
            raise transport_error(exc, "fal") from exc

    async def _ok(
        self, method: str, url: str, *, job: bool = True, submit: bool = False, **kw: Any
    ) -> httpx.Response:
        response = await self._call(method, url, **kw)
        if response.status_code >= 300:
            raise classify(response, job=job, submit=submit)
        return response

    async def submit(self, request: GenerationRequest) -> Submission:
        endpoint, payload = to_payload(request)
        params = {"fal_webhook": request.callback_url} if request.callback_url else None
        response = await self._ok(
            "POST", endpoint, job=False, submit=True, json=payload, params=params
        )
        request_id = _body(response, submit=True).get("request_id")
        if not isinstance(request_id, str) or not request_id:
            raise RetryableError(
                "fal answered the submit without a request_id",
                code="malformed",
                outcome_unknown=True,
            )
        return Submission(backend_job_id=_job_id(endpoint, request_id), poll_after_s=self._poll_s)

    async def poll(self, backend_job_id: str) -> JobStatus:
        endpoint, base = _locate(backend_job_id)
        status = parse_status(_body(await self._ok("GET", f"{base}/status")), poll_s=self._poll_s)
        if status.state == "succeeded":
            return await self._result(endpoint, base, status)
        if status.state == "failed":
            return await self._failure(base, status)
        return status

    async def _result(self, endpoint: str, base: str, status: JobStatus) -> JobStatus:
        response = await self._ok("GET", base)
        url = output_url(_body(response))
        if url is None:
            failure = Failure(
                code="no_output",
                message="fal completed the request without a video URL",
                failure_class="fallback",
            )
            return status.model_copy(update={"state": "failed", "failure": failure})
        units = amount(response.headers.get("x-fal-billable-units"))
        cost = usd_micros(units, await self._unit_price(endpoint))
        usage = None if units is None else {"billable_units": str(units)}
        return status.model_copy(
            update={
                "output_url": url,
                "cost_usd_micros": cost,
                "vendor_usage": usage,
                "progress": 1.0,
            }
        )

    async def _failure(self, base: str, status: JobStatus) -> JobStatus:
        """The result of a failed request is the model's error: bad input or content policy
        make the failure fatal (another vendor would refuse it too)."""
        response = await self._call("GET", base)
        if response.status_code < 300:
            return status
        error = classify(response, job=True)
        if not isinstance(error, FatalError):
            return status
        failure = Failure(code=error.code, message=error.message, failure_class="fatal")
        return status.model_copy(update={"failure": failure})

    async def _unit_price(self, endpoint: str) -> Decimal | None:
        """USD per billable unit; a pricing lookup that fails leaves the cost unknown."""
        if endpoint in self._prices or self._pricing_url is None:
            return self._prices.get(endpoint)
        try:
            response = await self._client.get(
                self._pricing_url,
                params={"endpoint_id": endpoint},
                headers=self._auth,
                timeout=self._pricing_timeout_s,
            )
            price = parse_unit_price(response.json(), endpoint) if response.is_success else None
        except (httpx.HTTPError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        if price is not None:
            self._prices[endpoint] = price
        return price

    async def cancel(self, backend_job_id: str) -> None:
        """Cancel a request that no runner has started. fal answers 400 ``ALREADY_COMPLETED``
        when it is too late (UNCONFIRMED shape): nothing left to cancel, so no error."""
        response = await self._call("PUT", f"{_locate(backend_job_id)[1]}/cancel")
        if response.status_code < 300:
            return
        if response.status_code == 400 and _status_word(response) == "ALREADY_COMPLETED":
            return
        raise classify(response, job=True)

    async def download(self, backend_job_id: str, status: JobStatus) -> AsyncIterator[bytes]:
        """Stream the video from fal's CDN (a public URL: the key is not sent there)."""
        url = status.output_url or (await self.poll(backend_job_id)).output_url
        if url is None:
            raise BackendFailure(f"fal has no output for {backend_job_id}", code="no_output")
        async for chunk in stream_output(
            self._client, url, backend="fal", on_error=classify, follow_redirects=False
        ):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _status_word(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    word = body.get("status") if isinstance(body, dict) else None
    return word if isinstance(word, str) else None
